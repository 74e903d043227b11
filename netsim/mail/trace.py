"""Tracing one message's journey: DNS answers, connections and dialogues, with their times.

Off by default (``tracer is None`` costs one comparison). The tracer follows one message
(chosen by id, or the first of a kind) and the bounces it causes, and tells when their journey
is over (:meth:`Tracer.over`), so that a trace need not simulate the rest of the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netsim.mail.message import Mail
from netsim.net.capture import Capture
from netsim.net.dns import Answer
from netsim.net.network import Connection

if TYPE_CHECKING:
    from netsim.mail.ledger import Ledger


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One event of the journey. ``src`` and ``dst`` name the parties (a host's address or a
    server's hostname, ``DNS`` for a resolver) so the journey can be drawn as a sequence
    chart; either may be empty."""

    at: float
    topic: str    # "message", "dns", "connect", "smtp", "pop3", "imap", "outcome"
    text: str
    src: str = ""
    dst: str = ""


@dataclass
class Tracer:
    """Records what happens to the target message; ``message_id`` or ``first_kind`` picks it."""

    message_id: int | None = None
    first_kind: str | None = None
    lines: list[TraceLine] = field(default_factory=list)
    followed: set[int] = field(default_factory=set)
    rows: list[int] = field(default_factory=list)   # the followed messages' ledger rows
    dialogues: int = 0   # traced SMTP and POP3 dialogues under way
    capture: Capture = field(default_factory=Capture)   # the same journey, as on the wire

    def created(self, mail: Mail) -> None:
        """Called for every new message: adopts the target and the bounces it causes."""
        if self.message_id is None and self.first_kind == mail.kind.value:
            self.message_id = mail.id
        if mail.id == self.message_id or (mail.parent is not None and mail.parent in self.followed):
            self.followed.add(mail.id)
            self.rows.extend(mail.rows.values())
            who = mail.mail_from or "<>"
            self.log(mail.created, "message",
                     f"message {mail.id} ({mail.kind}, {mail.size} bytes) from {who} to "
                     f"{', '.join(mail.rows)}", src=who)

    def wants(self, mail: Mail) -> bool:
        return mail.id in self.followed

    def over(self, ledger: Ledger) -> bool:
        """Whether the journey has ended: a message is followed, every recipient of the
        followed messages has its final outcome and each delivered one has been retrieved by
        POP3 (the journey's last step), and no traced dialogue is under way (at fidelity
        ``command`` a dialogue logs its last exchanges, QUIT after a delivery or DELE after
        a RETR, after the ledger has them). Nothing is logged after that: bounces are made
        when a recipient fails, and a bounce is never bounced."""
        return bool(self.rows) and not self.dialogues and ledger.at_rest(self.rows)

    def log(self, at: float, topic: str, text: str, src: str = "", dst: str = "") -> None:
        self.lines.append(TraceLine(at, topic, text, src, dst))

    def connected(self, conn: Connection, at: float, src: str, dst: str,
                  prefix: str = "") -> None:
        """A connection attempt from ``src`` to ``dst`` (their labels)."""
        self.log(at, "connect", f"{prefix}{conn.describe()}", src, dst)
        self.capture.opened(conn, at)

    def said(self, conn: Connection, at: float, topic: str, lines: list[str], *,
             client: bool, src: str, dst: str) -> None:
        """Lines of a dialogue (``topic``: "smtp", "pop3") one side sent: the client's
        at the instant it sends them, the server's when they reach the client."""
        mark = "C" if client else "S"
        for line in lines:
            self.log(at, topic, f"{mark}: {line}", src, dst)
        self.capture.sent(conn, at, client, lines)

    def closed(self, conn: Connection, at: float) -> None:
        """The client closed the connection."""
        self.capture.closed(conn, at)

    def looked_up(self, at: float, answered: float, who: str, client: int, resolver: int,
                  answer: Answer) -> None:
        """A DNS query of ``client`` (labelled ``who``) to ``resolver``, answered."""
        self.log(answered, "dns", f"{who} resolver: {answer.describe()}", who, "DNS")
        self.capture.lookup(at, answered, client, resolver, answer)

    def ordered(self) -> list[TraceLine]:
        """The lines in time order; times computed along different paths differ in the last
        bits, so they are rounded, and lines of one instant keep the order they were logged
        in (a command before its reply)."""
        order = sorted(range(len(self.lines)), key=lambda i: (round(self.lines[i].at, 9), i))
        return [self.lines[i] for i in order]

    def render(self) -> str:
        """The journey, in time order, one line per event."""
        return "\n".join(f"{line.at:12.6f}  {line.topic:<8} {line.text}"
                         for line in self.ordered())


def following(tracer: Tracer | None, mail: Mail) -> Tracer | None:
    """The tracer if it follows ``mail``, else None: what the processes pass on."""
    return tracer if tracer is not None and tracer.wants(mail) else None
