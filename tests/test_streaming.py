"""Streaming summaries: a ledger with a sink hands its rows on as they come to rest, and the
summary counted from them is the one counted from the whole table."""

from __future__ import annotations

import gc
import math
import weakref
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.cli import main
from netsim.mail import Kind, Ledger, Mail, Outcome, SenderType
from netsim.mail.ledger import ConservationError
from netsim.scenario import Scenario
from netsim.verify.worlds import random_world
from netsim.world.dialogue import Dialogue
from netsim.world.report import Delays, Summary, summarise
from netsim.world.results import sampled
from netsim.world.run import simulate
from tests.conftest import in_creation_order, tiny_scenario


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "sim": {k: v for k, v in summary["sim"].items()
                               if k != "wall_seconds"}}


class Cuts:
    """Counts a ledger's cuts and the rows it set aside."""

    def __init__(self, rows: int):
        self.rows, self.cuts, self.aside, self.window = rows, 0, 0, 0

    def __call__(self, world: Any) -> None:
        ledger = world.ledger
        ledger.retire_rows = self.rows
        retire = ledger.retire

        def counted(everything: bool = False) -> None:
            self.window = max(self.window, len(ledger.message_id))
            retire(everything)
            self.cuts += not everything
            self.aside = max(self.aside, len(ledger._aside_rows))
        ledger.retire = counted


@pytest.mark.parametrize("seed,fidelity", [(1, "session"), (2, "flow"), (3, "session"),
                                           (3, "flow"), (4, "command"), (5, "flow")])
def test_a_summary_streamed_as_rows_come_to_rest_is_the_one_counted_from_every_row(
        seed, fidelity):
    """On random worlds (every mechanism on or off): counts, stopped_by, spam by origin,
    legitimate delivery, the delays and the hourly series are the same at ``summary`` (rows
    handed on, in flight ones set aside, at many cuts) as from the full table; the
    ``sample`` is the full table's sample."""
    data = random_world(seed)
    data["fidelity"] = fidelity
    scenario = Scenario.model_validate(data)
    full = simulate(scenario)
    cuts = Cuts(40)
    streamed = simulate(scenario, records="summary", setup=cuts)
    assert cuts.cuts > 5 and cuts.aside > 0   # the cuts set rows in flight aside
    assert cuts.window < full.summary["sim"]["recipients"]
    assert _comparable(streamed.summary) == _comparable(full.summary)
    assert streamed.timeseries.equals(full.timeseries)
    assert streamed.recipients.num_rows == 0
    assert streamed.summary["legit_delay"]["retrieval_median_s"] > 0
    sample = simulate(scenario, records="sample", setup=Cuts(40))
    assert sample.recipients.equals(sampled(full.recipients))
    assert _comparable(sample.summary) == _comparable(full.summary)


def test_a_window_cut_and_handed_on_a_slice_at_a_time_is_handed_on_as_a_whole(monkeypatch):
    """A country's window is cut and handed on some rows at a time, so that its
    temporaries stay small: the same rows reach the sink, in row order, with the same
    columns, and the same rows are set aside, as when it is looked at whole."""
    rng = np.random.default_rng(7)
    outcome = rng.integers(0, 4, 600)    # 0 pending, 1 rejected, 2 delivered, 3 retrieved

    def retired(slice_rows: int) -> tuple[list, Ledger]:
        monkeypatch.setattr("netsim.mail.ledger.SLICE_ROWS", slice_rows)
        handed: list = []
        ledger = Ledger(sink=lambda rows, arrays, words: handed.append((rows, arrays)),
                        retire_rows=10)
        for i in range(300):
            mail = Mail(i + 1, Kind.LEGIT, SenderType.USER, "a@x.example", 100, float(i))
            ledger.add(mail, [f"u{i}@y.example", f"v{i}@y.example"], origin_isp="x",
                       origin_network="x.dynamic", path="mua:587", first_hop_port=587)
        for cycle in range(2):   # the second cut finds rows set aside come to rest
            for row in np.flatnonzero(outcome >= 1 + cycle).tolist():
                if ledger.pending(np.array([row]))[0]:
                    ledger.finish(row, Outcome.DELIVERED if outcome[row] >= 2 else
                                  Outcome.REJECTED, float(row), code=250)
                if outcome[row] == 3 or cycle:
                    ledger.retrieved(row, 1000.0 + row)
            ledger.retire()
        return handed, ledger

    whole, ledger = retired(1 << 20)
    sliced, sliced_ledger = retired(7)
    assert len(sliced) > len(whole) >= 2
    rows = np.concatenate([r for r, _ in whole])
    assert np.concatenate([r for r, _ in sliced]).tolist() == rows.tolist()
    assert all((np.diff(r) > 0).all() for r, _ in sliced)
    for name in whole[0][1]:
        np.testing.assert_array_equal(np.concatenate([a[name] for _, a in sliced]),
                                      np.concatenate([a[name] for _, a in whole]), name)
    assert sliced_ledger.base == ledger.base > 0
    assert sliced_ledger._aside_rows.tolist() == ledger._aside_rows.tolist()


