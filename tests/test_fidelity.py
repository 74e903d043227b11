"""The faster paths give the same outcomes as the per-command path on the same seeded world.

Fidelity ``session`` runs each dialogue through the same engines in one step; only what other
processes could observe mid-session may differ: mail delivered during a POP3 session is
collected at the next one. Fidelity ``flow`` decides users' mail as arrays through the same
policies; every recipient ends the same, at the same computed instant but for DNS answers
drawn in another order and checks made from home.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from netsim.scenario import Scenario
from netsim.verify.fingerprint import FINGERPRINT_SCENARIO
from netsim.world import simulate
from netsim.world.columns import Columns


def test_session_fidelity_gives_the_same_outcomes_with_fewer_events():
    runs = {f: simulate(Scenario.model_validate({**FINGERPRINT_SCENARIO, "fidelity": f,
                                                 "duration_s": 6 * 3600}))
            for f in ("command", "session")}
    a, b = (runs[f].recipients_frame() for f in ("command", "session"))
    assert len(a) == len(b) > 1000
    for column in ("message_id", "kind", "sender", "path", "rcpt_domain", "outcome",
                   "stopped_by", "reply_code", "sent_out", "accepted_outside"):
        assert (a[column].astype(str) == b[column].astype(str)).all(), column
    for column in ("created_s", "delivered_s", "finished_s"):
        assert np.allclose(a[column].fillna(-1), b[column].fillna(-1), rtol=0, atol=1e-9)
    same = np.isclose(a["retrieved_s"].fillna(-1), b["retrieved_s"].fillna(-1), rtol=0,
                      atol=1e-9)
    assert same.mean() > 0.99
    # a message can only wait for a later check, or change places within one POP3 session
    shift = b.loc[~same, "retrieved_s"] - a.loc[~same, "retrieved_s"]
    assert (shift > -1.0).all()
    assert runs["session"].summary["counts"] == runs["command"].summary["counts"]
    events = {f: r.summary["sim"]["events"] for f, r in runs.items()}
    assert events["session"] < 0.6 * events["command"]


def test_both_fidelities_agree_on_the_benchmark_country():
    """Rate limits, adaptive bots, a content filter, policies in many ISPs: every
    recipient's outcome is the same at both fidelities."""
    from netsim.experiments.bench import bench_scenario

    end = 2 * 3600
    runs = {f: simulate(bench_scenario("small", end, f)) for f in ("command", "session")}
    a, b = (runs[f].recipients_frame() for f in ("command", "session"))
    assert len(a) == len(b) > 10_000
    differ = (a["outcome"].astype(str) != b["outcome"].astype(str)) | (
        a["stopped_by"].astype(str) != b["stopped_by"].astype(str))
    # but at the run's end: a dialogue decided whole at session, cut short at command
    # (docs/fidelity.md)
    straddle = (a["outcome"].astype(str) == "pending") & (b["finished_s"] > end)
    assert (straddle[differ]).all() and differ.sum() <= 3


