"""Spam senders: botnets of infected subscriber hosts, and spammer-owned servers.

Each botnet is one SimPy process: sessions arrive at the botnet's total rate and each picks
a bot in proportion to its (heavy-tailed) rate, so per-bot state lives in numpy arrays and
cost grows with sessions, not bots. A session carries many recipients of one harvested
domain and follows the bot's current strategy:

- ``direct``: the recipient domain's MX on port 25 (what OP25B stops);
- ``isp_relay``: the bot's own ISP server on port 25 (relayed for its own networks);
- ``open_relay``: a misconfigured server that relays for anyone;
- ``stolen_587``: a stolen credential on its owner's submission port.

An adaptive bot moves to its next strategy after ``failures_to_adapt`` sessions in a row
that delivered nothing; a bot with no strategy left stops, and the botnet keeps its total
rate by giving the work to the bots still active (displacement). Spammer servers send
``direct`` from static hosting addresses.

What no state decides is drawn a block of sessions ahead from each sender's own streams
(``netsim.world.streams.Ahead``): the gaps between sessions, the uniform that picks a bot,
and each message's recipients, forged sender, size and key. The bot is picked, and the
message composed, at the session's instant, from the bots active then. At fidelity flow a
session to an ISP's server or an open relay is then handed to ``netsim.world.spam_flow``,
which decides a minute's sessions as arrays (a sender whose sessions teach it nothing
draws and hands over a block of them at once); the rest run here, as SimPy processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, get_args

import numpy as np
import simpy
from scipy import special

from netsim.draws import attempt_key, keyed_uniform, salt
from netsim.mail import Kind, Mail, MailServer, Outcome, SenderType
from netsim.mail.accounts import TYPO_USER, account_name, recipient_addresses
from netsim.mail.defences import Listing
from netsim.mail.outbox import attempt, blocked, finish, refuse
from netsim.mail.routing import RouteStatus, resolve_mx
from netsim.mail.trace import following
from netsim.net import Resolver, text
from netsim.protocols import Credentials
from netsim.scenario.schema import BotnetConfig, SpammerServerConfig, Strategy
from netsim.world.columns import repeated
from netsim.world.senders import Process, SendersWorld
from netsim.world.streams import Ahead

if TYPE_CHECKING:
    from netsim.world.spam_flow import SpamFlow


class SpamWorld(SendersWorld, Protocol):
    """What spam senders read of the world, besides what every sender reads: the open
    relays, and the resolvers of the ISPs' subscribers (a bot's)."""

    @property
    def relays(self) -> list[MailServer]: ...
    @property
    def subscriber_resolvers(self) -> list[Resolver]: ...
    @property
    def listing(self) -> Listing | None: ...


STRATEGIES = get_args(Strategy)
# the strategies whose sessions reach an ISP's server or an open relay unauthenticated (the
# other, stolen_587, logs in to a stolen account at its owner's server)
UNAUTHENTICATED = ("direct", "isp_relay", "open_relay")


@dataclass(slots=True)   # not frozen (frozen ones cost more to make); never changed
class Sender:
    """Who sends spam sessions, from where, how: a bot's is made for each session (kept, a
    country's hundreds of thousands of bots would cost memory), a spammer server's once
    for each of its hosts."""

    origin: str          # origin ISP (or hosting network) name
    network: str         # origin network name
    address: int
    isp: int             # index of the ISP whose resolver and own server the host uses
    sender: SenderType
    strategy: str
    retry_4xx: float
    retry_delay_s: float
    rng: np.random.Generator   # the sender's stream for its routes: its own
    subnet: int          # the index of its network


class SenderKind(NamedTuple):
    """What the sessions of one kind of sender share: how the ledger names them (its type,
    origin ISP or network, network and path) and whether and when it retries after a 4xx.
    A run's sessions come from a few kinds."""

    sender: SenderType
    origin: str
    network: str
    strategy: str
    retry_4xx: float
    retry_delay_s: float


class Drawn(NamedTuple):
    """A spam message's draws, made ahead (``SpamSessions.messages``): its recipients (the
    ISP of their one domain, each one's user and typo), its forged sender (an ISP's user),
    its size and its key."""

    target: int
    users: np.ndarray
    typos: np.ndarray
    forged_server: int
    forged_user: int
    size: int
    key: int


