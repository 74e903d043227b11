"""Spam, OP25B and the submission port: the behaviour issue-level studies rest on.

Small seeded worlds; each test states its world. Every run checks the conservation of
recipients (``simulate`` raises otherwise), so each test also checks it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from netsim.cli import main
from netsim.scenario import Scenario, load_scenario
from netsim.world import simulate

ISPS = [("isp-a", "10.1.0.0/22", "192.0.2.0/28"), ("isp-b", "10.2.0.0/22", "198.51.100.0/28"),
        ("isp-c", "10.3.0.0/22", "203.0.113.0/28")]


def world(*, bots: float = 0.05, botnets: list[dict[str, Any]] | None = None,
          policies: dict[str, Any] | None = None, **changes: Any) -> Scenario:
    """Three ISPs of 300 users, a hotel behind isp-b, six hours."""
    data: dict[str, Any] = {
        "name": "spam-test", "seed": 11, "duration_s": 6 * 3600,
        "isps": [{"name": n, "domain": f"{n}.example", "subscribers": 300, "dynamic_pool": pool,
                  "server_network": static, "bot_fraction": bots,
                  "policies": dict(policies or {})} for n, pool, static in ISPS],
        "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01},
                  {"a": "isp-b", "b": "isp-c", "latency_s": 0.02}],
        "visited_networks": [{"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-b"}],
        "users": {"sends_per_day": 6.0},
        "spam": {"botnets": botnets if botnets is not None else
                 [{"name": "direct", "share": 1.0, "strategies": ["direct"],
                   "rate_median_per_day": 2000, "rate_sigma": 0.5}]},
    }
    for key, value in changes.items():
        data[key] = value
    return Scenario.model_validate(data)


def frame(scenario: Scenario) -> pd.DataFrame:
    f = simulate(scenario).recipients_frame()
    f["rcpt_isp"] = f["rcpt_domain"].astype(str).str.removesuffix(".example")
    f["cross"] = f["rcpt_isp"] != f["origin_isp"].astype(str)
    return f


def test_op25b_everywhere_stops_direct_bots_and_spares_home_users():
    before = frame(world())
    after = frame(world(policy="op25b+587"))
    spam = after[(after["kind"] == "spam") & after["cross"]]
    assert len(spam) > 1000
    blocked = (spam["outcome"] == "blocked").mean()
    assert blocked >= 0.99
    assert set(spam.loc[spam["outcome"] == "blocked", "stopped_by"]) == {"op25b"}
    # spam to the bot's own ISP goes to the ISP's own server, which OP25B spares
    own = after[(after["kind"] == "spam") & ~after["cross"]]
    assert (own["outcome"] == "blocked").sum() == 0
    # home users' legitimate mail is unaffected: the same delivery ratio as without OP25B
    def home_ratio(f: pd.DataFrame) -> float:
        legit = f[(f["kind"] == "legit") & (f["sender"] == "user")]
        return float((legit["outcome"] == "delivered").mean())
    assert home_ratio(after) == pytest.approx(home_ratio(before), abs=0.005)
    assert (before[before["kind"] == "spam"]["outcome"] == "blocked").sum() == 0


def test_op25b_on_some_isps_stops_only_their_spam():
    f = frame(world(policy_presets=[{"preset": "op25b+587", "isps": ["isp-a", "isp-b"]}]))
    spam = f[(f["kind"] == "spam") & f["cross"]]
    blocked = spam.groupby(spam["origin_isp"].astype(str))["outcome"].apply(
        lambda s: (s == "blocked").mean())
    assert blocked["isp-a"] >= 0.99 and blocked["isp-b"] >= 0.99
    assert blocked["isp-c"] == 0
    by_origin = spam.groupby(spam["origin_isp"].astype(str))
    sent, taken = by_origin["sent_out"].mean(), by_origin["accepted_outside"].mean()
    assert sent["isp-a"] == 0 and taken["isp-a"] == 0
    assert taken["isp-c"] > 0.5
    # whatever was taken outside was sent out first; some sent out was refused
    assert (spam["sent_out"] | ~spam["accepted_outside"]).all()
    assert sent["isp-c"] > taken["isp-c"]


def test_roaming_users_need_587_behind_an_op25b_upstream():
    roam = {"sends_per_day": 6.0, "roaming_share": 0.3}
    f = frame(world(bots=0.0, botnets=[], users=roam, policy="op25b+587"))
    legit = f[(f["kind"] == "legit") & (f["sender"] == "roaming")]
    # the hotel's upstream isp-b blocks port 25 to every server but its own
    abroad = legit[legit["origin_isp"] != "isp-b"]
    by_port = abroad.groupby("first_hop_port")["outcome"].apply(
        lambda s: (s == "delivered").mean())
    assert by_port[25] < 0.02 and by_port[587] > 0.97
    assert set(abroad.loc[(abroad["first_hop_port"] == 25), "stopped_by"]) == {"op25b"}
    # without OP25B the same travellers on 25 reach their server, but it will not relay
    # for a stranger's address: only mail to their own domain gets through
    f0 = frame(world(bots=0.0, botnets=[], users=roam, policy="none"))
    on25 = f0[(f0["kind"] == "legit") & (f0["sender"] == "roaming")
              & (f0["first_hop_port"] == 25)]
    assert "op25b" not in set(on25["stopped_by"])
    assert (on25.loc[on25["cross"], "stopped_by"] == "relay_denied").mean() > 0.9


ADAPTIVE = [{"name": "adaptive", "share": 1.0, "strategies": ["direct", "stolen_587"],
             "adaptive": True, "failures_to_adapt": 3, "rate_median_per_day": 2000,
             "rate_sigma": 0.5}]


def _stolen(f: pd.DataFrame) -> pd.DataFrame:
    return f[(f["kind"] == "spam") & (f["path"] == "stolen_587")]


def test_adaptive_bots_bring_spam_back_through_587_and_rate_limits_cut_it():
    common = {"bots": 0.05, "botnets": ADAPTIVE, "policy": "op25b+587",
              "spam": {"botnets": ADAPTIVE, "compromised_share": 0.01}}
    common.pop("botnets")
    f = frame(world(**common))
    stolen = _stolen(f)
    assert len(stolen) > 1000
    delivered = (stolen["outcome"] == "delivered").sum()
    assert delivered > 0.5 * len(stolen)
    limited = frame(world(**common, policies={"rate_limit": {"recipients_per_hour": 10}}))
    stolen_limited = _stolen(limited)
    cut = (stolen_limited["outcome"] == "delivered").sum()
    assert cut < 0.2 * delivered
    assert (stolen_limited["stopped_by"] == "rate_limit").sum() > 0


def test_credentials_are_captured_on_shared_networks_unless_pop3_hides_them():
    def captured(security: str) -> dict[str, int]:
        s = world(bots=0.0, botnets=[], users={"sends_per_day": 2.0, "roaming_share": 0.2},
                  visited_networks=[{"name": "hotel", "prefix": "172.16.0.0/24",
                                     "upstream": "isp-b", "eavesdrop_probability": 0.05}])
        data = s.model_dump(mode="json")
        for isp in data["isps"]:
            isp["mail_server"]["pop3_security"] = security
            isp["mail_server"]["submission_security"] = "tls"
        return simulate(Scenario.model_validate(data)).summary["credentials"]

    plain = captured("plaintext")
    assert plain["captured_pop3"] > 50
    for secure in ("apop", "stls", "pop3s"):
        assert captured(secure)["captured_pop3"] == 0


def test_greylisting_stops_non_retrying_bots_and_delays_legit_by_the_retry_interval():
    bots = [{"name": "quick", "share": 1.0, "strategies": ["direct"], "retry_4xx": 0.0,
             "rate_median_per_day": 500, "rate_sigma": 0.5}]
    f = frame(world(botnets=bots, spam={"botnets": bots, "invalid_recipient_share": 0.0},
                    defences={"greylisting": {"delay_s": 300}}))
    spam = f[(f["kind"] == "spam") & f["cross"]]
    # only a triplet that a bot happens to repeat after the delay passes, as postgrey lets it
    assert (spam["outcome"] == "delivered").mean() < 0.001
    assert (spam["stopped_by"] == "greylisting").mean() > 0.95
    legit = f[(f["kind"] == "legit") & f["cross"] & (f["outcome"] == "delivered")]
    delay = legit["delivered_s"] - legit["created_s"]
    # a new (server, sender, recipient) triplet waits for the sending server's first retry,
    # 300 s; a triplet that has passed before goes straight through
    waited = delay[delay >= 300]
    assert len(waited) > 0.9 * len(delay)
    assert waited.max() < 302
    assert delay[delay < 300].max() < 2


def test_spammer_servers_retry_greylisting_as_their_scenario_says():
    """Spammer servers retry a 4xx once, after retry_delay_s, with probability retry_4xx:
    past greylisting when the delay is the greylist's, not at all when they do not retry."""
    def spammer_spam(**server: Any) -> pd.DataFrame:
        f = frame(world(bots=0.0, botnets=[],
                        hosting_networks=[{"name": "hosting", "prefix": "100.64.0.0/24",
                                           "upstream": "isp-c"}],
                        spam={"spammer_servers": [{"network": "hosting", "rate_per_day": 2000,
                                                   **server}],
                              "invalid_recipient_share": 0.0},
                        defences={"greylisting": {"delay_s": 300}}))
        return f[f["kind"] == "spam"]
    retrying = spammer_spam()   # the defaults: always, after 300 s
    assert len(retrying) > 100
    assert (retrying["outcome"] == "delivered").mean() > 0.99
    late = spammer_spam(retry_delay_s=100)   # back before the greylist lets it through
    assert (late["stopped_by"] == "greylisting").mean() > 0.99
    never = spammer_spam(retry_4xx=0.0)
    assert (never["stopped_by"] == "greylisting").mean() > 0.99


