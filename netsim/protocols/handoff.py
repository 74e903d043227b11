"""What the byte-level servers share: the engine each wraps, and the TLS hand-off.

After the server's go-ahead to STARTTLS (SMTP, IMAP) or STLS (POP3), ``tls_pending`` holds:
the adapter sends that reply, starts TLS and calls :meth:`WireServer.tls_started`. Octets
that arrived in plain text after the command are dropped, never read as commands inside
TLS (RFC 3207 §4.2; the injection CVE-2011-0411 exploited servers that kept them).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = ["WireServer"]


class _Engine(Protocol):
    @property
    def closed(self) -> bool: ...


E = TypeVar("E", bound=_Engine)


class WireServer(Generic[E]):
    """Bytes in, bytes out around a sans-I/O server engine."""

    def __init__(self, engine: E) -> None:
        self._engine = engine
        self.tls_pending = False

    @property
    def engine(self) -> E:
        """The wrapped engine."""
        return self._engine

    @property
    def closed(self) -> bool:
        """True once the engine closed: send what was returned, then close the socket."""
        return self._engine.closed

    def tls_started(self) -> None:
        """The adapter turned the connection to TLS: take bytes again."""
        self.tls_pending = False
