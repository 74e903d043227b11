"""Mail servers: relay rules, submission with AUTH, the retry schedule, expiry and bounces,
session slots and maildrop locks."""

from __future__ import annotations

import itertools

import pytest

from netsim.mail import Kind, Mail, SenderType
from netsim.mail.mailbox import Maildrops
from netsim.net import Action, Rule, Verdict
from netsim.protocols import Credentials, SMTPClient, StoredMessage, smtp_exchange
from netsim.world import World
from tests.conftest import tiny_scenario

HOTEL = {"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-a"}


def _world(**changes) -> World:
    changes.setdefault("users", {"sends_per_day": 0})
    return World(tiny_scenario(visited_networks=[HOTEL], **changes))


def _rcpt_codes(world: World, source: int, port: int, rcpts: list[str],
                credentials: Credentials | None = None) -> dict[str, int]:
    server = world.servers[0]
    engine, _ = server.smtp_engine(port, source)
    mail = Mail(world.next_id(), Kind.LEGIT, SenderType.USER, "user1@isp-a.example", 500, 0.0)
    world.ledger.add(mail, rcpts, origin_isp="isp-a", origin_network="test", path="test",
                     first_hop_port=port)
    client = SMTPClient("client.example", mail.mail_from, rcpts, size=500, payload=mail,
                        credentials=credentials)
    smtp_exchange(client, engine)
    return {a: r.code for a, r in client.rcpt_replies.items()}


LOCAL, REMOTE = "user2@isp-a.example", "user3@isp-b.example"


@pytest.mark.parametrize(("name", "index"), [
    ("user0", 0), ("user7", 7), ("user7@isp-a.example", 7), ("user7@ISP-A.example", 7),
    ("user7@isp-b.example", None), ("user07", None), ("user", None), ("x7@isp-a.example", None),
    ("user\u00b2", None), ("user\u0667", None)])
def test_an_account_is_named_user_and_its_ascii_number(name: str, index: int | None) -> None:
    # a superscript or an Arabic-Indic digit is no account (and no ValueError from int())
    assert _world().servers[0].user_index(name) == index


def test_relay_for_own_networks_on_25_but_not_for_strangers():
    world = _world()
    home = world.dynamic_pool(0).host(1)
    hotel = world.plan.by_name["hotel"].host(1)
    assert _rcpt_codes(world, home, 25, [LOCAL, REMOTE]) == {LOCAL: 250, REMOTE: 250}
    # a traveller on a hotel network is a stranger to the home server on port 25
    assert _rcpt_codes(world, hotel, 25, [LOCAL, REMOTE]) == {LOCAL: 250, REMOTE: 554}
    assert _rcpt_codes(world, home, 25, ["nobody@isp-a.example"]) == {
        "nobody@isp-a.example": 550}


def test_submission_port_requires_auth_and_auth_allows_relay_from_anywhere():
    world = _world()
    hotel = world.plan.by_name["hotel"].host(1)
    assert _rcpt_codes(world, hotel, 587, [REMOTE]) == {REMOTE: 530}
    good = Credentials("user1", world.servers[0].password(1))
    assert _rcpt_codes(world, hotel, 587, [REMOTE], good) == {REMOTE: 250}
    bad = Credentials("user1", "guess")
    assert _rcpt_codes(world, hotel, 587, [REMOTE], bad) == {REMOTE: 535}


def test_auth_required_on_25_when_the_isp_does_not_relay_for_its_networks():
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    isps[0]["policies"] = {"auth_on_25": True}
    world = _world(isps=isps)
    home = world.dynamic_pool(0).host(1)
    assert _rcpt_codes(world, home, 25, [LOCAL, REMOTE]) == {LOCAL: 250, REMOTE: 554}


def _pop_world(start_s: float = 0.0, window_s: float = 600.0) -> World:
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    isps[0]["policies"] = {"pop_before_smtp": {"start_s": start_s, "window_s": window_s}}
    return _world(isps=isps)


def _rcpt_code_at(world: World, source: int, at: float) -> int:
    world.servers[0].instant = at   # the server acts at ``at``
    try:
        return _rcpt_codes(world, source, 25, [REMOTE])[REMOTE]
    finally:
        world.servers[0].instant = None


