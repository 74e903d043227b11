"""Receiver defences: a PBL-like blocklist, greylisting, a content filter and per-account rate
limits, each driven through isp-b's real mail server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.mail import Kind, Mail, MailServer, SenderType
from netsim.mail.defences import (
    Blocklist,
    ContentFilter,
    Greylisting,
    Listing,
    RateLimit,
    coverage_by_subnet,
)
from netsim.mail.policy import MECHANISMS, mechanism
from netsim.net import NetKind
from netsim.protocols import Credentials, Envelope, SMTPClient, SMTPSession, smtp_exchange
from netsim.protocols.replies import (
    S450_GREYLISTED,
    S451_RATE_LIMITED,
    S550_CONTENT_REJECTED,
    S554_BLOCKLISTED,
)
from netsim.scenario import Scenario
from netsim.world import World, simulate
from tests.conftest import tiny_scenario

HOTEL = {"name": "hotel", "prefix": "172.16.0.0/24", "upstream": "isp-a"}
LOCAL1, LOCAL2 = "user1@isp-b.example", "user2@isp-b.example"
SENDER = "user5@isp-a.example"


@pytest.fixture
def world() -> World:
    return World(tiny_scenario(users={"sends_per_day": 0}, visited_networks=[HOTEL]))


@pytest.fixture
def server(world: World) -> MailServer:
    return world.servers[1]   # isp-b's


def _stranger(world: World) -> int:
    return world.dynamic_pool(0).host(3)   # an isp-a subscriber


def _hotel(world: World) -> int:
    return world.plan.by_name["hotel"].host(1)


def _own(world: World) -> int:
    return world.dynamic_pool(1).host(3)   # an isp-b subscriber


def _session(address: int, port: int = 25, *, user: str | None = None,
             mail_from: str | None = SENDER) -> SMTPSession:
    session = SMTPSession(client_address=address, port=port, authenticated_user=user)
    session.mail_from = mail_from
    return session


def _send(world: World, source: int, rcpts: list[str], *, port: int = 25,
          kind: Kind = Kind.LEGIT, credentials: Credentials | None = None) -> SMTPClient:
    """One full SMTP session from ``source`` to isp-b's server, with ledger rows."""
    engine, _ = world.servers[1].smtp_engine(port, source)
    # a client that logs in sends as its account (isp-b's: SenderLoginMatch)
    sender = SENDER if credentials is None else f"{credentials.username}@isp-b.example"
    mail = Mail(world.next_id(), kind, SenderType.USER, sender, 500, world.env.now)
    mail.key = mail.id   # a key of its own, as every sender gives its messages
    world.ledger.add(mail, rcpts, origin_isp="isp-a", origin_network="test", path="test",
                     first_hop_port=port)
    client = SMTPClient("client.example", mail.mail_from, rcpts, size=500, payload=mail,
                        credentials=credentials)
    smtp_exchange(client, engine)
    return client


def _codes(client: SMTPClient) -> dict[str, int]:
    return {a: r.code for a, r in client.rcpt_replies.items()}


def _envelope(kind: Kind, message_id: int = 1) -> Envelope:
    mail = Mail(message_id, kind, SenderType.USER, SENDER, 500, 0.0, key=message_id)
    return Envelope(SENDER, (LOCAL1,), 500, mail, "client.example", None)


def test_each_defence_names_its_mechanism():
    assert [mechanism(r) for r in (S554_BLOCKLISTED, S450_GREYLISTED, S550_CONTENT_REJECTED,
                                   S451_RATE_LIMITED)] == [
        "blocklist", "greylisting", "content_filter", "rate_limit"]
    assert len(set(MECHANISMS.values())) == len(MECHANISMS)


# --- blocklist ---------------------------------------------------------------------------

def _whole(world: World, *kinds: NetKind) -> Listing:
    """A list of every range of ``kinds``."""
    return Listing(coverage_by_subnet(world.plan, dict.fromkeys(kinds, 1.0)), 24, salt=1)


