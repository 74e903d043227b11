"""Random worlds with every mechanism switched on or off at random, to compare fidelities on.

``random_world(seed)`` draws a scenario of 3-4 ISPs from one seed: OP25B (dropping or
rejecting, over the whole pool or a share of it, and on top talkers) and the other ISP
policies, most with start times inside the run; small recipient and size limits; open
relays on a hosting network and in a dynamic pool; botnets of every strategy, adaptive or
not, spammer servers, stolen credentials; greylisting, blocklists (of part of a kind's
ranges, consulted by some servers, listing spam sources once seen) and content filters of
both actions; SERVFAIL, short queue lifetimes, roaming users and eavesdroppers; mail clients
with AUTH on 25 or POP-before-SMTP, and ISPs that relay after a POP3 login; users of a mail
provider that is not their ISP, and users' own MTAs at home.
``tests/test_equivalence.py`` and ``netsim compare --random N`` use it.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np

from netsim.scenario.schema import Strategy

STRATEGIES = get_args(Strategy)


def random_world(seed: int, *, small: bool = False) -> dict[str, Any]:
    """A valid scenario, as data, drawn from ``seed`` (``small``: fewer ISPs and users, one
    hour, for the slower fidelities)."""
    rng = np.random.default_rng(seed)

    def pick(*options: Any) -> Any:
        return options[int(rng.integers(len(options)))]

    def chance(p: float) -> bool:
        return bool(rng.random() < p)

    duration = 3600.0 if small else pick(5400.0, 7200.0)
    later = (0.0, duration / 4, duration / 2)
    n = int(rng.integers(2, 4)) if small else int(rng.integers(3, 5))
    isps = []
    for i in range(n):
        policies: dict[str, Any] = {}
        if chance(0.6):
            policies["op25b"] = {"start_s": pick(*later), "action": pick("drop", "reject")}
        policies["submission"] = None if chance(0.15) else {"start_s": pick(0.0, duration / 4)}
        if chance(0.4):
            policies["auth_on_25"] = {"start_s": pick(*later)}
        if chance(0.3):
            policies["inbound_25_block"] = {"start_s": pick(*later)}
        if chance(0.5):
            policies["rate_limit"] = {"recipients_per_hour": pick(5, 20, 60),
                                      "start_s": pick(*later)}
        isps.append({
            "name": f"isp-{i}", "domain": f"isp-{i}.example",
            "subscribers": int(rng.integers(15, 30) if small else rng.integers(30, 80)),
            "dynamic_pool": f"10.{i + 1}.0.0/22", "server_network": f"192.168.{i}.0/28",
            "bot_fraction": pick(0.0, 0.05, 0.1), "policies": policies,
            "mail_server": {
                "max_recipients": 3 if chance(0.25) else 100,
                "message_size_limit": 65_536 if chance(0.3) else 10_240_000,
                "scan_mean_s": 0.3 if chance(0.5) else 0.0,
                "pop3_security": pick("plaintext", "apop", "stls", "pop3s"),
                "submission_security": "tls" if chance(0.3) else "plaintext"}})
    if all(isp["bot_fraction"] == 0 for isp in isps):
        isps[0]["bot_fraction"] = 0.1
    open_relays = []
    if chance(0.7):
        open_relays.append({"network": "hosting", "count": 1})
    if chance(0.6):
        home = int(rng.integers(n))
        open_relays.append({"network": f"isp-{home}.dynamic", "count": 1})
        if chance(0.5):   # its ISP may block inbound 25 to the pool (from some time on)
            isps[home]["policies"]["inbound_25_block"] = {"start_s": pick(*later)}
    botnets = []
    count = int(rng.integers(2, 4))
    for k in range(count):
        order = [STRATEGIES[j] for j in rng.permutation(len(STRATEGIES))]
        botnets.append({
            "name": f"b{k}", "share": 1 / count,
            "strategies": order[:int(rng.integers(1, len(order) + 1))],
            "adaptive": chance(0.6), "failures_to_adapt": 2,
            "rate_median_per_day": pick(300, 1000, 2000), "rate_sigma": 1.0,
            "recipients_per_session": 8, "retry_4xx": pick(0.0, 0.5, 1.0),
            "retry_delay_s": 120})
    botnets[-1]["share"] = 1 - sum(b["share"] for b in botnets[:-1])
    defences: dict[str, Any] = {}
    if chance(0.5):
        defences["greylisting"] = {"delay_s": 300, "retry_window_s": 7200}
    if chance(0.5):
        defences["blocklist"] = {"listed": pick(["dynamic"], ["visited"],
                                                ["dynamic", "visited"])}
    if chance(0.6):
        defences["content_filter"] = {"action": pick("reject", "junk"),
                                      "false_positive_rate": 0.05}
    backoff = pick(60.0, 300.0)
    world: dict[str, Any] = {
        "name": f"random-{seed}", "seed": seed, "duration_s": duration, "isps": isps,
        "links": [{"a": f"isp-{i}", "b": f"isp-{i + 1}", "latency_s": 0.01 * (i + 1)}
                  for i in range(n - 1)],
        "visited_networks": [
            {"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-0",
             "eavesdrop_probability": pick(0.0, 0.3)},
            {"name": "cafe", "prefix": "172.17.0.0/24", "upstream": f"isp-{n - 1}",
             "eavesdrop_probability": 0.3}],
        "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24",
                              "upstream": f"isp-{n - 1}"}],
        "users": {"sends_per_day": pick(40.0, 80.0),
                  "roaming_share": pick(0.0, 0.1, 0.25),
                  "mua_587_share": pick(0.0, 0.3, 0.7, 1.0),
                  "mistyped_user_share": 0.03, "mistyped_domain_share": 0.02,
                  "recipients_pmf": [0.7, 0.1, 0.1, 0.1], "size_sigma": pick(1.0, 2.5)},
        "dns": {"servfail_rate": pick(0.0, 0.02, 0.05)},
        "smtp": {"backoff_min_s": backoff, "backoff_max_s": 4 * backoff,
                 "queue_lifetime_s": pick(900.0, 432_000.0)},
        "defences": defences,
        "spam": {"botnets": botnets, "open_relays": open_relays,
                 "spammer_servers": [{"network": "hosting", "count": 1, "rate_per_day": 3000,
                                      "recipients_per_session": 12}] if chance(0.6) else [],
                 "compromised_share": pick(0.02, 0.1)},
    }
    # drawn after the rest, so that the worlds drawn before these mechanisms stay as they were
    for isp in isps:   # roaming relief before 587
        if chance(0.4):
            isp["policies"]["pop_before_smtp"] = {"start_s": pick(*later),
                                                  "window_s": pick(60.0, 1800.0)}
    world["users"].update(mua_25_auth_share=pick(0.0, 0.3), mua_25_pop_share=pick(0.0, 0.3, 0.6))
    # selective OP25B, drawn after the rest so that the draws above stay as they were: a
    # share of the pool, and a top-talker rule (after OP25B where both apply)
    for isp in isps:
        policies = isp["policies"]
        if "op25b" in policies and chance(0.4):
            policies["op25b"]["pool_share"] = pick(0.0, 0.3, 0.6)
        if chance(0.4):
            policies["op25b_top_talkers"] = {
                "start_s": pick(*later), "max_connections": pick(2, 5, 20),
                "window_s": pick(600.0, 3600.0), "action": pick("drop", "reject")}
    # drawn after every draw above, so that the worlds drawn before stay as they were
    blocklist = defences.get("blocklist")
    if blocklist is not None:
        if chance(0.6):   # a share of each kind's ranges, by address or by /28
            blocklist["listed"] = {kind: pick(0.3, 0.7) for kind in blocklist["listed"]}
            blocklist["range_prefix"] = pick(28, 32)
        if chance(0.5):   # servers that do not consult the list
            blocklist["consulted_by"] = pick(0.5, [f"isp-{i}" for i in range(0, n, 2)])
        if chance(0.7):   # spammer servers and open relays listed once seen
            blocklist["list_seen_after_s"] = pick(300.0, 1800.0)
    if chance(0.5):   # users whose mail provider is not their ISP
        world["providers"] = [{"name": "acme", "domain": "acme.example", "network": "hosting",
                               "submission": None if chance(0.3) else {"start_s": pick(*later)}}]
        world["users"]["provider_share"] = pick(0.1, 0.3)
    world["users"].update(home_mta_share=pick(0.05, 0.15),
                          home_mta_smarthost=pick("none", "isp_25", "isp_587"))
    # drawn after every draw above, so that the worlds drawn before stay as they were: mail
    # clients that retrieve by IMAP and leave mail on the server
    for isp in isps:
        isp["imap_share"] = pick(0.0, 0.5, 1.0)
        isp["mail_server"]["imap_security"] = pick("plaintext", "starttls", "imaps")
    for isp in isps:   # a quota that IMAP users' mail can fill within the run
        isp["mail_server"]["mailbox_quota_bytes"] = pick(None, None, 150_000, 500_000)
    return world
