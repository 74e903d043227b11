"""The network layer: address plan, latencies, ACL verdicts and costs, DNS resolution."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from netsim.net import (
    ACL,
    Action,
    AddressPlan,
    NetKind,
    Network,
    RCode,
    Resolver,
    Rule,
    Subnet,
    Topology,
    Verdict,
    Zones,
    graph_from_links,
    op25b_rule,
    top_talkers_rule,
)
from netsim.net.dns import lognormal_params


def _plan() -> AddressPlan:
    net = ipaddress.IPv4Network
    return AddressPlan([
        Subnet(0, "a.dynamic", NetKind.DYNAMIC, net("10.1.0.0/24"), 0, 0.005, 10e6),
        Subnet(1, "a.static", NetKind.STATIC, net("192.0.2.0/28"), 0, 0.0005, 100e6),
        Subnet(2, "b.static", NetKind.STATIC, net("198.51.100.0/28"), 1, 0.0005, 100e6),
        Subnet(3, "c.static", NetKind.STATIC, net("203.0.113.0/28"), 2, 0.0005, 100e6),
    ])


def _network() -> Network:
    graph = graph_from_links(["a", "b", "c"], [("a", "b", 0.010), ("b", "c", 0.020),
                                               ("a", "c", 0.050)])
    topology = Topology(graph, ["a", "b", "c"], [0.002, 0.003, 0.004])
    return Network(_plan(), topology, connect_timeout_s=30.0)


def test_subnet_lookup_and_hosts():
    plan = _plan()
    assert plan.subnet_of(plan.by_name["a.dynamic"].host(5)).name == "a.dynamic"
    assert plan.by_name["b.static"].host(0) == int(ipaddress.IPv4Address("198.51.100.1"))
    with pytest.raises(KeyError, match="in no network"):
        plan.subnet_of(int(ipaddress.IPv4Address("8.8.8.8")))


def test_path_latency_is_the_shortest_path_and_diagonal_is_core():
    network = _network()
    # a→c direct is 50 ms; through b it is 30 ms.
    assert network.topology.path_latency[0, 2] == pytest.approx(0.030)
    assert network.topology.path_latency[1, 1] == pytest.approx(0.003)
    a_dyn = network.plan.by_name["a.dynamic"].host(0)
    c_srv = network.plan.by_name["c.static"].host(0)
    assert network.one_way(a_dyn, c_srv) == pytest.approx(0.005 + 0.030 + 0.0005)


def test_connect_costs_by_verdict():
    network = _network()
    src = network.plan.by_name["a.dynamic"].host(0)
    own = network.plan.by_name["a.static"].host(0)
    far = network.plan.by_name["b.static"].host(0)
    network.listen(own, 25, "own")
    network.listen(far, 25, "far")
    rtt = 2 * network.one_way(src, far)
    assert network.connect(src, far, 25, 0).verdict is Verdict.OPEN
    assert network.connect(src, far, 25, 0).delay_s == pytest.approx(rtt)
    assert network.connect(src, far, 587, 0).verdict is Verdict.REFUSED
    network.egress[0].append(op25b_rule("a", [0], [own], action=Action.DROP))
    dropped = network.connect(src, far, 25, 0)
    assert (dropped.verdict, dropped.delay_s, dropped.rule.name) == (Verdict.DROPPED, 30.0,
                                                                     "op25b")
    # the ISP's own server stays reachable on 25, and other ports are untouched
    assert network.connect(src, own, 25, 0).verdict is Verdict.OPEN
    network.listen(far, 587, "far-587")
    assert network.connect(src, far, 587, 0).verdict is Verdict.OPEN
    # servers in the static network are not subscribers: OP25B does not apply to them
    assert network.connect(own, far, 25, 0).verdict is Verdict.OPEN


def test_reject_costs_one_round_trip_and_rules_have_start_times():
    network = _network()
    src = network.plan.by_name["a.dynamic"].host(0)
    far = network.plan.by_name["b.static"].host(0)
    network.listen(far, 25, "far")
    network.egress[0].append(op25b_rule("a", [0], [], action=Action.REJECT, active_from=100))
    assert network.connect(src, far, 25, 99.9).verdict is Verdict.OPEN
    rejected = network.connect(src, far, 25, 100)
    assert rejected.verdict is Verdict.REJECTED
    assert rejected.delay_s == pytest.approx(2 * network.one_way(src, far))


def test_a_listener_accepts_from_its_start_time_and_the_network_names_the_changes():
    network = _network()
    src = network.plan.by_name["a.dynamic"].host(0)
    far = network.plan.by_name["b.static"].host(0)
    network.listen(far, 587, "submission", from_s=5400)
    assert network.connect(src, far, 587, 5399).verdict is Verdict.REFUSED
    assert network.connect(src, far, 587, 5400).listener == "submission"
    assert network.listener(far, 587, now=0) is None and network.listener(far, 587)
    network.egress[0].append(op25b_rule("a", [0], [], active_from=100))
    assert network.changes() == {100, 5400}


def test_first_matching_rule_wins_and_ingress_applies_after_egress_accept():
    network = _network()
    src = network.plan.by_name["a.dynamic"].host(0)
    far = network.plan.by_name["b.static"].host(0)
    network.listen(far, 25, "far")
    network.egress[0] = ACL([Rule("allow", Action.ACCEPT, frozenset({25})),
                             Rule("deny", Action.DROP, frozenset({25}))])
    assert network.connect(src, far, 25, 0).verdict is Verdict.OPEN
    network.ingress[1].append(Rule("inbound-25", Action.REJECT, frozenset({25}),
                                   src_subnets=frozenset({0})))
    result = network.connect(src, far, 25, 0)
    assert (result.verdict, result.where) == (Verdict.REJECTED, "ingress:b")


def _resolver(**kw) -> Resolver:
    zones = Zones()
    zones.add_mx("b.example", 20, "mx2.b.example")
    zones.add_mx("b.example", 10, "mx1.b.example")
    zones.add_a("mx1.b.example", 1)
    zones.add_a("noemail.example", 2)
    params = {"ttl_s": 3600, "negative_ttl_s": 900, "lookup_mean_s": 0.15,
              "lookup_p90_s": 0.275, "cached_lookup_s": 0.0005, "servfail_rate": 0.0}
    params.update(kw)
    return Resolver(zones, np.random.default_rng(1), **params)


def test_dns_answers_mx_in_preference_order_nxdomain_and_nodata():
    resolver = _resolver()
    answer, _ = resolver.query("b.example", "MX", 0, key=1)
    assert [r.exchange for r in answer.records] == ["mx1.b.example", "mx2.b.example"]
    assert resolver.query("nowhere.example", "MX", 0, key=2)[0].rcode is RCode.NXDOMAIN
    nodata, _ = resolver.query("noemail.example", "MX", 0, key=3)
    assert (nodata.rcode, nodata.records) == (RCode.NOERROR, ())


def test_dns_cache_honours_ttl():
    resolver = _resolver()
    first, latency = resolver.query("b.example", "MX", 0, key=1)
    assert not first.cached and latency > 0.0005
    again, cached_latency = resolver.query("b.example", "MX", 100, key=2)
    assert again.cached and cached_latency == 0.0005
    expired, _ = resolver.query("b.example", "MX", latency + 3600.01, key=3)
    assert not expired.cached


def test_dns_servfail_rate_and_latency_distribution():
    resolver = _resolver(servfail_rate=0.2)
    codes, latencies = [], []
    for i in range(20_000):
        answer, latency = resolver.query(f"h{i}.example", "A", 0, key=7)   # all uncached
        codes.append(answer.rcode)
        latencies.append(latency)
    share = codes.count(RCode.SERVFAIL) / len(codes)
    assert share == pytest.approx(0.2, abs=0.015)
    assert np.mean(latencies) == pytest.approx(0.150, rel=0.03)
    assert np.quantile(latencies, 0.9) == pytest.approx(0.275, rel=0.04)


def test_dns_draws_are_keyed_by_what_the_lookup_concerns_not_by_order():
    names = [(f"h{i}.example", i % 5) for i in range(200)]
    forward, backward = _resolver(servfail_rate=0.3), _resolver(servfail_rate=0.3)
    ahead = {q: forward.query(q[0], "A", 0, key=q[1]) for q in names}
    behind = {q: backward.query(q[0], "A", 0, key=q[1]) for q in reversed(names)}
    assert ahead == behind
    # another attempt of the same lookup draws anew (failures are not cached)
    again = _resolver(servfail_rate=1.0)
    latencies = {again.query("h0.example", "A", 0, key=k)[1] for k in range(50)}
    assert len(latencies) == 50


def test_a_lookup_earlier_than_one_already_answered_counts_as_out_of_order():
    """The flow path's late lookups: one earlier than the cached answer, or than a lookup
    that missed (a SERVFAIL is not cached, so a cache could not tell), is counted."""
    resolver = _resolver(servfail_rate=1.0)
    assert resolver.query("b.example", "MX", 100, key=1)[0].rcode is RCode.SERVFAIL
    resolver.query("b.example", "MX", 50, key=2)
    assert resolver.out_of_order == 1
    resolver.query("b.example", "MX", 150, key=3)   # in time order again
    assert resolver.out_of_order == 1
    cached = _resolver()
    cached.query("b.example", "MX", 100, key=1)
    cached.query("b.example", "MX", 50, key=2)
    assert cached.out_of_order == 1


def test_lognormal_params_fixed_when_p90_equals_mean():
    mu, sigma = lognormal_params(0.1, 0.1)
    assert sigma == 0 and np.exp(mu) == pytest.approx(0.1)


def test_op25b_on_an_address_block_covers_its_hosts_only():
    network = _network()
    pool = network.plan.by_name["a.dynamic"]
    far = network.plan.by_name["b.static"].host(0)
    network.listen(far, 25, "far")
    network.egress[0].append(op25b_rule("a", [0], [], src_ranges=[(pool.host(0),
                                                                   pool.host(9))]))
    assert network.connect(pool.host(9), far, 25, 0).verdict is Verdict.DROPPED
    assert network.connect(pool.host(10), far, 25, 0).verdict is Verdict.OPEN
    # the verdicts of the stateless rules change only at the block's edges
    assert network.source_cuts() == [pool.host(0), pool.host(10)]
    assert not network.per_host(pool.host(0), far, 25, 0)


def test_top_talkers_block_a_host_from_its_attempt_over_the_limit_on():
    network = _network()
    pool = network.plan.by_name["a.dynamic"]
    own = network.plan.by_name["a.static"].host(0)
    far = network.plan.by_name["b.static"].host(0)
    network.listen(far, 25, "far")
    network.listen(own, 25, "own")
    network.egress[0].append(top_talkers_rule(0, [own], max_connections=3, window_s=100,
                                              action=Action.REJECT, active_from=10))
    busy, quiet = pool.host(0), pool.host(1)
    assert network.per_host(busy, far, 25, 10) and not network.per_host(busy, far, 25, 9)
    assert not network.per_host(busy, own, 25, 10) and not network.per_host(busy, far, 587, 10)
    # before the rule is in force nothing counts; the own server and other ports never count
    verdicts = [network.connect(busy, far, 25, t).verdict for t in (0, 5)]
    verdicts += [network.connect(busy, own, 25, 20).verdict for _ in range(5)]
    # three in 100 s are allowed; the attempt at 200 is within 100 s of 101 and 150 only
    verdicts += [network.connect(busy, far, 25, t).verdict for t in (10, 101, 150, 200)]
    assert set(verdicts) == {Verdict.OPEN}
    # the fourth within 100 s (101, 150, 200, 200.5): blocked, and so is every later attempt
    over = network.connect(busy, far, 25, 200.5)
    assert (over.verdict, over.stopped_by) == (Verdict.REJECTED, "op25b_top_talkers")
    assert network.connect(busy, far, 25, 10_000).verdict is Verdict.REJECTED
    assert network.connect(busy, own, 25, 10_000).verdict is Verdict.OPEN
    # another host's count is its own
    assert network.connect(quiet, far, 25, 10_000).verdict is Verdict.OPEN
    rule = network.egress[0].rules[0]
    assert rule.out_of_order == 0
    network.connect(quiet, far, 25, 9_000)
    assert rule.out_of_order == 1
    # an attempt earlier than a host's block, come after it, would have counted before it
    assert network.connect(busy, far, 25, 199).verdict is Verdict.REJECTED
    assert rule.out_of_order == 2