def test_bad_spam_and_policy_input_exits_2(tmp_path, capsys):
    cases = {
        "spam.botnets[0] (cutwail).strategies[0]": lambda d: d["spam"]["botnets"][0].update(
            strategies=["teleport"]),
        "policy": lambda d: d.update(policy="block-everything"),
        "policy_presets[0].isps: ISP 'isp-z'": lambda d: d.update(
            policy_presets=[{"preset": "op25b", "isps": ["isp-z"]}]),
        "policy_presets[0].preset": lambda d: d.update(
            policy_presets=[{"preset": "op99", "isps": ["isp-a"]}]),
        "isps[0] (isp-a).bot_fraction": lambda d: d["isps"][0].update(bot_fraction=1.5),
        "users.roaming_share": lambda d: d["users"].update(roaming_share=-0.1),
        "upstream ISP 'nowhere'": lambda d: d["visited_networks"][0].update(upstream="nowhere"),
        "isps[1] (isp-b).policies.op25b.action": lambda d: d["isps"][1]["policies"].update(
            op25b={"action": "explode"}),
    }
    for expected, change in cases.items():
        data = load_scenario().model_dump(mode="json")
        change(data)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        assert main(["validate", str(path)]) == 2, expected
        err = capsys.readouterr().err
        assert expected in err, (expected, err)
        assert "Traceback" not in err


