"""SMTP command events (RFC 5321 §4.1, AUTH per RFC 4954).

Small frozen, slotted dataclasses, validated when built (h11's ``_events.py`` habit): a
command that exists is a command that may go on the wire. The simulation builds them
directly; the byte layer builds them with :func:`netsim.protocols.wire.parse_smtp_command`,
which turns what would be a ``ValueError`` here into an :class:`Invalid` event carrying the
reply the server must give.

Each event's ``to_line()`` is its wire text without CRLF, which is all a transcript needs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .replies import Reply

__all__ = [
    "Auth",
    "AuthResponse",
    "Content",
    "Data",
    "Ehlo",
    "Helo",
    "Invalid",
    "Mail",
    "Noop",
    "Quit",
    "Rcpt",
    "Rset",
    "SMTPCommand",
    "StartTLS",
    "Unknown",
    "validate_address",
]

# RFC 5321 §4.5.3.1: size limits of the pieces of an address.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256  # including the angle brackets
# RFC 4422 §3.1: SASL mechanism names are 1-20 of these characters.
_SASL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# Characters that can never appear unquoted in a path; spaces and controls end a token.
_FORBIDDEN = frozenset('<>()[]\\,;: \t"') | frozenset(chr(c) for c in range(32)) | {"\x7f"}


def _check_helo_name(name: str, what: str) -> None:
    """A domain, or an address literal ``[192.0.2.1]`` / ``[IPv6:2001:db8::1]`` (RFC 5321
    §4.1.3), which clients without a hostname send."""
    if name.startswith("[") and name.endswith("]"):
        inner = name[1:-1]
        try:
            if inner[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(inner[5:])
            else:
                ipaddress.IPv4Address(inner)
        except ValueError:
            raise ValueError(f"{what} is not a valid address literal: {name!r}") from None
        return
    _check_domain(name, what)


def _check_domain(domain: str, what: str) -> None:
    if not domain or len(domain) > MAX_DOMAIN:
        raise ValueError(f"{what} must be 1-{MAX_DOMAIN} octets, got {domain!r}")
    if not domain.isascii() or not _FORBIDDEN.isdisjoint(domain) or "@" in domain:
        raise ValueError(f"{what} has characters not allowed in a domain: {domain!r}")


def quoted_string_end(text: str, start: int = 0) -> int:
    """Where RFC 5321's Quoted-string opening at ``text[start]`` (a double quote) ends: the
    index past its closing quote, or -1 if it does not close. Inside: printable ASCII, a
    backslash escaping the character after it."""
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return i + 1
        if not " " <= c <= "~":
            return -1
        i += 2 if c == "\\" else 1
    return -1


def unquoted(local: str) -> str | None:
    """The text of a local part that is one Quoted-string (escapes removed), else None."""
    if local[:1] != '"' or quoted_string_end(local) != len(local):
        return None
    return re.sub(r"\\(.)", r"\1", local[1:-1])


def validate_address(address: str, *, allow_null: bool = False) -> None:
    """Check a mailbox ``local@domain`` against RFC 5321's limits.

    ``postmaster`` without a domain is allowed (RFC 5321 §4.1.1.3); the null path ``""``
    only when ``allow_null``. A local part may be a quoted string (``"john smith"@d``:
    printable ASCII, ``\"`` and ``\\`` escaped; RFC 5321 §4.1.2).

    Raises:
        ValueError: If the address is malformed or too long.
    """
    if not address:
        if allow_null:
            return
        raise ValueError("the null path <> is not allowed here")
    if len(address) + 2 > MAX_PATH:
        raise ValueError(f"path longer than {MAX_PATH} octets")
    local, at, domain = address.rpartition("@")
    quoted = unquoted(local) is not None
    if not address.isascii() or not _FORBIDDEN.isdisjoint(domain if quoted else address):
        raise ValueError(f"address has characters not allowed in a path: {address!r}")
    if not at:
        if address.lower() == "postmaster":
            return
        raise ValueError(f"address must be local@domain, got {address!r}")
    if not local or len(local) > MAX_LOCAL_PART or ("@" in local and not quoted):
        raise ValueError(f"local part must be 1-{MAX_LOCAL_PART} octets, got {local!r}")
    _check_domain(domain, "domain")


def _check_argument(value: str, what: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain CR or LF")


@dataclass(frozen=True, slots=True)
class Helo:
    """``HELO domain``: greet the server, plain SMTP."""

    domain: str

    def __post_init__(self) -> None:
        _check_helo_name(self.domain, "HELO domain")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"HELO {self.domain}"


@dataclass(frozen=True, slots=True)
class Ehlo:
    """``EHLO domain``: greet the server and ask for its extensions."""

    domain: str

    def __post_init__(self) -> None:
        _check_helo_name(self.domain, "EHLO domain")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"EHLO {self.domain}"


@dataclass(frozen=True, slots=True)
class Mail:
    """``MAIL FROM:<reverse_path> [SIZE=n]``.

    Attributes:
        reverse_path: The sender without angle brackets; ``""`` is the null path ``<>``.
        size: The RFC 1870 ``SIZE`` parameter, or ``None`` when not declared.
    """

    reverse_path: str
    size: int | None = None

    def __post_init__(self) -> None:
        validate_address(self.reverse_path, allow_null=True)
        if self.size is not None and self.size < 0:
            raise ValueError(f"SIZE must be >= 0, got {self.size}")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        if self.size is None:
            return f"MAIL FROM:<{self.reverse_path}>"
        return f"MAIL FROM:<{self.reverse_path}> SIZE={self.size}"


@dataclass(frozen=True, slots=True)
class Rcpt:
    """``RCPT TO:<forward_path>``; the path without angle brackets."""

    forward_path: str

    def __post_init__(self) -> None:
        validate_address(self.forward_path)

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return f"RCPT TO:<{self.forward_path}>"


@dataclass(frozen=True, slots=True)
class Data:
    """``DATA``: ask to send the message; a 354 answer asks for :class:`Content`."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "DATA"


@dataclass(frozen=True, slots=True)
class Content:
    """The message sent after a 354, up to and including the final ``.``.

    Attributes:
        size: The message size in octets (CRLF line ends, after dot-unstuffing).
        payload: Opaque to the engines: the simulation's message record, or on the wire
            the message bytes.
    """

    size: int
    payload: object = None

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"content size must be >= 0, got {self.size}")

    def to_line(self) -> str:
        """A transcript placeholder, not wire text: the byte layer sends the payload."""
        return f"[message: {self.size} octets]"


