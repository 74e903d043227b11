"""Benchmarks: a generated country at any scale, measured against SimPy's own floor.

``netsim bench --scale small|medium|national|japan|N`` builds the benchmark world of that
many subscribers, measures in the same process how many bare ``env.timeout`` events a
second SimPy runs here (the floor), then simulates the world and prints messages,
recipients, sessions, events, wall time, rates, peak memory and bytes per subscriber. The
key figure is messages/s ÷ floor events/s.
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any

import simpy

from netsim.scenario import Scenario
from netsim.world import simulate

NATIONAL_SUBSCRIBERS = 1_000_000
# subscribers by name. japan: about 30 million broadband subscriptions when Japan's ISPs
# adopted OP25B (MIC: 27.8 million at the end of September 2007, Nikkei Electronics,
# 19 December 2007, growing by about 1.5 million a year)
SCALES = {"small": 10_000, "medium": 100_000, "national": NATIONAL_SUBSCRIBERS,
          "japan": 30_000_000}
ISPS = 50
POOL_HOSTS = 2**18 - 2   # the /14 each ISP's pool gets while every ISP fits in one


def subscribers_of(scale: str) -> int:
    """A scale's subscribers: a name of :data:`SCALES`, or a count (``2000000``, ``2e6``).

    Raises:
        ValueError: Neither, or a count below 50 (one a benchmark ISP).
    """
    if scale in SCALES:
        return SCALES[scale]
    try:
        count = float(scale.replace("_", ""))
    except ValueError:
        raise ValueError(f"a scale is one of {', '.join(SCALES)} or a number of "
                         f"subscribers, not {scale!r}") from None
    if not count.is_integer() or count < ISPS:
        raise ValueError(f"a scale's subscribers are a whole number of at least {ISPS}, "
                         f"not {scale!r}")
    return int(count)


def _pools(sizes: list[int]) -> list[str]:
    """Each ISP's dynamic pool: a /14 of 10.0.0.0/8 while every ISP fits in one (the
    benchmark worlds up to national, as measured before); else a block of its own size,
    one after another from 16.0.0.0, the largest first (each aligned to its size)."""
    if max(sizes) <= POOL_HOSTS:
        return [f"10.{4 * i}.0.0/14" for i in range(len(sizes))]
    pools = [""] * len(sizes)
    start = 16 << 24
    for i in sorted(range(len(sizes)), key=lambda k: -sizes[k]):
        bits = max(8, (sizes[i] + 2 - 1).bit_length())
        start = -(-start // (1 << bits)) * (1 << bits)
        pools[i] = f"{start >> 24}.{start >> 16 & 255}.{start >> 8 & 255}.{start & 255}" \
                   f"/{32 - bits}"
        start += 1 << bits
    return pools


def simpy_floor(events: int = 300_000, repeats: int = 3) -> float:
    """Bare ``env.timeout`` events per second on this machine (median of ``repeats``)."""
    rates = []
    for _ in range(repeats):
        env = simpy.Environment()

        def tick(env: simpy.Environment = env) -> Any:
            for _ in range(events):
                yield env.timeout(1)

        env.process(tick())
        started = time.perf_counter()
        env.run()
        rates.append(events / (time.perf_counter() - started))
    return statistics.median(rates)


def bench_scenario(scale: str, duration_s: float = 86_400,
                   fidelity: str = "flow") -> Scenario:
    """50 ISPs on a Barabási–Albert graph with Zipf-like sizes; bots concentrated in a few
    ISPs (docs/references.md: 10 ISPs hold about 30 % of spam sources); roaming users on hotel
    networks; spammer servers and open relays on hosting networks; every ISP policy in force
    somewhere."""
    total = subscribers_of(scale)
    weights = [1 / (i + 1) ** 0.8 for i in range(ISPS)]
    sizes = [max(1, round(total * w / sum(weights))) for w in weights]
    pools = _pools(sizes)
    isps = []
    for i, size in enumerate(sizes):
        policies: dict[str, Any] = {}
        if i % 4 == 1:
            policies["auth_on_25"] = {}
        if i % 5 == 2:
            policies["inbound_25_block"] = {}
        if i % 3 == 0:
            policies["rate_limit"] = {"recipients_per_hour": 100}
        isps.append({
            "name": f"isp-{i:02d}", "domain": f"isp-{i:02d}.example", "subscribers": size,
            "dynamic_pool": pools[i], "server_network": f"198.18.{i}.0/28",
            # a few ISPs hold a large share of the infected hosts
            "bot_fraction": 0.05 if i % 7 == 3 else 0.01, "policies": policies})
    upstreams = [f"isp-{i:02d}" for i in (0, 3, 7, 12, 20)]
    return Scenario.model_validate({
        "name": f"bench-{scale}", "seed": 7, "duration_s": duration_s, "isps": isps,
        "fidelity": fidelity,
        "topology": {"generator": "barabasi_albert", "attach": 2},
        "visited_networks": [{"name": f"hotel-{k}", "prefix": f"172.{16 + k}.0.0/16",
                              "upstream": u, "eavesdrop_probability": 0.01}
                             for k, u in enumerate(upstreams)],
        "hosting_networks": [{"name": f"hosting-{k}", "prefix": f"100.{64 + k}.0.0/16",
                              "upstream": f"isp-{k * 10 + 5:02d}"} for k in range(3)],
        # ten messages a user a day: at a million subscribers, ten million message attempts
        "users": {"roaming_share": 0.02, "sends_per_day": 10.0},
        "policy_adoption": {"preset": "op25b+587", "share": 0.6},
        "spam": {"compromised_share": 0.001,
                 "botnets": [
                     {"name": "cutwail", "share": 0.5, "adaptive": True,
                      "strategies": ["direct", "isp_relay", "stolen_587"],
                      "rate_median_per_day": 40},
                     {"name": "rustock", "share": 0.3, "strategies": ["direct"],
                      "rate_median_per_day": 40},
                     {"name": "grum", "share": 0.2, "adaptive": True,
                      "strategies": ["open_relay", "direct"], "rate_median_per_day": 40}],
                 "spammer_servers": [{"network": f"hosting-{k}", "count": 3,
                                      "rate_per_day": 100_000 * total / NATIONAL_SUBSCRIBERS}
                                     for k in range(3)],
                 "open_relays": [{"network": "hosting-0", "count": 2},
                                 {"network": "isp-10.dynamic", "count": 1}]},
        "defences": {"content_filter": {"action": "junk"}},
    })


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def run_bench(scale: str, duration_s: float = 86_400, fidelity: str = "flow",
              scenario: Scenario | None = None) -> dict[str, Any]:
    """Measure the floor, then the benchmark world (``scenario``, if built already);
    every figure of the table."""
    floor = simpy_floor()
    scenario = scenario or bench_scenario(scale, duration_s, fidelity)
    before = _rss_mb()
    result = simulate(scenario, records="summary")   # a country keeps its counts only
    sim = result.summary["sim"]
    subscribers = sum(i.subscribers for i in scenario.isps)
    peak = _rss_mb()
    wall = sim["wall_seconds"]
    messages_per_s = sim["messages"] / wall
    return {
        "scale": scale, "fidelity": fidelity, "subscribers": subscribers,
        "sim_seconds": duration_s,
        "messages": sim["messages"], "recipients": sim["recipients"],
        "sessions": sim["sessions"], "events": sim["events"], "wall_s": wall,
        "messages_per_s": round(messages_per_s, 1),
        "recipients_per_s": round(sim["recipients"] / wall, 1),
        "floor_events_per_s": round(floor, 1), "ratio": messages_per_s / floor,
        "peak_rss_mb": round(peak, 1),
        "bytes_per_subscriber": round((peak - before) * 2**20 / subscribers, 1),
    }


def format_table(figures: dict[str, Any]) -> str:
    labels = [("scale", "scale"), ("fidelity", "fidelity"), ("subscribers", "subscribers"),
              ("messages", "messages"),
              ("recipients", "recipients"), ("sessions", "SMTP+POP3 sessions"),
              ("events", "SimPy events"), ("wall_s", "wall seconds"),
              ("messages_per_s", "messages/s"), ("recipients_per_s", "recipients/s"),
              ("floor_events_per_s", "SimPy floor (timeouts/s)"),
              ("ratio", "messages/s ÷ floor"), ("peak_rss_mb", "peak memory (MB)"),
              ("bytes_per_subscriber", "bytes/subscriber (peak − before)")]
    width = max(len(label) for _, label in labels)
    shown = {**figures, "ratio": f"{figures['ratio']:.4g}"}
    return "\n".join(f"{label:<{width}}  {shown[key]}" for key, label in labels)
