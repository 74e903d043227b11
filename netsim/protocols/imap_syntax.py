"""IMAP data formats (RFC 9051 §4 and the §9 grammar): sequence sets, flags, strings,
FETCH items, STORE modes and SEARCH keys.

Shared by the IMAP command events, the responses, the parser and both engines.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DELETED",
    "FLAG_KEYS",
    "MAX_NUMBER",
    "SEEN",
    "SYSTEM_FLAGS",
    "FetchAttribute",
    "SearchKey",
    "SequenceSet",
    "StoreMode",
    "astring",
    "canonical_flag",
    "format_flags",
    "is_atom",
    "is_tag",
    "list_matches",
    "quote",
]

#: The system flags a client may store (RFC 9051 §2.3.2; ``\Recent`` is gone in IMAP4rev2).
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
SEEN = "\\Seen"
DELETED = "\\Deleted"
MAX_NUMBER = 4_294_967_295  # nz-number: a UID or sequence number fits 32 bits

_CANONICAL = {flag.upper(): flag for flag in SYSTEM_FLAGS}
_ORDER = {flag: i for i, flag in enumerate(SYSTEM_FLAGS)}
# atom-specials: ( ) { SP CTL % * " \ ]  (and every non-ASCII octet)
_ATOM_SPECIALS = frozenset('(){ %*"\\]')


def is_atom(text: str) -> bool:
    """True if ``text`` is a non-empty IMAP atom."""
    return bool(text) and all(
        " " < c < "\x7f" and c not in _ATOM_SPECIALS for c in text
    )


def is_tag(text: str) -> bool:
    """True if ``text`` can tag a command: ASTRING-CHARs (atom chars and ``]``) but no ``+``."""
    return bool(text) and "+" not in text and is_atom(text.replace("]", "x"))


def canonical_flag(text: str) -> str | None:
    """A flag as stored: system flags in their RFC spelling (they are case-insensitive),
    keywords and ``\\``-extensions as given; ``None`` if ``text`` is not a flag."""
    system = _CANONICAL.get(text.upper())
    if system is not None:
        return system
    name = text[1:] if text.startswith("\\") else text
    return text if is_atom(name) else None


def format_flags(flags: Iterable[str]) -> str:
    """A parenthesised flag list: system flags in a fixed order, then the others sorted."""
    ordered = sorted(set(flags), key=lambda f: (_ORDER.get(f, len(_ORDER)), f))
    return "(" + " ".join(ordered) + ")"


def quote(text: str) -> str:
    """A quoted string (RFC 9051 §4.3): ``"`` and ``\\`` escaped; UTF-8 is allowed.

    Raises:
        ValueError: If ``text`` holds CR, LF or NUL, which only a literal can carry.
    """
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError("CR, LF and NUL cannot be quoted")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def astring(text: str) -> str:
    """``text`` as an atom when it is one, else quoted."""
    return text if is_atom(text) else quote(text)


def _number(text: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or not text.isascii() or text[0] == "0" or len(text) > 10:
        raise ValueError(f"not a sequence number: {text!r}")
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError(f"sequence number out of range: {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence set such as ``1:3,5,7:*`` (RFC 9051 §9 ``sequence-set``).

    The same syntax names message sequence numbers or, in UID commands, UIDs; the engine
    resolves it against the selected mailbox.

    Attributes:
        ranges: ``(first, last)`` pairs, each end a number or ``None`` for ``*`` (the
            largest number in use); a single number ``n`` is ``(n, n)``. ``3:1`` is as
            good as ``1:3``.
    """

    ranges: tuple[tuple[int | None, int | None], ...]

    def __post_init__(self) -> None:
        if not self.ranges:
            raise ValueError("a sequence set is not empty")
        for pair in self.ranges:
            for end in pair:
                if end is not None and not 1 <= end <= MAX_NUMBER:
                    raise ValueError(f"sequence number out of range: {end}")

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``1:3,5,*``.

        Raises:
            ValueError: If ``text`` is not a sequence set.
        """
        ranges: list[tuple[int | None, int | None]] = []
        for part in text.split(","):
            first, colon, last = part.partition(":")
            start = _number(first)
            ranges.append((start, _number(last) if colon else start))
        return cls(tuple(ranges))

    @classmethod
    def of(cls, numbers: Iterable[int]) -> SequenceSet:
        """The shortest set naming exactly ``numbers``: ``[1, 2, 3, 5]`` -> ``1:3,5``."""
        ranges: list[tuple[int | None, int | None]] = []
        for n in sorted(set(numbers)):
            last = ranges[-1][1] if ranges else None
            if last is not None and n == last + 1:
                ranges[-1] = (ranges[-1][0], n)
            else:
                ranges.append((n, n))
        return cls(tuple(ranges))

    def to_text(self) -> str:
        """The wire form, e.g. ``1:3,5,7:*``."""

        def end(value: int | None) -> str:
            return "*" if value is None else str(value)

        return ",".join(
            end(a) if a == b else f"{end(a)}:{end(b)}" for a, b in self.ranges
        )


class FetchAttribute(enum.StrEnum):
    """The FETCH data items this server knows (their wire names)."""

    UID = "UID"
    FLAGS = "FLAGS"
    RFC822_SIZE = "RFC822.SIZE"
    BODY = "BODY[]"  # the whole message; sets \Seen
    BODY_PEEK = "BODY.PEEK[]"  # the same, leaving \Seen alone; answered as BODY[]
    RFC822 = "RFC822"  # BODY[] under its IMAP2 name

    @property
    def response_name(self) -> str:
        """The name the FETCH response gives the item."""
        return "BODY[]" if self is FetchAttribute.BODY_PEEK else self.value


class StoreMode(enum.StrEnum):
    """How STORE combines the given flags with a message's flags."""

    REPLACE = "FLAGS"
    ADD = "+FLAGS"
    REMOVE = "-FLAGS"


