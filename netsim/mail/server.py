"""A mail server as a SimPy component around the sans-I/O SMTP and POP3 engines.

One logical mail system per ISP: MX for its domain on 25, submission with AUTH on 587 where
offered, POP3 on 110, a bounded number of concurrent sessions, per-user maildrops and an
outbound queue. Accounts are implicit: user ``i`` of the ISP is ``user<i>@<domain>``, so a
server with a million users stores nothing per user until mail arrives for one.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import simpy

from netsim.draws import bounce_keys, keyed_exponential_one, salt
from netsim.mail.accounts import TYPO_NONE, account, parse_local, recipient_address
from netsim.mail.consult import Steps
from netsim.mail.hooks import IMAPHooks, POP3Hooks, SMTPHooks
from netsim.mail.ledger import Ledger, Outcome
from netsim.mail.mailbox import MailboxUsage, Maildrops
from netsim.mail.message import Kind, Mail, SenderType
from netsim.mail.policy import InboundPolicy, default_policies
from netsim.mail.queue import OutboundQueue, RetryPolicy
from netsim.mail.trace import Tracer, following
from netsim.net import Network, Resolver
from netsim.protocols import IMAPServer, POP3Server, SMTPServer, StoredMessage
from netsim.protocols.smtp_server import auth_required


@dataclass(frozen=True, slots=True)
class ServerSettings:
    session_slots: int
    processing_s: float
    max_recipients: int
    message_size_limit: int
    server_bandwidth_bps: float
    scan_mean_s: float = 0.0
    auth_failure_limit: int = 5         # failed logins from one address before 454
    auth_failure_window_s: float = 600.0
    per_command: bool = True   # fidelity: one event per exchange, or one per session
    direct: bool = False       # fidelity flow: sessions decided by the hooks, no dialogue


BOUNCE_SIZE = 2_000   # bytes of a delivery status notification


class DeliverySink(Protocol):
    """Takes deliveries instead of the maildrops (``netsim.world.retrieval``)."""

    def add_engines(self, server: MailServer, users: list[int], rows: list[int], at: float,
                    size: int) -> None: ...


class Outbound(Protocol):
    """Where a server puts what it accepts for other domains: its ``OutboundQueue``, or at
    fidelity flow the flow path's queues (``netsim.world.flow_queue.HandOff``)."""

    resolver: Resolver

    def enqueue(self, mail: Mail, recipients: list[str], at: float) -> None: ...

    def held_rows(self) -> set[int]: ...


class Listener(NamedTuple):
    """What ``Network.listen`` binds: the server and the port's role."""

    server: MailServer
    port: int


