"""SimPy adapters that run a client engine against a server engine over one connection.

The engines are sans-I/O; these generators only move commands and replies between them and
apply delays. A session costs the TCP handshake (already paid by ``Network.connect``), a wait
for one of the server's session slots, the greeting, then one round trip plus the server's
processing time per command, plus the transfer time of the message data.

Both engines are stepped at the moment a command is sent: the server's effects (a delivery,
a queued message) and the client's view of the reply happen in the same instant, so a message
is never in two custodies at once; the times written to the ledger and the trace are computed
exactly, as the instant each side would see it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from netsim.mail.trace import Tracer
from netsim.net import Connection, Network, text
from netsim.protocols import Content, POP3Client, Retr, SMTPClient

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
    recipients = len(client.rcpt_to)
    server.stats_sessions += 1
    server.stats_smtp_sessions += 1
    asked = env.now
    with server.slots.request() as slot:
        yield slot
        server.stats_wait_s += env.now - asked
        engine, hooks = server.smtp_engine(port, conn.src)
        hooks.at = env.now + proc
        reply = engine.greeting()
        wait = one_way + proc
        if trace is not None:
            party = label(server.network, conn.src)
            _log_replies(trace, env.now + wait, reply.wire_lines(), server.hostname, party)
        yield env.timeout(wait)
        command = client.receive(reply)
        settled = False
        while command is not None:
            content = isinstance(command, Content)
            transfer = command.size * 8 / bps if isinstance(command, Content) else 0.0
            # the server scans a message before it answers the final dot
            work = proc + (server.scan_time() if content else 0.0)
            arrive = env.now + one_way + transfer
            hooks.at = arrive + work
            if trace is not None:
                sent = ([*(text_lines() if text_lines else []), "."]
                        if content else [command.to_line()])
                for line in sent:
                    trace.log(env.now, "smtp", f"C: {line}", party, server.hostname)
            reply = engine.handle(command)
            nxt = client.receive(reply)
            if not settled and len(client.rcpt_replies) == recipients:
                settled = True
                on_settled(client, hooks.at)
            if trace is not None:
                _log_replies(trace, hooks.at + one_way, reply.wire_lines(), server.hostname,
                             party)
            yield env.timeout(2 * one_way + transfer + work)
            command = nxt
        if not settled:
            on_settled(client, env.now)


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
    server.stats_sessions += 1
    with server.slots.request() as slot:
        yield slot
        engine, hooks = server.pop3_engine(conn.port, conn.src)
        hooks.at = env.now + proc
        reply = engine.greeting()
        if trace is not None:
            party = label(server.network, conn.src)
            _log_pop3(trace, env.now + one_way + proc, reply.wire_lines(), server.hostname,
                      party)
        yield env.timeout(one_way + proc)
        command = client.receive(reply)
        try:
            while command is not None:
                hooks.at = env.now + one_way + proc
                if trace is not None:
                    trace.log(env.now, "pop3", f"C: {command.to_line()}", party,
                              server.hostname)
                reply = engine.handle(command)
                transfer = hooks.last_size * 8 / bps if isinstance(command, Retr) else 0.0
                hooks.last_size = 0
                arrive = hooks.at + one_way + transfer
                for row in hooks.retrieved:
                    server.ledger.retrieved(row, arrive)
                hooks.retrieved.clear()
                if trace is not None:
                    _log_pop3(trace, arrive, reply.wire_lines(), server.hostname, party)
                yield env.timeout(2 * one_way + proc + transfer)
                command = client.receive(reply)
        finally:
            hooks.release()


def _log_pop3(trace: Tracer, at: float, lines: list[str], src: str, dst: str) -> None:
    for line in lines:
        trace.log(at, "pop3", f"S: {line}", src, dst)
