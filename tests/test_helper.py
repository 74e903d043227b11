"""A run's helper thread: the next batch of users' messages drawn and the rows at rest
counted meanwhile, with the results of a run that does both itself."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from netsim.scenario import Scenario
from netsim.verify.worlds import random_world
from netsim.world import report
from netsim.world.helper import Helper, helper_pays
from netsim.world.run import simulate
from netsim.world.sinks import Sinks
from tests.test_streaming import Cuts, _comparable


def _helpers_alive() -> int:
    return sum(t.name.startswith("netsim-helper") for t in threading.enumerate())


@pytest.mark.parametrize("seed", [2, 5])
@pytest.mark.parametrize("records", ["summary", "sample"])
def test_a_run_with_its_helper_thread_has_the_results_of_one_without(seed, records):
    """On random flow worlds (hours long: batches drawn ahead; windows cut often: many
    hand-overs to the summary), the summary, the hourly series and the sample are the
    same whether the helper thread does its work or the run does it in place; the
    thread is gone once the run is."""
    data = random_world(seed)
    data["fidelity"] = "flow"
    scenario = Scenario.model_validate(data)
    before = _helpers_alive()
    threaded = simulate(scenario, records=records, setup=Cuts(40), threaded=True)
    assert _helpers_alive() == before
    alone = simulate(scenario, records=records, setup=Cuts(40), threaded=False)
    assert threaded.summary["sim"]["recipients"] > 0
    assert _comparable(threaded.summary) == _comparable(alone.summary)
    assert threaded.timeseries.equals(alone.timeseries)
    assert threaded.recipients.equals(alone.recipients)


@pytest.mark.parametrize("threaded", [True, False])
def test_work_handed_to_the_helper_is_done_in_order_and_its_error_raised_where_taken(
        threaded):
    helper = Helper(threaded)
    done: list[int] = []

    def work(k: int) -> int:
        time.sleep(0.001 * (k % 3))   # later work finishing sooner must still wait
        done.append(k)
        return k * k

    answers = [helper.submit(work, k) for k in range(30)]
    failed = helper.submit(lambda: 1 // 0)
    assert [a.result() for a in answers] == [k * k for k in range(30)]
    assert done == list(range(30))
    with pytest.raises(ZeroDivisionError):
        failed.result()
    helper.close()
    assert _helpers_alive() == 0 or not threaded


class Recorder:
    """Stands for the summary and the rows kept: which rows reached it, in turn."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def add(self, cols: report.ArrayColumns, *_: object) -> None:
        time.sleep(0.0005)   # slower than the run hands rows on: the run must wait
        rows = cols.values("created_s") if isinstance(cols, report.ArrayColumns) else cols
        self.seen.append(int(rows[0]))


def test_rows_handed_to_a_threaded_sink_reach_it_in_the_order_handed_on():
    """Hand-overs in reverse row order reach the summary and the rows kept in that order,
    and the run is never more than ``AHEAD`` hand-overs ahead of them."""
    helper = Helper()
    summary, kept = Recorder(), Recorder()
    sinks = Sinks(summary, kept, helper)  # type: ignore[arg-type]
    for k in reversed(range(40)):
        rows = np.arange(7 * k, 7 * k + 7)
        sinks(rows, {"created_s": rows}, {})
        assert len(sinks._pending) <= Sinks.AHEAD
    sinks.wait()
    helper.close()
    assert summary.seen == kept.seen == [7 * k for k in reversed(range(40))]


def test_an_error_counting_rows_on_the_helper_is_raised_by_the_run():
    helper = Helper()
    sinks = Sinks(report.Summary(), None, helper)
    rows = np.arange(7)
    sinks(rows, {"created_s": rows * 1.0}, {"kind": ["legit"]})   # too few columns to count
    with pytest.raises(KeyError):
        sinks.wait()
    helper.close()


def test_the_helper_thread_is_used_by_default_only_for_worlds_large_enough():
    assert helper_pays(17_600_000, 86_400)        # national: some 12,000 recipients a minute
    assert not helper_pays(1_760_000, 86_400)     # medium
    assert not helper_pays(50_000, 3_600)
    assert not helper_pays(0, 0)