def test_coverage_by_kind(world: World):
    table = coverage_by_subnet(world.plan, {NetKind.DYNAMIC: 0.5, NetKind.VISITED: 1.0})
    assert table[world.dynamic_pool(0).index] == table[world.dynamic_pool(1).index] == 0.5
    assert table[world.plan.by_name["hotel"].index] == 1.0
    assert table[world.plan.by_name["isp-a.static"].index] == 0.0
    assert table[-1] == 0.0   # "no subnet"


def test_blocklist_refuses_listed_strangers_on_25_only(world: World, server: MailServer):
    block = Blocklist(_whole(world, NetKind.DYNAMIC, NetKind.VISITED))
    assert block.check_rcpt(server, _session(_stranger(world)), LOCAL1) == S554_BLOCKLISTED
    assert block.check_rcpt(server, _session(_hotel(world)), LOCAL1) == S554_BLOCKLISTED
    # a mail server's static network is not listed; own subscribers are not checked
    assert block.check_rcpt(server, _session(world.servers[0].address), LOCAL1) is None
    assert block.check_rcpt(server, _session(_own(world)), LOCAL1) is None
    # the PBL must not be used on authenticated submission, on 587 or on 25
    assert block.check_rcpt(server, _session(_stranger(world), 587), LOCAL1) is None
    assert block.check_rcpt(server, _session(_hotel(world), 587), LOCAL1) is None
    assert block.check_rcpt(server, _session(_hotel(world), user="user5"), LOCAL1) is None
    assert block.refused == 2


def test_a_listed_client_is_refused_at_rcpt_unless_it_authenticates(world: World,
                                                                   server: MailServer):
    server.policies.insert(0, Blocklist(_whole(world, NetKind.DYNAMIC, NetKind.VISITED)))
    client = _send(world, _stranger(world), [LOCAL1, LOCAL2])
    assert _codes(client) == {LOCAL1: 554, LOCAL2: 554}
    assert _codes(_send(world, world.servers[0].address, [LOCAL1])) == {LOCAL1: 250}
    # a traveller on a listed hotel network with SMTP AUTH on 25 relays through its server
    traveller = Credentials("user5", world.servers[1].password(5))
    assert _codes(_send(world, _hotel(world), [LOCAL1, "user1@isp-a.example"],
                        credentials=traveller)) == {LOCAL1: 250, "user1@isp-a.example": 250}


# --- greylisting -------------------------------------------------------------------------

def test_greylisting_defers_then_passes_and_remembers(world: World, server: MailServer):
    grey = Greylisting(delay_s=300, retry_window_s=3600)
    mta = _session(world.servers[0].address)
    assert grey.check_rcpt(server, mta, LOCAL1) == S450_GREYLISTED     # first sight
    world.env.run(until=299)
    assert grey.check_rcpt(server, mta, LOCAL1) == S450_GREYLISTED     # retried too early
    world.env.run(until=300)
    assert grey.check_rcpt(server, mta, LOCAL1) is None                # retried after delay
    assert grey.check_rcpt(server, mta, LOCAL1) is None                # remembered
    # every part of the triplet counts
    assert grey.check_rcpt(server, mta, LOCAL2) == S450_GREYLISTED
    assert grey.check_rcpt(server, _session(world.servers[0].address, mail_from="x@y.example"),
                           LOCAL1) == S450_GREYLISTED
    assert grey.check_rcpt(server, _session(_stranger(world)), LOCAL1) == S450_GREYLISTED
    world.env.run(until=100_000)
    assert grey.check_rcpt(server, mta, LOCAL1) is None                # passed stays passed
    assert (grey.refused, grey.examined - grey.refused) == (5, 3)


