"""A message in flight: what the simulation carries as the payload of SMTP and POP3 engines.

One object a message, however many recipients; each recipient is a row of the ledger, and a
message knows its rows by address. Kept to the fields every component needs (docs/model.md
"Layers": no packet class that carries every component's fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What a message is (docs/model.md "What is measured")."""

    LEGIT = "legit"
    SPAM = "spam"
    BOUNCE = "bounce"


class SenderType(StrEnum):
    """Who sent it."""

    USER = "user"
    ROAMING = "roaming"
    BOT = "bot"
    SPAMMER_SERVER = "spammer_server"
    MAILER_DAEMON = "mailer_daemon"


@dataclass(slots=True, eq=False)
class Mail:
    """A message. ``rows`` maps each recipient address to its ledger row."""

    id: int
    kind: Kind
    sender: SenderType
    mail_from: str            # "" is the null reverse path of a bounce
    size: int
    created: float
    origin: str = ""          # the ISP (or hosting network) it came from
    rows: dict[str, int] = field(default_factory=dict)
    parent: int | None = None  # the message a bounce reports on
    # a 64-bit handle fixed by the sender's own random stream (a bounce derives its own from
    # its parent's): content filters judge a message by it, whatever its id at either fidelity
    key: int = 0

    @property
    def recipients(self) -> list[str]:
        return list(self.rows)

    def text_lines(self) -> list[str]:
        """The message as it would cross the wire after DATA, before dot-stuffing."""
        sender = self.mail_from or "MAILER-DAEMON"
        subject = {Kind.LEGIT: "Hello", Kind.SPAM: "Cheap watches",
                   Kind.BOUNCE: f"Undelivered Mail Returned to Sender (message {self.parent})"}
        body = {Kind.LEGIT: "This is a test mail",
                Kind.SPAM: "Buy now!",
                Kind.BOUNCE: "This is the mail system. Your message could not be delivered."}
        return [f"From: <{sender}>", f"To: {', '.join(f'<{r}>' for r in self.rows)}",
                f"Subject: {subject[self.kind]}", f"Message-ID: <{self.id}@netsim.invalid>",
                f"X-Size: {self.size}", "", body[self.kind]]


def domain_of(address: str) -> str:
    """The domain of an address, lower-cased: domains compare case-insensitively."""
    return address.rpartition("@")[2].lower()


def local_part(address: str) -> str:
    return address.rpartition("@")[0]
