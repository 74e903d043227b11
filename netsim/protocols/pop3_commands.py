"""POP3 command events (RFC 1939, CAPA per RFC 2449, STLS per RFC 2595).

Frozen, slotted, validated when built. RFC 2449 §4 limits each argument to 40 characters;
message numbers are 1-based. ``to_line()`` gives the wire text without CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pop3_replies import POP3Reply

__all__ = [
    "Apop",
    "Capa",
    "Dele",
    "Invalid",
    "List",
    "Noop",
    "POP3Command",
    "Pass",
    "Quit",
    "Retr",
    "Rset",
    "Stat",
    "Stls",
    "Top",
    "Uidl",
    "Unknown",
    "User",
]

MAX_ARGUMENT = 40  # RFC 2449 §4
_HEX = frozenset("0123456789abcdef")


def _check_argument(value: str, what: str, *, spaces: bool = False) -> None:
    if not value or len(value) > MAX_ARGUMENT:
        raise ValueError(f"{what} must be 1-{MAX_ARGUMENT} characters")
    if "\r" in value or "\n" in value or "\0" in value or (not spaces and " " in value):
        raise ValueError(f"{what} has characters not allowed in an argument")


def _check_number(value: int, what: str = "message number") -> None:
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value}")


@dataclass(frozen=True, slots=True)
class User:
    """``USER name``."""

    name: str

    def __post_init__(self) -> None:
        _check_argument(self.name, "user name")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"USER {self.name}"


@dataclass(frozen=True, slots=True)
class Pass:
    """``PASS password`` (the password may contain spaces, RFC 1939 §7)."""

    password: str

    def __post_init__(self) -> None:
        _check_argument(self.password, "password", spaces=True)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"PASS {self.password}"


@dataclass(frozen=True, slots=True)
class Apop:
    """``APOP name digest``: digest is hex MD5 of the greeting's timestamp + the secret."""

    name: str
    digest: str

    def __post_init__(self) -> None:
        _check_argument(self.name, "user name")
        if len(self.digest) != 32 or not _HEX.issuperset(self.digest):
            raise ValueError("APOP digest must be 32 lower-case hex digits")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"APOP {self.name} {self.digest}"


@dataclass(frozen=True, slots=True)
class Stat:
    """``STAT``: number and total size of the messages not marked deleted."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "STAT"


@dataclass(frozen=True, slots=True)
class List:
    """``LIST [msg]``: scan listing of one message or of all."""

    msg: int | None = None

    def __post_init__(self) -> None:
        if self.msg is not None:
            _check_number(self.msg)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "LIST" if self.msg is None else f"LIST {self.msg}"


@dataclass(frozen=True, slots=True)
class Retr:
    """``RETR msg``."""

    msg: int

    def __post_init__(self) -> None:
        _check_number(self.msg)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"RETR {self.msg}"


@dataclass(frozen=True, slots=True)
class Dele:
    """``DELE msg``: mark for deletion at QUIT."""

    msg: int

    def __post_init__(self) -> None:
        _check_number(self.msg)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"DELE {self.msg}"


@dataclass(frozen=True, slots=True)
class Noop:
    """``NOOP``."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "NOOP"


@dataclass(frozen=True, slots=True)
class Rset:
    """``RSET``: unmark every message marked deleted."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "RSET"


@dataclass(frozen=True, slots=True)
class Quit:
    """``QUIT``: from TRANSACTION, enter UPDATE and delete the marked messages."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "QUIT"


@dataclass(frozen=True, slots=True)
class Uidl:
    """``UIDL [msg]``: unique-id listing."""

    msg: int | None = None

    def __post_init__(self) -> None:
        if self.msg is not None:
            _check_number(self.msg)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "UIDL" if self.msg is None else f"UIDL {self.msg}"


@dataclass(frozen=True, slots=True)
class Top:
    """``TOP msg n``: the headers and the first ``lines`` body lines."""

    msg: int
    lines: int

    def __post_init__(self) -> None:
        _check_number(self.msg)
        if self.lines < 0:
            raise ValueError(f"line count must be >= 0, got {self.lines}")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"TOP {self.msg} {self.lines}"


@dataclass(frozen=True, slots=True)
class Capa:
    """``CAPA`` (RFC 2449): list the server's capabilities; legal in every state."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "CAPA"


@dataclass(frozen=True, slots=True)
class Stls:
    """``STLS`` (RFC 2595): start TLS; only in AUTHORIZATION before a user is named."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "STLS"


@dataclass(frozen=True, slots=True)
class Unknown:
    """A command line with a keyword the parser does not know."""

    line: str

    def __post_init__(self) -> None:
        if "\r" in self.line or "\n" in self.line:
            raise ValueError("command line must not contain CR or LF")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.line


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line the parser rejected; the server answers with ``reply`` (an ``-ERR``)."""

    reply: POP3Reply
    line: str = ""

    def __post_init__(self) -> None:
        if self.reply.ok:
            raise ValueError("an Invalid event carries an -ERR reply")
        if "\r" in self.line or "\n" in self.line:
            raise ValueError("command line must not contain CR or LF")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.line


POP3Command = (
    User
    | Pass
    | Apop
    | Stat
    | List
    | Retr
    | Dele
    | Noop
    | Rset
    | Quit
    | Uidl
    | Top
    | Capa
    | Stls
    | Unknown
    | Invalid
)
"""Any event a POP3 client sends and a POP3 server handles."""