def test_greylisting_window_expiry_makes_a_triplet_new(world: World, server: MailServer):
    grey = Greylisting(delay_s=300, retry_window_s=1000)
    mta = _session(world.servers[0].address)
    assert grey.check_rcpt(server, mta, LOCAL1) == S450_GREYLISTED
    world.env.run(until=1001)   # never retried within the window: first seen again now
    assert grey.check_rcpt(server, mta, LOCAL1) == S450_GREYLISTED
    world.env.run(until=1300)
    assert grey.check_rcpt(server, mta, LOCAL1) == S450_GREYLISTED
    world.env.run(until=1301)
    assert grey.check_rcpt(server, mta, LOCAL1) is None


def test_greylisting_exempts_authenticated_and_own_clients(world: World, server: MailServer):
    grey = Greylisting(delay_s=300, retry_window_s=3600)
    assert grey.check_rcpt(server, _session(_hotel(world), 587, user="user1"), LOCAL1) is None
    assert grey.check_rcpt(server, _session(_own(world)), LOCAL1) is None
    assert (grey.examined, grey.refused) == (0, 0)


def test_greylisting_in_a_full_session(world: World, server: MailServer):
    server.policies.append(Greylisting(delay_s=300, retry_window_s=3600))
    mta = world.servers[0].address
    assert _codes(_send(world, mta, [LOCAL1, LOCAL2])) == {LOCAL1: 450, LOCAL2: 450}
    world.env.run(until=600)
    assert _codes(_send(world, mta, [LOCAL1, LOCAL2])) == {LOCAL1: 250, LOCAL2: 250}


# --- content filter ----------------------------------------------------------------------

def test_content_filter_detection_and_false_positive_rates(world: World, server: MailServer):
    n = 10_000
    cf = ContentFilter(0.9, 0.05, "reject", np.random.default_rng(1))
    session = _session(world.servers[0].address)
    spam = sum(cf.check_data(server, session, _envelope(Kind.SPAM, i)) is not None
               for i in range(n))
    legit = sum(cf.check_data(server, session, _envelope(Kind.LEGIT, n + i)) is not None
                for i in range(n))
    bounce = sum(cf.check_data(server, session, _envelope(Kind.BOUNCE, 2 * n + i)) is not None
                 for i in range(n))
    # five standard deviations of a binomial proportion
    assert abs(spam / n - 0.9) < 5 * (0.9 * 0.1 / n) ** 0.5
    assert abs(legit / n - 0.05) < 5 * (0.05 * 0.95 / n) ** 0.5
    assert abs(bounce / n - 0.05) < 5 * (0.05 * 0.95 / n) ** 0.5
    assert (cf.examined, cf.refused) == (3 * n, spam + legit + bounce)


def test_content_filter_rejects(world: World, server: MailServer):
    cf = ContentFilter(1.0, 0.0, "reject", np.random.default_rng(1))
    server.policies.append(cf)
    mta = world.servers[0].address
    assert _codes(_send(world, mta, [LOCAL1, LOCAL2], kind=Kind.SPAM)) == {
        LOCAL1: 550, LOCAL2: 550}
    assert _codes(_send(world, mta, [LOCAL1], kind=Kind.LEGIT)) == {LOCAL1: 250}
    assert (cf.examined, cf.refused) == (2, 1)


def test_content_filter_junks_into_the_junk_folder(world: World, server: MailServer):
    server.policies.append(ContentFilter(1.0, 0.0, "junk", np.random.default_rng(1)))
    mta = world.servers[0].address
    spam = _send(world, mta, [LOCAL1, LOCAL2], kind=Kind.SPAM)
    assert _codes(spam) == {LOCAL1: 250, LOCAL2: 250}
    legit = _send(world, mta, [LOCAL1], kind=Kind.LEGIT)
    rows = world.ledger.to_arrow().to_pylist()
    outcomes = [(r["kind"], r["rcpt_domain"], r["outcome"]) for r in rows]
    assert outcomes == [("spam", "isp-b.example", "junked")] * 2 + [
        ("legit", "isp-b.example", "delivered")]
    assert _codes(legit) == {LOCAL1: 250}
    assert server.maildrops.count(1) == 1 and server.maildrops.count(2) == 0