class Messages(NamedTuple):
    """A block of spam messages' draws (``SpamSessions.messages``) as columns, one entry a
    message, and their recipients', ``recipients`` of them a message, in order."""

    target: np.ndarray
    forged_server: np.ndarray
    forged_user: np.ndarray
    size: np.ndarray
    key: np.ndarray
    recipients: np.ndarray
    users: np.ndarray
    typos: np.ndarray

    def each(self) -> list[Drawn]:
        """The block one message at a time, for a sender that takes one at a time."""
        first = np.cumsum(self.recipients) - self.recipients
        users, typos = self.users, self.typos
        return [Drawn(t, users[a:a + k], typos[a:a + k], f, u, z, y)
                for t, a, k, f, u, z, y in zip(
                    self.target.tolist(), first.tolist(), self.recipients.tolist(),
                    self.forged_server.tolist(), self.forged_user.tolist(),
                    self.size.tolist(), self.key.tolist(), strict=True)]


BLOCK = 256   # sessions (or messages) drawn at a time


class SpamSessions:
    """Composes spam sessions and runs them; shared by botnets and spammer servers."""

    def __init__(self, world: SpamWorld):
        self.world = world
        self.cfg = world.scenario.spam
        s = world.scenario
        counts = np.array([i.subscribers for i in s.isps], dtype=float)
        self.target_cumulative = np.cumsum(counts) / counts.sum() if counts.sum() else None
        self.users = np.array([server.users for server in world.servers], dtype=np.int64)
        self.retry_salt = salt(world.streams["spam.retry"])
        self.flow: SpamFlow | None = None   # at fidelity flow: where sessions are decided

    def messages(self, rng: np.random.Generator, recipients_mean: float,
                 n: int = BLOCK) -> Messages:
        """The draws of a sender's next ``n`` spam messages, in the order it composes them
        (from its own stream, which nothing else reads): 1 + Poisson(mean − 1) harvested
        addresses of one domain, each an account's or one nobody has
        (``netsim.mail.accounts``), named once; a forged sender; a log-normal size."""
        world, cfg = self.world, self.cfg
        servers = world.servers
        assert self.target_cumulative is not None, "no sender starts in a world without users"
        count = 1 + rng.poisson(recipients_mean - 1, n)
        target = np.searchsorted(self.target_cumulative, rng.random(n), side="right")
        forged = _below(rng.random(n), len(servers))
        forged_user = _below(rng.random(n), np.maximum(self.users[forged], 1))
        size = np.maximum(300, rng.lognormal(math.log(cfg.size_median_bytes), cfg.size_sigma,
                                             n).astype(np.int64))
        key = (rng.bit_generator.random_raw(n) >> np.uint64(1)).astype(np.int64)  # as Mail.key
        users = self.users[np.repeat(target, count)]
        user = _below(rng.random(len(users)), users)
        typo = (rng.random(len(users)) < cfg.invalid_recipient_share) * TYPO_USER
        # an address drawn twice for one message is named once, where it first came
        owner = np.repeat(np.arange(n), count)
        kept = ~repeated(owner, user * 3 + typo)
        count = np.bincount(owner[kept], minlength=n)
        return Messages(target, forged, forged_user, size, key, count, user[kept], typo[kept])

    def retries(self, retry_4xx: Any, key: Any) -> Any:
        """Whether a sender that retries a 4xx with probability ``retry_4xx`` tries the
        message of ``key`` once more: keyed by the message, so that deciding sessions in any
        order draws alike (one message, or arrays of them)."""
        return keyed_uniform(key, self.retry_salt) < retry_4xx

    def compose(self, sender: Sender, drawn: Drawn, mail_from: str | None = None) -> Mail:
        """A spam message of ``drawn`` (``messages``), from its forged sender or from
        ``mail_from`` (a stolen account's own address)."""
        world = self.world
        domain = world.servers[drawn.target].domain
        addresses = recipient_addresses(domain, drawn.users.tolist(), drawn.typos.tolist())
        forged_from = world.servers[drawn.forged_server].address_of(drawn.forged_user)
        mail = Mail(world.next_id(), Kind.SPAM, sender.sender, mail_from or forged_from,
                    drawn.size, world.env.now, origin=sender.origin, key=drawn.key)
        world.ledger.add(mail, addresses, origin_isp=sender.origin,
                         origin_network=sender.network, path=sender.strategy,
                         first_hop_port=first_hop_port(sender.strategy),
                         domain=domain)
        if world.tracer is not None:
            world.tracer.created(mail)
        return mail

    def run(self, sender: Sender, mail: Mail, dst: int | None,
            credentials: Credentials | None) -> Generator[simpy.Event, Any, bool]:
        """Send one spam session; True if a server accepted any recipient. ``dst`` None
        means the recipient domain's MX."""
        world, env = self.world, self.world.env
        pending = world.outbox.hold(mail)
        trace = following(world.tracer, mail)
        port = 587 if credentials is not None else 25
        helo = helo_of(sender.address)
        accepted = 0
        for round_ in range(2):   # a first try and at most one retry after a 4xx
            target = dst
            if target is None:
                domain = next(iter(pending)).rpartition("@")[2]
                route = yield from resolve_mx(env, world.subscriber_resolvers[sender.isp],
                                              domain, sender.rng, trace, "bot",
                                              attempt_key(mail.key, round_ + 1),
                                              sender.address)
                if route.status is not RouteStatus.OK or not route.addresses:
                    finish(world.ledger, mail, pending, list(pending), Outcome.EXPIRED,
                           env.now, cause="dns_failure", trace=trace)
                    break
                target = route.addresses[0]
            before = len(pending)
            conn, refused = yield from attempt(env, world.network, world.ledger,
                                               sender.address, target, port, mail, pending,
                                               client_origin=mail.origin, helo=helo,
                                               credentials=credentials, trace=trace,
                                               listing=world.listing)
            if not conn.is_open:
                blocked(world.ledger, mail, pending, conn, env.now, trace)
                break
            accepted += before - len(pending)
            refuse(world.ledger, mail, pending,
                   {a: r for a, r in refused.items() if r.is_permanent}, env.now, trace)
            if not pending:
                break
            if round_ == 0 and self.retries(sender.retry_4xx, mail.key):
                yield env.timeout(sender.retry_delay_s)
                continue
            # temporary refusals the sender never retries end here, with their 4xx code
            refuse(world.ledger, mail, pending, {a: refused[a] for a in pending}, env.now,
                   trace)
            break
        world.outbox.drop(mail)
        return accepted > 0