def test_op25b_comes_into_force_at_its_start_time():
    start = 3 * 3600
    result = simulate(world(policies={"op25b": {"start_s": start, "action": "reject"}}))
    series = result.timeseries_frame()
    blocked = series[(series["kind"] == "spam") & (series["outcome"] == "blocked")]
    assert blocked["count"].sum() > 0
    assert blocked["interval"].min() == start // 3600
    f = result.recipients_frame()
    spam = f[f["kind"] == "spam"]
    # before the start, direct spam reached other ISPs' servers
    assert spam.loc[spam["created_s"] < start, "sent_out"].sum() > 0
    assert spam.loc[spam["created_s"] > start + 60, "sent_out"].sum() == 0


def test_timeseries_counts_add_up_to_the_recipient_table():
    result = simulate(world())
    series = result.timeseries_frame()
    f = result.recipients_frame()
    created = series[series["outcome"] == "created"].groupby("kind")["count"].sum()
    assert created.to_dict() == {k: n for k, n in f["kind"].astype(str).value_counts().items()}
    final = series[series["outcome"] != "created"]["count"].sum()
    assert final == (f["outcome"] != "pending").sum()


def test_auth_on_25_stops_isp_relay_bots():
    relay = [{"name": "relayers", "share": 1.0, "strategies": ["isp_relay"],
              "rate_median_per_day": 1000, "rate_sigma": 0.5}]
    f = frame(world(botnets=relay, spam={"botnets": relay}))
    spam = f[(f["kind"] == "spam") & f["cross"]]
    assert (spam["outcome"] == "delivered").mean() > 0.7
    f = frame(world(botnets=relay, spam={"botnets": relay}, policies={"auth_on_25": True}))
    spam = f[(f["kind"] == "spam") & f["cross"]]
    assert (spam["outcome"] == "delivered").sum() == 0
    assert (spam["stopped_by"] == "relay_denied").mean() == 1.0