# Every policy the flow path decides, most with a start time inside the run: OP25B (drop,
# and reject), a submission port opening late, AUTH on 25 (required; and from mail clients),
# POP-before-SMTP, tight rate limits, greylisting, a
# blocklist of dynamic and visited networks, a content filter that rejects, scan times, APOP,
# SERVFAIL, mistyped users and domains, oversized messages, roaming users on two hotels.
EQUIVALENCE_WORLD = {
    "name": "flow-equivalence", "seed": 11, "duration_s": 6 * 3600,
    "isps": [
        {"name": "isp-a", "domain": "isp-a.example", "subscribers": 80,
         "dynamic_pool": "10.1.0.0/24", "server_network": "192.168.1.0/28", "bot_fraction": 0,
         "policies": {"op25b": {"start_s": 3600}}},
        {"name": "isp-b", "domain": "isp-b.example", "subscribers": 60,
         "dynamic_pool": "10.2.0.0/24", "server_network": "192.168.2.0/28", "bot_fraction": 0,
         "policies": {"auth_on_25": {"start_s": 7200},
                      "pop_before_smtp": {"start_s": 3600, "window_s": 600},
                      "rate_limit": {"recipients_per_hour": 3}},
         "mail_server": {"scan_mean_s": 0.5}},
        {"name": "isp-c", "domain": "isp-c.example", "subscribers": 50,
         "dynamic_pool": "10.3.0.0/24", "server_network": "192.168.3.0/28", "bot_fraction": 0,
         "policies": {"op25b": {"action": "reject"}, "submission": None}},
        {"name": "isp-d", "domain": "isp-d.example", "subscribers": 40,
         "dynamic_pool": "10.4.0.0/24", "server_network": "192.168.4.0/28", "bot_fraction": 0,
         "policies": {"submission": {"start_s": 5400}},
         "mail_server": {"pop3_security": "apop"}}],
    "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01},
              {"a": "isp-b", "b": "isp-c", "latency_s": 0.02},
              {"a": "isp-c", "b": "isp-d", "latency_s": 0.03}],
    "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-a",
                          "eavesdrop_probability": 0.3},
                         {"name": "cafe", "prefix": "172.17.0.0/24", "upstream": "isp-d",
                          "eavesdrop_probability": 0.3}],
    "users": {"sends_per_day": 40.0, "roaming_share": 0.15, "mistyped_user_share": 0.03,
              "mua_25_auth_share": 0.2, "mua_25_pop_share": 0.3,
              "mistyped_domain_share": 0.02, "size_sigma": 3.0},
    "dns": {"servfail_rate": 0.05},
    "defences": {"greylisting": True, "blocklist": {"listed": ["dynamic", "visited"]},
                 "content_filter": {"action": "reject", "false_positive_rate": 0.05}},
}
SAME_MESSAGE = ["kind", "origin_isp", "created_s", "rcpt_index", "rcpt_domain"]


