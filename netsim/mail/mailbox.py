"""Per-account maildrops of one server, with the exclusive lock POP3 takes (RFC 1939 §8).

Each message is visible from the instant it was delivered: a POP3 session that logs in
earlier does not see it, even where the simulation stored it a moment ahead of that instant.
"""

from __future__ import annotations

import math

from netsim.protocols import StoredMessage


class Maildrops:
    """Messages waiting for each local user, keyed by user index."""

    def __init__(self) -> None:
        self._drops: dict[int, list[tuple[float, StoredMessage]]] = {}
        self._locked: set[int] = set()

    def add(self, user: int, message: StoredMessage, at: float = 0.0) -> bool:
        """Store a message delivered at ``at``; True when the maildrop was empty before."""
        drop = self._drops.setdefault(user, [])
        drop.append((at, message))
        return len(drop) == 1

    def peek(self, user: int) -> list[StoredMessage]:
        """What is stored, without locking (for tracing)."""
        return [m for _, m in self._drops.get(user, ())]

    def count(self, user: int) -> int:
        return len(self._drops.get(user, ()))

    def open(self, user: int, at: float = math.inf) -> list[StoredMessage] | None:
        """Lock and snapshot what was delivered by ``at``; None when another session holds
        the lock."""
        if user in self._locked:
            return None
        self._locked.add(user)
        return [m for t, m in self._drops.get(user, ()) if t <= at]

    def close(self, user: int, deleted: set[str]) -> None:
        """Remove the deleted messages and release the lock (POP3 UPDATE state)."""
        drop = self._drops.get(user)
        if drop is not None and deleted:
            drop[:] = [(t, m) for t, m in drop if m.uid not in deleted]
            if not drop:
                del self._drops[user]
        self._locked.discard(user)

    def __len__(self) -> int:
        return sum(len(d) for d in self._drops.values())