def test_inbound_25_block_shields_an_open_relay_at_home():
    users = [{"name": "abusers", "share": 1.0, "strategies": ["open_relay"],
              "rate_median_per_day": 1000, "rate_sigma": 0.5}]
    spam = {"botnets": users, "open_relays": [{"network": "isp-a.dynamic", "count": 1}]}
    open_home = frame(world(botnets=users, spam=spam))
    reached = open_home[(open_home["kind"] == "spam") & (open_home["origin_isp"] != "isp-a")]
    assert (reached["outcome"] != "blocked").mean() > 0.9
    shielded = frame(world(botnets=users, spam=spam, policy_presets=[], isps=[
        {**i, "policies": {"inbound_25_block": True}} if i["name"] == "isp-a" else i
        for i in world().model_dump(mode="json")["isps"]]))
    reached = shielded[(shielded["kind"] == "spam") & (shielded["origin_isp"] != "isp-a")]
    # still pending only: SYNs sent in the last connect timeout (30 s) before the end
    in_flight = reached["outcome"] == "pending"
    assert (reached.loc[in_flight, "created_s"] > 6 * 3600 - 31).all()
    assert set(reached.loc[~in_flight, "outcome"]) == {"blocked"}
    assert set(reached.loc[~in_flight, "stopped_by"]) == {"inbound_25_block"}


def test_blocklist_and_content_filter_from_the_scenario():
    f = frame(world(defences={"blocklist": True}))
    spam = f[(f["kind"] == "spam") & f["cross"]]
    in_flight = spam["outcome"] == "pending"   # sessions the run's end cut short
    assert (spam.loc[in_flight, "created_s"] > 6 * 3600 - 60).all()
    assert (spam.loc[~in_flight, "stopped_by"] == "blocklist").mean() == 1.0
    legit = f[(f["kind"] == "legit") & (f["sender"] == "user")]
    assert (legit["stopped_by"] == "blocklist").sum() == 0   # servers are not listed
    f = frame(world(defences={"content_filter": {"detection_rate": 0.9,
                                                 "false_positive_rate": 0.0}}))
    spam = f[(f["kind"] == "spam") & f["cross"] & (f["outcome"].isin(["delivered", "junked"]))]
    assert (spam["outcome"] == "junked").mean() == pytest.approx(0.9, abs=0.05)
    legit = f[f["kind"] == "legit"]
    assert (legit["outcome"] == "junked").sum() == 0