def _joined(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The recipients of both runs side by side, matched by message and recipient (the
    engine path's clock may put a creation instant one rounding step away)."""
    for frame in (a, b):
        for column in frame.select_dtypes("category"):
            frame[column] = frame[column].astype(str)
        frame["created_s"] = frame["created_s"].round(6)
    return a.merge(b, on=SAME_MESSAGE, how="outer", suffixes=("_engine", "_flow"),
                   indicator=True)


def test_flow_gives_every_recipient_the_engines_outcome():
    runs = {f: simulate(Scenario.model_validate({**EQUIVALENCE_WORLD, "fidelity": f}))
            for f in ("session", "flow")}
    engine, flow = runs["session"], runs["flow"]
    assert flow.summary["counts"] == engine.summary["counts"]
    assert flow.summary["stopped_by"] == engine.summary["stopped_by"]
    assert flow.summary["credentials"] == engine.summary["credentials"]
    # every mechanism of the world stopped something, so each was compared
    assert set(flow.summary["stopped_by"]["legit"]) >= {
        "op25b", "relay_denied", "user_unknown", "nxdomain",
        "rate_limit", "blocklist", "content_filter", "message_size"}
    both = _joined(engine.recipients_frame(), flow.recipients_frame())
    legit = both[both["kind"] == "legit"]
    assert (legit["_merge"] == "both").all() and len(legit) > 2000
    for column in ("outcome", "stopped_by", "reply_code", "sender", "path", "origin_network",
                   "first_hop_port", "sent_out", "accepted_outside"):
        assert (legit[f"{column}_engine"] == legit[f"{column}_flow"]).all(), column
    # instants: the same arithmetic; DNS answers drawn in another order move a few
    for column, within in (("finished_s", 1.0), ("delivered_s", 1.0), ("retrieved_s", 2.0)):
        gap = (legit[f"{column}_engine"].fillna(-1) - legit[f"{column}_flow"].fillna(-1)).abs()
        assert gap.max() < within, column
    assert ((legit["finished_s_engine"] - legit["finished_s_flow"]).abs() < 1e-6).mean() > 0.98
    events = {f: r.summary["sim"]["events"] for f, r in runs.items()}
    assert events["flow"] < 0.1 * events["session"]


def test_flow_agrees_on_the_benchmark_country():
    """Bots of every strategy beside the users: spam runs through the engines at both
    fidelities, and every recipient of either kind ends the same."""
    from netsim.experiments.bench import bench_scenario

    runs = {f: simulate(bench_scenario("small", 2 * 3600, f)) for f in ("session", "flow")}
    engine, flow = runs["session"].summary, runs["flow"].summary
    for key in ("counts", "stopped_by", "legit_delivery", "credentials"):
        assert flow[key] == engine[key], key
    assert flow["spam_by_origin"] == engine["spam_by_origin"]
    both = _joined(runs["session"].recipients_frame(), runs["flow"].recipients_frame())
    sent = both[both["kind"] != "bounce"]     # a bounce is made at an instant DNS may move
    assert (sent["_merge"] == "both").all()
    for column in ("outcome", "stopped_by", "reply_code", "sent_out", "accepted_outside"):
        assert (sent[f"{column}_engine"] == sent[f"{column}_flow"]).all(), column


def test_flow_decides_spam_sessions_as_the_engines_do():
    """Bots of every strategy, spammer servers and an open relay, against a blocklist,
    greylisting, a rejecting content filter and rate limits: the sessions the flow path
    decides through the hooks, without the engines' dialogue, end every recipient alike."""
    world = {**FINGERPRINT_SCENARIO, "duration_s": 6 * 3600,
             "defences": {"greylisting": True, "blocklist": {"listed": ["dynamic"]},
                          "content_filter": {"action": "reject"}}}
    world["isps"] = [{**isp, "policies": {"rate_limit": {"recipients_per_hour": 20}}}
                     for isp in FINGERPRINT_SCENARIO["isps"]]
    runs = {f: simulate(Scenario.model_validate({**world, "fidelity": f}))
            for f in ("session", "flow")}
    engine, flow = runs["session"].summary, runs["flow"].summary
    assert flow["counts"] == engine["counts"] and flow["stopped_by"] == engine["stopped_by"]
    assert {"blocklist", "content_filter", "user_unknown"} <= set(flow["stopped_by"]["spam"])
    both = _joined(runs["session"].recipients_frame(), runs["flow"].recipients_frame())
    sent = both[both["kind"] != "bounce"]
    assert (sent["_merge"] == "both").all() and len(sent) > 1000
    for column in ("outcome", "stopped_by", "reply_code", "sent_out", "accepted_outside"):
        assert (sent[f"{column}_engine"] == sent[f"{column}_flow"]).all(), column


def test_flow_decides_every_spam_session_as_arrays(monkeypatch):
    """At flow no spam session runs through the engines' loop: those to open relays (what
    the relays took is relayed) and those that log in with stolen credentials are decided
    as arrays."""
    from netsim.world.spam import SpamSessions

    through_engines: list[str] = []
    run = SpamSessions.run

    def counted(self, sender, mail, dst, credentials):   # type: ignore[no-untyped-def]
        through_engines.append(sender.strategy)
        return run(self, sender, mail, dst, credentials)

    monkeypatch.setattr(SpamSessions, "run", counted)
    spam = {**FINGERPRINT_SCENARIO["spam"],
            "botnets": [{"name": "relaying", "share": 0.5, "strategies": ["open_relay"]},
                        {"name": "thieves", "share": 0.5, "strategies": ["stolen_587"]}]}
    result = simulate(Scenario.model_validate({**FINGERPRINT_SCENARIO, "fidelity": "flow",
                                               "duration_s": 6 * 3600, "spam": spam}))
    frame = result.recipients_frame()
    relayed = frame.query("path == 'open_relay'")
    assert len(relayed) > 100 and relayed["accepted_outside"].any()
    stolen = frame.query("path == 'stolen_587'")
    assert len(stolen) > 100 and (stolen["outcome"] == "delivered").any()
    assert (stolen["first_hop_port"] == 587).all()
    assert through_engines == []


def test_an_accounts_owner_and_the_spammers_holding_its_password_meet_its_rate_limit_in_order(
        monkeypatch):
    """Where spammers hold an account's password and its server limits each account's
    recipients, the owner's submissions and the spammers' sessions with its password are
    decided in one dialogue: the limit sees every ask in time order, bites both, and the
    owners' mail clients never fall back to the engines."""
    from netsim.world.flow import LegitFlow

    to_engines: list[int] = []
    engines = LegitFlow._to_engines

    def counted(self, work):   # type: ignore[no-untyped-def]
        to_engines.append(len(work))
        return engines(self, work)

    monkeypatch.setattr(LegitFlow, "_to_engines", counted)
    spam = {**FINGERPRINT_SCENARIO["spam"], "compromised_share": 0.3,
            "botnets": [{"name": "thieves", "share": 1.0, "strategies": ["stolen_587"]}]}
    isps = [{**isp, "policies": {**isp.get("policies", {}),
                                 "rate_limit": {"recipients_per_hour": 6}}}
            for isp in FINGERPRINT_SCENARIO["isps"]]
    world = {**FINGERPRINT_SCENARIO, "fidelity": "flow", "duration_s": 12 * 3600,
             "spam": spam, "isps": isps, "policy_presets": [],
             "users": {**FINGERPRINT_SCENARIO["users"], "sends_per_day": 96.0}}
    result = simulate(Scenario.model_validate(world))
    assert "RateLimit" not in result.summary["sim"]["out_of_order"]
    limited = result.recipients_frame().query("stopped_by == 'rate_limit'")
    assert set(limited["kind"]) == {"legit", "spam"}
    assert to_engines == []


def test_parts_of_parts_read_the_rows_they_name():
    rng = np.random.default_rng(5)
    data = {"a": np.arange(100), "b": rng.random(100)}
    whole = Columns(data)
    mask = rng.random(100) < 0.5
    for part, rows in ((whole.take(slice(10, 60)).take(np.array([0, 5, 49])), [10, 15, 59]),
                       (whole.take(mask).take(slice(2, 5)), np.flatnonzero(mask)[2:5]),
                       (whole.take(np.array([7, 3, 9])).take(np.array([True, False, True])),
                        [7, 9])):
        assert len(part) == len(rows)
        assert part.a.tolist() == list(rows)
        assert part.data["b"].tolist() == data["b"][rows].tolist()
    joined = Columns.join([whole.take(slice(0, 2)), whole.take(np.array([99]))])
    assert joined.a.tolist() == [0, 1, 99]
    assert joined.but(a=np.zeros(3)).a.tolist() == [0, 0, 0]


def test_a_key_repeated_in_its_group_is_found_after_its_first_occurrence():
    from netsim.world.columns import repeated

    group = np.array([0, 0, 0, 1, 1, 2, 0])
    key = np.array([5, 7, 5, 5, 5, 9, 7])
    assert repeated(group, key).tolist() == [False, False, True, False, True, False, True]


def test_two_keys_are_ordered_as_numpy_lexsort_orders_them_packed_or_not():
    """The order by one key, then another: one packed key where both are non-negative
    integers that fit in one, numpy's lexsort where they do not (negative, float, too
    wide); the same order either way, ties in their original order."""
    from netsim.world.columns import lexical_order

    rng = np.random.default_rng(11)
    n = 2_000
    cases = [(np.sort(rng.integers(0, 50, n)), rng.integers(0, 30, n)),   # packed, runs
             (rng.integers(0, 50, n), rng.integers(0, 30, n)),            # packed, shuffled
             (rng.integers(-5, 5, n), rng.integers(0, 30, n)),            # negative
             (rng.integers(0, 5, n), rng.random(n).round(2)),             # float
             (rng.integers(0, 2**40, n), rng.integers(0, 2**40, n)),      # too wide to pack
             (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))]
    for first, then in cases:
        assert lexical_order(first, then).tolist() == np.lexsort((then, first)).tolist()


def test_the_isps_batches_joined_put_every_message_in_creation_order_with_its_recipients():
    """A batch of every ISP's new messages, joined once: the messages in creation order,
    ties by ISP and then as drawn; each message's recipients, in their order, from its
    ``first`` row (what a minute's slice of the batch reads)."""
    from netsim.world.flow import _in_creation_order

    rng = np.random.default_rng(3)
    parts, expected = [], []
    for isp in range(4):
        n = int(rng.integers(0, 30))
        t = np.sort(rng.integers(0, 8, n).astype(float))   # ties within and across ISPs
        count = rng.integers(1, 4, n)
        rcpt = np.arange(int(count.sum())) + 1000 * isp
        parts.append(({"t": t, "isp": np.full(n, isp), "count": count}, {"rcpt": rcpt}))
        starts = np.cumsum(count) - count
        expected += [(t[i], isp, i, rcpt[starts[i]:starts[i] + count[i]].tolist())
                     for i in range(n)]
    expected.sort(key=lambda e: e[:3])
    messages, recipients = _in_creation_order(parts)
    first = messages["first"]
    assert len(first) == len(expected) + 1 and first[-1] == len(recipients["rcpt"])
    for j, (t, isp, _, rcpts) in enumerate(expected):
        assert (messages["t"][j], messages["isp"][j]) == (t, isp)
        assert recipients["rcpt"][first[j]:first[j + 1]].tolist() == rcpts


def test_addresses_of_many_asks_are_read_at_once_with_or_without_a_maker_of_many():
    """What greylisting reads of many asks: every entry's address, in the entries' order,
    the same whether the texts are made one at a time or many at once."""
    from netsim.mail.facts import Asks, Texts

    def one(i: int) -> str:
        return f"user{i}@isp-a.example"

    def many(indices: np.ndarray) -> list[str]:
        return [one(i) for i in indices.tolist()]

    for texts in (Texts(one), Texts(one, make_many=many)):
        asks = Asks(6, {"forward_path": texts})
        assert asks.forward_path.texts() == [one(i) for i in range(6)]
        part = asks.take(np.array([4, 1, 5])).take(np.array([2, 0]))
        assert part.forward_path.texts() == [one(5), one(4)]
        assert part.forward_path.text(1) == one(4)


def test_retrievals_computed_check_by_check_equal_those_computed_at_the_end(monkeypatch):
    """A check's retrievals are computed once its deliveries are all in (half an hour
    after it began), and its deliveries let go: the same instants as one computation at
    the end of the run, and no delivery came after its check was computed."""
    import netsim.world.flow as flow
    from netsim.experiments.bench import bench_scenario

    scenario = bench_scenario("small", 6 * 3600)
    built = []
    by_check = simulate(scenario, setup=built.append)
    assert built[0].retrievals.late == 0
    assert "retrieval" not in by_check.summary["sim"]["out_of_order"]
    monkeypatch.setattr(flow, "CHECKS_EVERY", 10**9)   # never before the end
    at_end = simulate(scenario)
    a, b = (r.recipients_frame()["retrieved_s"].to_numpy() for r in (by_check, at_end))
    assert (~np.isnan(a)).sum() > 10_000
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)
    assert by_check.summary["mailboxes"] == at_end.summary["mailboxes"]


