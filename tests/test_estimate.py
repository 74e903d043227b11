"""Knowing a run's size before it runs: the estimate, the refusal, a memory error."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from netsim.cli import main
from netsim.experiments.bench import bench_scenario
from netsim.scenario import Scenario, load_scenario, scenario_yaml
from netsim.world import simulate
from netsim.world.estimate import estimate
from tests.conftest import tiny_scenario


def _sent(summary: dict) -> int:
    return sum(n for kind in ("legit", "spam") for n in summary["counts"][kind].values())


@pytest.mark.parametrize("scenario", [
    load_scenario(None, ["fidelity=flow"]), bench_scenario("small", 3600)],
    ids=["default", "bench-small"])
def test_the_expected_volume_is_what_a_run_sends(scenario: Scenario):
    # worlds of thousands of users: in a few dozen, a heavy sender moves the total
    sent = _sent(simulate(scenario, records="summary").summary)
    assert estimate(scenario).recipients == pytest.approx(sent, rel=0.1)


def _country(tmp_path) -> str:
    """A world of 40 million subscribers: its recipients do not fit in a few GB."""
    data = tiny_scenario().model_dump(mode="json")
    data["isps"] = [{**data["isps"][0], "name": f"isp-{k}", "domain": f"isp-{k}.example",
                     "subscribers": 10_000_000, "dynamic_pool": f"{20 + k}.0.0.0/8",
                     "server_network": f"192.0.2.{16 * k}/28"} for k in range(4)]
    data["links"] = [{"a": f"isp-{k}", "b": f"isp-{k + 1}", "latency_s": 0.01}
                     for k in range(3)]
    path = tmp_path / "country.yaml"
    path.write_text(scenario_yaml(Scenario.model_validate(data)))
    return str(path)


def test_a_world_that_cannot_fit_is_refused_before_it_runs(tmp_path):
    limit = 4 * 2**30   # a 4 GB address space, as `ulimit -v` sets it

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "netsim.cli", "run", _country(tmp_path),
                           "--out", str(out)], capture_output=True, text=True,
                          preexec_fn=cap, timeout=120)
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip()
    first, problem = error.splitlines()   # the file, then what is wrong
    assert _country(tmp_path) in first and "Traceback" not in error
    assert "peak memory about" in problem and "ulimit -v" in problem
    assert "fewer subscribers" in problem and "--force" in problem
    assert not out.exists()


def test_validate_gives_the_estimate_and_refuses_what_cannot_fit(tmp_path, capsys,
                                                                 monkeypatch):
    assert main(["validate"]) == 0
    assert "peak memory about" in capsys.readouterr().out
    monkeypatch.setattr("netsim.world.estimate.memory_limit", lambda: (1e9, "the test's limit"))
    assert main(["validate", _country(tmp_path), "--records", "summary"]) == 2
    error = capsys.readouterr().err
    assert "the test's limit (1.0 GB)" in error and "Use --records summary" not in error


def test_a_memory_error_mid_run_is_one_line_with_the_estimate(tmp_path, capsys, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.45 GiB for an array")

    monkeypatch.setattr("netsim.world.simulate", exhausted)
    path = tmp_path / "s.yaml"
    path.write_text(scenario_yaml(tiny_scenario()))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("netsim: tiny: out of memory; the estimate was about")
    assert "fewer subscribers" in error[-1]
    assert not (tmp_path / "out").exists()   # nor a folder made for the run's rows
