"""IMAP command events (RFC 9051 §6; SASL-IR per RFC 4959, IDLE per RFC 2177, ENABLE per
RFC 5161, UNSELECT per RFC 3691).

Frozen, slotted, validated when built. Every command carries the client's tag; the two
lines that answer a continuation request (:class:`AuthenticateResponse`, :class:`Done`)
carry none. ``to_line()`` gives the wire text without CRLF (strings quoted, never literals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .imap_responses import IMAPStatus
from .imap_syntax import (
    FetchAttribute,
    SearchKey,
    SequenceSet,
    StoreMode,
    astring,
    canonical_flag,
    is_atom,
    is_tag,
    quote,
)

__all__ = [
    "Authenticate",
    "AuthenticateResponse",
    "Capability",
    "Close",
    "Done",
    "Enable",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchAttribute",
    "IMAPCommand",
    "Idle",
    "Invalid",
    "List",
    "Login",
    "Logout",
    "Noop",
    "Search",
    "SearchKey",
    "Select",
    "StartTLS",
    "Store",
    "StoreMode",
    "Unknown",
    "Unselect",
]


def _check_tag(tag: str) -> None:
    if not is_tag(tag):
        raise ValueError(f"not an IMAP tag: {tag!r}")


def _check_string(value: str, what: str, *, empty: bool = False, literal: bool = False) -> None:
    """``literal``: the value may hold CR and LF, as a literal can carry them (never NUL)."""
    if not value and not empty:
        raise ValueError(f"{what} must not be empty")
    if "\0" in value or (not literal and ("\r" in value or "\n" in value)):
        raise ValueError(f"{what} must not contain {'NUL' if literal else 'CR, LF or NUL'}")


def _uid(uid: bool) -> str:
    return "UID " if uid else ""


@dataclass(frozen=True, slots=True)
class _Bare:
    """A command that is its tag and its name, nothing else."""

    NAME: ClassVar[str] = ""
    tag: str

    def __post_init__(self) -> None:
        _check_tag(self.tag)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"{self.tag} {self.NAME}"


@dataclass(frozen=True, slots=True)
class Capability(_Bare):
    """``tag CAPABILITY``."""

    NAME = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(_Bare):
    """``tag NOOP``: does nothing, but lets the server report news (EXISTS)."""

    NAME = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(_Bare):
    """``tag LOGOUT``: ``* BYE`` then the tagged OK; nothing is expunged."""

    NAME = "LOGOUT"


@dataclass(frozen=True, slots=True)
class StartTLS(_Bare):
    """``tag STARTTLS`` (RFC 9051 §6.2.1): only before authentication."""

    NAME = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Login:
    """``tag LOGIN user password`` (both strings; refused where plaintext is disabled).

    Sent as literals, the strings may hold CR and LF; such a command has no ``to_line()``.
    """

    tag: str
    username: str
    password: str

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        _check_string(self.username, "user name", literal=True)
        _check_string(self.password, "password", empty=True, literal=True)

    def to_line(self) -> str:
        """Wire text without CRLF (the password always quoted, as imaplib does).

        Raises:
            ValueError: If a string holds CR or LF (only a literal can carry it).
        """
        return f"{self.tag} LOGIN {astring(self.username)} {quote(self.password)}"


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``tag AUTHENTICATE mechanism [initial-response]`` (SASL-IR: ``=`` is empty)."""

    tag: str
    mechanism: str
    initial_response: str | None = None

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        if not is_atom(self.mechanism):
            raise ValueError(f"not a SASL mechanism name: {self.mechanism!r}")
        if self.initial_response is not None and not is_atom(self.initial_response):
            raise ValueError("the initial response is base64 or '='")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        ir = "" if self.initial_response is None else f" {self.initial_response}"
        return f"{self.tag} AUTHENTICATE {self.mechanism}{ir}"


@dataclass(frozen=True, slots=True)
class AuthenticateResponse:
    """The line answering AUTHENTICATE's ``+`` challenge: base64, or ``*`` to cancel."""

    data: str

    def __post_init__(self) -> None:
        _check_string(self.data, "SASL response", empty=True)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.data


@dataclass(frozen=True, slots=True)
class Enable:
    """``tag ENABLE ext …`` (RFC 5161); this server knows only IMAP4rev2."""

    tag: str
    extensions: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        if not self.extensions or not all(is_atom(e) for e in self.extensions):
            raise ValueError("ENABLE names one or more extensions")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"{self.tag} ENABLE " + " ".join(self.extensions)


@dataclass(frozen=True, slots=True)
class _Open:
    """A command that opens a mailbox."""

    NAME: ClassVar[str] = ""
    tag: str
    mailbox: str

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        _check_string(self.mailbox, "mailbox name")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"{self.tag} {self.NAME} {astring(self.mailbox)}"


