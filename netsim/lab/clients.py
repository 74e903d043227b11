"""Small clients for the lab: send one message (SMTP) or fetch a maildrop (POP3 or IMAP).

They drive the same client engines as the simulation and the relay
(:mod:`netsim.lab.dialogue`), from a chosen source address, so a student can stand in an
ISP's dynamic pool and watch OP25B refuse port 25 while 587 with AUTH goes through.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from netsim.lab.dialogue import Echo, run_imap_client, run_pop3_client, run_smtp_client
from netsim.protocols import Credentials, FetchPlan, IMAPClient, POP3Client, SMTPClient

__all__ = ["Outcome", "Target", "compose", "fetch", "fetch_imap", "send"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a client connects from and to (loopback addresses as text)."""

    source: str
    host: str
    port: int
    timeout_s: float = 10.0


@dataclass(slots=True)
class Outcome:
    """How a client session went.

    Attributes:
        connected: A greeting arrived.
        ok: The message was accepted for every recipient, or the login succeeded.
        problem: Why not, in words, when not ``ok``.
        messages: Messages fetched, as text.
        octets: Messages fetched by IMAP, exactly as the server sent them.
    """

    connected: bool = False
    ok: bool = False
    problem: str = ""
    messages: list[str] = field(default_factory=list)
    octets: list[bytes] = field(default_factory=list)


def compose(mail_from: str, to: list[str], subject: str, body: str) -> bytes:
    """A minimal RFC 5322 message with CRLF line ends."""
    lines = [f"From: <{mail_from}>", f"To: {', '.join(f'<{r}>' for r in to)}",
             f"Subject: {subject}", f"Date: {email.utils.formatdate(localtime=True)}",
             f"Message-ID: {email.utils.make_msgid(domain='netsim.lab')}", "",
             *body.replace("\r\n", "\n").split("\n")]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


async def _connect(target: Target, echo: Echo, outcome: Outcome,
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    echo("*", f"connect {target.source} → {target.host}:{target.port}")
    try:
        async with asyncio.timeout(target.timeout_s):
            return await asyncio.open_connection(target.host, target.port,
                                                 local_addr=(target.source, 0))
    except TimeoutError:
        outcome.problem = "no connection in time"
    except ConnectionRefusedError:
        outcome.problem = ("connection refused: nothing listens there (is `netsim serve` "
                           "running with the same scenario and ports?), or a filter reset it")
    except OSError as exc:
        outcome.problem = f"cannot connect: {exc.strerror or exc}"
    return None


def _silence(outcome: Outcome, target: Target) -> None:
    if not outcome.connected:
        outcome.problem = (f"connected, but no greeting within {target.timeout_s:g} s or the "
                           "connection was closed: the path is filtered (OP25B drops port 25 "
                           "from dynamic pools to other ISPs' servers)")


async def _exchange(target: Target, echo: Echo, outcome: Outcome,
                    run: Callable[[asyncio.StreamReader, asyncio.StreamWriter, Echo],
                                  Awaitable[object]]) -> bool:
    """Connect, run one client dialogue with every line echoed, close; False when the
    connection never opened."""
    def watch(direction: str, line: str) -> None:
        outcome.connected = outcome.connected or direction == "S"
        echo(direction, line)

    streams = await _connect(target, echo, outcome)
    if streams is None:
        return False
    reader, writer = streams
    try:
        await run(reader, writer, watch)
    finally:
        writer.close()
    _silence(outcome, target)
    return True


async def send(target: Target, helo: str, mail_from: str, to: list[str], message: bytes,
               credentials: Credentials | None, echo: Echo) -> Outcome:
    """Send one message; ``echo`` sees every line of the dialogue."""
    outcome = Outcome()
    client = SMTPClient(helo, mail_from, to, size=len(message), payload=message,
                        credentials=credentials)
    opened = await _exchange(target, echo, outcome, lambda r, w, e: run_smtp_client(
        client, r, w, timeout=target.timeout_s, echo=e))
    if opened and outcome.connected:
        refused = {r: reply for r, reply in client.rcpt_replies.items() if not reply.is_positive}
        outcome.ok = not refused and set(client.accepted) == set(to)
        if not outcome.ok:
            step = client.failed_at or "rcpt"
            outcome.problem = f"refused at {step}: " + "; ".join(
                f"{r}: {reply.wire_lines()[-1]}" for r, reply in refused.items())
    return outcome


async def fetch(target: Target, user: str, password: str, *, apop: bool, keep: bool,
                echo: Echo) -> Outcome:
    """Log in, retrieve every message and (unless ``keep``) delete them at QUIT."""
    outcome = Outcome()
    client = POP3Client(user, password, use_apop=apop, delete=not keep)
    if not await _exchange(target, echo, outcome, lambda r, w, e: run_pop3_client(
            client, r, w, timeout=target.timeout_s, echo=e)):
        return outcome
    outcome.messages = ["\n".join(m.lines) for m in client.retrieved]
    outcome.ok = client.authenticated and client.failed_reply is None
    if outcome.connected and not outcome.ok:
        failed = client.failed_reply
        outcome.problem = failed.status_line() if failed is not None else "session lost"
    return outcome


async def fetch_imap(target: Target, user: str, password: str, *, keep: bool, unseen: bool,
                     echo: Echo) -> Outcome:
    """Log in (AUTHENTICATE PLAIN where offered, else LOGIN), fetch every message (or the
    unseen ones) and, unless ``keep``, mark them ``\\Deleted`` and EXPUNGE them."""
    outcome = Outcome()
    client = IMAPClient(user, password, fetch=FetchPlan.UNSEEN if unseen else FetchPlan.ALL,
                        delete=not keep)
    ended = False

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, e: Echo) -> None:
        nonlocal ended
        ended = await run_imap_client(client, reader, writer, timeout=target.timeout_s, echo=e)

    if not await _exchange(target, echo, outcome, run):
        return outcome
    outcome.octets = [m.content for m in client.retrieved]
    outcome.messages = [m.decode("utf-8", "replace").removesuffix("\r\n").replace("\r\n", "\n")
                        for m in outcome.octets]
    failed = client.failed_response
    expunged = keep or not client.retrieved or client.committed
    outcome.ok = ended and client.authenticated and failed is None and expunged
    if outcome.connected and not outcome.ok:
        if failed is not None:
            outcome.problem = failed.render()
        elif not ended:
            outcome.problem = "session lost"
        else:
            outcome.problem = "fetched, but EXPUNGE failed: the messages are still there"
    return outcome