def in_blocks(env: simpy.Environment, end: float, block: Callable[[float], float]) -> Process:
    """A sender's sessions handed over a block at a time: ``block(t)`` draws and hands over
    the sessions after ``t`` and returns the last one's instant; the next block is drawn
    then, until the run's end."""
    t = env.now
    while True:
        t = block(t)
        if t >= end:
            return
        # (the clock reaches t by adding t − now to now, which may round t; the next block
        # starts from t itself, as the clock would have added each gap)
        yield env.timeout(max(0.0, t - env.now))


def instants(t: float, gaps: np.ndarray) -> np.ndarray:
    """The instants of sessions ``gaps`` apart from ``t``, as the clock adds each gap to
    the instant before (``np.cumsum`` adds in order)."""
    return np.cumsum(np.concatenate(([t], gaps)))[1:]


def first_hop_port(strategy: str) -> int:
    """The port a spam session of ``strategy`` connects to first."""
    return 587 if strategy == "stolen_587" else 25


def helo_of(address: int) -> str:
    """The name a bot or spammer server greets with."""
    return f"h{text(address).replace('.', '-')}.example"


def _below(u: np.ndarray, n: Any) -> np.ndarray:
    """Integers in [0, n) from uniform draws u in [0, 1)."""
    return np.minimum(u * n, n - 1).astype(np.int64)