@dataclass(frozen=True, slots=True)
class Rset:
    """``RSET``: abort the mail transaction."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "RSET"


@dataclass(frozen=True, slots=True)
class Noop:
    """``NOOP``."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "NOOP"


@dataclass(frozen=True, slots=True)
class Quit:
    """``QUIT``: the server answers 221 and closes."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "QUIT"


@dataclass(frozen=True, slots=True)
class Auth:
    """``AUTH mechanism [initial-response]`` (RFC 4954).

    Attributes:
        mechanism: A SASL mechanism name; normalised to upper case.
        initial_response: Base64 text, ``"="`` for an empty response, or ``None``.
    """

    mechanism: str
    initial_response: str | None = None

    def __post_init__(self) -> None:
        mechanism = self.mechanism.upper()
        if not 1 <= len(mechanism) <= 20 or not _SASL_CHARS.issuperset(mechanism):
            raise ValueError(f"not a SASL mechanism name: {self.mechanism!r}")
        object.__setattr__(self, "mechanism", mechanism)
        response = self.initial_response
        if response is not None and (not response or not _BASE64_CHARS.issuperset(response)):
            raise ValueError(f"initial response must be base64 or '=', got {response!r}")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        if self.initial_response is None:
            return f"AUTH {self.mechanism}"
        return f"AUTH {self.mechanism} {self.initial_response}"


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A line answering a 334 challenge: base64 data, or ``"*"`` to cancel."""

    data: str

    def __post_init__(self) -> None:
        _check_argument(self.data, "AUTH response")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.data


@dataclass(frozen=True, slots=True)
class Unknown:
    """A command line whose verb the parser does not know (or that is not implemented)."""

    line: str

    def __post_init__(self) -> None:
        _check_argument(self.line, "command line")

    @property
    def verb(self) -> str:
        """The first word of the line, upper-cased."""
        return self.line.split(" ", 1)[0].upper()

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.line


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line the parser rejected; the server answers with ``reply`` (a 5xx).

    Attributes:
        reply: The error reply the server must give.
        line: The offending line (empty for an over-long line, which was discarded).
    """

    reply: Reply
    line: str = ""

    def __post_init__(self) -> None:
        if not self.reply.is_permanent:
            raise ValueError(f"an Invalid event carries a 5xx reply, got {self.reply.code}")
        _check_argument(self.line, "command line")

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return self.line


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``STARTTLS`` (RFC 3207): after the server's 220 the connection turns to TLS, and
    the session starts again from before EHLO."""

    def to_line(self) -> str:
        """Wire text without CRLF."""
        return "STARTTLS"


SMTPCommand = (
    Helo
    | Ehlo
    | Mail
    | Rcpt
    | Data
    | Content
    | Rset
    | Noop
    | Quit
    | Auth
    | AuthResponse
    | StartTLS
    | Unknown
    | Invalid
)
"""Any event an SMTP client sends and an SMTP server handles."""
