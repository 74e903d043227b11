"""The verification checks: each returns a Check with the measured figure and its bound."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from scipy import stats

from netsim.experiments.stats import mean_interval
from netsim.net import Action, Rule
from netsim.scenario import Scenario
from netsim.world import World, simulate


@dataclass(frozen=True)
class Check:
    """One verification: what was measured, against what, and whether it holds."""

    name: str
    measured: str
    bound: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.name:<28} measured {self.measured:<26} bound {self.bound}" + (
            f"  ({self.detail})" if self.detail else "")


def _isps(n: int, subscribers: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": f"isp-{i}", "domain": f"isp-{i}.example", "subscribers": subscribers,
             "dynamic_pool": f"10.{i}.0.0/16", "server_network": f"192.168.{i}.0/28", **extra}
            for i in range(n)]


def _links(n: int) -> list[dict[str, Any]]:
    return [{"a": f"isp-{i}", "b": f"isp-{i + 1}", "latency_s": 0.01} for i in range(n - 1)]


def poisson_sending(replications: int = 4) -> Check:
    """Users with equal rates send as one Poisson process: the count in T is Poisson(λT)
    and the gaps are exponential (Kolmogorov–Smirnov), pooled over replications."""
    users, per_day, duration = 2000, 12.0, 6 * 3600
    scenario = Scenario.model_validate({
        "name": "poisson", "seed": 101, "duration_s": duration,
        "isps": _isps(1, users), "users": {"sends_per_day": per_day, "rate_sigma": 0.0,
                                            "recipients_pmf": [1.0]}})
    count, gaps = 0, []
    for r in range(replications):
        world = World(scenario, replication=r)
        world.env.run(until=duration)
        frame = world.ledger.to_arrow().to_pandas()
        created = frame.loc[frame["kind"] == "legit", "created_s"].to_numpy()   # not bounces
        count += len(created)
        gaps.append(np.diff(np.sort(created)))
    rate = users * per_day / 86_400
    expected = rate * duration * replications
    z = (count - expected) / math.sqrt(expected)
    p = float(stats.kstest(np.concatenate(gaps), "expon", args=(0, 1 / rate)).pvalue)
    ok = bool(abs(z) < 3.29 and p > 0.001)
    return Check("poisson sending", f"n={count}, KS p={p:.3f}",
                 f"λT={expected:.0f} ± 3.29√λT, p > 0.001", ok, f"z={z:+.2f}")


def erlang_c_wait(servers: int, arrival: float, service_mean: float) -> float:
    """Mean wait in queue of M/M/c (Erlang C)."""
    a = arrival * service_mean
    rho = a / servers
    terms = sum(a**k / math.factorial(k) for k in range(servers))
    top = a**servers / math.factorial(servers) / (1 - rho)
    p_wait = top / (terms + top)
    return p_wait / (servers / service_mean - arrival)


def mmc_session_slots(replications: int = 8) -> Check:
    """A server's session slots as M/M/c: Poisson submissions, exponential scanning time,
    no latency: the mean wait for a slot against Erlang C."""
    c, scan, users, per_day, duration = 4, 10.0, 5000, 5.0, 6 * 3600
    arrival = users * per_day / 86_400
    waits = []
    for r in range(replications):
        isp = _isps(1, users, access_latency_s=0.0, core_latency_s=0.0, server_latency_s=0.0,
                    mail_server={"session_slots": c, "processing_s": 0.0, "scan_mean_s": scan})
        scenario = Scenario.model_validate({
            "name": "mmc", "seed": 202, "duration_s": duration, "isps": isp,
            "users": {"sends_per_day": per_day, "rate_sigma": 0.0, "recipients_pmf": [1.0],
                      "mistyped_user_share": 0.0, "mistyped_domain_share": 0.0,
                      "mua_587_share": 0.0}})
        world = World(scenario, replication=r)
        world.env.run(until=duration)
        server = world.servers[0]
        waits.append(server.stats_wait_s / server.stats_smtp_sessions)
    theory = erlang_c_wait(c, arrival, scan)
    ci = mean_interval(waits, 0.99)
    ok = ci.low <= theory <= ci.high
    return Check("M/M/c slot wait (Erlang C)", f"{ci.mean:.3f} s [{ci.low:.3f}, {ci.high:.3f}]",
                 f"{theory:.3f} s inside the 99 % CI", ok,
                 f"c={c}, ρ={arrival * scan / c:.2f}")


def op25b_proportionality() -> Check:
    """Non-adaptive direct bots, OP25B on some ISPs: the spam that leaves its ISP comes only
    from ISPs that do not block, in proportion to their bots' share of the sending rate."""
    bots = [{"name": "b", "share": 1.0, "strategies": ["direct"], "rate_median_per_day": 1000,
             "rate_sigma": 0.5}]
    isps = _isps(5, 400, bot_fraction=0.05)
    scenario = Scenario.model_validate({
        "name": "prop", "seed": 303, "duration_s": 6 * 3600, "isps": isps, "links": _links(5),
        "users": {"sends_per_day": 1.0}, "spam": {"botnets": bots},
        "policy_presets": [{"preset": "op25b+587", "isps": ["isp-0", "isp-1"]}]})
    world = World(scenario)
    world.env.run(until=scenario.duration_s)
    net = world.botnets[0]
    open_share = float(net.rate[net.isp >= 2].sum() / net.rate.sum())
    frame = world.ledger.to_arrow().to_pandas()
    spam = frame[frame["kind"] == "spam"]
    cross = spam[spam["rcpt_domain"].astype(str).str.removesuffix(".example")
                 != spam["origin_isp"].astype(str)]
    from_open = cross["origin_isp"].isin(["isp-2", "isp-3", "isp-4"])
    left_blocking = int(cross.loc[~from_open, "sent_out"].sum())
    reached = float(from_open.mean())   # sessions pick bots by rate: a share of attempts
    n = len(cross)
    sigma = math.sqrt(open_share * (1 - open_share) / n) * math.sqrt(25)  # sessions of ~25
    ok = bool(abs(reached - open_share) < 3.29 * sigma + 0.01 and left_blocking == 0)
    return Check("OP25B ∝ open bot share", f"{reached:.3f} of cross-ISP spam",
                 f"{open_share:.3f} ± {3.29 * sigma + 0.01:.3f}", ok,
                 f"{left_blocking} left a blocking ISP")