def test_the_pool_counts_each_account_spammers_used_once_and_flags_it():
    from netsim.world.credentials import CredentialPool

    pool = CredentialPool([5, 3])
    assert pool.draw(np.random.default_rng(0)) is None
    pool.add((0, 4), "compromised")
    pool.add((1, 2), "pop3")
    # held from the moment spammers have the password, used once they log in with it
    assert pool.held(np.array([0, 0, 1, 1]), np.array([4, 3, 2, 0])).tolist() == [
        True, False, True, False]
    assert pool.summary()["accounts_used"] == 0
    rng = np.random.default_rng(1)
    drawn = {pool.draw(rng) for _ in range(50)}
    assert drawn == {(0, 4), (1, 2)}
    summary = pool.summary()
    assert summary["used_sessions"] == 50 and summary["accounts_used"] == 2
    # used, they are still held
    assert pool.held(np.array([0, 0, 1, 1]), np.array([4, 3, 2, 0])).tolist() == [
        True, False, True, False]


def test_stratified_bot_rates_keep_a_botnets_total_at_its_expected_value():
    from netsim.scenario.schema import BotnetConfig
    from netsim.world.spam import bot_rates

    cfg = BotnetConfig(name="b", share=1.0, strategies=["direct"], rate_median_per_day=300,
                       rate_sigma=2.1)
    mean = 300 * np.exp(2.1**2 / 2)   # a log-normal's mean
    totals = [bot_rates(np.random.default_rng(seed), 40, cfg).sum() for seed in range(5)]
    assert np.allclose(totals, 40 * mean)
    independent = [bot_rates(np.random.default_rng(seed), 40, cfg, "independent").sum()
                   for seed in range(5)]
    assert np.std(independent) / np.mean(independent) > 0.2   # the heavy tail it removes
    rates = bot_rates(np.random.default_rng(0), 40, cfg)
    # one bot a stratum: the median bot sends about the median, the order is random
    assert 200 < np.median(rates) < 450 and not np.all(np.diff(rates) > 0)


def test_reading_ahead_returns_the_blocks_in_order():
    from netsim.world.streams import Ahead

    blocks = iter([[1, 2, 3], [4], [5, 6]])
    drawn: list[int] = []
    ahead = Ahead(lambda: drawn.append(0) or next(blocks))
    assert [ahead.next() for _ in range(4)] == [1, 2, 3, 4]
    assert len(drawn) == 2   # a block is drawn only when the last one is read through
    assert ahead.next() == 5 and len(drawn) == 3


def test_spam_messages_drawn_ahead_name_one_domain_each_address_once():
    """A block of drawn messages: 1 + Poisson(mean − 1) harvested addresses of one domain
    (the ISPs in proportion to their subscribers), none twice, mistyped at the scenario's
    share, a forged sender of the world, sizes of at least 300 bytes, 63-bit keys."""
    from netsim.mail.accounts import TYPO_NONE, TYPO_USER
    from netsim.world import World
    from netsim.world.spam import SpamSessions

    scenario = world()
    spam = SpamSessions(World(scenario))
    drawn = spam.messages(np.random.default_rng(3), 25.0, 4000).each()
    assert len(drawn) == 4000
    for d in drawn:
        assert 0 <= d.target < 3 and 0 <= d.forged_server < 3 and 0 <= d.forged_user < 300
        assert len(set(zip(d.users, d.typos, strict=True))) == len(d.users) >= 1
        assert all(0 <= u < 300 for u in d.users) and set(d.typos) <= {TYPO_NONE, TYPO_USER}
        assert d.size >= 300 and 0 <= d.key < 2**63
    counts = [len(d.users) for d in drawn]
    # harvested addresses repeat rarely among 300 users: the mean stays near 25
    assert 23.5 < np.mean(counts) < 25.5
    typos = np.mean([t == TYPO_USER for d in drawn for t in d.typos])
    share = scenario.spam.invalid_recipient_share
    assert abs(typos - share) < 4 * np.sqrt(share * (1 - share) / sum(counts))
    by_domain = pd.Series([d.target for d in drawn]).value_counts(normalize=True)
    assert (by_domain - 1 / 3).abs().max() < 0.03   # three ISPs of 300 subscribers


