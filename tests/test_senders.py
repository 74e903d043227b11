"""The legitimate senders OP25B hurts besides travellers: users whose mail provider is not
their access ISP, and users who run their own MTA at home; and the report that says which
users lost what, and why."""

from __future__ import annotations

from typing import Any

import pytest

from netsim.scenario import Scenario
from netsim.world import simulate
from netsim.world.workload import GROUP_HOME_MTA, GROUP_PROVIDER, submission_path


def _world(fidelity: str = "flow", **users: Any) -> Scenario:
    """An ISP that starts OP25B after an hour and offers 587 from the start, beside an ISP
    without blocking; a provider on a hosting network offering 587 after two hours."""
    return Scenario.model_validate({
        "name": "senders", "seed": 5, "duration_s": 3 * 3600, "fidelity": fidelity,
        "isps": [
            {"name": "isp-a", "domain": "isp-a.example", "subscribers": 300,
             "dynamic_pool": "10.1.0.0/23", "server_network": "192.168.1.0/28",
             "policies": {"op25b": {"start_s": 3600}}},
            {"name": "isp-b", "domain": "isp-b.example", "subscribers": 100,
             "dynamic_pool": "10.2.0.0/24", "server_network": "192.168.2.0/28"}],
        "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01}],
        "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24",
                              "upstream": "isp-b"}],
        "providers": [{"name": "acme", "domain": "acme.example", "network": "hosting",
                       "submission": {"start_s": 7200}}],
        "users": {"sends_per_day": 48, "other_isp_share": 1.0, "mistyped_user_share": 0,
                  "mistyped_domain_share": 0, "mua_587_share": 1.0, **users}})


def _delivered(frame: Any, path: str, hours: tuple[float, float]) -> float:
    legit = frame[(frame["kind"] == "legit") & (frame["origin_isp"] == "isp-a")
                  & (frame["path"] == path) & (frame["created_s"] >= hours[0] * 3600)
                  & (frame["created_s"] < hours[1] * 3600 - 600)]
    assert len(legit) > 20, (path, hours, len(legit))
    return float((legit["outcome"] == "delivered").mean())


def test_a_providers_customers_lose_port_25_to_op25b_and_587_repairs_it():
    frame = simulate(_world(provider_share=0.3)).recipients_frame()
    assert _delivered(frame, "provider:25", (0, 1)) == 1.0       # before OP25B, AUTH on 25
    assert _delivered(frame, "provider:25", (1, 2)) == 0.0       # OP25B: outside the ISP
    assert _delivered(frame, "provider:587", (2, 3)) == 1.0      # the provider opened 587
    stopped = frame[(frame["path"] == "provider:25") & (frame["outcome"] == "blocked")]
    assert set(stopped["stopped_by"]) == {"op25b"}


def test_a_home_mta_delivers_direct_to_mx_until_op25b_and_through_a_smarthost_after():
    direct = simulate(_world(home_mta_share=0.3)).recipients_frame()
    assert _delivered(direct, "mta:direct", (0, 1)) == 1.0
    # under OP25B its queue keeps retrying port 25: nothing reaches another ISP
    late = direct[(direct["path"] == "mta:direct") & (direct["created_s"] >= 3600)
                  & (direct["kind"] == "legit") & (direct["origin_isp"] == "isp-a")]
    assert len(late) > 20 and not (late["outcome"] == "delivered").any()
    assert set(late["outcome"]) == {"pending"}
    relayed = simulate(_world(home_mta_share=0.3,
                              home_mta_smarthost="isp_25")).recipients_frame()
    assert _delivered(relayed, "mta:isp_25", (1, 3)) == 1.0


@pytest.mark.parametrize("fidelity", ["session", "flow"])
def test_the_report_says_which_senders_lost_what_and_why(fidelity: str):
    summary = simulate(_world(fidelity, provider_share=0.3, home_mta_share=0.2)).summary
    groups = summary["legit_groups"]["home"]
    assert {"mua:587", "provider:25", "provider:587", "mta:direct"} <= set(groups)
    assert groups["provider:25"]["stopped_by"].get("op25b", 0) > 0
    assert groups["mta:direct"]["stopped_by"].get("pending", 0) > 0
    for group in groups.values():
        assert group["attempted"] == group["delivered"] + sum(group["stopped_by"].values())
    a, b = summary["legit_by_origin"]["isp-a"], summary["legit_by_origin"]["isp-b"]
    assert a["ratio"] < b["ratio"] == 1.0


def test_how_a_message_is_submitted_follows_its_sender_group():
    # (group, set for 587, setting on 25, written at) → path, with 587 offered from 100 s
    # by the ISP and from 200 s by the provider
    def path(group: int, on_587: bool, mode: int, at: float) -> str:
        from netsim.world.workload import PATHS
        return PATHS[int(submission_path(group, on_587, mode, at, 100.0, 200.0, 6))]

    assert path(0, True, 2, 50.0) == "mua:25+pop"
    assert path(0, True, 2, 150.0) == "mua:587"
    assert path(GROUP_PROVIDER, True, 0, 150.0) == "provider:25"
    assert path(GROUP_PROVIDER, True, 0, 250.0) == "provider:587"
    assert path(GROUP_PROVIDER, False, 0, 250.0) == "provider:25"
    assert path(GROUP_HOME_MTA, True, 1, 250.0) == "mta:direct"