def test_content_filter_exempts_outbound_and_judges_a_message_alike_in_any_order(
        world: World, server: MailServer):
    cf = ContentFilter(1.0, 1.0, "reject", np.random.default_rng(1))
    for session in (_session(_own(world)), _session(_hotel(world), 587, user="user1")):
        assert cf.check_data(server, session, _envelope(Kind.SPAM)) is None
    assert (cf.examined, cf.refused) == (0, 0)
    session = _session(world.servers[0].address)
    forward, backward = (ContentFilter(0.5, 0.5, "reject", np.random.default_rng(7))
                         for _ in range(2))
    ids = list(range(1, 200))
    verdicts = {i: forward.check_data(server, session, _envelope(Kind.SPAM, i)) for i in ids}
    again = {i: backward.check_data(server, session, _envelope(Kind.SPAM, i))
             for i in reversed(ids)}
    assert verdicts == again
    assert 50 < sum(v is not None for v in verdicts.values()) < 150


def test_content_filter_checks_its_arguments():
    with pytest.raises(ValueError):
        ContentFilter(1.5, 0.0, "reject", np.random.default_rng(1))
    with pytest.raises(ValueError):
        ContentFilter(0.9, 0.0, "quarantine", np.random.default_rng(1))


# --- rate limit --------------------------------------------------------------------------

def _allowed(limit: RateLimit, server: MailServer, session: SMTPSession, n: int) -> list[bool]:
    return [limit.check_rcpt(server, session, f"x{i}@far.example") is None for i in range(n)]


def test_rate_limit_bucket_drains_and_refills(world: World, server: MailServer):
    limit = RateLimit(10)
    alice = _session(_hotel(world), 587, user="user1")
    assert _allowed(limit, server, alice, 11) == [True] * 10 + [False]
    assert limit.check_rcpt(server, alice, LOCAL1) == S451_RATE_LIMITED
    world.env.run(until=360)    # 10 an hour: one token every 360 s
    assert _allowed(limit, server, alice, 2) == [True, False]
    world.env.run(until=100_000)   # never more than a full bucket
    assert _allowed(limit, server, alice, 11) == [True] * 10 + [False]
    assert limit.refused == 4


def test_rate_limit_starts_at_start_s(world: World, server: MailServer):
    limit = RateLimit(10, start_s=1000)
    alice = _session(_hotel(world), 587, user="user1")
    assert all(_allowed(limit, server, alice, 50))
    world.env.run(until=1000)
    assert _allowed(limit, server, alice, 11) == [True] * 10 + [False]


def test_rate_limit_ignores_unauthenticated_and_separates_accounts(world: World,
                                                                   server: MailServer):
    limit = RateLimit(10)
    assert all(_allowed(limit, server, _session(_own(world)), 50))
    alice = _session(_hotel(world), 587, user="user1")
    bob = _session(_hotel(world), 587, user="user2")
    assert _allowed(limit, server, alice, 11) == [True] * 10 + [False]
    assert _allowed(limit, server, bob, 11) == [True] * 10 + [False]


def test_rate_limit_in_a_full_submission_session(world: World, server: MailServer):
    server.policies.append(RateLimit(2))
    login = Credentials("user1", server.password(1))
    rcpts = [LOCAL1, LOCAL2, "user3@isp-b.example"]
    codes = _codes(_send(world, _hotel(world), rcpts, port=587, credentials=login))
    assert codes == {LOCAL1: 250, LOCAL2: 250, "user3@isp-b.example": 451}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), accounts=st.sampled_from([1, 3, 200, 5000]),
       n=st.integers(0, 3000), capacity=st.sampled_from([1.0, 10.0, 250.0]))