def test_a_bot_may_change_only_after_enough_failures_in_a_row():
    """What deciding spam as arrays asks before a choice reads a bot's state
    (``netsim.world.spam_flow``): could the sessions it has not learnt from yet (those
    decided, in the order they ended, and those whose outcome and end are unknown) move
    its strategy, or stop it?"""
    from netsim.world import World

    scenario = world(botnets=[{"name": "a", "share": 1.0, "adaptive": True,
                               "failures_to_adapt": 2, "strategies": ["direct", "isp_relay"],
                               "rate_median_per_day": 100}])
    botnet = World(scenario).botnets[0]
    assert not botnet.may_change(0, [], 1) and botnet.may_change(0, [], 2)
    assert botnet.may_change(0, [False, False])
    assert not botnet.may_change(0, [False, True, False])   # a success starts the run again
    assert botnet.may_change(0, [False, True], 1)   # an unknown one may follow the failure
    assert not botnet.may_change(0, [True], 1)
    botnet.learn(0, False)   # a failure counted: the run goes on from it
    assert botnet.may_change(0, [False]) and botnet.may_change(0, [], 1)
    assert not botnet.may_change(0, [True, False])
    botnet.learn(0, False)   # now on its last strategy, no failure counted
    assert int(botnet.strategy[0]) == 1 and not botnet.may_change(0, [False])
    botnet.learn(0, False)
    botnet.learn(0, False)
    assert not botnet.active[0]


def test_a_botnet_that_does_not_adapt_has_its_sessions_decided_at_minute_ends(monkeypatch):
    """At fidelity flow a botnet that never adapts reads nothing its sessions could teach:
    its sessions are decided at the end of their minute, never earlier for a choice (an
    adaptive one's may be, when a bot could stop or change strategy)."""
    from netsim.world.spam_flow import SpamFlow

    decide = SpamFlow._decide

    def decided_at(adaptive: bool) -> list[float]:
        instants: list[float] = []

        def recorded(self: SpamFlow, now: float) -> None:
            instants.append(now)
            decide(self, now)

        monkeypatch.setattr(SpamFlow, "_decide", recorded)
        # direct sessions to other ISPs are blocked: an adaptive bot soon moves on
        simulate(world(fidelity="flow", policies={"op25b": True}, botnets=[
            {"name": "a", "share": 1.0, "adaptive": adaptive, "failures_to_adapt": 2,
             "strategies": ["direct", "isp_relay"], "rate_median_per_day": 2000}]))
        return instants

    steady = decided_at(False)
    assert len(steady) > 300 and all(t % 60 == 0 or t == np.inf for t in steady)
    assert any(t % 60 != 0 and t != np.inf for t in decided_at(True))


