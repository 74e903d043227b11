"""The policy boundary of the SMTP server: the session hooks see, and the hooks themselves.

Policies (relay rules, blocklists, greylisting, user lookup, delivery) are hooks that return
a reply or ``None`` for "the default", never branches inside the protocol engine
(aiosmtpd's ``handle_MAIL`` habit). The simulation's mail servers and the live lab each
implement :class:`SMTPServerHooks`; :class:`DefaultHooks` accepts everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .replies import S250_QUEUED, Reply

__all__ = ["DefaultHooks", "Envelope", "SMTPServerHooks", "SMTPSession"]


@dataclass(slots=True)
class SMTPSession:
    """What the server knows about one connection; the engine owns it, hooks read it.

    Attributes:
        client_address: Opaque peer address given by the adapter (an IP, a host object).
        port: The port the client connected to (25, 587, 465).
        server_hostname: The server's own name, as in the greeting.
        helo_name: The HELO/EHLO argument, once greeted.
        esmtp: True after EHLO, False after HELO.
        authenticated_user: The user name after a successful AUTH; kept across RSET.
        tls: True on a TLS-protected connection; set by the adapter (e.g. port 465).
        mail_from: The current transaction's reverse path (``None`` outside a transaction).
        rcpt_to: The current transaction's accepted recipients, in order.
        extra: Free for the adapter's use (the engine never reads it).
    """

    client_address: object = None
    port: int = 25
    server_hostname: str = ""
    helo_name: str | None = None
    esmtp: bool = False
    authenticated_user: str | None = None
    tls: bool = False
    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One accepted mail transaction, handed to :meth:`SMTPServerHooks.deliver`.

    Attributes:
        mail_from: The reverse path (``""`` for the null path of a bounce).
        rcpt_to: The recipients the server accepted at RCPT, in order.
        size: The message size in octets.
        payload: The opaque payload of the :class:`Content` event.
        helo_name: The client's HELO/EHLO name.
        authenticated_user: The AUTH user of the session, if any.
    """

    mail_from: str
    rcpt_to: tuple[str, ...]
    size: int
    payload: object
    helo_name: str | None
    authenticated_user: str | None

    def __post_init__(self) -> None:
        if not self.rcpt_to:
            raise ValueError("an envelope needs at least one recipient")
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")


class SMTPServerHooks(Protocol):
    """Policy decisions of an SMTP server; every method may inspect ``session``."""

    def on_connect(self, session: SMTPSession) -> Reply | None:
        """The greeting: ``None`` for the default 220, or a 554/421 to refuse the session."""
        ...

    def check_mail(self, session: SMTPSession, reverse_path: str) -> Reply | None:
        """Judge ``MAIL FROM``: ``None`` accepts with the default 250."""
        ...

    def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
        """Judge ``RCPT TO`` (relay, user unknown, blocklist): ``None`` accepts with 250."""
        ...

    def authenticate(
        self, session: SMTPSession, mechanism: str, username: str, password: str
    ) -> bool:
        """Check credentials from AUTH PLAIN/LOGIN."""
        ...

    def deliver(self, session: SMTPSession, envelope: Envelope) -> Reply:
        """Take the message after the final dot: a 250, or a 4xx/5xx refusal."""
        ...

    def check_auth(self, session: SMTPSession) -> Reply | None:
        """Judge an ``AUTH`` before any credential is read (a client that failed too often:
        454): ``None`` lets the exchange start."""
        ...


class DefaultHooks:
    """Accept every session, sender, recipient and message; refuse every login.

    Subclass and override what a test or a policy needs.
    """

    def on_connect(self, session: SMTPSession) -> Reply | None:
        """Default greeting."""
        return None

    def check_mail(self, session: SMTPSession, reverse_path: str) -> Reply | None:
        """Accept every sender."""
        return None

    def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
        """Accept every recipient."""
        return None

    def authenticate(
        self, session: SMTPSession, mechanism: str, username: str, password: str
    ) -> bool:
        """Refuse every login."""
        return False

    def deliver(self, session: SMTPSession, envelope: Envelope) -> Reply:
        """Queue every message."""
        return S250_QUEUED

    def check_auth(self, session: SMTPSession) -> Reply | None:
        """Let every exchange start."""
        return None
