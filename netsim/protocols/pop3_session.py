"""The policy boundary of the POP3 server: session, stored messages and hooks.

The hooks own the maildrop (who may log in, which messages exist, what is deleted); the
engine owns the protocol. The simulation's mailboxes and the live lab implement
:class:`POP3ServerHooks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["POP3ServerHooks", "POP3Session", "StoredMessage"]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message in a maildrop, as the server lists it.

    Attributes:
        uid: The UIDL unique id: 1-70 printable ASCII characters (RFC 1939 §7).
        size: The size in octets.
        payload: Opaque (the simulation's message record; on the wire, the message bytes).
    """

    uid: str
    size: int
    payload: object = None

    def __post_init__(self) -> None:
        uid = self.uid
        if not 1 <= len(uid) <= 70 or not all("!" <= c <= "~" for c in uid):
            raise ValueError(f"uid must be 1-70 characters 0x21-0x7E, got {uid!r}")
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")


@dataclass(slots=True)
class POP3Session:
    """What the server knows about one connection; the engine owns it, hooks read it.

    Attributes:
        client_address: Opaque peer address given by the adapter.
        port: The port the client connected to (110, 995).
        server_hostname: The server's own name.
        username: The user after a successful login (``None`` before).
        tls: True on a TLS connection (port 995, or after STLS).
        extra: Free for the adapter's use.
    """

    client_address: object = None
    port: int = 110
    server_hostname: str = ""
    username: str | None = None
    tls: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class POP3ServerHooks(Protocol):
    """Policy and storage decisions of a POP3 server."""

    def authenticate(self, session: POP3Session, username: str, password: str) -> bool:
        """Check USER/PASS credentials."""
        ...

    def apop_secret(self, session: POP3Session, username: str) -> str | None:
        """The shared secret for APOP, or ``None`` for an unknown user."""
        ...

    def open_maildrop(self, session: POP3Session, username: str) -> Sequence[StoredMessage] | None:
        """Lock and list the maildrop; ``None`` if it is locked or unavailable."""
        ...

    def commit(self, session: POP3Session, username: str, deleted_uids: Sequence[str]) -> None:
        """Delete these messages and release the lock (only at QUIT from TRANSACTION)."""
        ...

    def render(self, message: StoredMessage, top_lines: int | None) -> list[str]:
        """The text lines of a message for RETR (``top_lines`` None) or TOP (headers + n)."""
        ...