def test_a_rate_limit_answers_many_asks_as_it_answers_them_one_at_a_time(seed, accounts, n,
                                                                         capacity):
    """Asks in arrays (each account's k-th asks taken together while they are many, the
    rest in turn) get the answers, the buckets and the count of asks out of order that
    the same asks get one at a time, in their order: repeated accounts, instants a little
    out of order, buckets that empty and refill."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, accounts, size=n)
    # each account asks some four times as fast as its bucket refills
    at = np.cumsum(rng.exponential(3600 / capacity / accounts / 4, size=n))
    at[rng.random(n) < 0.05] -= 30.0   # a few asked after later ones were taken
    many, one = RateLimit(capacity), RateLimit(capacity)
    answers = many.refuses_rcpt(SimpleNamespace(user=users, at=at))
    alone = [one.refuses_rcpt(SimpleNamespace(user=int(u), at=float(t)))
             for u, t in zip(users.tolist(), at.tolist(), strict=True)]
    assert answers.tolist() == alone
    assert many.out_of_order == one.out_of_order
    assert np.array_equal(np.asarray(many._tokens), np.asarray(one._tokens))
    assert np.array_equal(np.asarray(many._last), np.asarray(one._last), equal_nan=True)
    if n > 2 * accounts * capacity:
        assert 0 < sum(alone) < n   # buckets emptied, and not every ask refused


def test_keyed_draws_are_the_same_one_at_a_time_and_in_arrays():
    from netsim.draws import (
        keyed_exponential,
        keyed_exponential_one,
        keyed_uniform,
        keyed_uniform_one,
    )

    keys = np.random.default_rng(5).integers(0, 2**63, size=1000, dtype=np.int64)
    salt = 123456789123456789
    arrays = keyed_uniform(keys, salt)
    assert [keyed_uniform_one(int(k), salt) for k in keys] == arrays.tolist()
    assert np.allclose([keyed_exponential_one(int(k), salt, 2.0) for k in keys],
                       keyed_exponential(keys, salt, 2.0), rtol=1e-15, atol=0)
    # uniform enough: deciles hold a tenth each, within five standard deviations
    counts = np.bincount((arrays * 10).astype(int), minlength=10)
    assert (np.abs(counts - 100) < 5 * (1000 * 0.1 * 0.9) ** 0.5).all()


# --- blocklist coverage, consulting servers, listing once seen -----------------------------

def test_a_range_is_listed_or_not_as_one_and_coverage_is_the_share_of_ranges_listed():
    """Over 4096 /24s of a /12 at coverage 0.3, the share listed is 0.3 within 0.03 (about
    four binomial standard deviations, sqrt(0.3 * 0.7 / 4096) = 0.007); every address of a
    /24 shares its verdict; one ask and an array of asks agree."""
    coverage = np.array([0.3, 0.0])   # subnet 0: the /12; -1: no subnet
    listing = Listing(coverage, 24, salt=12345)
    first = 10 << 24
    ranges = first + (np.arange(4096, dtype=np.int64) << 8)
    listed = listing.lists(ranges, np.zeros(4096, dtype=np.int64), 0.0)
    assert abs(listed.mean() - 0.3) < 0.03
    inside = listing.lists(ranges + 200, np.zeros(4096, dtype=np.int64), 0.0)
    assert (inside == listed).all()
    one = [bool(listing.lists(int(a), 0, 0.0)) for a in ranges[:200].tolist()]
    assert one == listed[:200].tolist()
    # none at 0, all at 1; address by address at prefix 32
    assert not Listing(np.array([0.0, 0.0]), 24, 1).lists(ranges, 0, 0.0).any()
    assert Listing(np.array([1.0, 0.0]), 24, 1).lists(ranges, 0, 0.0).all()
    by_address = Listing(coverage, 32, salt=12345).lists(first + np.arange(256), 0, 0.0)
    assert 0 < by_address.sum() < 256


def test_a_watched_address_is_listed_after_it_is_seen_sending_spam():
    listing = Listing(np.zeros(2), 24, salt=1, seen_after_s=600)
    relay, other = 100 << 24 | 5, 100 << 24 | 6
    listing.watch([relay])
    listing.seen(relay, 50.0, False)             # a bounce: not spam
    listing.seen(other, 60.0, True)              # not watched
    assert not listing.lists(relay, 0, 500.0)
    listing.seen(relay, 100.0, True)
    assert not listing.lists(relay, 0, 699.9)
    assert listing.lists(relay, 0, 700.0) and not listing.lists(other, 0, 10_000.0)
    assert listing.out_of_order == 0
    # seen earlier than first recorded (the flow path's queues record a minute at its end):
    # the ask at 699.9 was answered "not listed", and is counted
    listing.seen(np.array([relay, relay]), np.array([90.0, 400.0]), np.array([True, True]))
    assert listing.lists(np.array([relay, other]), np.array([0, 0]), 690.0).tolist() == [
        True, False]
    assert listing.out_of_order == 1
    never = Listing(np.zeros(2), 24, salt=1)     # no seen_after_s: never listed
    never.watch([relay])
    never.seen(relay, 0.0, True)
    assert not never.lists(relay, 0, 1e9)


def _coverage_world(coverage: float, **blocklist: Any) -> pd.DataFrame:
    """400 bots of isp-a, each at the same rate, sending direct to isp-b's MX for an hour."""
    data = {
        "name": "coverage", "seed": 5, "duration_s": 3600, "fidelity": "session",
        "isps": [{"name": "isp-a", "domain": "isp-a.example", "subscribers": 1000,
                  "dynamic_pool": "10.1.0.0/22", "server_network": "192.0.2.0/28",
                  "bot_fraction": 0.4},
                 {"name": "isp-b", "domain": "isp-b.example", "subscribers": 2000,
                  "dynamic_pool": "10.2.0.0/21", "server_network": "198.51.100.0/28"}],
        "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01}],
        "users": {"sends_per_day": 0.0},
        "defences": {"blocklist": {"listed": {"dynamic": coverage}, "range_prefix": 32,
                                   **blocklist}},
        "spam": {"invalid_recipient_share": 0.0,
                 "botnets": [{"name": "b", "share": 1.0, "strategies": ["direct"],
                              "rate_median_per_day": 240, "rate_sigma": 0.0,
                              "recipients_per_session": 4}]}}
    f = simulate(Scenario.model_validate(data)).recipients_frame()
    return f[(f["kind"] == "spam") & (f["rcpt_domain"] == "isp-b.example")]