def retry_schedule() -> Check:
    """A message to an unreachable MX: attempts at exactly the Postfix-like backoff times,
    expiry after the first failure past the queue lifetime."""
    scenario = Scenario.model_validate({
        "name": "retry", "seed": 404, "duration_s": 30_000, "isps": _isps(2, 3),
        "links": _links(2), "users": {"sends_per_day": 0},
        "smtp": {"queue_lifetime_s": 5_000},
        "dns": {"lookup_mean_s": 0.1, "lookup_p90_s": 0.1, "servfail_rate": 0.0,
                "ttl_s": 100_000}})
    world = World(scenario)
    world.network.ingress[1].append(Rule("down", Action.DROP, frozenset({25})))
    attempts: list[float] = []
    connect = world.network.connect

    def logged(src: int, dst: int, port: int, now: float) -> Any:
        if dst == world.servers[1].address:
            attempts.append(now)
        return connect(src, dst, port, now)

    world.network.connect = logged  # type: ignore[method-assign]
    world.populations[0].send(1, ["user2@isp-1.example"], 1_000)
    world.env.run(until=scenario.duration_s)
    timeout, cached = scenario.smtp.connect_timeout_s, 2 * scenario.dns.cached_lookup_s
    expected = [timeout + d + cached for d in (300, 600, 1200, 2400, 4000)]
    gaps = list(np.diff(attempts))
    rows = world.ledger.to_arrow().to_pylist()
    expired_at = rows[0]["finished_s"]
    ok = bool(len(gaps) == len(expected)
              and max(abs(g - e) for g, e in zip(gaps, expected, strict=True)) < 1e-9
              and rows[0]["outcome"] == "expired"
              and expired_at == attempts[-1] + timeout
              and rows[1]["kind"] == "bounce")
    return Check("retry schedule and expiry", f"gaps {', '.join(f'{g:.4f}' for g in gaps)} s",
                 "30 s + 300·2^k (≤4000) + 2 cache hits", ok,
                 f"expired at {expired_at:.1f} s, bounced")


