"""Studies: expansion, confidence intervals, sweeps that resume, executors, reports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from netsim.cli import main
from netsim.experiments import mean_interval, paired_difference, plan
from netsim.experiments.stats import difference_range, metric_range

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted(p for p in (ROOT / "experiments").glob("*.yaml")
                 if "arms" in yaml.safe_load(p.read_text()) and "parameters" not in p.read_text())
SENSITIVITY = ROOT / "experiments" / "sensitivity-op25b.yaml"
TINY = ["--set", "duration_s=1800"]


def test_confidence_interval_known_case():
    # mean 3, s = 1.5811, t(0.975, 4) = 2.7764: half-width 2.7764 · 1.5811 / √5 = 1.9632
    ci = mean_interval([1, 2, 3, 4, 5])
    assert (ci.mean, ci.n) == (3.0, 5)
    assert ci.low == pytest.approx(1.0368, abs=1e-4)
    assert ci.high == pytest.approx(4.9632, abs=1e-4)
    one = mean_interval([7.0])
    assert one.mean == 7.0 and np.isnan(one.low)


def test_paired_difference_removes_shared_noise():
    base = np.array([10.0, 50.0, 200.0, 35.0])
    treatment = base + np.array([1.0, 1.2, 0.8, 1.0])
    paired = paired_difference(treatment, base)
    assert paired.mean == pytest.approx(1.0)
    assert paired.high - paired.low < 1.0        # the shared spread cancels
    unpaired = mean_interval(treatment).high - mean_interval(treatment).low
    assert unpaired > 100
    with pytest.raises(ValueError, match="differ in size"):
        paired_difference([1, 2], [1])


@given(st.lists(st.floats(0, 1), min_size=2, max_size=8),
       st.lists(st.floats(0, 1e7), min_size=2, max_size=8))
def test_no_interval_leaves_its_metric_range(shares, counts):
    share = mean_interval(shares, bounds=metric_range("legit_delivery_ratio"))
    assert 0 <= share.low <= share.mean <= share.high <= 1
    count = mean_interval(counts, bounds=metric_range("spam_delivered"))
    assert 0 <= count.low <= count.mean * (1 + 1e-12) and count.mean <= count.high * (1 + 1e-12)
    n = min(len(shares), len(counts))
    diff = paired_difference(shares[:n], shares[::-1][:n],
                             bounds=difference_range("legit_delivery_ratio"))
    assert -1 <= diff.low <= diff.high <= 1


def test_a_bounded_interval_is_the_t_interval_far_from_its_bounds():
    values = [0.50, 0.55, 0.60, 0.52, 0.58]
    t, logit = mean_interval(values), mean_interval(values, bounds=(0.0, 1.0))
    assert logit.mean == t.mean
    assert logit.low == pytest.approx(t.low, abs=0.005)
    assert logit.high == pytest.approx(t.high, abs=0.005)
    # near a bound the t interval leaves the range, the bounded one does not
    heavy = [3e5, 1e5, 5e5]
    assert mean_interval(heavy).low < 0 < mean_interval(heavy, bounds=(0.0, np.inf)).low


def test_plan_expands_arms_grid_and_replications_with_common_seeds():
    p = plan(ROOT / "experiments" / "traveller.yaml", replications=2)
    assert len(p.runs) == 3 * 4 * 2
    first = [r for r in p.runs if r.replication == 0]
    assert {r.seed for r in p.runs} == {p.study.seed}
    assert {r.scenario["seed"] for r in first} == {p.study.seed}
    arms = {r.arm: r.scenario["policy"] for r in first}
    assert arms == {"none": "none", "op25b": "op25b", "op25b+587": "op25b+587"}
    assert len({r.run_id for r in p.runs}) == len(p.runs)


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES, ids=[s.stem for s in STUDIES])
def test_every_study_runs_at_a_tiny_scale(study, tmp_path, capsys):
    out = tmp_path / study.stem
    assert main(["sweep", str(study), "--reps", "2", "--max-reps", "2", "--jobs", "2",
                 "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    spec = yaml.safe_load(study.read_text())
    runs = pd.read_parquet(out / "runs.parquet")
    points = int(np.prod([len(v) for v in spec.get("grid", {}).values()]))
    assert len(runs) == len(spec["arms"]) * points * 2
    assert not runs.duplicated(["arm", *spec.get("grid", {}), "replication"]).any()
    for figure in spec["figures"]:
        assert (out / "figures" / f"{figure}.png").stat().st_size > 5_000
        assert (out / "figures" / f"{figure}.svg").exists()
    report = (out / "report.md").read_text()
    assert spec["title"] in report and "95 %" in report
    for metric in spec["table"]:
        assert metric in printed
    assert len(pd.read_parquet(out / "timeseries.parquet")) > 0


def _tiny_study(tmp_path: Path, **changes) -> Path:
    data = {"name": "tiny", "scenario": "default", "seed": 9, "replications": 2,
            "set": {"duration_s": 1200}, "arms": {"none": {"policy": "none"},
                                                  "op25b": {"policy": "op25b"}},
            "figures": ["spam_outcomes"], "table": ["spam_delivered"]}
    data.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_sweep_resumes_without_rerunning_or_duplicating(tmp_path, capsys):
    study, out = _tiny_study(tmp_path), tmp_path / "out"
    assert main(["sweep", str(study), "--out", str(out)]) == 0
    first = pd.read_parquet(out / "runs.parquet")
    assert "4 simulated now" in capsys.readouterr().out
    rows = sorted((out / "runs").glob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in rows}
    rows[1].unlink()                                 # as if its run had never finished
    (out / "runs" / "op25b__g0__r1.json").write_text("{trunc")   # a torn write
    assert main(["sweep", str(study), "--out", str(out)]) == 0
    assert "2 simulated now, 2 already done" in capsys.readouterr().out
    again = pd.read_parquet(out / "runs.parquet")
    assert len(again) == 4
    keep = [c for c in first.columns if c != "sim_wall_seconds"]
    pd.testing.assert_frame_equal(first[keep], again[keep])
    untouched = [p for p in rows if p.name not in (rows[1].name, "op25b__g0__r1.json")]
    assert all(p.stat().st_mtime_ns == stamps[p] for p in untouched)


def test_a_killed_sweep_resumes(tmp_path):
    study, out = _tiny_study(tmp_path, replications=4), tmp_path / "out"
    command = [sys.executable, "-m", "netsim.cli", "sweep", str(study), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "runs").glob("*.json"))) < 2:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = {p.name for p in (out / "runs").glob("*.json")}
    assert 2 <= len(done) < 8
    for part in (out / "runs").glob("*.json"):
        json.loads(part.read_text())                # every row on disk is whole
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"{8 - len(done)} simulated now, {len(done)} already done" in result.stdout
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 8 and not runs.duplicated(["arm", "replication"]).any()


def test_report_rebuilds_from_stored_results(tmp_path, capsys):
    study, out = _tiny_study(tmp_path), tmp_path / "out"
    assert main(["sweep", str(study), "--out", str(out)]) == 0
    (out / "report.md").unlink()
    (out / "figures" / "spam_outcomes.png").unlink()
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").exists() and (out / "figures" / "spam_outcomes.png").exists()
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == before
    assert main(["report", str(tmp_path)]) == 2
    assert "not a sweep's results folder" in capsys.readouterr().err


def test_dask_executor_matches_local_bit_for_bit(tmp_path):
    pytest.importorskip("distributed")
    study = _tiny_study(tmp_path)
    assert main(["sweep", str(study), "--out", str(tmp_path / "local"), "--jobs", "2"]) == 0
    assert main(["sweep", str(study), "--out", str(tmp_path / "dask"),
                 "--executor", "dask"]) == 0
    local = pd.read_parquet(tmp_path / "local" / "runs.parquet")
    dask = pd.read_parquet(tmp_path / "dask" / "runs.parquet")
    keep = [c for c in local.columns if c != "sim_wall_seconds"]   # the machine's, not the run's
    pd.testing.assert_frame_equal(local[keep], dask[keep], check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / "timeseries.parquet"),
                                  pd.read_parquet(tmp_path / "dask" / "timeseries.parquet"),
                                  check_exact=True)


BAD_STUDIES = {
    "unknown arm": ({"baseline": "op99"}, "baseline: unknown arm 'op99'"),
    "zero replications": ({"replications": 0}, "replications"),
    "unknown grid key": ({"grid": {"users.roaming_shares": [0.1]}},
                         "users.roaming_shares: unknown field"),
    "unknown scenario field in an arm": ({"arms": {"x": {"isps.isp-a.subscriberz": 3}}},
                                         "isps[0] (isp-a).subscriberz: unknown field"),
    "bad value in an arm": ({"arms": {"x": {"policy": "op99"}}}, "(arm x)"),
    "unknown figure": ({"figures": ["pie"]}, "unknown figure"),
    "misspelt study field": ({"replication": 2}, "replication: unknown field (did you mean "
                             "'replications'?)"),
}


@pytest.mark.parametrize("case", sorted(BAD_STUDIES))
def test_bad_study_exits_2_before_any_simulation(case, tmp_path, capsys):
    changes, expected = BAD_STUDIES[case]
    out = tmp_path / "out"
    assert main(["sweep", str(_tiny_study(tmp_path, **changes)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not out.exists()


def test_a_study_and_a_scenario_each_say_which_command_runs_them(capsys):
    assert main(["run", str(ROOT / "experiments" / "policy-comparison.yaml")]) == 2
    assert "this is a study (it has arms), not a scenario: run it with `netsim sweep`" in \
        capsys.readouterr().err
    assert main(["sweep", str(ROOT / "netsim" / "data" / "primer-story.yaml")]) == 2
    assert "this is a scenario (it has isps), not a study: run it with `netsim run`" in \
        capsys.readouterr().err
    assert main(["sweep", str(SENSITIVITY)]) == 2
    assert "run it with `netsim sensitivity`" in capsys.readouterr().err
    assert main(["run", str(SENSITIVITY)]) == 2
    assert "run it with `netsim sensitivity`" in capsys.readouterr().err
    assert main(["sensitivity", str(ROOT / "experiments" / "traveller.yaml")]) == 2
    assert "a study: run it with `netsim sweep`" in capsys.readouterr().err


def test_bad_sweep_options_exit_2(tmp_path, capsys):
    study, out = _tiny_study(tmp_path), tmp_path / "out"
    assert main(["sweep", str(study), "--reps", "0", "--out", str(out)]) == 2
    assert "--reps: must be at least 1" in capsys.readouterr().err
    assert main(["sweep", str(study), "--executor", "dask", "--scheduler",
                 "tcp://127.0.0.1:9", "--out", str(out)]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
    assert not out.exists()


def test_bench_small_world_reports_its_figures(capsys):
    assert main(["bench", "--scale", "small", "--duration", "900", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) >= {"messages_per_s", "floor_events_per_s", "ratio", "peak_rss_mb",
                            "bytes_per_subscriber", "messages", "wall_s"}
    assert figures["subscribers"] == pytest.approx(10_000, rel=0.01)
    assert figures["fidelity"] == "flow"
    assert 0 < figures["messages"] <= figures["recipients"] and figures["events"] > 0
    assert figures["ratio"] == pytest.approx(figures["messages_per_s"]
                                             / figures["floor_events_per_s"], rel=1e-3)
    assert main(["bench", "--duration", "-1"]) == 2


def test_bench_world_has_every_policy_somewhere():
    from netsim.experiments.bench import bench_scenario

    scenario = bench_scenario("national", 3600)
    assert len(scenario.isps) >= 50
    assert sum(i.subscribers for i in scenario.isps) == pytest.approx(1_000_000, rel=0.001)
    for policy in ("op25b", "submission", "auth_on_25", "inbound_25_block", "rate_limit"):
        assert any(getattr(i.policies, policy) is not None for i in scenario.isps), policy
    assert any(i.policies.op25b is None for i in scenario.isps)
    assert scenario.visited_networks and scenario.spam.spammer_servers


def test_ctrl_c_stops_a_sweep_without_a_traceback_and_it_resumes(tmp_path):
    study, out = _tiny_study(tmp_path, replications=4), tmp_path / "out"
    command = [sys.executable, "-m", "netsim.cli", "sweep", str(study), "--out", str(out),
               "--jobs", "2"]
    # 40 replications, 80 runs: after its first stored run the sweep has about 8 s left,
    # so it is still running when SIGINT lands; the runs not yet started are dropped
    # as a terminal's foreground job: SIGINT not ignored, even where this test runs as a
    # background job (which inherits SIGINT ignored, and so would its child)
    process = subprocess.Popen([*command, "--reps", "40"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "runs").glob("*.json"))) < 1:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    stored = list((out / "runs").glob("*.json"))
    assert 1 <= len(stored) < 80
    # the study as written, 4 replications, resumes from the runs of those it stored
    done = len([p for p in stored if p.stem.rpartition("__r")[2] in ("0", "1", "2", "3")])
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"{8 - done} simulated now, {done} already done" in result.stdout


def test_figures_tell_arms_apart_without_colour_and_say_n():
    from netsim.experiments.figures import arm_style, spam_outcomes
    from netsim.experiments.study import load_study

    arms = ["none", "op25b", "op25b+587", "leaky"]
    styles = [arm_style(a, arms) for a in arms]
    for key in ("linestyle", "marker", "hatch"):
        assert len({s[key] for s in styles}) == len(arms), key
    study = load_study(ROOT / "experiments" / "policy-comparison.yaml")
    runs = pd.DataFrame([{"arm": arm, "replication": r, **{
        f"spam_{o}": 1_500_000.0 * (r + 1) for o in ("delivered", "junked", "blocked",
                                                     "rejected", "expired", "pending")}}
        for arm in study.arms for r in range(3)])
    fig = spam_outcomes(runs, pd.DataFrame(), study)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert "n = 3" in ax.get_title()
    # plain tick labels: no "1e6" offset above the axis
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert any(p.get_hatch() for p in ax.patches)


def _synthetic(values_by_arm):
    """A ``run`` for precision.replicate: metric ``m`` of replication r of an arm is
    values_by_arm[arm](r); the plan is the tiny study's."""
    def run(p):
        return pd.DataFrame([{"arm": s.arm, "grid_index": s.grid_index,
                              "replication": s.replication,
                              "m": values_by_arm[s.arm](s.replication)} for s in p.runs])
    return run