def test_pop_before_smtp_relays_for_the_login_address_within_the_window():
    world = _pop_world(window_s=600)
    hotel = world.plan.by_name["hotel"]
    traveller, neighbour = hotel.host(1), hotel.host(2)
    world.servers[0].record_pop_login(traveller, 1000.0)
    assert _rcpt_code_at(world, traveller, 999.0) == 554      # not before the login
    assert _rcpt_code_at(world, traveller, 1000.0) == 250
    assert _rcpt_code_at(world, traveller, 1600.0) == 250     # the window's last instant
    assert _rcpt_code_at(world, traveller, 1600.5) == 554
    assert _rcpt_code_at(world, neighbour, 1100.0) == 554     # another address
    world.servers[0].record_pop_login(traveller, 1500.0)      # a new login opens it again
    assert _rcpt_code_at(world, traveller, 2000.0) == 250


def test_pop_before_smtp_relays_only_once_in_force():
    world = _pop_world(start_s=2000.0)
    traveller = world.plan.by_name["hotel"].host(1)
    world.servers[0].record_pop_login(traveller, 1900.0)
    assert _rcpt_code_at(world, traveller, 1950.0) == 554
    assert _rcpt_code_at(world, traveller, 2000.0) == 250


def test_a_traveller_delivers_through_the_home_server_with_pop_before_smtp_or_auth_on_25():
    """Before OP25B, travellers whose mail clients log in by POP3 first (at an ISP with
    POP-before-SMTP) or authenticate on 25 deliver like home users; those that do neither
    are refused relay."""
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    isps[0]["policies"] = {"pop_before_smtp": True, "submission": None}
    world = _world(isps=isps, duration_s=600, users={"sends_per_day": 0,
                                                      "mua_25_pop_share": 0.5})
    users = world.populations[0]
    hotel = world.plan.by_name["hotel"]
    mails = {}
    for user, mode in ((1, 0), (2, 1), (3, 2)):
        users.workload.mua_25[user] = mode
        mails[mode] = users.send(user, [REMOTE], 1000, source=hotel)
    world.env.run(until=600)
    frame = world.ledger.to_arrow().to_pandas().set_index("message_id")
    outcome = {mode: (frame.loc[m.id, "path"], frame.loc[m.id, "outcome"],
                      frame.loc[m.id, "stopped_by"]) for mode, m in mails.items()}
    assert outcome == {0: ("mua:25", "rejected", "relay_denied"),
                       1: ("mua:25+auth", "delivered", ""),
                       2: ("mua:25+pop", "delivered", "")}


def test_mail_clients_move_to_587_when_their_isp_opens_it():
    from netsim.world.workload import PATHS, submission_path

    def path(on_587: bool, at: float, offered_from: float) -> str:
        return PATHS[int(submission_path(0, on_587, 0, at, offered_from, float("inf"), 6))]

    assert path(True, 100.0, 200.0) == "mua:25"      # set for 587, not offered yet
    assert path(True, 200.0, 200.0) == "mua:587"
    assert path(False, 300.0, 200.0) == "mua:25"
    assert path(True, 300.0, float("inf")) == "mua:25"   # an ISP without 587


def test_no_listener_on_587_when_the_isp_offers_no_submission_port():
    isps = tiny_scenario().model_dump(mode="json")["isps"]
    isps[1]["policies"] = {"submission": None}
    world = _world(isps=isps)
    conn = world.network.connect(world.dynamic_pool(1).host(0), world.servers[1].address, 587, 0)
    assert conn.verdict is Verdict.REFUSED


def _unreachable_b(world: World) -> list[float]:
    """Drop port 25 into isp-b's server network and log each connection attempt's time."""
    world.network.ingress[1].append(Rule("down", Action.DROP, frozenset({25})))
    attempts: list[float] = []
    connect = world.network.connect

    def logged(src, dst, port, now):
        if port == 25 and dst == world.servers[1].address:
            attempts.append(now)
        return connect(src, dst, port, now)

    world.network.connect = logged  # type: ignore[method-assign]
    return attempts


