"""Whole runs: the default world, result files, reproducibility, the conservation law."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from netsim.cli import main
from netsim.mail import ConservationError, Kind, Ledger, Mail, Outcome, SenderType
from netsim.scenario import load_scenario, scenario_yaml
from netsim.world import simulate
from netsim.world.workload import Batch, _without_repeats
from tests.conftest import in_creation_order, tiny_scenario

COLUMNS = {"message_id", "rcpt_index", "kind", "sender", "origin_isp", "origin_network", "path",
           "first_hop_port", "rcpt_domain", "outcome", "reply_code", "stopped_by", "created_s",
           "delivered_s", "retrieved_s", "finished_s", "sent_out", "accepted_outside"}


@pytest.fixture(scope="module")
def default_run():
    return simulate(load_scenario())


def test_default_world_conserves_recipients_and_delivers(default_run):
    counts = default_run.summary["counts"]
    frame = default_run.recipients_frame()
    for kind in Kind:
        assert sum(counts[kind.value].values()) == int((frame["kind"] == kind.value).sum())
    legit = counts["legit"]
    attempted = sum(legit.values())
    assert attempted > 5_000
    assert legit["delivered"] / attempted > 0.95
    # mistyped users and domains are rejected and bounced, not lost
    assert legit["rejected"] > 0 and sum(counts["bounce"].values()) > 0
    stopped = frame.loc[frame["outcome"] == "rejected", "stopped_by"].value_counts()
    assert {"user_unknown", "nxdomain"} <= set(stopped.index)


def test_default_world_summary_shape(default_run):
    s = default_run.summary
    assert set(s) >= {"netsim_version", "scenario", "seed", "params", "counts", "sim"}
    assert set(s["sim"]) == {"messages", "recipients", "sessions", "events", "sim_seconds",
                             "wall_seconds", "out_of_order"}
    assert s["sim"]["out_of_order"] == {}   # the engines ask every policy in time order
    assert s["sim"]["recipients"] == default_run.recipients.num_rows
    assert set(default_run.recipients.column_names) == COLUMNS
    frame = default_run.recipients_frame()
    delivered = frame[frame["outcome"] == "delivered"]
    assert (delivered["delivered_s"] >= delivered["created_s"]).all()
    # most delivered mail is collected by POP3 within the day, after it was delivered
    got = delivered.dropna(subset=["retrieved_s"])
    assert len(got) > 0.9 * len(delivered)
    assert (got["retrieved_s"] > got["delivered_s"]).all()


def test_same_seed_same_results_different_seed_different():
    first, second = simulate(tiny_scenario()), simulate(tiny_scenario())
    assert first.summary["counts"] == second.summary["counts"]
    assert first.recipients.equals(second.recipients)
    other = simulate(tiny_scenario(seed=8))
    assert not other.recipients.equals(first.recipients)


def test_cli_run_writes_results(tmp_path, capsys):
    scenario_file = tmp_path / "tiny.yaml"
    scenario_file.write_text(scenario_yaml(tiny_scenario()))
    out = tmp_path / "out"
    assert main(["run", str(scenario_file), "--out", str(out), "--seed", "3",
                 "--set", "users.mua_587_share=1"]) == 0
    printed = capsys.readouterr().out
    assert "delivered" in printed and "legit" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["params"]["users"]["mua_587_share"] == 1
    table = pq.read_table(out / "recipients.parquet")
    assert table.num_rows == summary["sim"]["recipients"]
    legit = table.filter(pc.equal(table.column("kind"), "legit"))
    assert set(legit.column("first_hop_port").to_pylist()) == {587}
    # the written scenario repeats the run exactly
    again = load_scenario(out / "scenario.yaml")
    assert again.seed == 3
    # (in the order the rows came to rest: sorted, the table a run holds)
    assert in_creation_order(simulate(again).recipients).equals(in_creation_order(table))
    assert yaml.safe_load((out / "scenario.yaml").read_text())["users"]["mua_587_share"] == 1
    assert not list(out.glob("*.tmp"))


def test_out_that_is_a_file_is_a_user_error(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["run", "--out", str(target), "--set", "duration_s=10"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def _mail(ledger: Ledger, n: int = 2) -> Mail:
    mail = Mail(1, Kind.LEGIT, SenderType.USER, "a@x.example", 100, 0.0)
    ledger.add(mail, [f"u{i}@y.example" for i in range(n)], origin_isp="x",
               origin_network="dynamic", path="mua:25", first_hop_port=25)
    return mail


def test_conservation_catches_a_lost_recipient():
    ledger = Ledger()
    mail = _mail(ledger)
    ledger.finish(mail.rows["u0@y.example"], Outcome.DELIVERED, 1.0)
    ledger.check_conservation({mail.rows["u1@y.example"]})     # held by a queue: fine
    with pytest.raises(ConservationError, match="held by no queue"):
        ledger.check_conservation(set())                         # nobody holds it: lost


def test_conservation_catches_a_double_outcome_and_a_ghost():
    ledger = Ledger()
    mail = _mail(ledger)
    row = mail.rows["u0@y.example"]
    ledger.finish(row, Outcome.REJECTED, 1.0, code=550, stopped_by="user_unknown")
    with pytest.raises(ConservationError, match="already has outcome rejected"):
        ledger.finish(row, Outcome.DELIVERED, 2.0)
    with pytest.raises(ConservationError, match="still queued but already final"):
        ledger.check_conservation({row, mail.rows["u1@y.example"]})


def test_counts_list_every_outcome():
    ledger = Ledger()
    _mail(ledger, 3)
    counts = ledger.counts()
    assert counts["legit"] == {"delivered": 0, "junked": 0, "blocked": 0, "rejected": 0,
                               "expired": 0, "pending": 3}


def test_record_levels_keep_the_summary_exact(tmp_path):
    scenario_file = tmp_path / "tiny.yaml"
    scenario_file.write_text(scenario_yaml(tiny_scenario()))
    outs = {level: tmp_path / level for level in ("full", "sample", "summary")}
    for level, out in outs.items():
        assert main(["run", str(scenario_file), "--out", str(out), "--records", level]) == 0
    summaries = {k: json.loads((o / "summary.json").read_text()) for k, o in outs.items()}
    assert summaries["full"]["counts"] == summaries["sample"]["counts"] == \
        summaries["summary"]["counts"]
    series = [pq.read_table(o / "timeseries.parquet") for o in outs.values()]
    assert series[0].equals(series[1]) and series[0].equals(series[2])
    full = in_creation_order(pq.read_table(outs["full"] / "recipients.parquet")).to_pandas()
    sample = in_creation_order(pq.read_table(outs["sample"] / "recipients.parquet")).to_pandas()
    assert not (outs["summary"] / "recipients.parquet").exists()
    assert set(sample["message_id"] % 100) == {0}
    expected = full[full["message_id"] % 100 == 0].reset_index(drop=True)
    assert sample.reset_index(drop=True).equals(expected)


def test_a_summary_run_reports_exactly_what_a_full_run_does():
    """``records="summary"`` builds no table of recipients: its summary and hourly series
    are counted from the rows as they come to rest, and equal a full run's."""
    full = simulate(tiny_scenario())
    summary = simulate(tiny_scenario(), records="summary")
    assert summary.recipients.num_rows == 0 < full.recipients.num_rows
    assert summary.timeseries.equals(full.timeseries)
    for key in full.summary:
        if key != "sim":
            assert summary.summary[key] == full.summary[key], key
    assert summary.summary["sim"]["recipients"] == full.recipients.num_rows


def test_a_message_names_each_recipient_once_keeping_its_first_occurrence():
    rng = np.random.default_rng(3)
    count = rng.integers(1, 8, size=400)
    first = np.r_[0, np.cumsum(count)]
    m = int(first[-1])
    zeros = np.zeros(len(count))
    batch = Batch(zeros, zeros.astype(int), zeros.astype(int), zeros.astype(int),
                  zeros.astype(int), zeros.astype(int), zeros, first,
                  rng.integers(2, size=m), rng.integers(3, size=m), rng.integers(3, size=m))
    kept = _without_repeats(batch)
    for i in range(len(count)):
        seen: dict[tuple[int, int, int], None] = {}
        for r in batch.recipients(i):   # the first occurrence of each address, in order
            seen.setdefault((int(batch.rcpt_isp[r]), int(batch.rcpt_user[r]),
                             int(batch.typo[r])), None)
        assert [(int(kept.rcpt_isp[r]), int(kept.rcpt_user[r]), int(kept.typo[r]))
                for r in kept.recipients(i)] == list(seen)
    assert len(kept.rcpt_isp) < m   # the draws above repeat addresses
