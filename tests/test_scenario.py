"""Scenario files: the embedded default, overrides, and every kind of bad input.

Bad input exits with status 2, names the file and the field path, prints no traceback and
writes no results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from netsim.cli import main
from netsim.scenario import ScenarioError, load_scenario, scenario_yaml
from netsim.scenario.docs import scenario_markdown
from netsim.scenario.load import packaged_scenario_text

ROOT = Path(__file__).resolve().parents[1]


def test_default_world_is_complete():
    s = load_scenario()
    assert len(s.isps) >= 3
    assert len({i.domain for i in s.isps}) == len(s.isps)
    assert s.visited_networks and s.hosting_networks
    assert 2000 <= sum(i.subscribers for i in s.isps) <= 10_000
    assert s.duration_s == 86_400


def test_overrides_by_index_and_by_name():
    s = load_scenario(overrides=["isps.isp-b.subscribers=12", "isps.0.access_latency_s=0.02",
                                 "users.mua_587_share=0.9", "seed=42"])
    assert (s.isps[1].subscribers, s.isps[0].access_latency_s) == (12, 0.02)
    assert (s.users.mua_587_share, s.seed) == (0.9, 42)


def test_resolved_scenario_round_trips():
    s = load_scenario()
    again = load_scenario_from_text(scenario_yaml(s))
    assert again == s


def load_scenario_from_text(text: str):
    from netsim.scenario.load import validate
    return validate(yaml.safe_load(text), "<text>")


def _default_data() -> dict:
    return yaml.safe_load(packaged_scenario_text())


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _mutate(change):
    data = _default_data()
    change(data)
    return data


BAD = {
    "unknown key": (_mutate(lambda d: d["isps"][0].update(subscriberz=3)),
                    "isps[0] (isp-a).subscriberz: unknown field (did you mean "
                    "'subscribers'?)"),
    "unknown key deep down": (_mutate(lambda d: d["isps"][0].update(
        policies={"op25b": {"pool_shar": 0.5}})), "isps[0] (isp-a).policies.op25b.pool_shar: "
        "unknown field (did you mean 'pool_share'?)"),
    "unknown key, nothing near": (_mutate(lambda d: d.update(zzz=1)),
                                  "zzz: unknown field (check its spelling"),
    "wrong type": (_mutate(lambda d: d["isps"][1].update(subscribers="many")),
                   "isps[1] (isp-b).subscribers: Input should be a valid integer"),
    "negative count": (_mutate(lambda d: d["isps"][2].update(subscribers=-5)),
                       "isps[2] (isp-c).subscribers: Input should be greater than or equal to 0"),
    "share above one": (_mutate(lambda d: d.update(users={"mua_587_share": 1.5})),
                        "users.mua_587_share: Input should be less than or equal to 1"),
    "MUA shares on 25 above one": (_mutate(lambda d: d.update(users={
        "mua_25_auth_share": 0.6, "mua_25_pop_share": 0.5})),
        "mua_25_auth_share + mua_25_pop_share exceed 1"),
    "POP-before-SMTP window zero": (_mutate(lambda d: d["isps"][0].update(policies={
        "pop_before_smtp": {"window_s": 0}})),
        "isps[0] (isp-a).policies.pop_before_smtp.window_s: Input should be greater than 0"),
    "provider share without providers": (_mutate(lambda d: d.update(users={
        "provider_share": 0.1})), "users.provider_share > 0 but no providers are given"),
    "provider outside hosting": (_mutate(lambda d: d.update(providers=[{
        "name": "acme", "domain": "acme.example", "network": "hotel"}])),
        "providers[0].network: 'hotel' is not a hosting network"),
    "senders' shares above one": (_mutate(lambda d: d.update(users={
        "provider_share": 0.7, "home_mta_share": 0.4})),
        "provider_share + home_mta_share exceed 1"),
    "domain twice": (_mutate(lambda d: d["isps"][1].update(domain="isp-a.example")),
                     "domain 'isp-a.example' appears twice"),
    "disconnected graph": (_mutate(lambda d: d.update(links=d["links"][:1])),
                           "the ISP graph is not connected"),
    "link to nowhere": (_mutate(lambda d: d["links"][0].update(b="isp-z")),
                        "links[0]: ISP 'isp-z' does not exist"),
    "upstream missing": (_mutate(lambda d: d["visited_networks"][0].update(upstream="isp-q")),
                         "upstream ISP 'isp-q' does not exist"),
    "overlapping prefixes": (_mutate(lambda d: d["hosting_networks"][0].update(
        prefix="10.1.2.0/24")), "prefixes overlap"),
    "bad prefix": (_mutate(lambda d: d["isps"][0].update(dynamic_pool="10.1.0.0/33")),
                   "isps[0] (isp-a).dynamic_pool"),
    "pool too small": (_mutate(lambda d: d["isps"][0].update(dynamic_pool="10.1.0.0/28")),
                       "do not fit in dynamic_pool"),
    "blocklist coverage above one": (
        _mutate(lambda d: d.update(defences={"blocklist": {"listed": {"dynamic": 1.5}}})),
        "defences.blocklist.listed.dynamic: Input should be less than or equal to 1"),
    "blocklist of hosting networks": (
        _mutate(lambda d: d.update(defences={"blocklist": {"listed": ["hosting"]}})),
        "defences.blocklist.listed.hosting.[key]: Input should be 'dynamic' or 'visited'"),
    "blocklist range longer than an address": (
        _mutate(lambda d: d.update(defences={"blocklist": {"range_prefix": 33}})),
        "defences.blocklist.range_prefix: Input should be less than or equal to 32"),
    "blocklist consulted by a share above one": (
        _mutate(lambda d: d.update(defences={"blocklist": {"consulted_by": 1.5}})),
        "defences.blocklist.consulted_by.constrained-float: Input should be less than"),
    "blocklist consulted by an unknown ISP": (
        _mutate(lambda d: d.update(defences={"blocklist": {"consulted_by": ["isp-z"]}})),
        "defences.blocklist.consulted_by: ISP 'isp-z' does not exist"),
    "blocklist listing before it sees": (
        _mutate(lambda d: d.update(defences={"blocklist": {"list_seen_after_s": -60}})),
        "defences.blocklist.list_seen_after_s: Input should be greater than or equal to 0"),
    "not yaml": ("isps: [unclosed\n  - name: x\n", "not valid YAML"),
    "not a mapping": ("- just\n- a list\n", "a scenario must be a YAML mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_exits_2_names_file_and_field(case, tmp_path, capsys):
    data, expected = BAD[case]
    path = _write(tmp_path, data)
    out = tmp_path / "out"
    status = main(["run", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert str(path) in err and expected in err
    assert "Traceback" not in err
    assert not out.exists()


def test_validate_explains_every_error(tmp_path, capsys):
    data = _mutate(lambda d: (d["isps"][0].update(subscriberz=1),
                              d["isps"][1].update(subscribers=-1)))
    assert main(["validate", str(_write(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert "isps[0] (isp-a).subscriberz" in err and "isps[1] (isp-b).subscribers" in err


def test_validate_applies_overrides_as_run_does(capsys):
    assert main(["validate", "--set", "isps.isp-b.subscribers=12", "--set", "seed=3"]) == 0
    assert "2312 subscribers" in capsys.readouterr().out
    assert main(["validate", "--set", "isps.isp-c.subscribers=-5"]) == 2
    captured = capsys.readouterr()
    assert "isps[2] (isp-c).subscribers: Input should be greater than or equal to 0" in \
        captured.err
    assert "Traceback" not in captured.err and not captured.out


def test_errors_name_list_items_by_index_and_name(tmp_path, capsys):
    data = _mutate(lambda d: (d["spam"]["botnets"][1].update(rate_sigma=-1),
                              d["isps"][2].update(subscribers=10**6)))
    assert main(["validate", str(_write(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert "spam.botnets[1] (rustock).rate_sigma: Input should be greater" in err
    assert "isps[2] (isp-c): 1000000 subscribers do not fit" in err
    assert "Traceback" not in err


def test_validate_accepts_a_good_file(tmp_path, capsys):
    path = _write(tmp_path, packaged_scenario_text())
    assert main(["validate", str(path)]) == 0
    assert "valid scenario 'default'" in capsys.readouterr().out


def test_missing_file_and_bad_override(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "No such file" in capsys.readouterr().err
    assert main(["run", "--set", "isps.isp-z.subscribers=3"]) == 2
    assert "no list item named 'isp-z'" in capsys.readouterr().err
    assert main(["run", "--set", "novalue"]) == 2
    assert "expected dotted.key=value" in capsys.readouterr().err


def test_load_errors_are_scenario_errors():
    with pytest.raises(ScenarioError) as info:
        load_scenario(overrides=["users.recipients_pmf=[0.5, 0.2]"])
    assert "sum to 1" in str(info.value)


def test_schema_command_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    assert '"additionalProperties": false' in capsys.readouterr().out


def test_docs_scenario_md_is_current():
    """docs/scenario.md is generated; regenerate with `netsim schema --markdown`."""
    assert (ROOT / "docs" / "scenario.md").read_text("utf-8") == scenario_markdown() + "\n"


def test_every_field_is_documented():
    from netsim.scenario.schema import Strict
    stack = [Strict]
    while stack:
        model = stack.pop()
        stack += model.__subclasses__()
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_a_prefix_must_be_written_as_text(tmp_path, capsys):
    assert main(["run", "--set", "isps.0.dynamic_pool=true", "--set",
                 "hosting_networks.hosting.prefix=5"]) == 2
    err = capsys.readouterr().err
    assert "isps[0] (isp-a).dynamic_pool: must be a prefix written like 10.1.0.0/16" in err
    assert "hosting_networks[0] (hosting).prefix" in err


def test_a_star_sets_a_field_of_every_list_item():
    s = load_scenario(overrides=["isps.*.policies.submission=null",
                                 "isps.*.policies.pop_before_smtp={window_s: 600}"])
    assert all(i.policies.submission is None for i in s.isps)
    assert {i.policies.pop_before_smtp.window_s for i in s.isps} == {600}
    with pytest.raises(ScenarioError, match=r"users\.\*: \* stands for every item of a list"):
        load_scenario(overrides=["users.*.x=1"])
