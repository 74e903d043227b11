"""Legitimate users of one ISP: an aggregated sending process, MUA submission, POP3 checks.

One SimPy process sends for the whole population (a Poisson process at the sum of the users'
rates, drawing the sender in proportion to its rate), so cost grows with messages, not with
users × time. Per-user state lives in numpy arrays. POP3 checks are scheduled only for users
with mail waiting, at their next periodic check time: checks of an empty maildrop change no
measure and are not simulated.
"""

from __future__ import annotations

from typing import Protocol, cast

import numpy as np

from netsim.mail import Kind, Mail, MailServer, SenderType, imap_session, pop3_session
from netsim.mail.accounts import account_name
from netsim.mail.outbox import attempt, blocked, refuse
from netsim.mail.trace import Tracer, following
from netsim.net import NetKind, Subnet, text
from netsim.protocols import Credentials, FetchPlan, IMAPClient, POP3Client, Reply
from netsim.world.credentials import auth_captured
from netsim.world.senders import Process, SendersWorld
from netsim.world.workload import (
    AUTH,
    BATCH_S,
    EXPOSES,
    HOME,
    HOME_MTA,
    PATHS,
    POP_FIRST,
    PORT,
    PROVIDER,
    TARGET,
    Batch,
    Workload,
    next_check,
)


class UsersWorld(SendersWorld, Protocol):
    """What users' mail clients read of the world, besides what every sender reads: the
    address a user writes for a recipient, the mail providers that are not access ISPs
    (and the account a user has at one), and the MTAs users run at home."""

    @property
    def providers(self) -> list[MailServer]: ...

    def address(self, isp: int, user: int, typo: int) -> str: ...

    def customer(self, isp: int, user: int) -> int: ...

    def home_mta(self, isp: int, user: int) -> MailServer: ...


def mua_helo(source: int, network: str) -> str:
    """The name a user's mail client greets its server with (EHLO)."""
    return f"h{text(source).replace('.', '-')}.{network}.example"