@pytest.mark.parametrize("coverage", [0.0, 0.5, 1.0])
def test_acceptance_at_smtp_moves_with_coverage(coverage: float):
    """The share of bots' direct sessions isp-b accepts is 1 - coverage: exactly at 0 and 1;
    at 0.5 within 0.1 (which of the 400 bots are listed is binomial, sd 0.025; which bots
    send the ~500 sessions adds about 0.02)."""
    spam = _coverage_world(coverage)
    spam = spam[spam["outcome"] != "pending"]   # a session still open at the run's end
    assert len(spam) > 1000
    accepted = (spam["outcome"] == "delivered").mean()
    assert set(spam.loc[spam["outcome"] != "delivered", "stopped_by"]) <= {"blocklist"}
    assert abs(accepted - (1 - coverage)) < (0.1 if 0 < coverage < 1 else 1e-12)


def test_a_server_that_does_not_consult_the_list_accepts():
    spam = _coverage_world(1.0, consulted_by=["isp-a"])
    assert len(spam) > 1000 and (spam["outcome"] == "delivered").all()


def test_which_servers_consult_is_drawn_once_and_a_larger_share_keeps_them():
    def consulting(share: float) -> set[str]:
        data = tiny_scenario(
            isps=[{"name": f"isp-{i}", "domain": f"isp-{i}.example", "subscribers": 1,
                   "dynamic_pool": f"10.{i + 1}.0.0/24", "server_network": f"192.0.{i}.0/28"}
                  for i in range(20)],
            links=[{"a": f"isp-{i}", "b": f"isp-{i + 1}", "latency_s": 0.01}
                   for i in range(19)],
            defences={"blocklist": {"consulted_by": share}})
        world = World(data)
        return {s.isp for s in world.servers
                if any(isinstance(p, Blocklist) for p in s.policies)}

    assert consulting(0.0) == set() and len(consulting(1.0)) == 20
    half, most = consulting(0.5), consulting(0.8)
    assert 0 < len(half) < len(most) < 20 and half < most
    assert consulting(0.5) == half