#: Search keys that test a flag: key -> (flag, wanted).
FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One search criterion: ``ALL``, a flag key (``UNSEEN``), ``UID set``, or a bare set.

    Attributes:
        name: ``ALL``, a key of :data:`FLAG_KEYS`, ``UID`` or ``SEQUENCE`` (a bare set).
        sequence: The set for ``UID`` and ``SEQUENCE``.
    """

    name: str
    sequence: SequenceSet | None = None

    def __post_init__(self) -> None:
        takes_set = self.name in ("UID", "SEQUENCE")
        if self.name != "ALL" and self.name not in FLAG_KEYS and not takes_set:
            raise ValueError(f"unsupported search key {self.name!r}")
        if takes_set != (self.sequence is not None):
            raise ValueError(f"{self.name} takes a sequence set" if takes_set
                             else f"{self.name} takes no argument")

    def to_text(self) -> str:
        """Wire text."""
        if self.sequence is None:
            return self.name
        text = self.sequence.to_text()
        return f"UID {text}" if self.name == "UID" else text


def list_matches(pattern: str, name: str) -> bool:
    """LIST wildcard match: ``*`` matches anything, ``%`` anything but the delimiter ``/``;
    the name INBOX matches case-insensitively (RFC 9051 §5.1). Dynamic programming over
    the name's prefixes: linear in the pattern, however many wildcards it holds."""
    name = name.upper()
    reach = [True] + [False] * len(name)  # reach[i]: the pattern so far matches name[:i]
    for char in pattern.upper():
        if char in "*%":
            following = [False] * len(reach)
            for i, ok in enumerate(reach):
                if ok or (i and following[i - 1] and (char == "*" or name[i - 1] != "/")):
                    following[i] = True
            reach = following
        else:
            reach = [False] + [reach[i] and name[i] == char for i in range(len(name))]
        if not any(reach):
            return False
    return reach[-1]