def greylisting_non_retrying() -> Check:
    """Greylisting against senders that never retry: none of their spam is delivered, and
    legitimate mail through a new triplet waits exactly one retry interval."""
    bots = [{"name": "b", "share": 1.0, "strategies": ["direct"], "retry_4xx": 0.0,
             "rate_median_per_day": 500, "rate_sigma": 0.0}]
    # Many accounts and bots of equal rates, so that a bot hardly ever repeats a (client,
    # forged sender, recipient) triplet after the delay, which greylisting would rightly
    # let through.
    scenario = Scenario.model_validate({
        "name": "grey", "seed": 505, "duration_s": 4 * 3600,
        "isps": _isps(2, 3000, bot_fraction=0.005), "links": _links(2),
        "users": {"sends_per_day": 1.0, "other_isp_share": 1.0},
        "spam": {"botnets": bots, "invalid_recipient_share": 0.0},
        "dns": {"servfail_rate": 0.0},
        "defences": {"greylisting": {"delay_s": 300}}})
    frame = simulate(scenario).recipients_frame()
    spam = frame[frame["kind"] == "spam"]
    cross = spam[spam["rcpt_domain"].astype(str).str.removesuffix(".example")
                 != spam["origin_isp"].astype(str)]
    legit = frame[(frame["kind"] == "legit") & (frame["outcome"] == "delivered")]
    delay = (legit["delivered_s"] - legit["created_s"]).to_numpy()
    waited = delay[delay >= 300]
    ok = bool((cross["outcome"] == "delivered").sum() == 0 and len(waited) > 0
              and float(waited.max()) < 300 + 2)
    return Check("greylisting vs non-retrying", f"{int((cross['outcome'] == 'delivered').sum())}"
                 f" spam delivered; legit waits {waited.min():.1f}–{waited.max():.1f} s",
                 "0 delivered; waits in [300, 302) s", ok)


PRIMER_STORY = "primer-story.yaml"   # in netsim/data


def primer_phases(frame: Any) -> dict[str, list[float]]:
    """Legitimate delivery of the primer's story (``netsim/data/primer-story.yaml``) for
    the home ISP's users by sender (user, roaming) and phase: before OP25B (02:00), under
    it without 587, after 587 (04:00); recipients still pending at the end are left out."""
    legit = frame[(frame["kind"] == "legit") & (frame["outcome"] != "pending")
                  & (frame["origin_isp"] == "home-isp")]
    phase = np.digitize(legit["created_s"].to_numpy(), [7200.0, 14400.0])
    delivered = (legit["outcome"] == "delivered").to_numpy()
    sender = legit["sender"].astype(str).to_numpy()
    return {who: [float(delivered[(sender == who) & (phase == k)].mean()) for k in range(3)]
            for who in ("user", "roaming")}


def primer_story() -> Check:
    """The primer's story: a traveller delivers like a home user before OP25B (through the
    home server, after a POP3 login or with AUTH on 25), not once the hotel's upstream
    blocks port 25, and again once the mail client submits on 587 with AUTH."""
    from netsim.scenario import load_scenario

    path = resources.files("netsim") / "data" / PRIMER_STORY
    shares = primer_phases(simulate(load_scenario(str(path))).recipients_frame())
    roaming, home = shares["roaming"], shares["user"]
    ok = roaming[0] >= 0.9 and roaming[1] < 0.1 and roaming[2] >= 0.9 and min(home) >= 0.99
    return Check("primer: roaming, OP25B, 587",
                 "roaming " + " / ".join(f"{x:.2f}" for x in roaming) + f", home ≥ {min(home):.3f}",
                 "≥ 0.90 / < 0.10 / ≥ 0.90, home ≥ 0.99", ok,
                 "before OP25B / OP25B upstream of the hotel / 587")


CHECKS: dict[str, Callable[[], Check]] = {
    "poisson": poisson_sending,
    "mmc": mmc_session_slots,
    "op25b": op25b_proportionality,
    "retry": retry_schedule,
    "greylisting": greylisting_non_retrying,
    "primer": primer_story,
}


def run_checks(names: list[str] | None = None) -> list[Check]:
    return [CHECKS[name]() for name in names or list(CHECKS)]
