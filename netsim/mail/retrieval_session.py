"""SimPy adapters for retrieval sessions: POP3 and IMAP clients collecting their mail.

One skeleton (:func:`retrieval_session`) runs both: a session slot, the greeting, then one
command after another, timed as every session is (``netsim.mail.session``); what differs
is how a reply carries messages. A POP3 RETR's reply carries one message after its
transfer time; an IMAP FETCH's answer carries its messages one after the other, each
retrieved when its octets have arrived. ``netsim.world.retrieval`` times the same
retrievals in arrays at fidelity flow.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

import simpy

from netsim.mail.hooks import IMAPHooks, POP3Hooks
from netsim.mail.ledger import Ledger
from netsim.mail.session import (
    SessionServer,
    exchange,
    greeting,
    label,
    retrieval,
    transfer,
)
from netsim.mail.trace import Tracer
from netsim.net import Connection
from netsim.protocols import (
    IMAPClient,
    IMAPResponse,
    IMAPServer,
    POP3Client,
    POP3Reply,
    POP3Server,
    Retr,
)


class POP3SessionServer(SessionServer, Protocol):
    """What the POP3 adapter uses of the server: what every session uses, its engine, and
    the ledger it records retrievals in."""

    @property
    def ledger(self) -> Ledger: ...

    def pop3_engine(self, port: int, client_address: object) -> tuple[POP3Server, POP3Hooks]:
        """A POP3 engine for one session on ``port``, and its hooks."""


class IMAPSessionServer(SessionServer, Protocol):
    """What the IMAP adapter uses of the server: what every session uses, its engine, and
    the ledger it records retrievals in."""

    @property
    def ledger(self) -> Ledger: ...

    def imap_engine(self, port: int, client_address: object) -> tuple[IMAPServer, IMAPHooks]:
        """An IMAP engine for one session on ``port``, and its hooks."""


class RetrievalDialogue(Protocol):
    """One protocol's side of a retrieval session (POP3, IMAP): what
    :func:`retrieval_session` asks of it besides the clock."""

    topic: str   # the trace's name for the protocol

    def greeting(self, at: float) -> list[str]:
        """The server's greeting at ``at``, as wire lines."""

    def answer(self, command: Any, sent: float) -> tuple[list[str], float]:
        """Hand ``command`` (sent at ``sent``) to the server: its reply's wire lines, and
        when the client has read them; records the first retrievals it carried."""

    def next(self) -> Any:
        """The client's next command after the last reply (None: it is done)."""

    def end(self) -> float | None:
        """The session is over (on any path): release what it holds; when the client
        logged in (None: it did not)."""


def retrieval_session(env: simpy.Environment, conn: Connection, server: SessionServer,
                      dialogue: Callable[[], RetrievalDialogue], *,
                      trace: Tracer | None = None,
                      ) -> Generator[simpy.Event, Any, float | None]:
    """Run a retrieval dialogue (POP3, IMAP) on an open connection: a session slot, the
    greeting, then each command answered at the instant its protocol gives. Returns when
    the client logged in (None: it did not)."""
    one_way = conn.one_way_s
    proc = server.processing_s
    per_command = server.settings.per_command
    server.stats_sessions += 1
    if trace is not None:   # a trace is not over while its dialogue runs (Tracer.over)
        trace.dialogues += 1
    with server.slots.request() as slot:
        yield slot
        talk = dialogue()
        # the dialogue's clock t: env.now, or ahead of it in session fidelity
        acts, t = greeting(env.now, one_way, proc)
        lines = talk.greeting(acts)
        if trace is not None:
            party = label(server.network, conn.src)
            trace.said(conn, t, talk.topic, lines, client=False, src=server.hostname,
                       dst=party)
        if per_command:
            yield env.timeout(t - env.now)
            t = env.now
        command = talk.next()
        try:
            while command is not None:
                if trace is not None:
                    trace.said(conn, t, talk.topic, [command.to_line()], client=True,
                               src=party, dst=server.hostname)
                lines, arrive = talk.answer(command, t)
                if trace is not None:
                    trace.said(conn, arrive, talk.topic, lines, client=False,
                               src=server.hostname, dst=party)
                if per_command:
                    yield env.timeout(arrive - env.now)
                    t = env.now
                else:
                    t = arrive
                command = talk.next()
        finally:
            login = talk.end()
        if trace is not None:
            trace.closed(conn, t)
        if not per_command:
            yield env.timeout(t - env.now)   # the whole dialogue as one event; slot held
    if trace is not None:
        trace.dialogues -= 1
    return login


