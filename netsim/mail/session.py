"""SimPy adapters that run a client engine against a server engine over one connection.

The engines are sans-I/O; these generators only move commands and replies between them and
apply delays. A session costs the TCP handshake (already paid by ``Network.connect``), a wait
for one of the server's session slots, the greeting, then one round trip plus the server's
processing time per command, plus the transfer time of the message data.

Both engines are stepped at the moment a command is sent: the server's effects (a delivery,
a queued message) and the client's view of the reply happen in the same instant, so a message
is never in two custodies at once; the times written to the ledger and the trace are computed
exactly, as the instant each side would see it.

Fidelity ``command`` makes every exchange one SimPy event. Fidelity ``session`` runs the whole
dialogue through the engines in one step and makes only its end an event: the same engines,
replies and computed instants, a fraction of the events. Policies see each command's instant
at either fidelity (``MailServer.now``); what differs is only what other processes can
observe in between: mail delivered during a POP3 session waits for the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import simpy

from netsim.mail.hooks import SMTPHooks
from netsim.mail.message import Mail
from netsim.mail.trace import Tracer
from netsim.net import Connection, Network, text
from netsim.protocols import (
    Content,
    Credentials,
    Envelope,
    POP3Client,
    Reply,
    Retr,
    SMTPClient,
    SMTPSession,
)
from netsim.protocols.replies import (
    S452_TOO_MANY_RCPTS,
    S530_AUTH_REQUIRED,
    S535_AUTH_INVALID,
    S552_SIZE_EXCEEDED,
)

if TYPE_CHECKING:
    from netsim.mail.server import MailServer

SessionProcess = Generator[simpy.Event, Any, None]


def smtp_session(env: simpy.Environment, conn: Connection, client: SMTPClient, *,
                 on_settled: Callable[[SMTPClient, float], None],
                 trace: Tracer | None = None, text_lines: Callable[[], list[str]] | None = None,
                 ) -> SessionProcess:
    """Run an SMTP dialogue on an open connection to a MailServer's listener.

    ``on_settled(client, at)`` is called once, at the instant every recipient has a reply
    that decides it; the caller releases or reschedules its recipients there.
    """
    server: MailServer = conn.listener.server
    port: int = conn.port
    one_way = conn.one_way_s
    proc = server.processing_s
    bps = server.bandwidth_bps(conn.src)
    per_command = server.settings.per_command
    recipients = len(client.rcpt_to)
    server.stats_sessions += 1
    server.stats_smtp_sessions += 1
    if trace is not None:   # a trace is not over while its dialogue runs (Tracer.over)
        trace.dialogues += 1
    asked = env.now
    with server.slots.request() as slot:
        yield slot
        server.stats_wait_s += env.now - asked
        t = env.now   # the dialogue's clock: env.now, or ahead of it in session fidelity
        engine, hooks = server.smtp_engine(port, conn.src)
        hooks.at = server.instant = t + proc
        reply = engine.greeting()
        server.instant = None
        wait = one_way + proc
        if trace is not None:
            party = label(server.network, conn.src)
            _log_replies(trace, t + wait, reply.wire_lines(), server.hostname, party)
        if per_command:
            yield env.timeout(wait)
            t = env.now
        else:
            t += wait
        command = client.receive(reply)
        settled = False
        while command is not None:
            content = isinstance(command, Content)
            transfer = command.size * 8 / bps if isinstance(command, Content) else 0.0
            # the server scans a message before it answers the final dot
            work = proc + (server.scan_time(_key(command)) if content else 0.0)
            arrive = t + one_way + transfer
            hooks.at = server.instant = arrive + work
            if trace is not None:
                sent = ([*(text_lines() if text_lines else []), "."]
                        if content else [command.to_line()])
                for line in sent:
                    trace.log(t, "smtp", f"C: {line}", party, server.hostname)
            reply = engine.handle(command)
            server.instant = None
            nxt = client.receive(reply)
            if not settled and len(client.rcpt_replies) == recipients:
                settled = True
                on_settled(client, hooks.at)
            if trace is not None:
                _log_replies(trace, hooks.at + one_way, reply.wire_lines(), server.hostname,
                             party)
            if per_command:
                yield env.timeout(2 * one_way + transfer + work)
                t = env.now
            else:
                t += 2 * one_way + transfer + work
            command = nxt
        if not settled:
            on_settled(client, t)
        if not per_command:
            yield env.timeout(t - env.now)   # the whole dialogue as one event; slot held
    if trace is not None:
        trace.dialogues -= 1


class Replies(NamedTuple):
    """What ``on_settled`` reads of a client: each recipient's deciding reply."""

    rcpt_replies: dict[str, Reply]


