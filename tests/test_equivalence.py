"""One decision, one place: the flow path and the engines give every recipient the same end.

Random worlds (hypothesis) cover every mechanism: policies with start times, both OP25B
actions, OP25B on part of a pool and on top talkers, open relays on hosting and in dynamic
pools, AUTH on 25, rate limits that bite spam, stolen credentials in use, short queue
lifetimes, greylisting, blocklists (of part of the ranges, not consulted everywhere, listing
spam sources once seen), content filters of both actions, SERVFAIL, roaming and
eavesdroppers, mail clients with AUTH on 25 or POP-before-SMTP, small recipient and size
limits. Each is run at ``session`` and ``flow`` and compared recipient by recipient; the test
asserts its own coverage across the examples, so it cannot pass on easy worlds. Every
policy class and every hook is enumerated and shown honoured at ``flow``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netsim.mail.defences
import netsim.mail.policy
from netsim.mail.accounts import parse_local
from netsim.mail.policy import STEPS, Policy, mechanism
from netsim.protocols.replies import (
    S421_TOO_MANY_SESSIONS,
    S450_MAILBOX_BUSY,
    S550_MAILBOX_UNAVAILABLE,
    S550_POLICY,
    S554_ACCESS_DENIED,
    S554_TRANSACTION_FAILED,
)
from netsim.scenario import Scenario
from netsim.verify.equivalence import Comparison, compare
from netsim.verify.worlds import STRATEGIES, random_world
from netsim.world import World

OUTCOMES = {"delivered", "junked", "blocked", "rejected", "expired", "pending"}
CAUSES = {"op25b", "inbound_25_block", "connection_refused", "relay_denied", "user_unknown",
          "nxdomain", "rate_limit", "greylisting", "blocklist", "content_filter",
          "message_size", "too_many_recipients", "queue_lifetime", "op25b_top_talkers",
          "mailbox_full"}


AUTHENTICATED = ("mua:587", "mua:25+auth", "mta:isp_587", "stolen_587")


def _agree(result: Comparison) -> int:
    """Every sent recipient matched and decided alike, at the same instants, but where the
    second run reports rate-limit asks out of time order (docs/fidelity.md): then messages
    submitted with AUTH may differ; or top-talker attempts out of time order: then spam
    may differ. Bounces alike in number. Returns how many differ."""
    assert result.unmatched == 0, result.report()
    both = result.joined[result.joined["_merge"] == "both"]
    first = result.fidelities[0]
    suspect = pd.Series(False, index=both.index)
    late = result.summaries[1]["sim"]["out_of_order"]
    if late.get("RateLimit"):
        suspect = both[f"path_{first}"].isin(AUTHENTICATED)
    if late.get("op25b_top_talkers"):   # a relay's bounces (or a bot's host) counted late
        suspect |= both["kind"] == "spam"
    if late.get("MailboxQuota"):   # a mailbox read before a delivery of its minute was added:
        # a recipient refused as over quota on either path, and its message's others
        full = (both[f"stopped_by_{first}"] == "mailbox_full") | (
            both[f"stopped_by_{result.fidelities[1]}"] == "mailbox_full")
        ids = both[f"message_id_{first}"]
        suspect |= ids.isin(ids[full])
    diff = result.differing()
    assert diff.index.isin(suspect[suspect].index).all(), result.report()
    # the same instants, but where a DNS lookup came out of time order (a bounce the flow
    # path queues after its minute's other attempts): each such lookup can move one queue
    # entry, by a lookup's latency or, when it answered SERVFAIL, by a retry
    sure = both[~suspect]
    moved = pd.Series(False, index=sure.index)
    for name in ("delivered_s", "finished_s"):
        a, b = (sure[f"{name}_{f}"] for f in result.fidelities)
        moved |= (a - b).abs() > 1e-6
    assert "retrieval" not in late   # every check's deliveries were in when it was computed
    entries = sure[moved].groupby([f"message_id_{first}", "rcpt_domain"]).ngroups
    lookups = result.summaries[1]["sim"]["out_of_order"].get("dns", 0)
    assert entries <= 2 * lookups, (entries, lookups, result.report())
    for kind in ("legit", "spam"):
        total = [sum(c[kind].values()) for c in result.counts]
        assert total[0] == total[1], kind
    bounces = [sum(c["bounce"].values()) for c in result.counts]
    # (and one for each recipient that ended otherwise: its failure's bounce)
    assert abs(bounces[0] - bounces[1]) <= max(2, 0.01 * bounces[0]) + len(diff), \
        result.report()
    return len(diff)


# -- random worlds ---------------------------------------------------------------------------
# hypothesis draws each world's seed; ``random_world`` turns it into a world with every
# mechanism switched on or off at random (a seed, not a structure, so that each example is
# as rich as the next)
seeds = st.integers(0, 2**32 - 1)


class Seen:
    """What the random worlds reached, across examples."""

    def __init__(self) -> None:
        self.outcomes: set[str] = set()
        self.causes: set[str] = set()
        self.strategies: set[str] = set()
        self.relays: set[str] = set()
        self.op25b: set[str] = set()
        self.op25b_share = 0   # worlds where OP25B on part of a pool blocked spam from it
        self.blocklist: set[str] = set()   # its settings met in worlds where it refused
        self.stolen_used = 0
        self.mua_paths: set[str] = set()
        self.pop_relayed = 0   # a traveller's mail relayed after a POP3 login
        self.retrieved: set[str] = set()   # by POP3 or IMAP: where all clients use one
        self.examples = 0
        self.recipients = 0
        self.differing = 0

    def add(self, data: dict[str, Any], result: Comparison) -> None:
        frame = result.joined
        self.examples += 1
        self.recipients += len(frame)
        a = result.fidelities[0]
        self.outcomes |= set(frame[f"outcome_{a}"].dropna())
        self.causes |= set(frame[f"stopped_by_{a}"].dropna()) - {""}
        spam = frame[frame["kind"] == "spam"]
        reached = spam[spam[f"outcome_{a}"] != "blocked"]
        self.strategies |= set(reached[f"path_{a}"].dropna())
        if (reached[f"path_{a}"] == "open_relay").any():
            kinds = {"hosting" if r["network"] == "hosting" else "dynamic"
                     for r in data["spam"]["open_relays"]}
            if len(kinds) == 1:
                self.relays |= kinds
        if "op25b" in set(frame[f"stopped_by_{a}"]):
            self.op25b |= {i["policies"]["op25b"]["action"] for i in data["isps"]
                           if "op25b" in i["policies"]}
        partial = {i["name"] for i in data["isps"]
                   if i["policies"].get("op25b", {}).get("pool_share", 1.0) < 1}
        self.op25b_share += bool((spam["origin_isp"].isin(partial)
                                  & (spam[f"stopped_by_{a}"] == "op25b")).any())
        self.stolen_used += result.summaries[0]["credentials"]["used_sessions"]
        legit = frame[(frame["kind"] == "legit") & (frame[f"outcome_{a}"] == "delivered")]
        self.mua_paths |= set(legit[f"path_{a}"].dropna())
        away = legit["origin_isp"].astype(str) + ".example" != legit["rcpt_domain"].astype(str)
        self.pop_relayed += int(((legit[f"path_{a}"] == "mua:25+pop")
                                 & (legit[f"sender_{a}"] == "roaming") & away).sum())
        retrieved = frame[frame[f"retrieved_s_{a}"].notna()]
        for isp in data["isps"]:
            if isp["imap_share"] in (0.0, 1.0) and (retrieved["rcpt_domain"]
                                                    == isp["domain"]).any():
                self.retrieved.add("imap" if isp["imap_share"] else "pop3")
        blocklist = data["defences"].get("blocklist")
        listed = frame[frame[f"stopped_by_{a}"] == "blocklist"]
        if blocklist is not None and len(listed):
            shares = blocklist["listed"]
            if isinstance(shares, dict) and min(shares.values(), default=1) < 1:
                self.blocklist.add("coverage")
            if blocklist.get("consulted_by", 1.0) != 1.0:
                self.blocklist.add("not_consulted")
            seen = ((listed[f"path_{a}"] == "open_relay")
                    | (listed[f"sender_{a}"] == "spammer_server"))
            if blocklist.get("list_seen_after_s") is not None and seen.any():
                self.blocklist.add("seen")


def test_flow_and_session_agree_recipient_by_recipient_on_random_worlds():
    seen = Seen()

    @settings(max_examples=30, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seeds)
    def check(seed: int) -> None:
        data = random_world(seed)
        result = compare(Scenario.model_validate(data))
        seen.differing += _agree(result)
        seen.add(data, result)

    check()
    assert seen.outcomes == OUTCOMES
    assert seen.causes >= CAUSES, CAUSES - seen.causes
    assert seen.strategies == set(STRATEGIES)
    assert seen.relays == {"hosting", "dynamic"}
    assert seen.op25b == {"drop", "reject"}
    assert seen.op25b_share > 0
    assert seen.blocklist == {"coverage", "not_consulted", "seen"}
    assert seen.stolen_used > 0 and seen.recipients > 20_000
    assert seen.mua_paths == {"mua:25", "mua:25+auth", "mua:25+pop", "mua:587", "provider:25",
                              "provider:587", "mta:direct", "mta:isp_25", "mta:isp_587"}
    assert seen.pop_relayed > 0
    assert seen.retrieved == {"pop3", "imap"}
    assert seen.differing <= 0.001 * seen.recipients


def test_command_and_session_agree_on_smaller_random_worlds():
    @settings(max_examples=4, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seeds)
    def check(seed: int) -> None:
        result = compare(Scenario.model_validate(random_world(seed, small=True)),
                         ("command", "session"))
        _agree(result)

    check()


# -- every policy, every hook ----------------------------------------------------------------
class RefuseConnections(Policy):
    """A classic connect hook: refuses every session at its server."""

    order_free = True

    def check_connect(self, server, session):
        return S554_ACCESS_DENIED


class BusyServer(Policy):
    """A classic connect hook that closes odd clients' sessions with 421."""

    order_free = True

    def check_connect(self, server, session):
        return S421_TOO_MANY_SESSIONS if session.client_address % 2 else None


