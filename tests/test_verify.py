"""Verification: theory, fingerprints, statistical regression, determinism, and properties
of every valid scenario (hypothesis)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsim.cli import main
from netsim.scenario import Scenario, ScenarioError
from netsim.scenario.load import packaged_scenario_text
from netsim.verify import CHECKS
from netsim.verify.fingerprint import FINGERPRINT_SCENARIO, fingerprint
from netsim.world import simulate

DATA = Path(__file__).parent / "data"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHECKS))
def test_agrees_with_theory(name):
    check = CHECKS[name]()
    assert check.ok, check.line()


def test_netsim_check_prints_one_line_a_check(capsys):
    assert main(["check", "retry"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok   retry schedule") and "bound" in out[0]
    assert out[-1] == "1 passed, 0 failed"
    assert main(["check", "nonsense"]) == 2


def test_fingerprint_of_the_event_trajectory_is_unchanged():
    """Any change in what the simulation does changes this hash. If the change is meant,
    update it: python -m netsim.verify.fingerprint --update tests/data/fingerprint.json"""
    assert fingerprint() == json.loads((DATA / "fingerprint.json").read_text())


@pytest.mark.slow
def test_headline_figures_against_the_reference():
    """Statistical regression; update on purpose only:
    python -m netsim.verify.reference --update tests/data/reference.json"""
    from netsim.verify.reference import compare, headline_figures

    problems = compare(headline_figures(), json.loads((DATA / "reference.json").read_text()))
    assert not problems, problems


def _digest(table) -> str:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def test_same_seed_is_bit_identical_across_runs_and_processes():
    scenario = Scenario.model_validate(FINGERPRINT_SCENARIO)
    first, second = simulate(scenario), simulate(scenario)
    assert _digest(first.recipients) == _digest(second.recipients)
    code = ("import hashlib, io, pyarrow.parquet as pq\n"
            "from netsim.scenario import Scenario\n"
            "from netsim.verify.fingerprint import FINGERPRINT_SCENARIO\n"
            "from netsim.world import simulate\n"
            "t = simulate(Scenario.model_validate(FINGERPRINT_SCENARIO)).recipients\n"
            "s = io.BytesIO(); pq.write_table(t, s)\n"
            "print(hashlib.sha256(s.getvalue()).hexdigest())\n")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == _digest(first.recipients)


def test_a_new_component_does_not_shift_the_others_draws():
    base = dict(FINGERPRINT_SCENARIO)
    more = json.loads(json.dumps(base))
    more["spam"]["spammer_servers"].append({"network": "hosting", "count": 2,
                                            "rate_per_day": 5000})
    legit = [simulate(Scenario.model_validate(s)).recipients_frame() for s in (base, more)]
    times = [sorted(f.loc[(f["kind"] == "legit"), "created_s"]) for f in legit]
    assert times[0] == times[1]
    spam = [f[(f["kind"] == "spam") & (f["sender"] == "bot")] for f in legit]
    for column in ("created_s", "rcpt_domain", "path"):
        assert list(spam[0][column]) == list(spam[1][column]), column


# --- properties of every valid scenario ------------------------------------------------

STRATEGIES = ["direct", "isp_relay", "open_relay", "stolen_587"]


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    policy = st.fixed_dictionaries({}, optional={
        "op25b": st.sampled_from([None, {}, {"action": "reject"}, {"start_s": 300}]),
        "submission": st.sampled_from([None, {}, {"start_s": 200}]),
        "auth_on_25": st.sampled_from([None, {}]),
        "inbound_25_block": st.sampled_from([None, {}]),
        "rate_limit": st.sampled_from([None, {"recipients_per_hour": 5}])})
    isps = [{"name": f"isp-{i}", "domain": f"isp-{i}.example",
             "subscribers": draw(st.integers(1, 40)), "dynamic_pool": f"10.{i}.0.0/24",
             "server_network": f"192.168.{i}.0/28",
             "bot_fraction": draw(st.sampled_from([0.0, 0.1, 0.3])),
             "mail_server": {"session_slots": draw(st.integers(1, 5)),
                             "pop3_security": draw(st.sampled_from(
                                 ["plaintext", "apop", "stls", "pop3s"]))},
             "policies": draw(policy)} for i in range(n)]
    botnets = [{"name": "b", "share": 1.0, "adaptive": draw(st.booleans()),
                "failures_to_adapt": 2, "rate_median_per_day": 2000,
                "strategies": draw(st.lists(st.sampled_from(STRATEGIES), min_size=1,
                                            max_size=4, unique=True))}]
    data = {"name": "prop", "seed": draw(st.integers(0, 1000)),
            "fidelity": draw(st.sampled_from(["command", "session", "flow"])),
            "duration_s": draw(st.sampled_from([300, 900, 1800])), "isps": isps,
            "links": [{"a": f"isp-{i}", "b": f"isp-{i + 1}", "latency_s": 0.01}
                      for i in range(n - 1)],
            "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24",
                                  "upstream": "isp-0", "eavesdrop_probability": 0.5}],
            "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24",
                                  "upstream": f"isp-{n - 1}"}],
            "users": {"sends_per_day": draw(st.sampled_from([0.0, 20.0, 100.0])),
                      "roaming_share": draw(st.sampled_from([0.0, 0.3])),
                      "mua_587_share": draw(st.sampled_from([0.0, 0.5, 1.0]))},
            "spam": {"botnets": botnets,
                     "spammer_servers": [{"network": "hosting",
                                          "count": draw(st.integers(0, 2)),
                                          "rate_per_day": 3000}],
                     "open_relays": [{"network": draw(st.sampled_from(
                         ["hosting", "isp-0.dynamic"])), "count": 1}],
                     "compromised_share": draw(st.sampled_from([0.0, 0.2]))},
            "defences": draw(st.fixed_dictionaries({}, optional={
                "blocklist": st.sampled_from([None, {}]),
                "greylisting": st.sampled_from([None, {"delay_s": 60}]),
                "content_filter": st.sampled_from([None, {"action": "reject"},
                                                   {"action": "junk"}])}))}
    if draw(st.booleans()):
        data["policy"] = draw(st.sampled_from(["none", "op25b", "op25b+587"]))
    return data


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_valid_scenario_runs_and_conserves_recipients(data):
    scenario = Scenario.model_validate(data)
    result = simulate(scenario)          # raises ConservationError if recipients are lost
    counts = result.summary["counts"]
    assert sum(sum(c.values()) for c in counts.values()) == result.recipients.num_rows
    # no message crosses a filter that a policy puts in its way: with OP25B in force from
    # the start, nothing from the ISP's dynamic pool reaches another ISP's server on 25
    frame = result.recipients_frame()
    for isp in scenario.isps:
        op25b = isp.policies.op25b
        if op25b is None or op25b.start_s > 0:
            continue
        mine = frame[(frame["origin_network"] == f"{isp.name}.dynamic")
                     & (frame["first_hop_port"] == 25)
                     & frame["path"].isin(["direct", "open_relay"])
                     & (frame["rcpt_domain"] != isp.domain)]
        assert set(mine["outcome"]) <= {"blocked", "pending"}, isp.name


# --- fuzzing: bad scenario files give exit 2 and a field, never a traceback -------------

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(),
                 st.text(max_size=20), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_scenarios_exit_2_with_a_field_never_a_traceback(data, tmp_path, capsys):
    scenario = yaml.safe_load(packaged_scenario_text())
    paths = _paths(scenario)
    how = data.draw(st.sampled_from(["replace", "add", "delete", "garbage"]))
    if how == "garbage":
        text = data.draw(st.text(max_size=200))
    else:
        path = data.draw(st.sampled_from(paths))
        node = scenario
        for part in path[:-1]:
            node = node[part]
        if how == "replace":
            node[path[-1]] = data.draw(junk)
        elif how == "add" and isinstance(node, dict):
            node[data.draw(st.text(min_size=1, max_size=8))] = data.draw(junk)
        elif isinstance(node, dict):
            del node[path[-1]]
        text = yaml.safe_dump(scenario)
    file = tmp_path / "fuzz.yaml"
    file.write_text(text)
    status = main(["validate", str(file)])
    err = capsys.readouterr().err
    assert status in (0, 2)
    assert "Traceback" not in err
    if status == 2:
        assert str(file) in err
        assert len(err.splitlines()) >= 2          # the file, then each problem on a line


def test_scenario_error_lists_every_problem():
    with pytest.raises(ScenarioError) as info:
        from netsim.scenario.load import validate
        validate({"isps": [{"name": "A"}], "bogus": 1}, "x.yaml")
    text = str(info.value)
    assert "x.yaml" in text and "bogus" in text and "isps[0] (A).domain" in text