def bot_rates(rng: np.random.Generator, n: int, cfg: BotnetConfig,
              method: str = "stratified") -> np.ndarray:
    """Daily rates of a botnet's ``n`` bots from its log-normal distribution.

    ``independent``: n draws. ``stratified``: the distribution cut into n equally likely
    strata, each bot given the mean of one stratum, in random order — the botnet's total
    rate is then n times the distribution's mean in every replication, where n independent
    draws of a heavy tail swing with the largest few (a variance reduction; which bot, and
    so which ISP, sends most still varies)."""
    median, sigma = cfg.rate_median_per_day, cfg.rate_sigma
    if method == "independent":
        return median * np.exp(sigma * rng.standard_normal(n))
    if n == 0 or sigma == 0:
        return np.full(n, float(median))
    # E[X; a < Z < b] = median · e^(σ²/2) · (Φ(b − σ) − Φ(a − σ)) for X = median · e^(σZ)
    edges = special.ndtri(np.arange(n + 1) / n)
    mass = special.ndtr(edges[1:] - sigma) - special.ndtr(edges[:-1] - sigma)
    return rng.permutation(n * median * math.exp(sigma * sigma / 2) * mass)


class Botnet:
    """One botnet's bots and their sending process."""

    def __init__(self, world: SpamWorld, cfg: BotnetConfig, bots: list[tuple[int, int]],
                 sessions: SpamSessions, index: int):
        self.world, self.cfg, self.sessions, self.index = world, cfg, sessions, index
        unknown = [s for s in cfg.strategies if s not in STRATEGIES]
        if unknown:   # a world built past the scenario's validation
            raise ValueError(f"botnet {cfg.name}: unknown spam strategy {unknown[0]!r} "
                             f"(known: {', '.join(STRATEGIES)})")
        self.isp = np.array([b[0] for b in bots], dtype=np.int32)
        self.user = np.array([b[1] for b in bots], dtype=np.int64)
        self.rate = bot_rates(world.streams[f"bots.rate.{cfg.name}"], len(bots), cfg,
                              world.scenario.spam.bot_rates)
        self.strategy = np.zeros(len(bots), dtype=np.int8)
        self.failures = np.zeros(len(bots), dtype=np.int32)
        self.active = np.ones(len(bots), dtype=bool)
        # what a choice draws from (``_choose``): the bots not known to have stopped, and
        # their rates summed in order; a stop is known once a draw falls on the bot
        self._members = np.arange(len(bots))
        self._table = np.cumsum(self.rate)
        self._known = np.zeros(len(bots), dtype=bool)
        self._known_rate = 0.0   # of the table's members known to have stopped
        self._again = Ahead(lambda: world.streams[f"bots.choose.{cfg.name}"]
                            .random(BLOCK).tolist())
        # at fidelity flow: makes a bot's state exact as of now before a choice reads it
        self._settle: Callable[[Botnet, int], None] | None = None
        self.rng = world.streams[f"bots.route.{cfg.name}"]
        self.compose = world.streams[f"bots.compose.{cfg.name}"]
        self.messages = Ahead(lambda: sessions.messages(
            self.compose, cfg.recipients_per_session).each())
        self.pools = [world.dynamic_pool(i) for i in range(len(world.scenario.isps))]
        self._kinds: dict[tuple[int, str], int] = {}   # at fidelity flow: by ISP, strategy
        self.sessions_per_s = float(self.rate.sum()) / cfg.recipients_per_session / 86_400
        if len(bots) and self.sessions_per_s > 0 and sessions.target_cumulative is not None:
            world.env.process(self.run())

    def run(self) -> Process:
        rng = self.world.streams[f"bots.send.{self.cfg.name}"]
        env = self.world.env
        timeout, process = env.timeout, env.process
        flow = self.sessions.flow
        adaptive = self.cfg.adaptive
        if flow is not None and self.draws_ahead:
            yield from self._ahead(flow, rng)
            return
        draws = Ahead(lambda: zip(rng.exponential(1 / self.sessions_per_s, BLOCK).tolist(),
                                  rng.random(BLOCK).tolist(), strict=True))
        if flow is not None and adaptive:
            self._settle = flow.settle
        while True:
            gap, u = draws.next()
            yield timeout(gap)
            bot = self._choose(u)
            if bot is None:   # every bot has stopped
                return
            if flow is None:   # (the n-th session reads the n-th message, sent or not)
                process(self.session(bot, self.messages.next()))
                continue
            strategy = self.cfg.strategies[int(self.strategy[bot])]
            drawn = self.messages.next()
            server, account = self._destination(strategy, int(self.isp[bot]))
            if server is None:
                self._unsent(bot)
                continue
            isp = int(self.isp[bot])
            pool = self.pools[isp]
            flow.hand(self._kind(flow, isp, strategy), pool.host(int(self.user[bot])), isp,
                      pool.index, drawn, server, self if adaptive else None, bot, account)

    @property
    def draws_ahead(self) -> bool:
        """Whether, at fidelity flow, its sessions are drawn a block at a time (``_ahead``):
        when nothing they decide changes what it does next (it does not adapt: no bot stops,
        none changes strategy) and none needs a stolen password (the pool of those grows
        during the run)."""
        return not self.cfg.adaptive and self.cfg.strategies[0] in UNAUTHENTICATED

    def _ahead(self, flow: SpamFlow, rng: np.random.Generator) -> Process:
        """A botnet that ``draws_ahead``: its sessions drawn a block at a time, as ``run``
        draws them one at a time, and handed over ahead of their instants
        (``SpamFlow.hand_ahead``)."""
        cumulative = self._table   # (every bot's: none of its bots ever stops)
        strategy = self.cfg.strategies[0]
        kinds = np.array([self._kind(flow, isp, strategy) for isp in range(len(self.pools))])
        first = np.array([pool.first + 1 for pool in self.pools])   # ``Subnet.host``
        subnets = np.array([pool.index for pool in self.pools])

        def block(t: float) -> float:
            at = instants(t, rng.exponential(1 / self.sessions_per_s, BLOCK))
            u = rng.random(BLOCK)
            bot = np.minimum(cumulative.searchsorted(u * cumulative[-1], side="right"),
                             len(self.rate) - 1)
            messages = self.sessions.messages(self.compose, self.cfg.recipients_per_session)
            isp = self.isp[bot]
            # the server each session goes to (an open relay's: drawn in turn, as ``run``)
            server = [self._server(strategy, i) for i in isp.tolist()]
            if server[0] is not None:   # (None: no open relay, every session unsent)
                flow.hand_ahead(at, kinds[isp], first[isp] + self.user[bot], isp,
                                subnets[isp], np.array(server), messages)
            return float(at[-1])

        yield from in_blocks(self.world.env, flow.end, block)

    def _kind(self, flow: SpamFlow, isp: int, strategy: str) -> int:
        """The kind of sender (``SpamFlow.kind``) of the botnet's bots in ISP ``isp`` with
        ``strategy``."""
        kind = self._kinds.get((isp, strategy))
        if kind is None:
            pool, cfg = self.pools[isp], self.cfg
            kind = self._kinds[isp, strategy] = flow.kind(SenderKind(
                SenderType.BOT, self.world.scenario.isps[isp].name, pool.name, strategy,
                cfg.retry_4xx, cfg.retry_delay_s))
        return kind

    def _choose(self, u: float) -> int | None:
        """The bot a uniform draw picks, in proportion to the active bots' rates (None:
        every bot has stopped). The draw picks among the bots not known to have stopped,
        and is made again (``_again``) while it falls on a bot that has: rejection, which
        picks each active bot with the same chance as a draw among the active ones, and
        reads the state of the bots it falls on alone (at fidelity flow, ``_settle`` makes
        that state exact first), not whether every other bot is still active."""
        while len(self._table):
            table = self._table
            i = min(int(table.searchsorted(u * table[-1], side="right")), len(table) - 1)
            bot = int(self._members[i])
            if self._settle is not None:
                self._settle(self, bot)
            if self.active[bot]:
                return bot
            self._known_stopped(bot)
            u = self._again.next()
        return None

    def _known_stopped(self, bot: int) -> None:
        """A draw fell on a stopped bot: once the bots known to have stopped hold half the
        table's rate, the table is summed again without them (so a draw is made at most
        twice, on average, for the stops already known)."""
        if self._known[bot]:
            return
        self._known[bot] = True
        self._known_rate += float(self.rate[bot])
        if 2 * self._known_rate >= self._table[-1]:
            self._members = np.flatnonzero(~self._known)
            self._table = np.cumsum(self.rate[self._members])
            self._known_rate = 0.0

    def _sender(self, bot: int, strategy: str) -> Sender:
        world, cfg = self.world, self.cfg
        isp, user = int(self.isp[bot]), int(self.user[bot])
        pool = self.pools[isp]
        return Sender(world.scenario.isps[isp].name, pool.name, pool.host(user), isp,
                      SenderType.BOT, strategy, cfg.retry_4xx, cfg.retry_delay_s, self.rng,
                      pool.index)

    def session(self, bot: int, drawn: Drawn) -> Process:
        """A session through the engines (fidelity session, or a trace)."""
        strategy = self.cfg.strategies[int(self.strategy[bot])]
        sender = self._sender(bot, strategy)
        dst, credentials, account = self._route(strategy, sender.isp)
        if dst is False:
            self._unsent(bot)
            return
        mail = self.sessions.compose(sender, drawn, account)
        success = yield from self.sessions.run(sender, mail, dst, credentials)
        self.learn(bot, success)

    def _unsent(self, bot: int) -> None:
        """A session its strategy has nowhere to send now: it fails at once."""
        flow = self.sessions.flow
        if flow is not None and self.cfg.adaptive:   # learnt in time order with what its
            flow.unsent(self, bot)                   # sessions decided as arrays teach it
        else:
            self.learn(bot, False)

    def may_change(self, bot: int, outcomes: list[bool], unknown: int = 0) -> bool:
        """Whether learning ``outcomes`` (sessions that ended, in order: True where a
        server took a recipient), and ``unknown`` more sessions whose outcome and place
        among them are unknown, could move the bot to another strategy (or stop it): the
        longest run of failures they could make, from the failures counted so far, with
        every unknown one a failure within it."""
        if not self.cfg.adaptive:
            return False
        run = longest = int(self.failures[bot])
        for success in outcomes:
            run = 0 if success else run + 1
            longest = max(longest, run)
        return longest + unknown >= self.cfg.failures_to_adapt

    def _route(self, strategy: str, isp: int,
               ) -> tuple[int | bool | None, Credentials | None, str | None]:
        """For the engines: destination address (None: the MX; False: the strategy is not
        available now), the credentials to log in with, and the address of their account
        (a submission server lets an authenticated client send only as its own account)."""
        world = self.world
        server, user = self._destination(strategy, isp)
        if server is None:
            return False, None, None
        if server < 0:
            return None, None, None
        isps = len(world.servers)   # numbered as ServerArrays numbers them
        host = world.servers[server] if server < isps else world.relays[server - isps]
        if user < 0:
            return host.address, None, None
        return (host.address, Credentials(account_name(user), host.password(user)),
                host.address_of(user))

    def _destination(self, strategy: str, isp: int) -> tuple[int | None, int]:
        """Where a session of a bot of ``isp`` goes, as ``ServerArrays`` numbers servers
        (the ISPs', then the open relays; -1: the recipients' MX; None: the strategy is not
        available now), and the account it logs in to there (-1: none)."""
        if strategy in UNAUTHENTICATED:
            return self._server(strategy, isp), -1
        # stolen_587 (the botnet's strategies were checked when it was made)
        account = self.world.credentials.draw(self.rng)
        return (None, -1) if account is None else account

    def _server(self, strategy: str, isp: int) -> int | None:
        """Where an unauthenticated session (``UNAUTHENTICATED``) of a bot of ``isp`` goes:
        the recipients' MX (-1), the ISP's server, or an open relay drawn from the route
        stream, as ``ServerArrays`` numbers them (the ISPs' servers, then the relays); None:
        there is no open relay to use."""
        if strategy == "direct":
            return -1
        if strategy == "isp_relay":
            return isp
        relays = self.world.relays
        if not relays:
            return None
        return len(self.world.servers) + int(self.rng.integers(len(relays)))

    def learn(self, bot: int, success: bool) -> None:
        """What a session that ended now teaches its bot."""
        if success:
            self.failures[bot] = 0
            return
        self.failures[bot] += 1
        if not self.cfg.adaptive or self.failures[bot] < self.cfg.failures_to_adapt:
            return
        self.failures[bot] = 0
        if self.strategy[bot] + 1 < len(self.cfg.strategies):
            self.strategy[bot] += 1
        else:
            # out of strategies: the bot stops and its share of the work goes to the others
            self.active[bot] = False


