"""Legitimate users of one ISP: an aggregated sending process, MUA submission, POP3 checks.

One SimPy process sends for the whole population (a Poisson process at the sum of the users'
rates, drawing the sender in proportion to its rate), so cost grows with messages, not with
users × time. Per-user state lives in numpy arrays. POP3 checks are scheduled only for users
with mail waiting, at their next periodic check time: checks of an empty maildrop change no
measure and are not simulated.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import simpy

from netsim.mail import (
    Kind,
    Mail,
    Outcome,
    SenderType,
    mechanism,
    pop3_session,
    smtp_session,
)
from netsim.net import text
from netsim.protocols import Credentials, POP3Client, SMTPClient

if TYPE_CHECKING:
    from netsim.world.build import World

Process = Generator[simpy.Event, Any, None]


def mistyped(domain: str) -> str:
    """A domain with two letters of its top-level label swapped: it does not exist."""
    head, _, tld = domain.rpartition(".")
    typo = tld[0] + tld[2] + tld[1] + tld[3:] if len(tld) > 2 else tld + tld[0]
    return f"{head}.{typo}"


class UserPopulation:
    """The subscribers of one ISP as mail users."""

    def __init__(self, world: World, isp: int):
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.users
        self.isp = isp
        self.name = world.scenario.isps[isp].name
        self.server = world.servers[isp]
        self.pool = world.dynamic_pool(isp)
        n = world.scenario.isps[isp].subscribers
        self.size = n
        streams = world.streams
        mean = self.cfg.sends_per_day / 86_400
        sigma = self.cfg.rate_sigma
        rates = mean * np.exp(sigma * streams[f"users.rate.{self.name}"].standard_normal(n)
                              - sigma * sigma / 2)
        self.cumulative_rate = np.cumsum(rates)
        self.mua_587 = streams[f"users.mua.{self.name}"].random(n) < self.cfg.mua_587_share
        interval = self.cfg.pop3_check_interval_s
        self.check_phase = streams[f"users.pop3.{self.name}"].random(n) * interval
        self.checking = np.zeros(n, dtype=bool)
        self.rcpt_pmf = np.cumsum(self.cfg.recipients_pmf)
        self.outbox: dict[int, tuple[Mail, dict[str, int]]] = {}
        self.server.on_new_mail = self.mail_arrived
        if n and self.cumulative_rate[-1] > 0:
            self.env.process(self.send_loop())

    def held_rows(self) -> set[int]:
        return {row for _, pending in self.outbox.values() for row in pending.values()}

    # -- sending -------------------------------------------------------------------------
    def send_loop(self) -> Process:
        rng = self.world.streams[f"users.send.{self.name}"]
        total = float(self.cumulative_rate[-1])
        while True:
            yield self.env.timeout(rng.exponential(1 / total))
            user = min(int(np.searchsorted(self.cumulative_rate, rng.random() * total,
                                           side="right")), self.size - 1)
            mail = self.compose(user, rng)
            self.env.process(self.submit(user, mail))

    def compose(self, user: int, rng: np.random.Generator) -> Mail:
        """A new message from ``user`` with drawn recipients and size, ready to submit."""
        cfg = self.cfg
        count = 1 + int(np.searchsorted(self.rcpt_pmf, rng.random(), side="right"))
        recipients: list[str] = []
        for _ in range(count):
            address = self._recipient(user, rng)
            if address not in recipients:
                recipients.append(address)
        size = max(300, int(rng.lognormal(math.log(cfg.size_median_bytes), cfg.size_sigma)))
        return self.new_mail(user, recipients, size)

    def new_mail(self, user: int, recipients: list[str], size: int) -> Mail:
        """Open the ledger rows of a message from ``user``; the caller submits it."""
        world = self.world
        mail = Mail(world.next_id(), Kind.LEGIT, SenderType.USER, self.server.address_of(user),
                    size, self.env.now)
        port = 587 if self.mua_587[user] else 25
        world.ledger.add(mail, recipients, origin_isp=self.name, origin_network="dynamic",
                         path=f"mua:{port}", first_hop_port=port)
        if world.tracer is not None:
            world.tracer.created(mail)
        return mail

    def send(self, user: int, recipients: list[str], size: int) -> Mail:
        """Send one message now, as ``user`` would from their MUA (for scripts and tests)."""
        mail = self.new_mail(user, recipients, size)
        self.env.process(self.submit(user, mail))
        return mail

    def _recipient(self, user: int, rng: np.random.Generator) -> str:
        world, cfg = self.world, self.cfg
        target = self.isp
        others = world.recipient_choice[self.isp]
        if others is not None and rng.random() < cfg.other_isp_share:
            target = int(others[0][np.searchsorted(others[1], rng.random(), side="right")])
        server = world.servers[target]
        pick = int(rng.integers(server.users))
        if target == self.isp and pick == user and server.users > 1:
            pick = (pick + 1) % server.users
        roll = rng.random()
        if roll < cfg.mistyped_user_share:
            return f"user{pick}x@{server.domain}"
        if roll < cfg.mistyped_user_share + cfg.mistyped_domain_share:
            return f"user{pick}@{mistyped(server.domain)}"
        return server.address_of(user=pick)

    def submit(self, user: int, mail: Mail) -> Process:
        """The MUA submits to the user's own server as configured (25, or 587 with AUTH)."""
        env, world, cfg = self.env, self.world, self.cfg
        server = self.server
        port = 587 if self.mua_587[user] else 25
        source = self.pool.host(user)
        pending = dict(mail.rows)
        self.outbox[mail.id] = (mail, pending)
        trace = world.tracer if world.tracer is not None and world.tracer.wants(mail) else None
        credentials = Credentials(f"user{user}", server.password(user)) if port == 587 else None
        helo = f"h{text(source).replace('.', '-')}.dyn.{server.domain}"
        for attempt in range(cfg.mua_retries + 1):
            if attempt:
                yield env.timeout(cfg.mua_retry_s)
            conn = world.network.connect(source, server.address, port, env.now)
            if trace is not None:
                trace.log(env.now, "connect", f"MUA {conn.describe()}")
            yield env.timeout(conn.delay_s)
            if not conn.is_open:
                cause = conn.rule.name if conn.rule is not None else "connection_refused"
                self._finish(mail, pending, Outcome.BLOCKED, 0, cause, trace)
                break
            client = SMTPClient(helo, mail.mail_from, list(pending), size=mail.size,
                                payload=mail, credentials=credentials)
            yield from smtp_session(env, conn, client, trace=trace, text_lines=mail.text_lines,
                                    on_settled=lambda c, at: self._settle(mail, pending, c, at,
                                                                          trace))
            if not pending:
                break
        if pending:
            self._finish(mail, pending, Outcome.EXPIRED, 0, "mua_gave_up", trace)
        del self.outbox[mail.id]

    def _settle(self, mail: Mail, pending: dict[str, int], client: SMTPClient, at: float,
                trace: Any) -> None:
        for address, reply in client.rcpt_replies.items():
            if reply.code < 400:
                del pending[address]
            elif reply.code >= 500:
                row = pending.pop(address)
                self.world.ledger.finish(row, Outcome.REJECTED, at, code=reply.code,
                                         stopped_by=mechanism(reply))
                if trace is not None:
                    trace.log(at, "outcome", f"{address}: rejected at submission ({reply.code})")

    def _finish(self, mail: Mail, pending: dict[str, int], outcome: Outcome, code: int,
                cause: str, trace: Any) -> None:
        for address, row in pending.items():
            self.world.ledger.finish(row, outcome, self.env.now, code=code, stopped_by=cause)
            if trace is not None:
                trace.log(self.env.now, "outcome", f"{address}: {outcome} ({cause})")
        pending.clear()

    # -- retrieval -----------------------------------------------------------------------
    def mail_arrived(self, user: int) -> None:
        """A maildrop became non-empty: the user's MUA will collect it at its next check."""
        if not self.checking[user]:
            self.checking[user] = True
            self.env.process(self.check(user))

    def check(self, user: int) -> Process:
        env, world, server = self.env, self.world, self.server
        interval = self.cfg.pop3_check_interval_s
        phase = float(self.check_phase[user])
        # The next periodic check strictly after now.
        wait = phase + (math.floor((env.now - phase) / interval) + 1) * interval - env.now
        yield env.timeout(wait)
        waiting = server.maildrops.peek(user)
        trace = None
        if world.tracer is not None and any(world.tracer.wants(cast(tuple[Mail, int], m.payload)[0])
                                             for m in waiting):
            trace = world.tracer
        source = self.pool.host(user)
        conn = world.network.connect(source, server.address, 110, env.now)
        if trace is not None:
            trace.log(env.now, "connect", f"MUA {conn.describe()}")
        yield env.timeout(conn.delay_s)
        if conn.is_open:
            client = POP3Client(f"user{user}", server.password(user), delete=True)
            yield from pop3_session(env, conn, client, trace=trace)
        self.checking[user] = False
        if server.maildrops.count(user):
            self.mail_arrived(user)