@dataclass(frozen=True, slots=True)
class Select(_Open):
    """``tag SELECT mailbox``: open it read-write."""

    NAME = "SELECT"


@dataclass(frozen=True, slots=True)
class Examine(_Open):
    """``tag EXAMINE mailbox``: open it read-only (no flag changes, BODY[] keeps \\Seen)."""

    NAME = "EXAMINE"


@dataclass(frozen=True, slots=True)
class List:
    """``tag LIST reference pattern`` (``*`` and ``%`` are wildcards)."""

    tag: str
    reference: str
    pattern: str

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        _check_string(self.reference, "reference", empty=True)
        _check_string(self.pattern, "pattern", empty=True)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"{self.tag} LIST {quote(self.reference)} {quote(self.pattern)}"


@dataclass(frozen=True, slots=True)
class Fetch:
    """``tag [UID] FETCH set items``."""

    tag: str
    sequence: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    uid: bool = False

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        if not self.attributes:
            raise ValueError("FETCH asks for at least one item")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        items = " ".join(a.value for a in self.attributes)
        return f"{self.tag} {_uid(self.uid)}FETCH {self.sequence.to_text()} ({items})"


@dataclass(frozen=True, slots=True)
class Store:
    """``tag [UID] STORE set [+|-]FLAGS[.SILENT] (flags)``."""

    tag: str
    sequence: SequenceSet
    mode: StoreMode
    flags: frozenset[str]
    silent: bool = False
    uid: bool = False

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        if any(canonical_flag(f) != f for f in self.flags):
            raise ValueError(f"not flags (or not in their canonical spelling): {self.flags}")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        item = self.mode.value + (".SILENT" if self.silent else "")
        flags = " ".join(sorted(self.flags))
        return f"{self.tag} {_uid(self.uid)}STORE {self.sequence.to_text()} {item} ({flags})"


@dataclass(frozen=True, slots=True)
class Search:
    """``tag [UID] SEARCH key …``: every key must hold (AND)."""

    tag: str
    keys: tuple[SearchKey, ...]
    uid: bool = False

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        if not self.keys:
            raise ValueError("SEARCH takes at least one key")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        keys = " ".join(k.to_text() for k in self.keys)
        return f"{self.tag} {_uid(self.uid)}SEARCH {keys}"


@dataclass(frozen=True, slots=True)
class Expunge:
    """``tag EXPUNGE``, or ``tag UID EXPUNGE set`` (only those UIDs, if \\Deleted)."""

    tag: str
    uids: SequenceSet | None = None

    def __post_init__(self) -> None:
        _check_tag(self.tag)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        if self.uids is None:
            return f"{self.tag} EXPUNGE"
        return f"{self.tag} UID EXPUNGE {self.uids.to_text()}"


@dataclass(frozen=True, slots=True)
class Close(_Bare):
    """``tag CLOSE``: expunge \\Deleted messages silently (if read-write), deselect."""

    NAME = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(_Bare):
    """``tag UNSELECT``: deselect without expunging."""

    NAME = "UNSELECT"


@dataclass(frozen=True, slots=True)
class Idle(_Bare):
    """``tag IDLE``: the server may push untagged news until the client sends DONE."""

    NAME = "IDLE"


@dataclass(frozen=True, slots=True)
class Done:
    """``DONE``: ends IDLE (untagged: it answers IDLE's ``+``)."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "DONE"


@dataclass(frozen=True, slots=True)
class Unknown:
    """A tagged command whose name the server does not know."""

    tag: str
    line: str

    def __post_init__(self) -> None:
        _check_tag(self.tag)
        _check_string(self.line, "command line", empty=True)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.line


@dataclass(frozen=True, slots=True)
class Invalid:
    """A command the parser or the framer rejected: the server answers with ``status``.

    Attributes:
        tag: The command's tag; ``None`` when none could be read (the answer is ``* BAD``).
        status: A ``BAD``, or a ``BYE`` when the stream can no longer be framed.
        line: The offending line for logs (printable).
    """

    tag: str | None
    status: IMAPStatus
    line: str = ""

    def __post_init__(self) -> None:
        if self.tag is not None:
            _check_tag(self.tag)
        if self.status.kind not in ("BAD", "BYE"):
            raise ValueError("an Invalid event carries a BAD or BYE")
        _check_string(self.line, "command line", empty=True)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.line


IMAPCommand = (
    Capability | Noop | Logout | StartTLS | Login | Authenticate | AuthenticateResponse
    | Enable | Select | Examine | List | Fetch | Store | Search | Expunge | Close | Unselect
    | Idle | Done | Unknown | Invalid
)  # fmt: skip
"""Any event an IMAP client sends and an IMAP server handles."""