def test_sessions_drawn_ahead_are_decided_as_if_handed_over_one_at_a_time(monkeypatch):
    """At fidelity flow a botnet that does not adapt draws its sessions a block at a time
    and hands them over ahead of their instants: every recipient ends as when each session
    is handed over at its instant (greylisting's retries, relays and the MX route alike)."""
    from netsim.world.spam import Botnet

    bots = [{"name": "d", "share": 0.5, "strategies": ["direct"], "retry_4xx": 0.5,
             "rate_median_per_day": 400, "rate_sigma": 0.5},
            {"name": "r", "share": 0.3, "strategies": ["open_relay"],
             "rate_median_per_day": 400, "rate_sigma": 0.5},
            {"name": "i", "share": 0.2, "strategies": ["isp_relay"], "retry_4xx": 1.0,
             "retry_delay_s": 600, "rate_median_per_day": 400, "rate_sigma": 0.5}]
    scenario = world(fidelity="flow",
                     spam={"botnets": bots,
                           "open_relays": [{"network": "isp-a.dynamic", "count": 2}]},
                     defences={"greylisting": {"delay_s": 300}})
    ahead = simulate(scenario).recipients_frame()
    monkeypatch.setattr(Botnet, "draws_ahead", property(lambda self: False))
    one_at_a_time = simulate(scenario).recipients_frame()
    spam = ahead[ahead["kind"] == "spam"]
    assert set(spam["path"]) == {"direct", "open_relay", "isp_relay"}
    assert {"delivered", "rejected"} <= set(spam["outcome"])
    assert (spam["stopped_by"] == "greylisting").any()
    pd.testing.assert_frame_equal(ahead, one_at_a_time)


def test_a_stopped_bot_is_never_chosen_again():
    """Once a bot has failed with every strategy its share of the work goes to the others:
    a draw that falls on it is made again."""
    from netsim.world import World

    scenario = world(botnets=[{"name": "a", "share": 1.0, "adaptive": True,
                               "failures_to_adapt": 1, "strategies": ["direct"],
                               "rate_median_per_day": 100}])
    botnet = World(scenario).botnets[0]
    u = np.linspace(0, 1, 2001, endpoint=False).tolist()
    chosen = {botnet._choose(x) for x in u}
    heaviest = int(np.argmax(botnet.rate))
    assert heaviest in chosen
    botnet.learn(heaviest, False)   # its one strategy failed: it stops
    assert not botnet.active[heaviest]
    after = [botnet._choose(x) for x in u]
    assert heaviest not in after and len(set(after)) > 1


def test_a_botnets_choice_after_stops_picks_the_active_bots_in_proportion_to_their_rates():
    """A choice draws among the bots not known to have stopped and draws again when it
    falls on a stopped one: each active bot is picked in proportion to its rate, as a draw
    among the active ones would; the stopped ones drop out of the draw once they hold half
    its rate, and a botnet whose bots have all stopped chooses none."""
    from netsim.world import World

    scenario = world(botnets=[{"name": "a", "share": 1.0, "adaptive": True,
                               "failures_to_adapt": 1, "strategies": ["direct"],
                               "rate_median_per_day": 100, "rate_sigma": 1.0}])
    botnet = World(scenario).botnets[0]
    n = len(botnet.rate)
    assert n > 20
    heaviest = np.argsort(botnet.rate)[::-1]
    for bot in heaviest[:n // 3].tolist():   # the heaviest third stops: most of the rate
        botnet.learn(bot, False)
    active = botnet.active.copy()
    assert botnet.rate[~active].sum() > botnet.rate[active].sum()
    draws = 40_000
    picks = np.bincount([botnet._choose(x) for x in np.random.default_rng(1).random(draws)],
                        minlength=n)
    assert picks[~active].sum() == 0
    expected = draws * np.where(active, botnet.rate, 0.0) / botnet.rate[active].sum()
    seen = expected > 0
    chi2 = float(((picks[seen] - expected[seen]) ** 2 / expected[seen]).sum())
    assert chi2 < seen.sum() + 5 * np.sqrt(2 * seen.sum())   # chi-square, mean its dof
    # the stopped bots drawn were taken out of the draw once they held half its rate: those
    # left in it hold less
    members = botnet._members
    assert set(np.flatnonzero(active)) <= set(members.tolist()) and len(members) < n
    left = botnet.rate[members]
    assert left[~active[members]].sum() < left.sum() / 2
    for bot in np.flatnonzero(active).tolist():
        botnet.learn(bot, False)
    assert botnet._choose(0.5) is None and len(botnet._members) == 0
