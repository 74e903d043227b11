"""The sending side of SMTP: what a client host holds, one delivery attempt, and its results.

MUAs, bots and spammer servers hold their recipients in an Outbox until a server accepts
them or they fail; mail servers hold theirs in their queue. Either way every recipient is
in exactly one custody until its outcome is final, which is what the conservation check
verifies at the end of a run.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from netsim.mail.defences import Listing
from netsim.mail.ledger import Ledger, Outcome
from netsim.mail.message import Kind, Mail
from netsim.mail.policy import mechanism
from netsim.mail.session import Replies, direct_smtp_session, label, smtp_session
from netsim.mail.trace import Tracer
from netsim.net import Connection, Network
from netsim.protocols import Credentials, Reply, SMTPClient


class Outbox:
    """Recipients held by client hosts, by message id."""

    def __init__(self) -> None:
        self._held: dict[int, dict[str, int]] = {}

    def hold(self, mail: Mail) -> dict[str, int]:
        """Take custody of every recipient of a new message; returns the live pending map."""
        pending = self._held[mail.id] = dict(mail.rows)
        return pending

    def drop(self, mail: Mail) -> None:
        """Forget a message whose recipients all left our custody."""
        pending = self._held.pop(mail.id)
        if pending:
            raise AssertionError(f"message {mail.id} dropped with {len(pending)} recipients held")

    def held_rows(self) -> set[int]:
        return {row for pending in self._held.values() for row in pending.values()}


def leaves_origin(client: Any, server: Any, origin: Any) -> Any:
    """Whether a session from a client of origin ``client`` (an ISP, or a hosting network)
    to a server of origin ``server`` carries a message of ``origin`` out of its origin's
    networks: the ``sent_out`` of its recipients, what OP25B acts on. For one session (the
    names) or arrays of them (their numbers)."""
    return (client == origin) & (server != origin)


def attempt(env: simpy.Environment, network: Network, ledger: Ledger, src: int, dst: int,
            port: int, mail: Mail, pending: dict[str, int], *, client_origin: str, helo: str,
            credentials: Credentials | None = None, trace: Tracer | None = None,
            prefix: str = "", listing: Listing | None = None,
            ) -> Generator[simpy.Event, Any, tuple[Connection, dict[str, Reply]]]:
    """Connect and run one SMTP session for the pending recipients.

    Accepted recipients leave ``pending`` at the instant the server takes them. Returns the
    connection and the refusals: recipient → reply (4xx and 5xx); recipients refused stay in
    ``pending`` for the caller to retry or fail. A session that opens from the message's
    origin (``client_origin``: the sender's host's, or a queue's server's) to a server
    outside it marks its recipients sent out; a blocklist (``listing``) sees it open.
    """
    conn = network.connect(src, dst, port, env.now)
    if trace is not None:
        trace.connected(conn, env.now, label(network, src), label(network, dst), prefix)
    yield env.timeout(conn.delay_s)
    refused: dict[str, Reply] = {}
    if not conn.is_open:
        return conn, refused
    if leaves_origin(client_origin, conn.listener.server.isp, mail.origin):
        ledger.sent_out_many(pending.values())
    if listing is not None:
        listing.seen(src, env.now, mail.kind is Kind.SPAM)

    def settle(client: SMTPClient | Replies, at: float) -> None:
        for address, reply in client.rcpt_replies.items():
            if reply.code < 400:
                del pending[address]
            else:
                refused[address] = reply

    if conn.listener.server.settings.direct and trace is None:
        yield from direct_smtp_session(env, conn, mail, list(pending), helo=helo,
                                       credentials=credentials, on_settled=settle)
        return conn, refused
    client = SMTPClient(helo, mail.mail_from, list(pending), size=mail.size, payload=mail,
                        credentials=credentials)
    yield from smtp_session(env, conn, client, trace=trace, text_lines=mail.text_lines,
                            on_settled=settle)
    return conn, refused


def finish(ledger: Ledger, mail: Mail, pending: dict[str, int], addresses: list[str],
           outcome: Outcome, at: float, *, code: int = 0, cause: str = "",
           trace: Tracer | None = None) -> None:
    """Record final outcomes for recipients still held, and release them."""
    ledger.finish_many([pending.pop(a) for a in addresses], outcome, at, code=code,
                       stopped_by=cause)
    if trace is not None and addresses:
        detail = f"{cause}, {code}" if code else cause
        who = addresses[0] if len(addresses) == 1 else f"{len(addresses)} recipients"
        trace.log(at, "outcome", f"{who}: {outcome} ({detail})", mail.mail_from or "<>")


def refuse(ledger: Ledger, mail: Mail, pending: dict[str, int], refused: dict[str, Reply],
           at: float, trace: Tracer | None = None) -> None:
    """Fail every refused recipient as rejected, with its reply code and mechanism."""
    for address, reply in refused.items():
        finish(ledger, mail, pending, [address], Outcome.REJECTED, at, code=reply.code,
               cause=mechanism(reply), trace=trace)


def blocked(ledger: Ledger, mail: Mail, pending: dict[str, int], conn: Connection, at: float,
            trace: Tracer | None = None) -> None:
    """Every pending recipient of a connection that never opened: blocked, by what."""
    finish(ledger, mail, pending, list(pending), Outcome.BLOCKED, at, cause=conn.stopped_by,
           trace=trace)