def build_botnets(world: SpamWorld, sessions: SpamSessions) -> list[Botnet]:
    """Infect each ISP's hosts at its bot_fraction and share them among the botnets."""
    cfg = world.scenario.spam
    if not cfg.botnets:
        return []
    rng = world.streams["bots.infect"]
    members: list[list[tuple[int, int]]] = [[] for _ in cfg.botnets]
    shares = np.cumsum([b.share for b in cfg.botnets])
    for isp, isp_cfg in enumerate(world.scenario.isps):
        count = round(isp_cfg.bot_fraction * isp_cfg.subscribers)
        for user in np.sort(rng.choice(isp_cfg.subscribers, size=count, replace=False)):
            net = min(int(np.searchsorted(shares, rng.random(), side="right")),
                      len(cfg.botnets) - 1)
            members[net].append((isp, int(user)))
    return [Botnet(world, b, members[i], sessions, i) for i, b in enumerate(cfg.botnets)]


class SpammerServers:
    """Spammer-owned servers of one hosting network: direct to MX from static addresses."""

    def __init__(self, world: SpamWorld, cfg: SpammerServerConfig, index: int,
                 sessions: SpamSessions):
        self.world, self.cfg, self.sessions = world, cfg, sessions
        self.net = world.plan.by_name[cfg.network]
        self.index = index
        self.addresses = [self.net.host(h) for h in range(cfg.count)]
        rate = cfg.count * cfg.rate_per_day / cfg.recipients_per_session / 86_400
        if cfg.count and rate > 0 and sessions.target_cumulative is not None:
            world.env.process(self.run(rate))

    def run(self, sessions_per_s: float) -> Process:
        world, cfg, sessions = self.world, self.cfg, self.sessions
        rng = world.streams[f"spammers.{self.index}"]
        compose = world.streams[f"spammers.compose.{self.index}"]
        route = world.streams[f"spammers.route.{self.index}"]
        if sessions.flow is not None:
            yield from self._ahead(sessions.flow, sessions_per_s, rng, compose)
            return
        messages = Ahead(lambda: sessions.messages(compose, cfg.recipients_per_session).each())
        draws = Ahead(lambda: zip(rng.exponential(1 / sessions_per_s, BLOCK).tolist(),
                                  rng.integers(cfg.count, size=BLOCK).tolist(), strict=True))
        senders = [Sender(cfg.network, cfg.network, address, self.net.isp,
                          SenderType.SPAMMER_SERVER, "direct", cfg.retry_4xx, cfg.retry_delay_s,
                          route, self.net.index) for address in self.addresses]
        while True:
            gap, host = draws.next()
            yield world.env.timeout(gap)
            sender = senders[host]
            mail = sessions.compose(sender, messages.next())
            world.env.process(self._send(sender, mail))

    def _ahead(self, flow: SpamFlow, sessions_per_s: float, rng: np.random.Generator,
               compose: np.random.Generator) -> Process:
        """At fidelity flow: nothing a session decides changes what the servers do next, so
        their sessions are drawn a block at a time, as ``run`` draws them one at a time, and
        handed over ahead of their instants (``SpamFlow.hand_ahead``)."""
        cfg = self.cfg
        kind = flow.kind(SenderKind(SenderType.SPAMMER_SERVER, cfg.network, cfg.network,
                                    "direct", cfg.retry_4xx, cfg.retry_delay_s))
        addresses = np.array(self.addresses)

        def block(t: float) -> float:
            at = instants(t, rng.exponential(1 / sessions_per_s, BLOCK))
            host = rng.integers(cfg.count, size=BLOCK)
            messages = self.sessions.messages(compose, cfg.recipients_per_session)
            flow.hand_ahead(at, np.full(BLOCK, kind), addresses[host],
                            np.full(BLOCK, self.net.isp), np.full(BLOCK, self.net.index),
                            np.full(BLOCK, -1), messages)
            return float(at[-1])

        yield from in_blocks(self.world.env, flow.end, block)

    def _send(self, sender: Sender, mail: Mail) -> Process:
        yield from self.sessions.run(sender, mail, None, None)