SEEN_WORLD: dict[str, Any] = {
    "name": "seen", "seed": 3, "duration_s": 3600,
    "isps": [{"name": f"isp-{c}", "domain": f"isp-{c}.example", "subscribers": 60,
              "dynamic_pool": f"10.{i + 1}.0.0/24", "server_network": f"192.0.{i}.0/28",
              "bot_fraction": 0.1 * i} for i, c in enumerate("ab")],
    "links": [{"a": "isp-a", "b": "isp-b", "latency_s": 0.01}],
    "hosting_networks": [{"name": "hosting", "prefix": "100.64.0.0/24", "upstream": "isp-a"}],
    "users": {"sends_per_day": 0.0},
    "defences": {"blocklist": {"listed": [], "list_seen_after_s": 1200}},
    "spam": {"invalid_recipient_share": 0.0,
             "botnets": [{"name": "b", "share": 1.0, "strategies": ["open_relay"],
                          "rate_median_per_day": 2000, "rate_sigma": 0.0}],
             "spammer_servers": [{"network": "hosting", "count": 1, "rate_per_day": 20_000,
                                  "recipients_per_session": 10}],
             "open_relays": [{"network": "hosting", "count": 1}]}}


@pytest.mark.parametrize("fidelity", ["session", "flow"])
def test_a_spammer_server_and_an_open_relay_are_refused_once_listed_and_not_before(
        fidelity: str):
    worlds: list[World] = []
    result = simulate(Scenario.model_validate({**SEEN_WORLD, "fidelity": fidelity}),
                      setup=worlds.append)
    f = result.recipients_frame()
    listing = worlds[0].listing
    assert listing is not None
    for sender, address in (("spammer_server", worlds[0].spammers[0].addresses[0]),
                            ("bot", worlds[0].relays[0].address)):
        listed_at = listing.listed_from[listing.row_of[address]]
        first = f.loc[(f["kind"] == "spam") & (f["sender"] == sender), "created_s"].min()
        # seen at its first spam session, whose connection opens a moment after creation
        assert first < listed_at - 1200 < first + 5
        mine = f[(f["kind"] == "spam") & (f["sender"] == sender)
                 & ~((sender == "bot") & (f["stopped_by"] == "relay_denied"))]
        refused = mine[mine["stopped_by"] == "blocklist"]
        delivered = mine[mine["outcome"] == "delivered"]
        assert len(refused) > 10 and len(delivered) > 10
        assert (refused["finished_s"] >= listed_at).all()
        assert (delivered["created_s"] < listed_at).all()
    assert result.summary["sim"]["out_of_order"] == {}


def test_a_list_of_kinds_lists_every_range_of_each():
    scenario = tiny_scenario(defences={"blocklist": {"listed": ["dynamic", "visited"]}})
    assert scenario.defences.blocklist is not None
    assert scenario.defences.blocklist.listed == {"dynamic": 1.0, "visited": 1.0}
    assert tiny_scenario(defences={"blocklist": True}).defences.blocklist.listed == {
        "dynamic": 1.0}