def test_sessions_decided_in_parts_get_what_one_dialogue_of_them_all_decides(monkeypatch):
    """``decide_parts`` puts several senders' sessions in one dialogue and hands each part
    its own replies, instants and junk flags: the same as deciding them all at once."""
    from netsim.world import dialogue

    made: list[tuple] = []
    init = dialogue.Dialogue.__init__

    def keep(self, servers, ledger, s, r, helo):   # type: ignore[no-untyped-def]
        init(self, servers, ledger, s, r, helo)
        made.append((servers, ledger, s, r, helo))

    monkeypatch.setattr(dialogue.Dialogue, "__init__", keep)
    # no policy that keeps state: the dialogue is decided twice below
    simulate(Scenario.model_validate({**FINGERPRINT_SCENARIO, "fidelity": "flow",
                                      "duration_s": 3 * 3600, "defences": {}}))
    servers, ledger, s, r, helo = max(made, key=lambda m: len(m[2]))
    assert not any(getattr(p, "stateful", False) for x in servers.servers for p in x.policies)
    assert len(s) >= 4 and len({int(c) for c in r.session}) == len(s)
    whole = dialogue.Dialogue(servers, ledger, s, r, helo).decide()
    cut = len(s) // 2
    mine = r.session < cut
    got: list[dialogue.Decided] = []
    first = dialogue.Part(s.take(np.arange(cut)), r.take(mine), helo, got.append)
    second = dialogue.Part(s.take(np.arange(cut, len(s))),
                           r.take(~mine).but(session=r.session[~mine] - cut),
                           lambda k: helo(k + cut), got.append)
    dialogue.decide_parts(servers, ledger, [first, second])
    for name in ("code", "cause", "junk"):
        assert np.array_equal(np.concatenate([getattr(d, name) for d in got]),
                              getattr(whole, name)), name
    for name in ("dot", "end"):
        assert np.array_equal(np.concatenate([getattr(d, name) for d in got]),
                              getattr(whole, name), equal_nan=True), name