def test_sequential_replication_stops_when_precise_and_at_the_cap(tmp_path):
    from netsim.experiments.precision import next_count, replicate

    p = plan(_tiny_study(tmp_path, replications=3))
    # none: ±1 around 100, precise at once; op25b: ±4 needs about 6; at ±20, 20 is too few
    steady = _synthetic({"none": lambda r: 100 + (-1) ** r,
                         "op25b": lambda r: 100 + 4 * (-1) ** r})
    final, cells = replicate(p, steady, ["m"], target=0.05, cap=20)
    assert cells["none", 0].replications == 3 and cells["none", 0].precise
    assert cells["op25b", 0].replications == 6 and cells["op25b", 0].precise
    assert cells["op25b", 0].relative <= 0.05
    assert len(final.runs) == 9
    noisy = _synthetic({"none": lambda r: 100.0, "op25b": lambda r: 100 + 20 * (-1) ** r})
    _, cells = replicate(p, noisy, ["m"], target=0.05, cap=20)
    assert cells["op25b", 0].replications == 20 and not cells["op25b", 0].precise
    assert cells["none", 0].replications == 3 and cells["none", 0].relative == 0
    # at most doubling a round, never beyond the cap, nothing more once precise
    assert next_count(3, 1.0, 0.05, 20) == 6 and next_count(16, 1.0, 0.05, 20) == 20
    assert next_count(5, 0.04, 0.05, 20) == 5 and next_count(20, 1.0, 0.05, 20) == 20