class _Timing:
    """What both sides time a reply by: the connection's one-way delay, the server's
    processing time and the slower end's rate; where retrievals are recorded."""

    def __init__(self, conn: Connection, server: POP3SessionServer | IMAPSessionServer):
        self.ledger = server.ledger
        self.one_way, self.proc = conn.one_way_s, server.processing_s
        self.bps = server.settings.server_bandwidth_bps, server.client_bps(conn.src)

    def acts(self, sent: float) -> float:
        """When the server acts on a command sent at ``sent``."""
        return exchange(sent, self.one_way, self.proc)[0]


class _POP3Dialogue(_Timing):
    """POP3's side: each RETR's reply carries its message after its transfer time."""

    topic = "pop3"

    def __init__(self, conn: Connection, server: POP3SessionServer, client: POP3Client):
        super().__init__(conn, server)
        self.engine, self.hooks = server.pop3_engine(conn.port, conn.src)
        self.client = client
        self.reply: POP3Reply | None = None

    def greeting(self, at: float) -> list[str]:
        self.hooks.at = at
        self.reply = self.engine.greeting()
        return self.reply.wire_lines()

    def answer(self, command: Any, sent: float) -> tuple[list[str], float]:
        hooks = self.hooks
        hooks.at = self.acts(sent)
        self.reply = self.engine.handle(command)
        data = transfer(hooks.last_size, *self.bps) if isinstance(command, Retr) else 0.0
        hooks.last_size = 0
        arrive = retrieval(sent, self.one_way, self.proc, data)
        for row in hooks.retrieved:
            self.ledger.retrieved(row, arrive)
        hooks.retrieved.clear()
        return self.reply.wire_lines(), arrive

    def next(self) -> Any:
        assert self.reply is not None
        return self.client.receive(self.reply)

    def end(self) -> float | None:
        self.hooks.release()
        return self.hooks.login_at


class _IMAPDialogue(_Timing):
    """IMAP's side: a FETCH's answer carries its messages one after the other, each
    retrieved when its octets have arrived."""

    topic = "imap"

    def __init__(self, conn: Connection, server: IMAPSessionServer, client: IMAPClient):
        super().__init__(conn, server)
        self.engine, self.hooks = server.imap_engine(conn.port, conn.src)
        self.client = client
        self.responses: list[IMAPResponse] = []

    def greeting(self, at: float) -> list[str]:
        self.hooks.at = at
        response = self.engine.greeting()
        self.responses = [response]
        return response.wire_lines()

    def answer(self, command: Any, sent: float) -> tuple[list[str], float]:
        hooks = self.hooks
        hooks.at = self.acts(sent)
        self.responses = self.engine.handle(command)
        data = 0.0
        for row, size in hooks.fetched:   # in the order they go out
            data += transfer(size, *self.bps)
            self.ledger.retrieved(row, retrieval(sent, self.one_way, self.proc, data))
        hooks.fetched.clear()
        return ([line for x in self.responses for line in x.wire_lines()],
                retrieval(sent, self.one_way, self.proc, data))

    def next(self) -> Any:
        command = None
        for response in self.responses:   # the client answers the last one
            command = self.client.receive(response) or command
        return command

    def end(self) -> float | None:
        if not self.engine.closed:
            self.engine.abort()
        return self.hooks.login_at


def pop3_session(env: simpy.Environment, conn: Connection, client: POP3Client, *,
                 trace: Tracer | None = None,
                 ) -> Generator[simpy.Event, Any, float | None]:
    """Run a POP3 dialogue; retrievals are recorded by the server's hooks as RETR is
    answered. Returns when the client logged in (None: it did not)."""
    server: POP3SessionServer = conn.listener.server
    return retrieval_session(env, conn, server, lambda: _POP3Dialogue(conn, server, client),
                             trace=trace)


def imap_session(env: simpy.Environment, conn: Connection, client: IMAPClient, *,
                 trace: Tracer | None = None,
                 ) -> Generator[simpy.Event, Any, float | None]:
    """Run an IMAP dialogue; each first retrieval is recorded when its octets have arrived.
    Returns when the client logged in (None: it did not)."""
    server: IMAPSessionServer = conn.listener.server
    return retrieval_session(env, conn, server, lambda: _IMAPDialogue(conn, server, client),
                             trace=trace)