class MailServer:
    """The mail system of one ISP (``mail.<domain>``)."""

    def __init__(self, env: simpy.Environment, *, isp: str, domain: str, address: int,
                 users: int, own_subnets: frozenset[int], settings: ServerSettings,
                 network: Network, resolver: Resolver, ledger: Ledger, retry: RetryPolicy,
                 rng: np.random.Generator, ids: Callable[[], int],
                 tracer: Tracer | None = None, hostname: str | None = None,
                 scan_rng: np.random.Generator | None = None):
        self.env = env
        self.isp = isp
        self.domain = domain
        self.hostname = hostname or f"mail.{domain}"
        self.address = address
        self.users = users
        self.own_subnets = own_subnets
        self.settings = settings
        self.processing_s = settings.processing_s
        self.network = network
        self.ledger = ledger
        self.tracer = tracer
        self.next_id = ids
        self.slots = simpy.Resource(env, settings.session_slots)
        self.maildrops = Maildrops()
        self._auth_failures: dict[object, deque[float]] = {}   # client → failed logins
        self.policies: list[InboundPolicy] = default_policies()
        self.steps: Steps | None = None   # the policies by step (``netsim.mail.consult``)
        self.queue: Outbound = OutboundQueue(self, resolver, retry, rng)
        # called with the user and the delivery instant when a maildrop stops being empty
        self.on_new_mail: Callable[[int, float], None] = lambda user, at: None
        self.scan_salt = salt(scan_rng) if scan_rng is not None else 0
        # at fidelity flow: where deliveries go to be retrieved (no maildrop, no POP3 session)
        self.retrievals: DeliverySink | None = None
        # the octets its mailboxes hold over time, where a quota reads them
        self.usage: MailboxUsage | None = None
        # the instant the server handles the current command; policies read it (``now``)
        self.instant: float | None = None
        self.stats_sessions = 0
        self.stats_wait_s = 0.0        # total time SMTP clients waited for a session slot
        self.stats_smtp_sessions = 0
        self.pop3_security = "plaintext"   # or "apop", "stls", "pop3s"
        self.imap_security = "plaintext"   # or "starttls", "imaps"
        # POP3 logins that open relay (POP-before-SMTP): client address → instants, sorted
        self.pop_logins: dict[int, list[float]] = {}
        self._pop3_sessions = 0

    @property
    def now(self) -> float:
        """When the server acts: the instant of the command it is handling (set by the
        session adapter, so policies see the same time at either fidelity), else the clock."""
        return self.env.now if self.instant is None else self.instant

    def scan_time(self, key: int) -> float:
        """Time to scan the message with ``key`` after the final dot (exponential, keyed by
        the message: the same at every fidelity; 0 when off)."""
        mean = self.settings.scan_mean_s
        if mean <= 0:
            return 0.0
        return keyed_exponential_one(key, self.scan_salt, mean)

    def listen(self, port: int, from_s: float = 0.0) -> None:
        """Accept connections on a port (25 and 587 SMTP, 110 and 995 POP3) from ``from_s``
        on: a submission port opens when the ISP's policy comes into force."""
        self.network.listen(self.address, port, Listener(self, port), from_s=from_s)

    # -- accounts ----------------------------------------------------------------------
    def address_of(self, user: int) -> str:
        return recipient_address(self.domain, user, TYPO_NONE)

    def user_index(self, name: str) -> int | None:
        """The index of an account name (``user7`` or ``user7@domain``), None if unknown
        (``netsim.mail.accounts``: the rule the flow path applies to its arrays)."""
        local, at, domain = name.rpartition("@")
        if at:
            if domain.lower() != self.domain:   # domain_of, inline: asked per recipient
                return None
            name = local
        found = account(*parse_local(name), self.users)
        return None if found < 0 else found

    def _account(self, address: str) -> int:
        found = self.user_index(address)
        return -1 if found is None else found

    def password(self, user: int) -> str:
        """The account's password (plain text, as POP3 and AUTH PLAIN carry it)."""
        return f"pw-{self.domain}-{user}"

    def password_ok(self, name: str, password: str) -> bool:
        """Whether ``password`` is the account's (for POP3 and SMTP AUTH alike)."""
        user = self.user_index(name)
        return user is not None and password == self.password(user)

    def auth_failed(self, client: object, at: float) -> None:
        """Count a failed SMTP AUTH login from ``client`` at ``at``."""
        self._auth_failures.setdefault(client, deque()).append(at)

    def auth_throttled(self, client: object, at: float) -> bool:
        """Whether ``client`` failed ``auth_failure_limit`` logins within the last
        ``auth_failure_window_s``: its AUTH is refused (454) until they age out."""
        failures = self._auth_failures.get(client)
        if not failures:
            return False
        while failures and failures[0] <= at - self.settings.auth_failure_window_s:
            failures.popleft()
        return len(failures) >= self.settings.auth_failure_limit

    @property
    def pop3_port(self) -> int:
        """Where the server serves POP3: 995 for POP3S, else 110."""
        return 995 if self.pop3_security == "pop3s" else 110

    @property
    def imap_port(self) -> int:
        """Where the server serves IMAP: 993 for IMAPS, else 143."""
        return 993 if self.imap_security == "imaps" else 143

    def pop_login(self, client: int, at: float) -> float:
        """When ``client`` last logged in by POP3 before sending, at or before ``at`` (-inf:
        never): the login POP-before-SMTP opens relay for."""
        times = self.pop_logins.get(client)
        if not times:
            return -math.inf
        k = bisect.bisect_right(times, at)
        return times[k - 1] if k else -math.inf

    def record_pop_login(self, client: int, at: float) -> None:
        """A mail client logged in by POP3 from ``client`` at ``at`` before sending (the
        flow path records a minute's logins ahead of it: kept sorted, read up to an
        instant)."""
        bisect.insort(self.pop_logins.setdefault(client, []), at)

    def client_bps(self, client_address: int) -> float:
        """The rate of the client's network (``netsim.mail.session.transfer`` takes the
        slower of it and the server's)."""
        return self.network.plan.subnet_of(client_address).bandwidth_bps

    # -- engines -----------------------------------------------------------------------
    def smtp_engine(self, port: int, client_address: object, hooks: SMTPHooks | None = None,
                    max_errors: int = 10, *, starttls: bool = False, tls: bool = False,
                    auth_requires_tls: bool = False) -> tuple[SMTPServer, SMTPHooks]:
        """An SMTP engine for one session on ``port``, with this server's settings; the live
        lab passes hooks of its own, and where it has TLS offers STARTTLS (``starttls``),
        serves implicit TLS (``tls``: port 465) and may keep AUTH inside TLS."""
        hooks = hooks or SMTPHooks(self)
        engine = SMTPServer(self.hostname, hooks, client_address=client_address, port=port,
                            auth_required=auth_required(port), tls=tls or port == 465,
                            starttls=starttls, auth_requires_tls=auth_requires_tls,
                            max_recipients=self.settings.max_recipients,
                            max_message_size=self.settings.message_size_limit,
                            max_errors=max_errors)
        return engine, hooks

    def pop3_engine(self, port: int, client_address: object, hooks: POP3Hooks | None = None,
                    max_errors: int = 10, stamp: str = "", *, stls: bool | None = None,
                    tls: bool = False, allow_plaintext: bool = True,
                    ) -> tuple[POP3Server, POP3Hooks]:
        """A POP3 engine for one session; the APOP timestamp is unique per session. The lab,
        offers STLS where it has TLS (``stls``; None: as the scenario's pop3_security says),
        serves implicit TLS (``tls``: 995) and may refuse USER/PASS outside TLS."""
        self._pop3_sessions += 1
        hooks = hooks or POP3Hooks(self)
        engine = POP3Server(self.hostname, hooks, client_address=client_address, port=port,
                            timestamp=f"<{self._pop3_sessions}.{stamp or self.isp}"
                                      f"@{self.hostname}>",
                            stls=self.pop3_security == "stls" if stls is None else stls,
                            tls=tls or port == 995, allow_plaintext=allow_plaintext,
                            max_errors=max_errors)
        return engine, hooks

    def imap_engine(self, port: int, client_address: object, hooks: IMAPHooks | None = None,
                    max_errors: int = 10, *, starttls: bool | None = None, tls: bool = False,
                    allow_plaintext: bool = True) -> tuple[IMAPServer, IMAPHooks]:
        """An IMAP engine for one session over the same maildrops as POP3. The lab offers
        STARTTLS where it has TLS (``starttls``; None: as the scenario's imap_security
        says), serves implicit TLS (``tls``: 993) and may refuse LOGIN outside TLS."""
        hooks = hooks or IMAPHooks(self)
        engine = IMAPServer(self.hostname, hooks, client_address=client_address, port=port,
                            starttls=(self.imap_security == "starttls" if starttls is None
                                      else starttls),
                            tls=tls or port == 993, allow_plaintext=allow_plaintext,
                            max_errors=max_errors)
        return engine, hooks

    # -- custody -------------------------------------------------------------------------
    def accept(self, mail: Mail, recipients: list[str], at: float, *, junk: bool = False,
               accounts: Mapping[str, int] | None = None) -> None:
        """Take responsibility for accepted recipients: local ones into maildrops (or the
        junk folder, which POP3 does not serve), the rest into the outbound queue.
        ``accounts`` may give the account a local recipient names (found at RCPT)."""
        if mail.origin != self.isp:
            for address in recipients:
                self.ledger.taken_outside(mail.rows[address])
        local: list[str] = []
        remote: list[str] = []
        domain = self.domain
        for address in recipients:   # domain_of, inline: once per recipient
            (local if address.rpartition("@")[2].lower() == domain else remote).append(address)
        if local:
            self.deliver_local(mail, local, at, junk=junk, accounts=accounts)
        if remote:
            self.queue.enqueue(mail, remote, at)

    def deliver_local(self, mail: Mail, addresses: list[str], at: float, *,
                      junk: bool = False, accounts: Mapping[str, int] | None = None) -> None:
        """Recipients of this server's domain, accepted at ``at``: into their maildrops (or
        the junk folder). ``accounts`` may give the account each names."""
        known = accounts if accounts is not None else {}
        users = [known[a] if a in known else self._account(a) for a in addresses]
        if min(users) < 0:   # a policy lets nothing through for unknown users
            unknown = addresses[users.index(min(users))]
            raise AssertionError(f"{self.hostname}: no mailbox for {unknown}")
        rows = [mail.rows[address] for address in addresses]
        self.ledger.finish_many(rows, Outcome.JUNKED if junk else Outcome.DELIVERED, at)
        trace = following(self.tracer, mail)
        if trace is not None:
            where = "junk folder" if junk else "maildrop"
            for address in addresses:
                trace.log(at, "outcome", f"{address}: delivered to {where} at "
                          f"{self.hostname}", self.hostname)
        if junk:
            return
        if self.usage is not None:   # what a quota reads
            n = len(users)
            self.usage.add(np.array(users), np.full(n, at), np.full(n, mail.size))
        if self.retrievals is not None:
            self.retrievals.add_engines(self, users, rows, at, mail.size)
            return
        for user, row in zip(users, rows, strict=True):
            stored = StoredMessage(f"{mail.id}.{row}", mail.size, (mail, row))
            if self.maildrops.add(user, stored, at):
                self.on_new_mail(user, at)

    def fail(self, mail: Mail, rows: dict[str, int], outcome: Outcome, at: float, *,
             code: int, stopped_by: str) -> None:
        """Final failure of recipients in this server's custody; bounce to the sender."""
        trace = following(self.tracer, mail)
        for address, row in rows.items():
            self.ledger.finish(row, outcome, at, code=code, stopped_by=stopped_by)
            if trace is not None:
                trace.log(at, "outcome", f"{address}: {outcome} ({stopped_by}, {code})",
                          self.hostname)
        if mail.mail_from:   # never bounce a bounce
            self.bounce(mail, at)

    def bounce(self, mail: Mail, at: float) -> None:
        """A delivery status notification from MAILER-DAEMON to the original sender."""
        dsn = Mail(self.next_id(), Kind.BOUNCE, SenderType.MAILER_DAEMON, "", BOUNCE_SIZE,
                   at, origin=self.isp, parent=mail.id,
                   key=int(bounce_keys(np.array([mail.key]))[0]))
        self.ledger.add(dsn, [mail.mail_from], origin_isp=self.isp, origin_network=self.isp,
                        path="bounce", first_hop_port=0)
        if self.tracer is not None:
            self.tracer.created(dsn)
        self.accept(dsn, [mail.mail_from], at)

    def held_rows(self) -> set[int]:
        return self.queue.held_rows()