class SenderCheck(Policy):
    """A classic MAIL hook: refuses senders whose account number is a multiple of 3."""

    order_free = True

    def check_mail(self, server, session, reverse_path):
        user, _ = parse_local(reverse_path.rpartition("@")[0])
        return S550_POLICY if user >= 0 and user % 3 == 0 else None


class RecipientCheck(Policy):
    """A classic RCPT hook: defers recipients whose account number ends in 4, for clients
    whose address is even."""

    order_free = True

    def check_rcpt(self, server, session, forward_path):
        user, _ = parse_local(forward_path.rpartition("@")[0])
        return S450_MAILBOX_BUSY if user % 10 == 4 and session.client_address % 2 == 0 \
            else None


class EveryFourth(Policy):
    """A classic RCPT hook with state: every fourth recipient it is asked about is
    deferred, so the order of asking matters."""

    def __init__(self) -> None:
        self.asked = 0

    def check_rcpt(self, server, session, forward_path):
        self.asked += 1
        return S450_MAILBOX_BUSY if self.asked % 4 == 0 else None


class DataCheck(Policy):
    """A classic data hook: files large messages as junk, refuses those whose key is
    divisible by 7."""

    order_free = True

    def check_data(self, server, session, envelope):
        mail = envelope.payload
        if mail.key % 7 == 0:
            return S554_TRANSACTION_FAILED
        if envelope.size > 20_000:
            session.extra["folder"] = "junk"
        return None