@pytest.mark.parametrize("fidelity", ["session", "flow"])
def test_a_streaming_ledger_holds_the_rows_in_flight_not_the_day(fidelity):
    """Over twelve hours the window and the rows set aside stay within about two hours'
    rows (the flow path opens an hour of users' rows ahead)."""
    scenario = tiny_scenario(fidelity=fidelity, duration_s=12 * 3600)
    cuts = Cuts(40)
    result = simulate(scenario, records="summary", setup=cuts)
    hourly = result.summary["sim"]["recipients"] / 12
    assert cuts.window + cuts.aside < 2.5 * hourly, (cuts.window, cuts.aside, hourly)


def test_a_flow_step_frees_its_dialogue_without_the_cycle_collector(monkeypatch):
    """What a minute's dialogue gathered (its sessions' and recipients' columns, their
    facts) is freed when the step is over, not left for the cycle collector: a dialogue
    held by its own facts would keep a country's minute of arrays alive meanwhile."""
    made: list[weakref.ref[Dialogue]] = []
    init = Dialogue.__init__

    def tracked(self: Dialogue, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(Dialogue, "__init__", tracked)
    gc.collect()
    gc.disable()
    try:
        simulate(tiny_scenario(fidelity="flow", duration_s=3600), records="summary")
        alive = sum(ref() is not None for ref in made)
    finally:
        gc.enable()
    assert made and alive == 0, (len(made), alive)


def test_summaries_of_disjoint_rows_merge_into_the_summary_of_all():
    table = simulate(tiny_scenario(seed=3)).recipients
    half = table.num_rows // 2
    merged = summarise(table.slice(0, half))
    merged.merge(summarise(table.slice(half)))
    whole = summarise(table)
    assert merged.report() == whole.report()
    assert merged.timeseries().equals(whole.timeseries())
    assert merged.rows == whole.rows == table.num_rows


durations = st.lists(st.one_of(st.floats(0, 1e-6), st.floats(1e-6, 1e8),
                               st.floats(0.5, 5_000)), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(durations, st.sampled_from([0.5, 0.9, 0.01, 0.99, 1.0]), st.integers(1, 5))
def test_a_delay_quantile_is_within_its_relative_error_whatever_the_chunks(values, q, parts):
    seconds = np.array(values)
    delays = Delays()
    for chunk in np.array_split(seconds, parts):
        delays.add(chunk)
    exact = float(np.quantile(seconds, q, method="inverted_cdf"))
    got = delays.quantile(q)
    if exact < Delays.SMALLEST:
        assert got == 0.0
    else:
        assert abs(got - exact) <= Delays.RELATIVE_ERROR * exact * (1 + 1e-9)
    assert math.isclose(delays.mean(), float(seconds.mean()), rel_tol=1e-9,
                        abs_tol=1e-6)
    whole = Delays()
    whole.add(seconds)
    assert (whole.buckets == delays.buckets).all() and whole.micros == delays.micros


def test_nan_durations_are_not_counted():
    delays = Delays()
    delays.add(np.array([np.nan, 2.0, np.nan]))
    assert len(delays) == 1 and delays.quantile(0.5) == pytest.approx(2.0, rel=0.005)


def _ledger(handed: list) -> Ledger:
    ledger = Ledger(sink=lambda rows, arrays, words: handed.append((rows, arrays)),
                    retire_rows=4)
    for i in range(3):   # three messages of two recipients: rows 0-5
        mail = Mail(i + 1, Kind.LEGIT, SenderType.USER, "a@x.example", 100, float(i))
        ledger.add(mail, [f"u{i}@y.example", f"v{i}@y.example"], origin_isp="x",
                   origin_network="x.dynamic", path="mua:587", first_hop_port=587)
    return ledger


def test_rows_in_flight_are_set_aside_and_still_answer_for_themselves(monkeypatch):
    # the window is cut where at most three rows in ten before the cut are in flight
    monkeypatch.setattr("netsim.mail.ledger.ASIDE_SHARE", 0.3)
    handed: list = []
    ledger = _ledger(handed)
    assert ledger.due
    ledger.finish_many([0, 1, 3], Outcome.REJECTED, 5.0, code=550, stopped_by="relay")
    ledger.finish(2, Outcome.DELIVERED, 6.0)   # delivered, not yet retrieved: in flight
    ledger.retire()
    (rows, arrays), = handed
    assert rows.tolist() == [0, 1, 3]                 # at rest: handed on, in row order
    assert arrays["reply_code"].tolist() == [550] * 3
    assert ledger.base == 4 and ledger._aside_rows.tolist() == [2]
    assert len(ledger) == 6 and not ledger.due
    # a row set aside answers as before
    assert ledger.pending(np.array([2, 4, 0])).tolist() == [False, True, False]
    assert not ledger.at_rest([2]) and ledger.at_rest([0])
    ledger.retrieved_rows(np.array([2, 4]), np.array([9.0, 9.5]))
    assert ledger.value("retrieved_s", 2) == 9.0 and ledger.at_rest([2])
    ledger.sent_out_rows(np.array([2, 5]))
    assert ledger.value("sent_out", 2) == 1 and ledger.value("sent_out", 5) == 1
    # a row handed on is final: a second outcome, or a mark, is refused
    with pytest.raises(ConservationError, match="row 0"):
        ledger.finish(0, Outcome.DELIVERED, 7.0)
    with pytest.raises(ConservationError, match=r"\[1\]"):
        ledger.finish_rows(np.array([1, 4]), Outcome.EXPIRED, np.array([7.0, 7.0]))
    with pytest.raises(ConservationError, match="handed on"):
        ledger.taken_outside(3)
    with pytest.raises(KeyError):
        ledger.value("created_s", 0)
    ledger.retrieved(0, 10.0)   # a retrieval of a row handed on was recorded before
    # conservation counts the rows still in flight, wherever they are held
    ledger.check_conservation({4, 5})
    with pytest.raises(ConservationError, match="held by no queue"):
        ledger.check_conservation({5})
    ledger.finish_rows(np.array([4, 5]), Outcome.EXPIRED, np.array([8.0, 8.0]))
    ledger.check_conservation(set())
    ledger.retire(everything=True)
    assert sorted(np.concatenate([r for r, _ in handed]).tolist()) == list(range(6))
    assert ledger.counts()["legit"] == {"delivered": 1, "junked": 0, "blocked": 0,
                                        "rejected": 3, "expired": 2, "pending": 0}
    with pytest.raises(ValueError, match="handed rows on"):
        ledger.to_arrow()


def test_a_ledger_without_a_sink_keeps_every_row():
    ledger = Ledger(retire_rows=4)
    ledger.add(Mail(8, Kind.LEGIT, SenderType.USER, "a@x.example", 100, 1.0),
               [f"u{i}@y.example" for i in range(6)], origin_isp="x",
               origin_network="x.dynamic", path="mua:587", first_hop_port=587)
    ledger.add(Mail(9, Kind.SPAM, SenderType.BOT, "b@x.example", 100, 1.0),
               [f"s{i}@y.example" for i in range(10)], origin_isp="x",
               origin_network="x.dynamic", path="direct", first_hop_port=25)
    assert not ledger.due and ledger.to_arrow().num_rows == 16
    with pytest.raises(ValueError, match="without a sink"):
        ledger.retire()


def test_a_summary_refuses_rows_coded_otherwise():
    summary = Summary()
    table = simulate(tiny_scenario(seed=3)).recipients
    summary.merge(summarise(table))
    other = summarise(table)
    other.words["origin_isp"] = list(reversed(other.words["origin_isp"]))
    with pytest.raises(ValueError, match="origin_isp"):
        summary.merge(other)


def test_every_row_written_as_it_comes_to_rest_is_the_table_a_run_holds(tmp_path,
                                                                          monkeypatch):
    """``recipients_file``: at ``full`` the rows go to Parquet in row groups as they come
    to rest; in creation order they are the table a run holds in memory, and the summary
    is the same."""
    monkeypatch.setattr("netsim.world.sinks.ROW_GROUP", 100)
    data = random_world(3)
    data["fidelity"] = "session"
    scenario = Scenario.model_validate(data)
    held = simulate(scenario)
    path = tmp_path / "rows.parquet"
    written = simulate(scenario, recipients_file=path, setup=Cuts(40))
    assert written.recipients.num_rows == 0 and written.recipients_file == path
    assert pq.ParquetFile(path).num_row_groups > 5
    assert in_creation_order(pq.read_table(path)).equals(in_creation_order(held.recipients))
    assert _comparable(written.summary) == _comparable(held.summary)
    assert written.recipients_frame().shape == held.recipients_frame().shape
    with pytest.raises(ValueError, match="records full"):
        simulate(scenario, records="summary", recipients_file=path)


def test_a_run_that_fails_leaves_no_file_of_rows(tmp_path, monkeypatch, capsys):
    def fail(world: Any) -> None:
        raise MemoryError

    monkeypatch.setattr("netsim.world.build.World.finish", fail)
    out = tmp_path / "out"
    assert main(["run", "--set", "duration_s=600", "--out", str(out)]) == 2
    assert "out of memory" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()   # a folder of one's own stays, without the run's file
    assert main(["run", "--set", "duration_s=600", "--out", str(out)]) == 2
    assert list(out.iterdir()) == []