def test_retry_schedule_expiry_and_bounce():
    world = _world(duration_s=20_000, smtp={"queue_lifetime_s": 5_000},
                   dns={"lookup_mean_s": 0.1, "lookup_p90_s": 0.1, "servfail_rate": 0,
                        "ttl_s": 100_000})
    attempts = _unreachable_b(world)
    world.populations[0].send(1, [REMOTE], 1_000)
    world.env.run(until=20_000)
    cached = 2 * world.scenario.dns.cached_lookup_s          # MX and A from the cache
    timeout = world.scenario.smtp.connect_timeout_s
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # Postfix-like backoff: 300 s doubling, capped at 4000 s, after the 30 s connect timeout
    expected = [timeout + d + cached for d in (300, 600, 1200, 2400, 4000)]
    assert gaps == pytest.approx(expected, abs=1e-9)
    # after the 5th attempt the message is 4650 s old, under the 5000 s lifetime; the 6th
    # attempt (at 8650 s) fails too and the message expires and bounces right after it
    table = world.ledger.to_arrow().to_pylist()
    legit, bounce = table[0], table[1]
    assert legit["outcome"] == "expired" and legit["stopped_by"] == "queue_lifetime"
    assert bounce["kind"] == "bounce" and bounce["outcome"] == "delivered"
    assert bounce["rcpt_domain"] == "isp-a.example"
    assert bounce["created_s"] == pytest.approx(attempts[-1] + timeout)
    assert attempts[-2] - legit["created_s"] < 5_000 <= attempts[-1] - legit["created_s"]


def test_servfail_defers_and_the_message_is_delivered_when_dns_recovers():
    world = _world(dns={"servfail_rate": 1.0})
    world.populations[0].send(1, [REMOTE], 1_000)
    world.env.run(until=200)
    row = world.ledger.to_arrow().to_pylist()[0]
    assert row["outcome"] == "pending"
    assert world.held_rows() == {0}            # still in the queue: conservation holds
    world.ledger.check_conservation(world.held_rows())
    world.servers[0].queue.resolver.servfail_rate = 0.0
    world.env.run(until=1_000)                  # the retry after 300 s succeeds
    assert world.ledger.to_arrow().to_pylist()[0]["outcome"] == "delivered"


def test_session_slots_make_later_clients_wait():
    def delivered(slots: int) -> list[float]:
        isps = tiny_scenario().model_dump(mode="json")["isps"]
        isps[0]["mail_server"] = {"session_slots": slots}
        world = _world(isps=isps)
        for user in (1, 2):
            world.populations[0].send(user, [f"user{user + 10}@isp-a.example"], 1_000)
        world.env.run(until=100)
        return sorted(r["delivered_s"] for r in world.ledger.to_arrow().to_pylist())

    parallel, serial = delivered(2), delivered(1)
    assert parallel[0] == pytest.approx(parallel[1])
    assert serial[0] == pytest.approx(parallel[0])
    # the second client waits for the first session to end (its QUIT) before its greeting
    assert serial[1] - serial[0] > 0.05


def test_maildrop_lock_is_exclusive_and_deletes_only_on_close():
    drops = Maildrops()
    assert drops.add(7, StoredMessage("a", 10)) is True
    assert drops.add(7, StoredMessage("b", 10)) is False
    assert [m.uid for m in drops.open(7)] == ["a", "b"]
    assert drops.open(7) is None                 # a second session cannot lock it
    drops.close(7, {"a"})
    assert [m.uid for m in drops.open(7)] == ["b"]


def test_addresses_of_a_message_are_written_as_one_address_is():
    from netsim.mail.accounts import (
        TYPO_DOMAIN,
        TYPO_NONE,
        TYPO_USER,
        recipient_address,
        recipient_addresses,
    )

    users, typos = [0, 7, 12, 7], [TYPO_NONE, TYPO_USER, TYPO_DOMAIN, TYPO_NONE]
    assert recipient_addresses("isp-a.example", users, typos) == [
        recipient_address("isp-a.example", u, t) for u, t in zip(users, typos, strict=True)]