def test_a_precise_sweep_reports_the_replications_each_arm_needed(tmp_path, capsys):
    study, out = _tiny_study(tmp_path, table=["spam_delivered", "legit_delivery_ratio"]), \
        tmp_path / "out"
    assert main(["sweep", str(study), "--out", str(out), "--precision", "0.001",
                 "--max-reps", "3", "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "precision.json").read_text())
    assert data["cap"] == 3 and {c["arm"] for c in data["cells"]} == {"none", "op25b"}
    assert all(c["replications"] == 3 for c in data["cells"] if not c["precise"])
    assert "cap of 3 reached" in printed
    report = (out / "report.md").read_text()
    assert "## Precision" in report and "## Headline" in report
    assert "**op25b** against **none**" in report
    # the same sweep at a fixed count: no stale precision left behind
    assert main(["sweep", str(study), "--out", str(out)]) == 0
    assert not (out / "precision.json").exists()
    assert "## Precision" not in (out / "report.md").read_text()


def test_an_interrupted_round_stops_its_runs_in_flight_wherever_ctrl_c_lands(tmp_path,
                                                                            monkeypatch):
    """A Ctrl-C may land while a finished run is being stored, outside the stream of runs:
    the runs in flight are stopped then, before the sweep shuts its pool down, and nothing
    is left to fail later (a traceback printed after the interruption)."""
    import gc

    from netsim.experiments import runner

    workers = []

    def interrupted(*args: object) -> None:
        workers.extend(pool._processes.values())
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_store", interrupted)
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    pool = runner.local_pool(2)
    with pytest.raises(KeyboardInterrupt) as caught:
        runner.run_plan(plan(_tiny_study(tmp_path, replications=4)), tmp_path / "out",
                        jobs=2, pool=pool, progress=False)
    pool.shutdown(wait=False)   # as the sweep's own cleanup does, the exception still held
    deadline = time.monotonic() + 10
    while any(process.is_alive() for process in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(process.is_alive() for process in workers)
    del caught
    gc.collect()
    assert not unraisable


def test_a_precise_sweep_keeps_its_workers_for_every_round(tmp_path, monkeypatch):
    """Each round of replications runs on the same worker processes (a worker's start
    loads the simulator): one pool for the sweep, its workers alive from round to round."""
    from netsim.experiments import runner

    pools, workers = [], []
    make, run_plan = runner.local_pool, runner.run_plan

    def local_pool(jobs):
        pools.append(make(jobs))
        return pools[-1]

    def each_round(*args, pool=None, **kwargs):
        done = run_plan(*args, pool=pool, **kwargs)
        workers.append({p.pid for p in pool._processes.values()})
        return done

    monkeypatch.setattr(runner, "local_pool", local_pool)
    monkeypatch.setattr(runner, "run_plan", each_round)
    study = _tiny_study(tmp_path, table=["spam_delivered", "legit_delivery_ratio"])
    assert main(["sweep", str(study), "--out", str(tmp_path / "out"), "--precision", "0.001",
                 "--max-reps", "3", "--jobs", "2"]) == 0
    assert len(pools) == 1 and len(workers) >= 2
    assert workers[0] and all(w == workers[0] for w in workers)


def test_the_decomposition_adds_up_to_the_totals(tmp_path):
    from netsim.experiments.decomposition import legit_losses, spam_paths

    study, out = _tiny_study(tmp_path, set={"duration_s": 1800, "users.roaming_share": 0.2}), \
        tmp_path / "out"
    assert main(["sweep", str(study), "--out", str(out)]) == 0
    runs = pd.read_parquet(out / "runs.parquet")
    lost = legit_losses(runs).groupby(["arm", "replication"])["lost"].sum()
    totals = (runs.set_index(["arm", "replication"])["legit_attempted"]
              - runs.set_index(["arm", "replication"])["legit_delivered"])
    pd.testing.assert_series_equal(lost.sort_index(), totals.sort_index(), check_names=False,
                                   check_dtype=False)
    assert lost.loc["op25b"].sum() > lost.loc["none"].sum()   # travellers behind OP25B
    for measure in ("attempted", "delivered"):
        parts = runs[[f"spam_{measure}_via_{p}" for p in spam_paths(runs, measure)]].sum(axis=1)
        assert (parts == runs[f"spam_{measure}"]).all(), measure
    report = (out / "report.md").read_text()
    assert "## Who lost what, and why" in report and "| **all** |" in report
    assert "op25b" in report.split("## Who lost what, and why")[1]


def test_sensitivity_runs_at_a_tiny_scale_and_resumes(tmp_path, capsys):
    out = tmp_path / "sa"
    command = ["sensitivity", str(SENSITIVITY), "--samples", "2", "--jobs", "2",
               "--out", str(out), *TINY]
    assert main(command) == 0
    printed = capsys.readouterr().out
    spec = yaml.safe_load(SENSITIVITY.read_text())
    points = 2 * (len(spec["parameters"]) + 1)   # Morris: r (k + 1)
    assert f"{points} sample points × 2 arms, {2 * points} runs" in printed
    indices = pd.read_csv(out / "indices.csv")
    assert len(indices) == len(spec["outputs"]) * len(spec["parameters"])
    assert (indices["mu_star_low"] >= 0).all()
    assert (indices["mu_star_low"] <= indices["mu_star"]).all()
    assert (indices["mu_star"] <= indices["mu_star_high"]).all()
    adoption = indices[(indices["parameter"] == "policy_adoption.share")
                       & indices["output"].str.startswith("spam_delivered")]
    # with no ISP adopting OP25B the arms are the same world: adoption must matter
    assert float(adoption["mu_star"].iloc[0]) > 0
    assert (out / "figures" / "sensitivity.png").stat().st_size > 5_000
    assert "## Indices" in (out / "sensitivity.md").read_text()
    runs = pd.read_parquet(out / "runs.parquet")
    assert {f"x.{k}" for k in spec["parameters"]} <= set(runs.columns)
    assert main(command) == 0                           # resumable: nothing runs again
    assert "(0 simulated now" in capsys.readouterr().out


def test_morris_ranks_the_parameter_a_function_depends_on():
    from netsim.experiments.sensitivity import Sensitivity, analyse, sample

    sa = Sensitivity.model_validate({
        "name": "f", "arms": {"a": {}}, "samples": 20,
        "parameters": {"strong": [0, 1], "weak": [0, 1], "none": {"values": ["x", "y"]}},
        "outputs": [{"metric": "m", "arm": "a"}]})
    x = sample(sa)
    assert {sa.decode(row)["none"] for row in x} == {"x", "y"}
    y = 10 * x[:, 0] + x[:, 1] ** 2
    mu = analyse(sa, x, {"f": y}).set_index("parameter")["mu_star"]
    assert mu["strong"] > mu["weak"] > mu["none"] == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"parameters": {"spam.compromised_share": [0.02, 0.0], "seed": [0, 1]}},
     r"parameters\.spam\.compromised_share: a range is \[low, high\] with low < high"),
    ({"outputs": [{"metric": "spam_delivered", "arm": "nope"}]}, "unknown arm 'nope'"),
    ({"method": "fast"}, "method"),
    ({"parameter": {}}, "did you mean 'parameters'"),
])
def test_a_bad_sensitivity_file_exits_2_naming_the_field(change, message, tmp_path, capsys):
    data = {**yaml.safe_load(SENSITIVITY.read_text()), **change}
    path = tmp_path / "sa.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["sensitivity", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_sobol_indices_apportion_a_known_variance():
    from netsim.experiments.sensitivity import Sensitivity, analyse, sample

    sa = Sensitivity.model_validate({
        "name": "f", "arms": {"a": {}}, "method": "sobol", "samples": 256,
        "parameters": {"a": [0, 1], "b": [0, 1], "c": [0, 1]},
        "outputs": [{"metric": "m", "arm": "a"}]})
    x = sample(sa)
    assert len(x) == 256 * (3 + 2)
    # y = 2a + b: variances 4/12 and 1/12, so S1(a) = 0.8, S1(b) = 0.2, S1(c) = 0
    found = analyse(sa, x, {"f": 2 * x[:, 0] + x[:, 1]}).set_index("parameter")
    assert found.loc["a", "S1"] == pytest.approx(0.8, abs=0.05)
    assert found.loc["b", "S1"] == pytest.approx(0.2, abs=0.05)
    assert found.loc["c", "ST"] == pytest.approx(0.0, abs=0.02)
    for index in ("S1", "ST"):   # intervals inside [0, 1]
        assert found[f"{index}_low"].between(0, 1).all()
        assert found[f"{index}_high"].between(0, 1).all()


