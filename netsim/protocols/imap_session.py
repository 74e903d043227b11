"""The storage boundary of the IMAP server (RFC 9051): session, stored messages, hooks.

The hooks own the mail (who may log in, which messages a mailbox holds, their flags, what
is deleted); the engine owns the protocol. Unlike POP3, IMAP keeps mail on the server:
flags persist as they are stored, and messages go only at EXPUNGE or CLOSE, when
:meth:`IMAPServerHooks.expunge` commits the deletion at once. The simulation's mailboxes
and the live lab implement :class:`IMAPServerHooks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

from .imap_syntax import MAX_NUMBER, canonical_flag

__all__ = ["IMAPMailbox", "IMAPServerHooks", "IMAPSession", "IMAPStoredMessage"]


@dataclass(frozen=True, slots=True)
class IMAPStoredMessage:
    """One message in a mailbox, as the server sees it.

    Attributes:
        uid: Its UID (1 to 2**32-1), unique and ascending within the mailbox.
        size: Its size in octets (RFC822.SIZE): the length of what ``render`` gives.
        flags: Its flags, system flags in RFC spelling (``\\Seen``, ``\\Deleted``).
        payload: Opaque (the simulation's message record; on the wire, the message bytes).
    """

    uid: int
    size: int
    flags: frozenset[str] = frozenset()
    payload: object = None

    def __post_init__(self) -> None:
        if not 1 <= self.uid <= MAX_NUMBER:
            raise ValueError(f"uid must be 1..2**32-1, got {self.uid}")
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")
        for flag in self.flags:
            if canonical_flag(flag) != flag:
                raise ValueError(f"not a flag in its canonical spelling: {flag!r}")


@dataclass(frozen=True, slots=True)
class IMAPMailbox:
    """A mailbox as it is opened: UIDVALIDITY and the messages in UID order.

    Attributes:
        uidvalidity: Changes only if UIDs were reassigned (a client then forgets its cache).
        messages: The messages, UIDs strictly ascending.
        uidnext: The UID the next message will get; by default one past the largest.
    """

    uidvalidity: int
    messages: tuple[IMAPStoredMessage, ...] = ()
    uidnext: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.uidvalidity <= MAX_NUMBER:
            raise ValueError(f"uidvalidity must be 1..2**32-1, got {self.uidvalidity}")
        uids = [m.uid for m in self.messages]
        if any(a >= b for a, b in pairwise(uids)):
            raise ValueError("message UIDs must be strictly ascending")
        if self.uidnext is not None and uids and self.uidnext <= uids[-1]:
            raise ValueError("uidnext must exceed every UID in the mailbox")

    @property
    def next_uid(self) -> int:
        """``uidnext``, or one past the largest UID."""
        if self.uidnext is not None:
            return self.uidnext
        return self.messages[-1].uid + 1 if self.messages else 1


@dataclass(slots=True)
class IMAPSession:
    """What the server knows about one connection; the engine owns it, hooks read it.

    Attributes:
        client_address: Opaque peer address given by the adapter.
        port: The port the client connected to (143, 993).
        server_hostname: The server's own name.
        username: The user after a successful login (``None`` before).
        tls: True on a TLS connection (port 993, or after STARTTLS).
        mailbox: The selected mailbox's name (``None`` when none is selected).
        readonly: True if the selected mailbox was opened with EXAMINE.
        extra: Free for the adapter's use.
    """

    client_address: object = None
    port: int = 143
    server_hostname: str = ""
    username: str | None = None
    tls: bool = False
    mailbox: str | None = None
    readonly: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class IMAPServerHooks(Protocol):
    """Policy and storage decisions of an IMAP server."""

    def authenticate(self, session: IMAPSession, username: str, password: str) -> bool:
        """Check LOGIN or AUTHENTICATE PLAIN credentials."""
        ...

    def open_mailbox(
        self, session: IMAPSession, username: str, name: str, readonly: bool
    ) -> IMAPMailbox | None:
        """Open a mailbox for SELECT (``readonly`` False) or EXAMINE; ``None`` if it is
        locked or unavailable."""
        ...

    def store_flags(
        self, session: IMAPSession, username: str, flags: Mapping[int, frozenset[str]]
    ) -> None:
        """Persist the new flag sets of these messages (by UID): STORE, or BODY[]'s \\Seen."""
        ...

    def expunge(self, session: IMAPSession, username: str, uids: Sequence[int]) -> None:
        """Delete these messages now (EXPUNGE, UID EXPUNGE, CLOSE)."""
        ...

    def close_mailbox(self, session: IMAPSession, username: str, name: str) -> None:
        """The session stopped using the mailbox (CLOSE, UNSELECT, another SELECT, LOGOUT).

        The engine calls it also when it ends a session with ``* BYE``; when the
        connection is lost the adapter calls :meth:`IMAPServer.abort`, which calls it.
        """
        ...

    def render(self, message: IMAPStoredMessage) -> bytes:
        """The message's octets for BODY[] / RFC822, exactly as they go out."""
        ...