class MailClients:
    """The mail clients (MUAs) of one ISP's users: how each submits a message to its own
    server, on the engine path (the flow path hands them the messages of providers'
    customers: their providers' servers are the engines')."""

    def __init__(self, world: UsersWorld, isp: int, workload: Workload):
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.users
        self.isp = isp
        self.name = world.scenario.isps[isp].name
        self.server = world.servers[isp]
        self.pool = world.dynamic_pool(isp)
        self.workload = workload
        self.visited = [world.plan.by_name[v.name] for v in world.scenario.visited_networks]
        self.eavesdrop = [v.eavesdrop_probability for v in world.scenario.visited_networks]
        self.server_security = world.scenario.isps[isp].mail_server.submission_security

    def path(self, user: int, at: float) -> int:
        """How the user's message written at ``at`` is submitted (a code of ``PATHS``)."""
        return int(self.workload.path(user, at))

    def pop3_client(self, user: int, *, fetch: bool = True) -> POP3Client:
        """The user's MUA as a POP3 client of its server's login security."""
        security = self.server.pop3_security
        return POP3Client(account_name(user), self.server.password(user), delete=True,
                          use_apop=security == "apop", use_stls=security == "stls",
                          tls=security == "pop3s", fetch=fetch)

    def imap_client(self, user: int) -> IMAPClient:
        """The user's mail client as an IMAP client of its server's login security: LOGIN,
        the unseen messages fetched (which marks them seen), nothing deleted."""
        security = self.server.imap_security
        return IMAPClient(account_name(user), self.server.password(user), mechanism="LOGIN",
                          use_starttls=security == "starttls", tls=security == "imaps",
                          fetch=FetchPlan.UNSEEN)

    def submit(self, user: int, mail: Mail, where: tuple[int, Subnet], capture: float,
               first_round: int = 0) -> Process:
        """The MUA submits to the user's server as configured (the ISP's on 25, 25 with
        AUTH, 25 after a POP3 login, or 587 with AUTH; a provider's with AUTH), from
        wherever the user is, and retries a temporary failure a few times; or the user's own
        MTA takes the message and queues it. ``first_round``: the attempt to start at (the
        flow path hands over a retry)."""
        env, world, cfg = self.env, self.world, self.cfg
        path = self.path(user, mail.created)
        if TARGET[path] == HOME_MTA:
            world.home_mta(self.isp, user).accept(mail, mail.recipients, env.now)
            return
        server, account = self.server, user
        if TARGET[path] == PROVIDER:
            assert self.workload.provider is not None, "a provider's customer"
            server = world.providers[int(self.workload.provider[user])]
            account = world.customer(self.isp, user)
        port = int(PORT[path])
        source, net = where
        pending = world.outbox.hold(mail)
        trace = following(world.tracer, mail)
        credentials = (Credentials(account_name(account), server.password(account))
                       if AUTH[path] else None)
        helo = mua_helo(source, net.name)
        refused: dict[str, Reply] = {}
        for round_ in range(first_round, cfg.mua_retries + 1):
            if round_ > first_round:
                yield env.timeout(cfg.mua_retry_s)
            if POP_FIRST[path]:
                yield from self._pop_login(user, source, trace)
            conn, refused = yield from attempt(env, world.network, world.ledger, source,
                                               server.address, port, mail, pending,
                                               client_origin=mail.origin, helo=helo,
                                               credentials=credentials, trace=trace,
                                               prefix="MUA ")
            if not conn.is_open:
                blocked(world.ledger, mail, pending, conn, env.now, trace)
                break
            if EXPOSES[path]:
                self._exposed(user, net, capture)
            refuse(world.ledger, mail, pending,
                   {a: r for a, r in refused.items() if r.is_permanent}, env.now, trace)
            if not pending:
                break
        # the user gives up on what is still refused with a 4xx after the last retry
        refuse(world.ledger, mail, pending, {a: refused[a] for a in pending}, env.now, trace)
        world.outbox.drop(mail)

    def _pop_login(self, user: int, source: int, trace: Tracer | None) -> Process:
        """POP-before-SMTP: the MUA logs in by POP3 and quits; the server keeps the login's
        address and instant (``MailServer.record_pop_login``)."""
        env, server = self.env, self.server
        conn = self.world.network.connect(source, server.address, server.pop3_port, env.now)
        if trace is not None:
            trace.connected(conn, env.now, text(source), server.hostname, "MUA ")
        yield env.timeout(conn.delay_s)
        if conn.is_open:
            login = yield from pop3_session(env, conn, self.pop3_client(user, fetch=False),
                                            trace=trace)
            if login is not None:
                server.record_pop_login(source, login)

    def _exposed(self, user: int, net: Subnet, capture: float) -> None:
        """Plaintext SMTP AUTH crossed a shared network: an eavesdropper captures it when
        the message's ``capture`` draw falls below the network's probability."""
        shared = net.kind is NetKind.VISITED
        probability = self.eavesdrop[self.visited.index(net)] if shared else 0.0
        if auth_captured(capture, probability, self.server_security != "tls"):
            self.world.credentials.add((self.isp, user), "smtp")