def direct_smtp_session(env: simpy.Environment, conn: Connection, mail: Mail,
                        recipients: list[str], *, helo: str,
                        credentials: Credentials | None,
                        on_settled: Callable[[Replies, float], None]) -> SessionProcess:
    """One SMTP session decided by the server's hooks without the engines' dialogue (the
    senders that run through SimPy at fidelity flow). The engines' rules for what a client
    of the simulation sends: the greeting (a 554 or 421 from the connect policies), EHLO,
    AUTH PLAIN with an initial response, MAIL FROM (530 without AUTH on 587, 552 over the
    size limit), one RCPT a recipient (452 past the recipient limit, else the policies),
    DATA and the message (the data policies, then delivery), QUIT (not after a 421); the
    instants of :func:`smtp_session` at session fidelity, without its wait for a slot.
    ``tests/test_fidelity.py`` compares both on the benchmark country."""
    server: MailServer = conn.listener.server
    port = conn.port
    one_way = conn.one_way_s
    proc = server.processing_s
    step = 2 * one_way + proc
    settings = server.settings
    # at fidelity flow no session waits for a slot (docs/fidelity.md): counted, not queued
    server.stats_sessions += 1
    server.stats_smtp_sessions += 1
    t = env.now
    hooks = SMTPHooks(server)
    session = SMTPSession(client_address=conn.src, port=port,
                          server_hostname=server.hostname, tls=port == 465)
    # each hook is asked with the server's clock at the instant of its command; nothing else
    # runs until this session's one event, so the clock is put back once, at the end
    replies: dict[str, Reply] = {}
    hooks.at = server.instant = t + proc
    refusal = hooks.on_connect(session)
    t += one_way + proc
    if refusal is None:
        session.helo_name, session.esmtp = helo, True
        t += step                                                    # EHLO
        if credentials is not None:                                  # AUTH PLAIN
            hooks.at = server.instant = t + one_way + proc
            if server.password_ok(credentials.username, credentials.password):
                session.authenticated_user = credentials.username
            else:
                refusal = S535_AUTH_INVALID
            t += step
    if refusal is None:                                              # MAIL FROM
        if port == 587 and session.authenticated_user is None:
            refusal = S530_AUTH_REQUIRED
        elif mail.size > settings.message_size_limit:
            refusal = S552_SIZE_EXCEEDED
        else:
            hooks.at = server.instant = t + one_way + proc
            refusal = hooks.check_mail(session, mail.mail_from)
        t += step
    if refusal is not None:
        replies = dict.fromkeys(recipients, refusal)
        if refusal.code != 421:
            t += step                                                # QUIT
    else:
        session.mail_from = mail.mail_from
        rcpt_checks = hooks.checks("check_rcpt")
        for address in recipients:                                   # RCPT
            reply: Reply | None = None
            if len(session.rcpt_to) >= settings.max_recipients:
                reply = S452_TOO_MANY_RCPTS
            else:   # hooks.check_rcpt, inline: the one step taken per recipient
                hooks.at = server.instant = t + one_way + proc
                for check in rcpt_checks:
                    reply = check(server, session, address)
                    if reply is not None:
                        break
            if reply is None:
                session.rcpt_to.append(address)
            else:
                replies[address] = reply
            t += step
        if session.rcpt_to:
            t += step                                                # DATA
            work = proc + server.scan_time(mail.key)
            transfer = mail.size * 8 / server.bandwidth_bps(conn.src)
            envelope = Envelope(mail.mail_from, tuple(session.rcpt_to), mail.size, mail,
                                helo, session.authenticated_user)
            hooks.at = server.instant = t + one_way + transfer + work
            replies.update(dict.fromkeys(session.rcpt_to, hooks.deliver(session, envelope)))
            t += 2 * one_way + transfer + work
        t += step                                                    # QUIT
    server.instant = None
    on_settled(Replies(replies), t)
    yield env.timeout(t - env.now)   # the whole dialogue as one event


def _key(content: object) -> int:
    """The message's key, for its keyed scan time (0 for a payload that is not a Mail)."""
    return int(getattr(getattr(content, "payload", None), "key", 0))


def _log_replies(trace: Tracer, at: float, lines: list[str], src: str, dst: str) -> None:
    for line in lines:
        trace.log(at, "smtp", f"S: {line}", src, dst)


def label(network: Network, address: int) -> str:
    """A party's name in a trace: a mail server's hostname, else the host's address."""
    listener = network.listener(address, 25)
    return listener.server.hostname if listener is not None else text(address)


def pop3_session(env: simpy.Environment, conn: Connection, client: POP3Client, *,
                 trace: Tracer | None = None) -> SessionProcess:
    """Run a POP3 dialogue; retrievals are recorded by the server's hooks as RETR is answered."""
    server: MailServer = conn.listener.server
    one_way = conn.one_way_s
    proc = server.processing_s
    bps = server.bandwidth_bps(conn.src)
    per_command = server.settings.per_command
    server.stats_sessions += 1
    if trace is not None:   # a trace is not over while its dialogue runs (Tracer.over)
        trace.dialogues += 1
    with server.slots.request() as slot:
        yield slot
        t = env.now   # the dialogue's clock: env.now, or ahead of it in session fidelity
        engine, hooks = server.pop3_engine(conn.port, conn.src)
        hooks.at = t + proc
        reply = engine.greeting()
        if trace is not None:
            party = label(server.network, conn.src)
            _log_pop3(trace, t + one_way + proc, reply.wire_lines(), server.hostname, party)
        if per_command:
            yield env.timeout(one_way + proc)
            t = env.now
        else:
            t += one_way + proc
        command = client.receive(reply)
        try:
            while command is not None:
                hooks.at = t + one_way + proc
                if trace is not None:
                    trace.log(t, "pop3", f"C: {command.to_line()}", party, server.hostname)
                reply = engine.handle(command)
                transfer = hooks.last_size * 8 / bps if isinstance(command, Retr) else 0.0
                hooks.last_size = 0
                arrive = hooks.at + one_way + transfer
                for row in hooks.retrieved:
                    server.ledger.retrieved(row, arrive)
                hooks.retrieved.clear()
                if trace is not None:
                    _log_pop3(trace, arrive, reply.wire_lines(), server.hostname, party)
                if per_command:
                    yield env.timeout(2 * one_way + proc + transfer)
                    t = env.now
                else:
                    t += 2 * one_way + proc + transfer
                command = client.receive(reply)
        finally:
            hooks.release()
        if not per_command:
            yield env.timeout(t - env.now)   # the whole dialogue as one event; slot held
    if trace is not None:
        trace.dialogues -= 1


def _log_pop3(trace: Tracer, at: float, lines: list[str], src: str, dst: str) -> None:
    for line in lines:
        trace.log(at, "pop3", f"S: {line}", src, dst)
