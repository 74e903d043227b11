"""Per-account maildrops of one server, served by POP3 and IMAP alike.

POP3 takes an exclusive lock (RFC 1939 §8) and deletes what its client marked at QUIT.
IMAP (RFC 9051) leaves mail on the server: each message has a UID that never changes
within the mailbox (UIDVALIDITY stays 1) and flags (``\\Seen``, ``\\Deleted``, ...); a
client removes messages only by expunging them. Each message is visible from the instant
it was delivered: a session that logs in earlier does not see it, even where the
simulation stored it a moment ahead of that instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from netsim.protocols import StoredMessage

UIDVALIDITY = 1


SEEN = "\\Seen"


@dataclass(slots=True)
class Stored:
    """One message in a maildrop: when it was delivered, its IMAP UID and flags."""

    at: float
    message: StoredMessage
    uid: int
    flags: frozenset[str] = frozenset()

    @property
    def seen(self) -> bool:
        return SEEN in self.flags


class Maildrops:
    """Messages waiting for each local user, keyed by user index."""

    def __init__(self) -> None:
        self._drops: dict[int, list[Stored]] = {}
        self._next_uid: dict[int, int] = {}
        self._locked: set[int] = set()

    def add(self, user: int, message: StoredMessage, at: float = 0.0) -> bool:
        """Store a message delivered at ``at``; True when nothing was waiting for the user
        before (no message a client has not seen)."""
        was_waiting = self.waiting(user)
        uid = self._next_uid.get(user, 1)
        self._next_uid[user] = uid + 1
        self._drops.setdefault(user, []).append(Stored(at, message, uid))
        return not was_waiting

    def peek(self, user: int) -> list[StoredMessage]:
        """What is stored, without locking (for tracing)."""
        return [s.message for s in self._drops.get(user, ())]

    def count(self, user: int) -> int:
        return len(self._drops.get(user, ()))

    def waiting(self, user: int) -> int:
        """Messages no client has retrieved yet (POP3 deletes what it retrieves; IMAP marks
        it seen)."""
        return sum(not s.seen for s in self._drops.get(user, ()))

    def next_uid(self, user: int) -> int:
        """The UID ``user``'s next message will get (it never goes down, RFC 9051 §2.3.1.1)."""
        return self._next_uid.get(user, 1)

    def sizes(self, user: int) -> list[int]:
        """The sizes of the messages stored for ``user``."""
        return [s.message.size for s in self._drops.get(user, ())]

    def users(self) -> list[int]:
        return list(self._drops)

    def open(self, user: int, at: float = math.inf) -> list[StoredMessage] | None:
        """POP3: lock and snapshot what was delivered by ``at``; None when another POP3
        session holds the lock."""
        if user in self._locked:
            return None
        self._locked.add(user)
        return [s.message for s in self._drops.get(user, ()) if s.at <= at]

    def close(self, user: int, deleted: set[str]) -> None:
        """POP3: remove the deleted messages and release the lock (the UPDATE state)."""
        self._remove(user, lambda s: s.message.uid in deleted)
        self._locked.discard(user)

    def mailbox(self, user: int, at: float = math.inf) -> list[Stored]:
        """IMAP: what was delivered by ``at``, in UID order (no lock: IMAP sessions share a
        mailbox)."""
        return [s for s in self._drops.get(user, ()) if s.at <= at]

    def set_flags(self, user: int, flags: Mapping[int, frozenset[str]]) -> None:
        """IMAP: the new flags of these messages (by UID)."""
        for s in self._drops.get(user, ()):
            found = flags.get(s.uid)
            if found is not None:
                s.flags = found

    def expunge(self, user: int, uids: Iterable[int]) -> None:
        """IMAP: remove these messages for good."""
        wanted = set(uids)
        self._remove(user, lambda s: s.uid in wanted)

    def _remove(self, user: int, gone: Callable[[Stored], bool]) -> None:
        drop = self._drops.get(user)
        if drop is None:
            return
        drop[:] = [s for s in drop if not gone(s)]
        if not drop:
            del self._drops[user]

    def __len__(self) -> int:
        return sum(len(d) for d in self._drops.values())


class MailboxUsage:
    """The octets each account's mailbox holds over time, what a quota reads: deliveries
    add to it, and a POP3 client drains it at its next scheduled check (``drained``: the
    instants, for accounts and delivery instants); an IMAP client's ``drained`` is
    infinite, as it leaves mail on the server. Both paths add their deliveries here, so a
    quota reads the same mailboxes at every fidelity; at fidelity flow a minute's
    deliveries are added after its asks, and ``late`` counts the deliveries that came
    after an ask about a later instant of the same mailbox (that ask may have been
    answered otherwise than the engines would)."""

    def __init__(self, drained: Callable[[np.ndarray, np.ndarray], np.ndarray]):
        self._drained = drained
        self._held: dict[int, list[tuple[float, float, int]]] = {}   # account → deliveries
        self._asked: dict[int, float] = {}   # account → the latest instant asked about
        self.late = 0

    def add(self, users: np.ndarray, at: np.ndarray, sizes: np.ndarray) -> None:
        """Deliveries of ``sizes`` octets to ``users`` at ``at``."""
        gone = self._drained(users, at)
        asked = self._asked
        for user, t, drained, size in zip(users.tolist(), at.tolist(), gone.tolist(),
                                          sizes.tolist(), strict=True):
            self._held.setdefault(user, []).append((t, drained, int(size)))
            self.late += asked.get(user, -math.inf) > t

    def held(self, user: int, at: float) -> int:
        """The octets ``user``'s mailbox holds at ``at``."""
        if at > self._asked.get(user, -math.inf):
            self._asked[user] = at
        return sum(size for t, drained, size in self._held.get(user, ()) if t <= at < drained)


class MaildropUsage:
    """What a quota reads where the maildrops are real (the live lab): what each holds now,
    with POP3's deletions and IMAP's expunges as the clients made them."""

    late = 0   # nothing is asked out of order: the maildrops are the record

    def __init__(self, maildrops: Maildrops):
        self._maildrops = maildrops

    def held(self, user: int, at: float) -> int:
        return sum(self._maildrops.sizes(user))
