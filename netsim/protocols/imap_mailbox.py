"""The selected mailbox of an IMAP session (RFC 9051 §2.3.1, §6.4): sequence numbers, flags,
and what FETCH, STORE, SEARCH and EXPUNGE do to them. Sans-I/O.

The server engine holds one :class:`SelectedMailbox` while a mailbox is selected. It is the
view the client has been told about: message sequence number n is the n-th message, in UID
order, and numbers shift down only when an EXPUNGE response says so. It decides nothing about
states or storage: it returns the untagged responses and the flag changes or deletions, and
the engine passes those to the hooks.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from .imap_responses import (
    Data,
    FetchData,
    IMAPResponse,
    exists,
    expunged,
    flags_data,
    permanent_flags,
    recent,
    uidnext,
    uidvalidity,
)
from .imap_session import IMAPMailbox, IMAPStoredMessage
from .imap_syntax import (
    DELETED,
    FLAG_KEYS,
    SEEN,
    SYSTEM_FLAGS,
    FetchAttribute,
    SearchKey,
    SequenceSet,
    StoreMode,
    format_flags,
)

__all__ = ["PERMANENT_FLAGS", "SelectedMailbox"]

#: The flags STORE changes for good; keywords are accepted and ignored (RFC 9051 §7.1).
PERMANENT_FLAGS = frozenset(SYSTEM_FLAGS)
_MARKS_SEEN = frozenset({FetchAttribute.BODY, FetchAttribute.RFC822})
_LITERAL = frozenset({FetchAttribute.BODY, FetchAttribute.BODY_PEEK, FetchAttribute.RFC822})

FlagChanges = dict[int, frozenset[str]]
"""New flag sets by UID: what :meth:`IMAPServerHooks.store_flags` persists."""


class SelectedMailbox:
    """The messages of the selected mailbox, numbered as the client knows them.

    Args:
        name: The mailbox name (``INBOX``).
        mailbox: What the hooks opened.
        readonly: Opened with EXAMINE: FETCH BODY[] leaves ``\\Seen`` alone.
    """

    def __init__(self, name: str, mailbox: IMAPMailbox, *, readonly: bool) -> None:
        self.name = name
        self.readonly = readonly
        self.uidvalidity = mailbox.uidvalidity
        self.uidnext = mailbox.next_uid
        self._messages = list(mailbox.messages)
        self._uids = [m.uid for m in self._messages]

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def messages(self) -> tuple[IMAPStoredMessage, ...]:
        """The messages in sequence-number order."""
        return tuple(self._messages)

    def append(self, messages: Iterable[IMAPStoredMessage]) -> None:
        """New mail: it gets the next sequence numbers (the engine reports EXISTS).

        Raises:
            ValueError: If a UID is not above every UID already in the mailbox.
        """
        for message in messages:
            if message.uid < self.uidnext:
                raise ValueError(f"new message UID {message.uid} below UIDNEXT {self.uidnext}")
            self._messages.append(message)
            self._uids.append(message.uid)
            self.uidnext = message.uid + 1

    def status(self, *, rev2: bool) -> list[IMAPResponse]:
        """The untagged responses of SELECT and EXAMINE (RFC 9051 §6.3.2)."""
        responses: list[IMAPResponse] = [flags_data(), exists(len(self._messages))]
        if not rev2:
            responses.append(recent(0))  # RFC 3501 requires it; \Recent is not kept
        permanent = () if self.readonly else PERMANENT_FLAGS
        return [*responses, uidvalidity(self.uidvalidity), uidnext(self.uidnext),
                permanent_flags(permanent)]  # fmt: skip

    # --- sequence sets ----------------------------------------------------------------------

    def resolve(self, sequence: SequenceSet, *, uid: bool, strict: bool = True) -> list[int] | None:
        """The 0-based positions a set names, ascending, each once.

        Sequence numbers past the last message are an error (``None``) when ``strict``
        (FETCH, STORE) and are left out otherwise (SEARCH). UIDs that do not exist are left
        out (RFC 9051 §6.4.9); ``n:*`` always includes the last message, even if n is larger.
        """
        count = len(self._messages)
        found: set[int] = set()
        for first, last in sequence.ranges:
            if uid:
                top = self._uids[-1] if self._uids else 0
                a, b = sorted((top if first is None else first, top if last is None else last))
                found.update(range(bisect_left(self._uids, a), bisect_right(self._uids, b)))
                continue
            a, b = sorted((count if first is None else first, count if last is None else last))
            if strict and (count == 0 or b > count):
                return None
            found.update(range(a - 1, min(b, count)))
        return sorted(found)

    # --- FETCH, STORE, SEARCH, EXPUNGE -----------------------------------------------------

    def fetch(
        self,
        positions: Sequence[int],
        attributes: Sequence[FetchAttribute],
        *,
        uid: bool,
        render: Callable[[IMAPStoredMessage], bytes],
    ) -> tuple[list[FetchData], FlagChanges]:
        """One FETCH response per message, and the ``\\Seen`` flags BODY[] set.

        The items come UID first (always there for UID FETCH), then the other small items,
        then any FLAGS that BODY[] changed, and the message octets last, as literals.
        """
        wanted = list(dict.fromkeys(attributes))
        if uid and FetchAttribute.UID not in wanted:
            wanted.insert(0, FetchAttribute.UID)
        wanted.sort(key=lambda a: (a is not FetchAttribute.UID) + 2 * (a in _LITERAL))
        marks_seen = not self.readonly and bool(_MARKS_SEEN.intersection(wanted))
        changes: FlagChanges = {}
        responses: list[FetchData] = []
        for i in positions:
            message = self._messages[i]
            if marks_seen and SEEN not in message.flags:
                message = self._set_flags(i, message.flags | {SEEN})
                changes[message.uid] = message.flags
            items: list[tuple[str, str | bytes]] = []
            octets: bytes | None = None
            for attribute in wanted:
                if attribute in _LITERAL:
                    if octets is None:
                        octets = render(message)
                        if message.uid in changes and FetchAttribute.FLAGS not in wanted:
                            items.append(("FLAGS", format_flags(message.flags)))
                    items.append((attribute.response_name, octets))
                else:
                    items.append((attribute.value, self._small_item(attribute, message)))
            responses.append(FetchData(i + 1, tuple(items)))
        return responses, changes

    @staticmethod
    def _small_item(attribute: FetchAttribute, message: IMAPStoredMessage) -> str:
        if attribute is FetchAttribute.UID:
            return str(message.uid)
        if attribute is FetchAttribute.FLAGS:
            return format_flags(message.flags)
        return str(message.size)

    def store(
        self,
        positions: Sequence[int],
        mode: StoreMode,
        flags: frozenset[str],
        *,
        silent: bool,
        uid: bool,
    ) -> tuple[list[FetchData], FlagChanges]:
        """Apply STORE; the FETCH (FLAGS) responses (none if silent) and the changes."""
        given = flags & PERMANENT_FLAGS
        changes: FlagChanges = {}
        responses: list[FetchData] = []
        for i in positions:
            message = self._messages[i]
            kept = message.flags - PERMANENT_FLAGS
            if mode is StoreMode.REPLACE:
                new = kept | given
            elif mode is StoreMode.ADD:
                new = message.flags | given
            else:
                new = message.flags - given
            if new != message.flags:
                message = self._set_flags(i, new)
                changes[message.uid] = new
            if not silent:
                items: list[tuple[str, str | bytes]] = [("FLAGS", format_flags(new))]
                if uid:
                    items.insert(0, ("UID", str(message.uid)))
                responses.append(FetchData(i + 1, tuple(items)))
        return responses, changes

    def search(self, keys: Iterable[SearchKey], *, uid: bool) -> list[int]:
        """The sequence numbers (or UIDs) of the messages matching every key."""
        selected = set(range(len(self._messages)))
        for key in keys:
            if key.sequence is not None:
                by_uid = key.name == "UID"
                selected &= set(self.resolve(key.sequence, uid=by_uid, strict=False) or ())
            elif key.name in FLAG_KEYS:
                flag, wanted = FLAG_KEYS[key.name]
                selected = {i for i in selected if (flag in self._messages[i].flags) == wanted}
        return [self._uids[i] if uid else i + 1 for i in sorted(selected)]

    def expunge(self, only_uids: SequenceSet | None = None) -> tuple[list[Data], list[int]]:
        """Remove the ``\\Deleted`` messages (only those ``only_uids`` names: UID EXPUNGE).

        Returns:
            The EXPUNGE responses and the UIDs removed. The responses go in ascending order,
            each number already lowered by the ones before it (RFC 9051 §7.5.1's example:
            messages 3, 4, 7 and 11 give ``3, 3, 5, 8``).
        """
        allowed = None
        if only_uids is not None:
            allowed = {self._uids[i] for i in self.resolve(only_uids, uid=True) or ()}
        responses: list[Data] = []
        removed: list[int] = []
        kept: list[IMAPStoredMessage] = []
        for i, message in enumerate(self._messages):
            if DELETED in message.flags and (allowed is None or message.uid in allowed):
                responses.append(expunged(i + 1 - len(removed)))
                removed.append(message.uid)
            else:
                kept.append(message)
        self._messages = kept
        self._uids = [m.uid for m in kept]
        return responses, removed

    def _set_flags(self, position: int, flags: frozenset[str]) -> IMAPStoredMessage:
        message = replace(self._messages[position], flags=frozenset(flags))
        self._messages[position] = message
        return message
