"""Per-account maildrops of one server, with the exclusive lock POP3 takes (RFC 1939 §8)."""

from __future__ import annotations

from netsim.protocols import StoredMessage


class Maildrops:
    """Messages waiting for each local user, keyed by user index."""

    def __init__(self) -> None:
        self._drops: dict[int, list[StoredMessage]] = {}
        self._locked: set[int] = set()

    def add(self, user: int, message: StoredMessage) -> bool:
        """Store a message; True when the maildrop was empty before."""
        drop = self._drops.setdefault(user, [])
        drop.append(message)
        return len(drop) == 1

    def peek(self, user: int) -> list[StoredMessage]:
        """What is waiting, without locking (for tracing)."""
        return list(self._drops.get(user, ()))

    def count(self, user: int) -> int:
        return len(self._drops.get(user, ()))

    def open(self, user: int) -> list[StoredMessage] | None:
        """Lock and snapshot a maildrop; None when another session holds it."""
        if user in self._locked:
            return None
        self._locked.add(user)
        return list(self._drops.get(user, ()))

    def close(self, user: int, deleted: set[str]) -> None:
        """Remove the deleted messages and release the lock (POP3 UPDATE state)."""
        drop = self._drops.get(user)
        if drop is not None and deleted:
            drop[:] = [m for m in drop if m.uid not in deleted]
            if not drop:
                del self._drops[user]
        self._locked.discard(user)

    def __len__(self) -> int:
        return sum(len(d) for d in self._drops.values())
