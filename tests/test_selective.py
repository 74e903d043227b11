"""Selective OP25B: on an address block of a pool, and on the hosts that talk most on port 25.

Small seeded worlds; each test states its world. Every run checks the conservation of
recipients (``simulate`` raises otherwise).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import yaml

from netsim.cli import main
from netsim.net import Connection
from netsim.scenario import Scenario, load_scenario
from netsim.verify.equivalence import compare
from netsim.world import World, simulate
from netsim.world.connections import Connections


def _world(policies: dict[str, Any], botnets: list[dict[str, Any]], *, bots_at: int = 0,
           open_relays: list[dict[str, Any]] | None = None, **changes: Any) -> Scenario:
    """isp-a (400 subscribers, the policies, a hotel behind it) and isp-b (400 subscribers),
    a quarter of the subscribers of one of them bots (``bots_at``), three hours."""
    data: dict[str, Any] = {
        "name": "selective", "seed": 21, "duration_s": 3 * 3600,
        "isps": [{"name": "isp-a", "domain": "isp-a.example", "subscribers": 400,
                  "dynamic_pool": "10.1.0.0/23", "server_network": "192.0.2.0/28",
                  "policies": policies},
                 {"name": "isp-b", "domain": "isp-b.example", "subscribers": 400,
                  "dynamic_pool": "10.2.0.0/23", "server_network": "198.51.100.0/28"}],
        "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01}],
        "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-a"}],
        "users": {"sends_per_day": 4.0, "roaming_share": 0.2, "mua_587_share": 0.0},
        "spam": {"botnets": botnets, "open_relays": open_relays or []},
    }
    data["isps"][bots_at]["bot_fraction"] = 0.25 if botnets else 0.0
    data.update(changes)
    return Scenario.model_validate(data)


def _botnet(name: str, per_day: float, share: float = 1.0, **changes: Any) -> dict[str, Any]:
    """Bots of one fixed rate (no spread), one recipient a session, never adapting."""
    return {"name": name, "share": share, "strategies": ["direct"], "rate_sigma": 0.0,
            "rate_median_per_day": per_day, "recipients_per_session": 1, **changes}


def test_op25b_on_half_a_pool_stops_about_half_of_the_bots_direct_spam():
    worlds: list[World] = []
    result = simulate(_world({"op25b": {"pool_share": 0.5}}, [_botnet("d", 200)]),
                      setup=worlds.append)
    f = result.recipients_frame()
    spam = f[f["kind"] == "spam"]
    cross = spam[spam["rcpt_domain"] == "isp-b.example"]
    # the block is the pool's first 200 subscriber hosts: its bots' spam is blocked, the
    # others' is not; 100 bots drawn among 400 hosts, about 50 of them in the block
    bots = worlds[0].botnets[0]
    covered = float(np.mean(bots.user < 200))
    n, hosts = len(bots.user), 400
    spread = math.sqrt(0.25 / n * (hosts - n) / (hosts - 1))   # hypergeometric
    assert abs(covered - 0.5) < 3.29 * spread
    # sessions pick bots alike (one rate): the blocked share of sessions is binomial
    blocked = float((cross["outcome"] == "blocked").mean())
    assert len(cross) > 1000
    assert abs(blocked - covered) < 3.29 * math.sqrt(covered * (1 - covered) / len(cross))
    assert abs(blocked - 0.5) < 3.29 * math.sqrt(spread**2 + 0.25 / len(cross))
    assert set(cross.loc[cross["outcome"] == "blocked", "stopped_by"]) == {"op25b"}
    # spam to the ISP's own server passes; the hotel behind the ISP stays covered whole:
    # isp-b's travellers there cannot reach their own server on 25
    assert (spam.loc[spam["rcpt_domain"] == "isp-a.example", "outcome"] != "blocked").all()
    roaming = f[(f["kind"] == "legit") & (f["sender"] == "roaming")
                & (f["origin_isp"] == "isp-b")]
    # (a message sent in the run's last 30 s is still waiting for its connect timeout)
    assert len(roaming) > 20 and set(roaming["stopped_by"]) <= {"op25b", ""}
    assert (roaming["stopped_by"] == "op25b").mean() > 0.95
    at_home = f[(f["kind"] == "legit") & (f["sender"] == "user")]
    assert (at_home["outcome"] != "blocked").all()


def test_op25b_on_a_share_of_a_pool_is_one_rule_over_an_address_block():
    world = World(_world({"op25b": {"pool_share": 0.3}}, []))
    pool = world.plan.by_name["isp-a.dynamic"]
    hotel = world.plan.by_name["hotel"]
    (rule,) = world.network.egress[0].rules
    assert rule.scope.src_ranges == ((pool.host(0), pool.host(119)), (hotel.first, hotel.last))
    from netsim.lab.table import policies
    assert policies(world.scenario.isps[0]).startswith("OP25B (drop, 30% of the pool)")
    world = World(_world({"op25b": {"pool_share": 0.0}}, []))
    assert world.network.egress[0].rules[0].scope.src_ranges == ((hotel.first, hotel.last),)
    # the whole pool: no address blocks, the flow path keys its verdicts by network
    world = World(_world({"op25b": {}}, []))
    assert world.network.egress[0].rules[0].scope.src_ranges is None
    assert world.network.source_cuts() == []


def test_top_talkers_stop_the_bots_above_the_threshold_and_not_those_below():
    """Fast bots try 100 sessions an hour, half of them to isp-b's MX; slow ones 4. Over 20
    attempts an hour, from 30 minutes on, blocks the fast bots and never the slow."""
    start, limit, window = 1800.0, 20, 3600.0
    attempts: list[tuple[int, float, Connection]] = []

    def setup(world: World) -> None:
        connect = world.network.connect
        far = world.servers[1].address

        def logged(src: int, dst: int, port: int, now: float) -> Connection:
            conn = connect(src, dst, port, now)
            if dst == far and port == 25:
                attempts.append((src, now, conn))
            return conn

        world.network.connect = logged  # type: ignore[method-assign]
        worlds.append(world)

    worlds: list[World] = []
    policy = {"op25b_top_talkers": {"start_s": start, "max_connections": limit,
                                    "window_s": window, "action": "reject"}}
    result = simulate(_world(policy, [_botnet("slow", 96, 0.5), _botnet("fast", 2400, 0.5)],
                             users={"sends_per_day": 1.0}), setup=setup)
    world = worlds[0]
    pool = world.plan.by_name["isp-a.dynamic"]
    slow, fast = ({pool.host(int(u)) for u in b.user} for b in world.botnets)
    assert len(slow) > 20 and len(fast) > 20
    by_host: dict[int, list[tuple[float, Connection]]] = {}
    for src, now, conn in attempts:
        by_host.setdefault(src, []).append((now, conn))
    for host in slow:
        assert all(conn.is_open for _, conn in by_host.get(host, [])), host
    for host in fast:
        counted: list[float] = []
        over = False
        for now, conn in by_host[host]:
            if now >= start and not over:
                counted.append(now)
                over = sum(now - window < t <= now for t in counted) > limit
            assert conn.is_open is not over, (host, now)
            if over:
                assert conn.stopped_by == "op25b_top_talkers"
        assert over, f"fast bot {host} never blocked"
    stopped = result.summary["stopped_by"]["spam"]
    assert stopped.get("op25b_top_talkers", 0) > 0 and "op25b" not in stopped
    # the subscribers' mail clients talk to their own server: never counted, never blocked
    f = result.recipients_frame()
    assert (f.loc[f["kind"] == "legit", "outcome"] != "blocked").all()


def test_top_talkers_count_an_open_relays_queue_alike_at_session_and_flow():
    """An open relay in isp-a's pool relays isp-b's bots' spam out on 25: its queue's
    attempts (the flow path's, at flow) make it a top talker at the same instant at both
    fidelities, and every recipient ends alike. Every harvested address exists: a
    relay's bounce is queued for the minute after the failure it reports, and counted
    late (``out_of_order``). (A relay that is also a bot would send from the engines and
    from the flow path's queues: docs/fidelity.md.)"""
    worlds: list[World] = []
    scenario = _world(
        {"op25b_top_talkers": {"max_connections": 10, "window_s": 1800}},
        [_botnet("relaying", 300, strategies=["open_relay"], recipients_per_session=4)],
        bots_at=1, open_relays=[{"network": "isp-a.dynamic", "count": 1}],
        duration_s=2 * 3600, users={"sends_per_day": 2.0})
    scenario = scenario.model_copy(update={"spam": scenario.spam.model_copy(
        update={"invalid_recipient_share": 0.0})})
    result = compare(scenario, setup=worlds.append)
    assert result.summaries[1]["sim"]["out_of_order"] == {}
    assert result.unmatched == 0 and len(result.differing()) == 0, result.report()
    relay = worlds[0].relays[0].address
    (session, flow) = (w.network.egress[0].rules[0].blocked_from for w in worlds)
    assert list(session) == list(flow) == [relay]
    assert flow[relay] == pytest.approx(session[relay], abs=1e-6)
    # the engines count in time order; the flow path queues the relay's bounces for the
    # minute after the failure, counts their attempts late, and says so (docs/fidelity.md)
    assert not result.summaries[0]["sim"]["out_of_order"]


def test_the_flow_path_keys_verdicts_by_address_block_and_asks_top_talkers_in_time_order():
    world = World(_world({"op25b": {"pool_share": 0.5}}, []))
    pool = world.plan.by_name["isp-a.dynamic"]
    conns = Connections(world.network, [s.address for s in world.servers], world.ledger)
    inside, outside = pool.host(199), pool.host(200)
    is_open, *_ = conns.connect(np.array([pool.index] * 2), np.array([inside, outside]),
                                np.array([1, 1]), np.array([25, 25]), np.array([0.0, 0.0]))
    assert is_open.tolist() == [False, True]

    world = World(_world({"op25b_top_talkers": {"max_connections": 2}}, []))
    conns = Connections(world.network, [s.address for s in world.servers], world.ledger)
    host = np.full(4, pool.host(7))
    # given out of order, asked in time order: the third in time is the one over the limit
    t = np.array([30.0, 10.0, 40.0, 20.0])
    is_open, _, _, cause = conns.connect(np.full(4, pool.index), host, np.ones(4, dtype=int),
                                         np.full(4, 25), t)
    assert is_open.tolist() == [False, True, False, True]
    words = world.ledger.vocab["stopped_by"].words
    assert {words[int(c)] for c in cause[~is_open]} == {"op25b_top_talkers"}
    assert world.network.egress[0].rules[0].out_of_order == 0


BAD = {
    "isps[0] (isp-a).policies.op25b.pool_share: Input should be less than or equal to 1":
        {"op25b": {"pool_share": 1.5}},
    "isps[0] (isp-a).policies.op25b.pool_share: Input should be greater than or equal to 0":
        {"op25b": {"pool_share": -0.1}},
    "isps[0] (isp-a).policies.op25b_top_talkers.max_connections: Input should be greater than or "
    "equal to 1": {"op25b_top_talkers": {"max_connections": 0}},
    "isps[0] (isp-a).policies.op25b_top_talkers.window_s: Input should be greater than 0":
        {"op25b_top_talkers": {"window_s": 0}},
    "isps[0] (isp-a).policies.op25b_top_talkers.connections_per_hour: unknown field":
        {"op25b_top_talkers": {"connections_per_hour": 5}},
    "isps[0] (isp-a).policies.op25b_top_talkers.action": {"op25b_top_talkers": {"action": "slow"}},
}


def test_bad_selective_blocking_input_exits_2_naming_the_field(tmp_path, capsys):
    for expected, policies in BAD.items():
        data = load_scenario().model_dump(mode="json")
        data["isps"][0]["policies"].update(policies)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        assert main(["validate", str(path)]) == 2, expected
        err = capsys.readouterr().err
        assert expected in err, (expected, err)
        assert "Traceback" not in err
    # true turns the rule on with its defaults, as for every policy
    data = load_scenario().model_dump(mode="json")
    data["isps"][0]["policies"]["op25b_top_talkers"] = True
    top = Scenario.model_validate(data).isps[0].policies.op25b_top_talkers
    assert top is not None and (top.max_connections, top.window_s) == (100, 3600)