def test_a_sweep_worker_runs_without_loading_the_reports_libraries():
    """What a worker imports to run a simulation (``runner.run_one``) leaves matplotlib and
    scipy.stats unloaded; every name of the experiments layer is there when first used."""
    code = ("import sys, netsim.experiments.runner; "
            "assert 'matplotlib' not in sys.modules and 'scipy.stats' not in sys.modules; "
            "import netsim.experiments as e; "
            "assert all(getattr(e, name) is not None for name in e.__all__); "
            "assert 'matplotlib' in sys.modules")
    _passes_in_a_fresh_process(code)


def test_the_command_line_loads_the_simulator_only_for_a_command_that_simulates():
    """A sweep's parent plans, gathers and reports: ``netsim.cli`` and the package's names
    load the simulator (the world's build, the mail servers) only when first used."""
    code = ("import sys, netsim.cli; "
            "assert not {'netsim.world.build', 'netsim.mail.server'} & set(sys.modules); "
            "import netsim; "
            "assert all(getattr(netsim, name) is not None for name in netsim.__all__); "
            "import netsim.mail as m; "
            "assert all(getattr(m, name) is not None for name in m.__all__); "
            "assert 'netsim.world.build' in sys.modules")
    _passes_in_a_fresh_process(code)


def _passes_in_a_fresh_process(code: str) -> None:
    """``code`` runs without an error in a new interpreter (nothing imported before)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
