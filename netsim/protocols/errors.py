"""Typed errors of the protocol engines.

The split follows h11: *we* did something illegal (a bug in the adapter driving an engine)
differs from *the peer* did something illegal. Illegal peer input to a server is not an
exception at all: it gets the RFC's error reply and leaves the state unchanged.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Base class of every error an engine raises."""


class LocalProtocolError(ProtocolError):
    """The local side used an engine illegally.

    Examples: handing a server a command after it closed, asking a finished client for
    another command, or a hook returning a reply that makes no sense at that point.
    """


class RemoteProtocolError(ProtocolError):
    """A client engine received a reply that is malformed or impossible in its state.

    Example: a 354 in answer to MAIL, or a 250 in answer to DATA.
    """