class MailboxCheck(Policy):
    """A policy judged over facts, as the built-ins are: refuses accounts below 5."""

    reply_rcpt = S550_MAILBOX_UNAVAILABLE

    def scope_rcpt(self, ask):
        return ask.local

    def refuses_rcpt(self, ask):
        return (ask.account >= 0) & (ask.account < 5)


CLASSIC = {RefuseConnections: ("connect", mechanism(S554_ACCESS_DENIED)),
           BusyServer: ("connect", mechanism(S421_TOO_MANY_SESSIONS)),
           SenderCheck: ("mail", mechanism(S550_POLICY)),
           RecipientCheck: ("rcpt", mechanism(S450_MAILBOX_BUSY)),
           DataCheck: ("data", mechanism(S554_TRANSACTION_FAILED)),
           MailboxCheck: ("rcpt", mechanism(S550_MAILBOX_UNAVAILABLE))}

# what the flow path refuses to ask, and the hook it names (tested below)
REFUSED = {EveryFourth: "rcpt"}

# the built-ins, by what their refusals are called
BUILT_IN = {"RelayControl": "relay_denied", "LocalRecipients": "user_unknown",
            "Blocklist": "blocklist", "Greylisting": "greylisting",
            "ContentFilter": "content_filter", "RateLimit": "rate_limit",
            "MailboxQuota": "mailbox_full"}
# built-ins no simulated sender provokes: every sender that logs in sends as its account
# (its verdicts one ask at a time and over arrays are compared below)
QUIET = {"SenderLoginMatch"}

