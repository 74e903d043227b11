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
from typing import Any, NamedTuple, Protocol

import numpy as np
import simpy

from netsim.mail.consult import first_refusal
from netsim.mail.hooks import SMTPHooks, SMTPHookServer
from netsim.mail.message import Mail
from netsim.mail.trace import Tracer
from netsim.net import Connection, Network, text
from netsim.protocols import (
    Content,
    Credentials,
    Envelope,
    Reply,
    SMTPClient,
    SMTPServer,
    SMTPSession,
)
from netsim.protocols.framing import dot_stuff
from netsim.protocols.replies import S452_TOO_MANY_RCPTS, S535_AUTH_INVALID
from netsim.protocols.smtp_server import auth_required, mail_checks, too_many_recipients

SessionProcess = Generator[simpy.Event, Any, None]


class SessionSettings(Protocol):
    """The server settings the session adapters read (``ServerSettings`` has them)."""

    @property
    def server_bandwidth_bps(self) -> float: ...

    @property
    def per_command(self) -> bool: ...

    @property
    def max_recipients(self) -> int: ...

    @property
    def message_size_limit(self) -> int: ...


class SessionServer(Protocol):
    """What a session adapter uses of the server a connection reaches (``MailServer`` is
    one; ``conn.listener.server``).

    Attributes:
        processing_s: The server's processing time per command [s].
        settings: Its settings.
        slots: Its session slots.
        stats_sessions: How many sessions it has had (counted here).
        network: The world's network (to name a client in the trace).
        hostname: The server's name.
    """

    stats_sessions: int

    @property
    def processing_s(self) -> float: ...

    @property
    def settings(self) -> SessionSettings: ...

    @property
    def slots(self) -> simpy.Resource: ...

    @property
    def network(self) -> Network: ...

    @property
    def hostname(self) -> str: ...

    def client_bps(self, client_address: int) -> float:
        """The rate of the client's network."""


class SMTPSessionServer(SessionServer, SMTPHookServer, Protocol):
    """What the SMTP adapters use of the server: what every session uses, what its hooks
    use (:class:`~netsim.mail.hooks.SMTPHookServer`, which the direct session asks itself),
    its engine and scan time, and its SMTP counters."""

    stats_smtp_sessions: int
    stats_wait_s: float   # total time SMTP clients waited for a session slot

    def smtp_engine(self, port: int, client_address: object) -> tuple[SMTPServer, SMTPHooks]:
        """An SMTP engine for one session on ``port``, and its hooks."""

    def scan_time(self, key: int) -> float:
        """Time to scan the message with ``key`` after the final dot."""


# The adapter's instants, one definition for the engines (a session at a time) and the flow
# path (arrays of sessions): the server answers the greeting after its processing time;
# each command travels one way (with its data's transfer time), the server processes it
# (and scans a message before answering the final dot), the reply travels back, and the
# client sends the next command at once.
def greeting(opened: Any, one_way: Any, proc: Any) -> tuple[Any, Any]:
    """When the server greets a connection open at ``opened``, and when the client, having
    read the greeting, sends its first command."""
    return opened + proc, opened + one_way + proc


def exchange(sent: Any, one_way: Any, proc: Any, data_s: Any = 0.0, scan: Any = 0.0,
             ) -> tuple[Any, Any]:
    """When the server acts on a command sent at ``sent`` (after ``data_s`` of message data
    on the wire, and a ``scan`` of it), and when the client sends the next command after
    reading the reply."""
    acts = sent + one_way + data_s + proc + scan
    return acts, acts + one_way


def retrieval(sent: Any, one_way: Any, proc: Any, data_s: Any) -> Any:
    """When the client has the message of a POP3 RETR sent at ``sent``: the reply carries
    the ``data_s`` of message data back."""
    return sent + 2 * one_way + proc + data_s


def transfer(size: Any, server_bps: Any, client_bps: Any) -> Any:
    """How long message data takes on the wire: its size at the slower of the server's rate
    and the client's network's."""
    if isinstance(server_bps, np.ndarray) or isinstance(client_bps, np.ndarray):
        return size * 8 / np.minimum(server_bps, client_bps)
    # one session's rates: a Python float, so the session's clock stays one
    return size * 8 / min(server_bps, client_bps)