class UserPopulation(MailClients):
    """The subscribers of one ISP as mail users, on the engine path: each message of the
    workload is submitted through SimPy and the SMTP engines; POP3 checks collect mail."""

    def __init__(self, world: UsersWorld, isp: int, workload: Workload):
        super().__init__(world, isp, workload)
        self.size = n = workload.size
        self.check_phase = workload.check_phase
        self.checking = np.zeros(n, dtype=bool)
        self.roam_rng = world.streams[f"users.roam.{self.name}"]
        self.server.on_new_mail = self.mail_arrived

    def location(self, user: int) -> tuple[int, Subnet]:
        """Where the user checks mail from: home, or (roaming_share of the time) a visited
        network."""
        if self.visited and self.roam_rng.random() < self.cfg.roaming_share:
            k = int(self.roam_rng.integers(len(self.visited)))
            net = self.visited[k]
            return net.host(int(self.roam_rng.integers(net.prefix.num_addresses - 2))), net
        return self.pool.host(user), self.pool

    # -- sending -------------------------------------------------------------------------
    def send_loop(self) -> Process:
        """Replay the workload, one batch of simulated time after another."""
        start = 0.0
        while True:
            batch = self.workload.batch(start, start + BATCH_S)
            for i in range(len(batch)):
                yield self.env.timeout(float(batch.created[i]) - self.env.now)
                self.send_from(batch, i)
            start += BATCH_S
            yield self.env.timeout(start - self.env.now)

    def send_from(self, batch: Batch, i: int) -> None:
        """Submit message ``i`` of a batch now."""
        world = self.world
        user = int(batch.user[i])
        k = int(batch.where[i])
        net = self.pool if k == HOME else self.visited[k]
        where = (net.host(int(batch.host[i])), net)
        recipients = [world.address(int(batch.rcpt_isp[r]), int(batch.rcpt_user[r]),
                                    int(batch.typo[r])) for r in batch.recipients(i)]
        mail = self.new_mail(user, recipients, int(batch.size[i]), where,
                             key=int(batch.key[i]))
        self.env.process(self.submit(user, mail, where, float(batch.capture[i])))

    def new_mail(self, user: int, recipients: list[str], size: int,
                 where: tuple[int, Subnet], key: int = 0) -> Mail:
        """Open the ledger rows of a message from ``user`` at ``where``; the caller submits."""
        world = self.world
        sender = SenderType.USER if where[1] is self.pool else SenderType.ROAMING
        mail = Mail(world.next_id(), Kind.LEGIT, sender, self.server.address_of(user),
                    size, self.env.now, origin=self.name, key=key)
        path = self.path(user, mail.created)
        world.ledger.add(mail, recipients, origin_isp=self.name, origin_network=where[1].name,
                         path=PATHS[path], first_hop_port=int(PORT[path]))
        if world.tracer is not None:
            world.tracer.created(mail)
        return mail

    def send(self, user: int, recipients: list[str], size: int,
             source: Subnet | None = None) -> Mail:
        """Send one message now, as ``user`` would from their MUA (for scripts and tests);
        ``source`` puts the user on a visited network instead of at home."""
        net = source or self.pool
        where = (net.host(user if net is self.pool else 0), net)
        mail = self.new_mail(user, recipients, size, where)
        self.env.process(self.submit(user, mail, where, capture=1.0))
        return mail

    # -- retrieval -----------------------------------------------------------------------
    def mail_arrived(self, user: int, at: float) -> None:
        """Mail for ``user`` was delivered at ``at``: the MUA collects it at its next check."""
        if not self.checking[user]:
            self.checking[user] = True
            self.env.process(self.check(user, at))

    def check(self, user: int, after: float) -> Process:
        env, world, server = self.env, self.world, self.server
        interval = self.cfg.pop3_check_interval_s
        phase = float(self.check_phase[user])
        # The user's next periodic check strictly after the delivery.
        after = max(after, env.now)
        wait = float(next_check(phase, interval, after)) - env.now
        yield env.timeout(wait)
        trace = None   # follow the session if it may carry a traced message
        if world.tracer is not None and any(
                world.tracer.wants(cast(tuple[Mail, int], m.payload)[0])
                for m in server.maildrops.peek(user)):
            trace = world.tracer
        # Where the user checks from matters for latency; captures of roaming logins are
        # counted by the aggregated capture process (netsim.world.credentials).
        source, _ = self.location(user)
        imap = self.workload.imap is not None and bool(self.workload.imap[user])
        port = server.imap_port if imap else server.pop3_port
        conn = world.network.connect(source, server.address, port, env.now)
        if trace is not None:
            trace.connected(conn, env.now, text(source), server.hostname, "MUA ")
        yield env.timeout(conn.delay_s)
        if conn.is_open and imap:
            yield from imap_session(env, conn, self.imap_client(user), trace=trace)
        elif conn.is_open:
            yield from pop3_session(env, conn, self.pop3_client(user), trace=trace)
        self.checking[user] = False
        if server.maildrops.waiting(user):
            self.mail_arrived(user, env.now)