HOOK_WORLD = {
    "name": "hooks", "seed": 3, "duration_s": 5400,
    "isps": [{"name": f"isp-{i}", "domain": f"isp-{i}.example", "subscribers": 40,
              "dynamic_pool": f"10.{i + 1}.0.0/24", "server_network": f"192.168.{i}.0/28",
              "bot_fraction": 0.1, "imap_share": 0.5 * (i == 2),
              "mail_server": {"mailbox_quota_bytes": 100_000 if i == 2 else None},
              "policies": [{}, {"rate_limit": {"recipients_per_hour": 2}},
                           {"auth_on_25": {"start_s": 1800}}][i]}
             for i in range(3)],
    "links": [{"a": "isp-0", "b": "isp-1", "latency_s": 0.01},
              {"a": "isp-1", "b": "isp-2", "latency_s": 0.02}],
    "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-0"}],
    "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24", "upstream": "isp-2"}],
    "users": {"sends_per_day": 60.0, "roaming_share": 0.1, "mistyped_user_share": 0.05,
              "size_sigma": 1.5},
    "defences": {"greylisting": True, "blocklist": {"listed": ["visited"]},
                 "content_filter": {"action": "reject"}},
    "spam": {"botnets": [{"name": "b", "share": 0.5, "adaptive": True, "failures_to_adapt": 2,
                          "strategies": ["direct", "isp_relay", "open_relay"]},
                         {"name": "c", "share": 0.5, "strategies": ["stolen_587"]}],
             "open_relays": [{"network": "hosting", "count": 1}],
             "compromised_share": 0.1},
}


def _policy_classes() -> set[type]:
    """Every policy class netsim defines, and those of this test."""
    found, todo = set(), [Policy]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.add(sub)
            todo.append(sub)
    return {c for c in found if c.__module__ in (netsim.mail.policy.__name__,
                                                 netsim.mail.defences.__name__, __name__)}


def _hooks(cls: type) -> list[str]:
    """The steps a policy class looks at: judged over facts, or a classic hook of its own."""
    return [step for step in STEPS
            if hasattr(cls, f"refuses_{step}")
            or getattr(cls, f"check_{step}") is not getattr(Policy, f"check_{step}")]


@pytest.mark.parametrize("cls", list(CLASSIC), ids=lambda c: c.__name__)
def test_a_policy_of_ones_own_is_honoured_at_flow(cls: type):
    """A policy written with one classic hook (or over facts) acts at flow exactly as the
    engines apply it, at submission and in the outbound queues."""
    def setup(world: World) -> None:
        for server in world.servers:
            server.policies.insert(1, cls())

    result = compare(Scenario.model_validate(HOOK_WORLD), setup=setup)
    _agree(result)
    step, stopped = CLASSIC[cls]
    assert step in _hooks(cls)
    for summary in result.summaries:
        stops = Counter({k: v for kind in ("legit", "spam")
                         for k, v in summary["stopped_by"][kind].items()})
        assert stops[stopped] > 0, (stopped, dict(stops))


def test_every_policy_class_and_hook_is_honoured_at_flow():
    """Enumerate every policy class and the steps it looks at: each is either shown acting
    on both paths (its refusals appear at session and at flow, and every recipient ends
    alike), or is one of this module's own, each tested above (honoured, or refused before
    the run starts). None is ignored."""
    classes = _policy_classes()
    assert {c.__name__ for c in classes} >= (set(BUILT_IN) | {c.__name__ for c in CLASSIC}
                                             | {c.__name__ for c in REFUSED})
    result = compare(Scenario.model_validate(HOOK_WORLD))
    _agree(result)
    stops = [Counter({k: v for kind in ("legit", "spam")
                      for k, v in s["stopped_by"][kind].items()}) for s in result.summaries]
    for cls in classes:
        hooks = _hooks(cls)
        assert hooks, f"{cls.__name__} looks at no step"
        if cls in CLASSIC or cls in REFUSED or cls.__name__ in QUIET:
            continue
        name = BUILT_IN[cls.__name__]
        assert stops[0][name] > 0 and stops[1][name] > 0, (cls.__name__, hooks)


def test_a_hook_whose_answers_depend_on_order_is_refused_before_the_run_starts():
    from netsim.world.dialogue import FlowError

    def setup(world: World) -> None:
        world.servers[1].policies.append(EveryFourth())

    with pytest.raises(FlowError, match=r"EveryFourth\.check_rcpt at mail\.isp-1\.example"):
        compare(Scenario.model_validate(HOOK_WORLD), setup=setup)
    # the engines ask it in their own order: fine at session fidelity
    data = {**HOOK_WORLD, "fidelity": "session", "duration_s": 1800}
    from netsim.world import simulate
    stopped = simulate(Scenario.model_validate(data), setup=setup).summary["stopped_by"]
    assert stopped["legit"].get("smtp_450", 0) + stopped["spam"].get("smtp_450", 0) > 0