# Commands a POP3 client sends before the one that logs in (PASS, or APOP), by the
# server's login security: USER; APOP alone; STLS, USER; USER on 995.
COMMANDS_BEFORE_LOGIN = {"plaintext": 1, "apop": 0, "stls": 2, "pop3s": 1}
# ... and before its first RETR: those, the login, STAT, LIST and UIDL
POP3_COMMANDS_BEFORE_RETR = {k: n + 4 for k, n in COMMANDS_BEFORE_LOGIN.items()}
# Commands an IMAP client sends before its UID FETCH, by the server's login security:
# LOGIN (where offered, STARTTLS and CAPABILITY first: RFC 9051 §6.2.1 has the client ask
# again inside TLS), SELECT INBOX, UID SEARCH UNSEEN
IMAP_COMMANDS_BEFORE_FETCH = {"plaintext": 3, "starttls": 5, "imaps": 3}


def pop3_login(opened: np.ndarray, one_way: np.ndarray, proc: np.ndarray,
               before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sessions that log in by POP3 and quit (``POP3Client(fetch=False)``; the flow path's:
    the engines run ``pop3_session``), on connections open at ``opened``, ``before``
    commands ahead of each login: when the server takes the login, and when the client has
    the reply to QUIT."""
    # step by step, as ``pop3_session`` steps: the same instants to the last bit
    t = greeting(opened, one_way, proc)[1]
    for k in range(int(np.max(before, initial=0))):
        t = np.where(k < before, retrieval(t, one_way, proc, 0.0), t)
    login = exchange(t, one_way, proc)[0]
    t = retrieval(t, one_way, proc, 0.0)
    return login, retrieval(t, one_way, proc, 0.0)


def exchanges(sent: Any, count: Any, one_way: Any, proc: Any) -> Any:
    """When the client sends its next command after ``count`` plain exchanges (no data)
    from ``sent``."""
    return sent + count * (2 * one_way + proc)


def smtp_session(env: simpy.Environment, conn: Connection, client: SMTPClient, *,
                 on_settled: Callable[[SMTPClient, float], None],
                 trace: Tracer | None = None, text_lines: Callable[[], list[str]] | None = None,
                 ) -> SessionProcess:
    """Run an SMTP dialogue on an open connection to a MailServer's listener.

    ``on_settled(client, at)`` is called once, at the instant every recipient has a reply
    that decides it; the caller releases or reschedules its recipients there.
    """
    server: SMTPSessionServer = conn.listener.server
    port: int = conn.port
    one_way = conn.one_way_s
    proc = server.processing_s
    bps = server.settings.server_bandwidth_bps, server.client_bps(conn.src)
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
        engine, hooks = server.smtp_engine(port, conn.src)
        # the dialogue's clock t: env.now, or ahead of it in session fidelity
        acts, t = greeting(env.now, one_way, proc)
        hooks.at = server.instant = acts
        reply = engine.greeting()
        server.instant = None
        if trace is not None:
            party = label(server.network, conn.src)
            trace.said(conn, t, "smtp", reply.wire_lines(), client=False,
                       src=server.hostname, dst=party)
        if per_command:
            yield env.timeout(t - env.now)
            t = env.now
        command = client.receive(reply)
        settled = False
        while command is not None:
            content = isinstance(command, Content)
            data = transfer(command.size, *bps) if isinstance(command, Content) else 0.0
            # the server scans a message before it answers the final dot
            scan = server.scan_time(_key(command)) if content else 0.0
            acts, after = exchange(t, one_way, proc, data, scan)
            hooks.at = server.instant = acts
            if trace is not None:
                sent = ([*dot_stuff(text_lines() if text_lines else []), "."]
                        if content else [command.to_line()])
                trace.said(conn, t, "smtp", sent, client=True, src=party,
                           dst=server.hostname)
            reply = engine.handle(command)
            server.instant = None
            nxt = client.receive(reply)
            if not settled and len(client.rcpt_replies) == recipients:
                settled = True
                on_settled(client, hooks.at)
            if trace is not None:
                trace.said(conn, after, "smtp", reply.wire_lines(), client=False,
                           src=server.hostname, dst=party)
            if per_command:
                yield env.timeout(after - env.now)
                t = env.now
            else:
                t = after
            command = nxt
        if trace is not None:
            trace.closed(conn, t)
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
    senders that run through SimPy at fidelity flow): what a client of the simulation
    sends, with the engines' own checks (``mail_checks``, ``too_many_recipients``) and the
    hooks in the engines' order: the greeting (a 554 or 421 from the connect policies),
    EHLO, AUTH PLAIN with an initial response, MAIL FROM, one RCPT a recipient, DATA and the
    message (the data policies, then delivery), QUIT (not after a 421); the instants of
    :func:`smtp_session` at session fidelity, without its wait for a slot.
    ``tests/test_fidelity.py`` compares both."""
    server: SMTPSessionServer = conn.listener.server
    port = conn.port
    one_way = conn.one_way_s
    proc = server.processing_s
    settings = server.settings
    # at fidelity flow no session waits for a slot (docs/fidelity.md): counted, not queued
    server.stats_sessions += 1
    server.stats_smtp_sessions += 1
    hooks = SMTPHooks(server)
    session = SMTPSession(client_address=conn.src, port=port,
                          server_hostname=server.hostname, tls=port == 465)
    # each hook is asked with the server's clock at the instant of its command; nothing else
    # runs until this session's one event, so the clock is put back once, at the end
    replies: dict[str, Reply] = {}
    acts, t = greeting(env.now, one_way, proc)
    hooks.at = server.instant = acts
    refusal = hooks.on_connect(session)
    if refusal is None:
        session.helo_name, session.esmtp = helo, True
        t = exchanges(t, 1, one_way, proc)                          # EHLO
        if credentials is not None:                                  # AUTH PLAIN
            acts, t = exchange(t, one_way, proc)
            hooks.at = server.instant = acts
            if server.password_ok(credentials.username, credentials.password):
                session.authenticated_user = credentials.username
            else:
                refusal = S535_AUTH_INVALID
    if refusal is None:                                              # MAIL FROM
        acts, t = exchange(t, one_way, proc)
        hooks.at = server.instant = acts
        for refuses, reply in mail_checks(auth_required(port),
                                          session.authenticated_user is not None,
                                          mail.size, settings.message_size_limit):
            if refuses:
                refusal = reply
                break
        else:
            refusal = hooks.check_mail(session, mail.mail_from)
    if refusal is not None:
        replies = dict.fromkeys(recipients, refusal)
        if refusal.code != 421:
            t = exchanges(t, 1, one_way, proc)                      # QUIT
    else:
        session.mail_from = mail.mail_from
        ask = hooks.facts(session)   # the session's facts; each RCPT sets its own below
        rcpt = hooks.steps.entries["rcpt"]
        for address in recipients:                                   # RCPT
            acts, t = exchange(t, one_way, proc)
            hooks.at = server.instant = ask.at = acts
            if too_many_recipients(len(session.rcpt_to), settings.max_recipients):
                answer: Reply | None = S452_TOO_MANY_RCPTS
            else:   # hooks.check_rcpt, the session's facts made once
                answer = first_refusal(server, rcpt, hooks.recipient(ask, address),
                                       session, address)
            if answer is None:
                session.rcpt_to.append(address)
            else:
                replies[address] = answer
        if session.rcpt_to:
            t = exchanges(t, 1, one_way, proc)                      # DATA
            data = transfer(mail.size, server.settings.server_bandwidth_bps,
                            server.client_bps(conn.src))
            envelope = Envelope(mail.mail_from, tuple(session.rcpt_to), mail.size, mail,
                                helo, session.authenticated_user)
            acts, t = exchange(t, one_way, proc, data, server.scan_time(mail.key))
            hooks.at = server.instant = acts
            replies.update(dict.fromkeys(session.rcpt_to, hooks.deliver(session, envelope)))
        t = exchanges(t, 1, one_way, proc)                          # QUIT
    server.instant = None
    on_settled(Replies(replies), t)
    yield env.timeout(t - env.now)   # the whole dialogue as one event


def _key(content: object) -> int:
    """The message's key, for its keyed scan time (0 for a payload that is not a Mail)."""
    return int(getattr(getattr(content, "payload", None), "key", 0))


def label(network: Network, address: int) -> str:
    """A party's name in a trace: a mail server's hostname, else the host's address."""
    listener = network.listener(address, 25)
    return listener.server.hostname if listener is not None else text(address)
