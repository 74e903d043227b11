"""Receiver defences: a PBL-like blocklist, greylisting, a content filter and per-account rate
limits, each driven through isp-b's real mail server."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.mail import Kind, Mail, MailServer, SenderType
from netsim.mail.defences import (
    Blocklist,
    ContentFilter,
    Greylisting,
    RateLimit,
    listed_subnets,
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
from netsim.world import World
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
    mail = Mail(world.next_id(), kind, SenderType.USER, SENDER, 500, world.env.now)
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

def test_listed_subnets_by_kind(world: World):
    listed = listed_subnets(world.plan, [NetKind.DYNAMIC, NetKind.VISITED])
    assert listed == {world.dynamic_pool(0).index, world.dynamic_pool(1).index,
                      world.plan.by_name["hotel"].index}
    assert listed_subnets(world.plan, []) == frozenset()


def test_blocklist_refuses_listed_strangers_on_25_only(world: World, server: MailServer):
    block = Blocklist(listed_subnets(world.plan, [NetKind.DYNAMIC, NetKind.VISITED]))
    assert block.check_connect(server, _session(_stranger(world))) == S554_BLOCKLISTED
    assert block.check_connect(server, _session(_hotel(world))) == S554_BLOCKLISTED
    # a mail server's static network is not listed; own subscribers are not checked
    assert block.check_connect(server, _session(world.servers[0].address)) is None
    assert block.check_connect(server, _session(_own(world))) is None
    # the PBL must not be used on authenticated submission
    assert block.check_connect(server, _session(_stranger(world), 587)) is None
    assert block.check_connect(server, _session(_hotel(world), 587)) is None
    assert block.refused == 2


def test_blocklisted_greeting_refuses_every_recipient(world: World, server: MailServer):
    server.policies.append(Blocklist(listed_subnets(world.plan, [NetKind.DYNAMIC])))
    client = _send(world, _stranger(world), [LOCAL1, LOCAL2])
    assert _codes(client) == {LOCAL1: 554, LOCAL2: 554}
    assert client.final_reply == S554_BLOCKLISTED
    assert _codes(_send(world, world.servers[0].address, [LOCAL1])) == {LOCAL1: 250}


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