def test_a_421_midway_through_a_session_is_refused_at_flow():
    from netsim.world.dialogue import FlowError

    class Closes(Policy):
        order_free = True

        def check_rcpt(self, server, session, forward_path):
            return S421_TOO_MANY_SESSIONS

    def setup(world: World) -> None:
        world.servers[0].policies.append(Closes())

    with pytest.raises(FlowError, match="421 at rcpt"):
        compare(Scenario.model_validate({**HOOK_WORLD, "duration_s": 600}), setup=setup)


def test_an_unknown_spam_strategy_is_an_error_not_a_fallback():
    data = {**HOOK_WORLD, "fidelity": "flow"}
    scenario = Scenario.model_validate(data)
    botnet = scenario.spam.botnets[0].model_copy(update={"strategies": ["direct", "smtp_25"]})
    spam = scenario.spam.model_copy(update={"botnets": [botnet]})
    with pytest.raises(ValueError, match="unknown spam strategy 'smtp_25'"):
        World(scenario.model_copy(update={"spam": spam}))


def test_the_keyed_verdicts_do_not_depend_on_the_order_they_are_drawn_in():
    """A sanity check of the one expression both paths use: a facts policy's verdict over
    arrays equals its verdicts one ask at a time."""
    from netsim.mail.defences import ContentFilter
    from netsim.mail.facts import Asks
    from netsim.mail.policy import Judge, Panel, judge_many

    rng = np.random.default_rng(4)
    n = 500
    asks = Asks(n, {"at": np.sort(rng.random(n) * 100), "client": rng.integers(1, 1000, n),
                    "subnet": rng.integers(0, 4, n), "port": 25, "own": rng.random(n) < 0.3,
                    "user": np.where(rng.random(n) < 0.3, 7, -1),
                    "key": rng.integers(0, 2**62, n), "spam": rng.random(n) < 0.5})
    one, many = (ContentFilter(0.9, 0.1, "reject", np.random.default_rng(1)) for _ in range(2))
    alone = [Judge(one, "data").one(asks.row(i)) is not None for i in range(n)]
    panel = Panel([Judge(many, "data")])
    together = judge_many(panel, np.zeros(n, dtype=int), asks)
    panel.count()
    assert alone == together.tolist()
    assert (one.examined, one.refused) == (many.examined, many.refused) != (0, 0)


def test_netsim_compare_reports_what_differs(tmp_path, capsys):
    from netsim.cli import main
    from netsim.scenario import scenario_yaml

    path = tmp_path / "hooks.yaml"
    path.write_text(scenario_yaml(Scenario.model_validate({**HOOK_WORLD, "duration_s": 1800})))
    assert main(["compare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "sent recipients compared (session against flow)" in out
    assert "bounces:" in out
    assert main(["compare", "--random", "2", "--fidelities", "session", "flow"]) == 0
    assert "2 worlds:" in capsys.readouterr().out
    assert main(["compare", str(path), "--random", "1"]) == 2



def test_sender_login_match_is_one_rule_for_one_ask_and_for_arrays():
    """The engines ask with the reverse path as text, the flow path with the account it
    names as arrays (from the sender's parsed address): the same verdicts."""
    from netsim.mail.accounts import sender_account
    from netsim.mail.facts import Ask, Asks
    from netsim.mail.policy import Judge, Panel, SenderLoginMatch, judge_many

    senders = ["user7@isp-a.example", "user7@ISP-A.example", "user8@isp-a.example",
               "user7@isp-b.example", "ceo@bank.example", "", "user7x@isp-a.example",
               "postmaster@isp-a.example"]
    users = [7, 7, 7, 7, 7, 7, 7, -1]
    n = len(senders)
    one, many = SenderLoginMatch("isp-a.example", 100), SenderLoginMatch("isp-a.example", 100)
    alone = [Judge(one, "mail").one(Ask(at=float(i), client=i, subnet=0, port=587, own=False,
                                        user=users[i], reverse_path=senders[i])) is not None
             for i in range(n)]
    asks = Asks(n, {"at": np.arange(n, dtype=float), "client": np.arange(n), "subnet": 0,
                    "port": 587, "own": False, "user": np.array(users),
                    "sender": np.array([sender_account(t, "isp-a.example", 100)
                                        for t in senders])})
    together = judge_many(Panel([Judge(many, "mail")]), np.zeros(n, dtype=int), asks)
    # only the account's own address (its domain in any case) and the null sender pass; an
    # unauthenticated session (user -1) is not examined
    assert alone == together.tolist() == [False, False, True, True, True, False, True, False]
