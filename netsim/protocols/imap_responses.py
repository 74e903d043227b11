"""IMAP server responses (RFC 9051 §7; response codes per RFC 9051 §7.1, RFC 5530, RFC 7888).

A response is one of four small events, each able to give its wire bytes:

* :class:`StatusResponse` — ``tag OK/NO/BAD …`` completing a command, or ``* OK/BYE …``;
* :class:`Continuation` — ``+ …``, asking for a literal, a SASL response or DONE;
* :class:`Data` — untagged data without literals: ``* 3 EXISTS``, ``* FLAGS (…)``;
* :class:`FetchData` — ``* n FETCH (…)``, whose message octets travel as a literal.

The conditions a status response carries are named constants (``OK_*``, ``NO_*``, ``BAD_*``,
``BYE_*``; continuations ``CONTINUE_*``) listed in ``IMAP_RESPONSES``; those that carry
numbers or capabilities are built by the small functions below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from .imap_syntax import SYSTEM_FLAGS, SequenceSet, format_flags

__all__ = [
    "IMAP_RESPONSES",
    "Continuation",
    "Data",
    "FetchData",
    "IMAPResponse",
    "IMAPStatus",
    "StatusResponse",
    "capabilities",
    "capability_data",
    "enabled",
    "esearch",
    "exists",
    "exists_count",
    "expunged",
    "flags_data",
    "imap_greeting",
    "list_data",
    "logged_in",
    "permanent_flags",
    "recent",
    "search",
    "search_results",
    "uidnext",
    "uidvalidity",
]

STATUS_KINDS = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})


def _check_text(text: str, what: str) -> None:
    if "\r" in text or "\n" in text:
        raise ValueError(f"{what} must not contain CR or LF")


@dataclass(frozen=True, slots=True)
class IMAPStatus:
    """A condition without its tag: ``OK [READ-WRITE] SELECT completed``.

    Attributes:
        kind: ``OK``, ``NO``, ``BAD``, ``BYE`` or ``PREAUTH``.
        text: Human-readable text.
        code: The bracketed response code with its arguments (``"UIDNEXT 4"``), or None.
    """

    kind: str
    text: str
    code: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in STATUS_KINDS:
            raise ValueError(f"not an IMAP status: {self.kind!r}")
        _check_text(self.text, "status text")
        if self.code is not None:
            _check_text(self.code, "response code")
            if not self.code or "]" in self.code.partition(" ")[0]:
                raise ValueError(f"bad response code {self.code!r}")

    @property
    def ok(self) -> bool:
        """True for ``OK`` (and ``PREAUTH``)."""
        return self.kind in ("OK", "PREAUTH")

    def render(self) -> str:
        """The status as it follows the tag: ``NO [INUSE] Mailbox is in use``."""
        code = f"[{self.code}] " if self.code is not None else ""
        return f"{self.kind} {code}{self.text}"


class _Wire:
    """Wire-form helpers shared by the response events."""

    __slots__ = ()

    def to_bytes(self) -> bytes:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def wire_lines(self) -> list[str]:
        """The response's wire bytes cut at CRLF (literal octets as surrogate escapes)."""
        return self.to_bytes().decode("utf-8", "surrogateescape").split("\r\n")[:-1]


@dataclass(frozen=True, slots=True)
class StatusResponse(_Wire):
    """A status response: tagged (completing the command with that tag) or ``*``."""

    tag: str
    status: IMAPStatus

    def to_bytes(self) -> bytes:
        """``tag status CRLF``."""
        return f"{self.tag} {self.status.render()}\r\n".encode()


@dataclass(frozen=True, slots=True)
class Continuation(_Wire):
    """A command continuation request: ``+ text`` (an empty SASL challenge is ``+ ``)."""

    text: str

    def __post_init__(self) -> None:
        _check_text(self.text, "continuation text")

    def to_bytes(self) -> bytes:
        """``+ text CRLF``."""
        return f"+ {self.text}\r\n".encode()


@dataclass(frozen=True, slots=True)
class Data(_Wire):
    """Untagged data that holds no literal, e.g. ``Data("3 EXISTS")`` is ``* 3 EXISTS``."""

    text: str

    def __post_init__(self) -> None:
        _check_text(self.text, "response data")

    def to_bytes(self) -> bytes:
        """``* text CRLF``."""
        return f"* {self.text}\r\n".encode()


@dataclass(frozen=True, slots=True)
class FetchData(_Wire):
    """``* number FETCH (name value …)``.

    Attributes:
        number: The message sequence number.
        items: ``(name, value)`` pairs in order: a ``str`` value is written as it is
            (``"(\\Seen)"``, ``"42"``), a ``bytes`` value as a literal ``{n}`` CRLF + octets,
            unchanged (8-bit clean).
    """

    number: int
    items: tuple[tuple[str, str | bytes], ...]

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("sequence numbers start at 1")
        for name, value in self.items:
            _check_text(name, "FETCH item name")
            if isinstance(value, str):
                _check_text(value, "FETCH item value")

    def get(self, name: str) -> str | bytes | None:
        """The value of item ``name`` (case-insensitive), or None."""
        for item, value in self.items:
            if item.upper() == name.upper():
                return value
        return None

    def to_bytes(self) -> bytes:
        """The response with its literals."""
        out = [f"* {self.number} FETCH (".encode()]
        for i, (name, value) in enumerate(self.items):
            sep = " " if i else ""
            if isinstance(value, bytes):
                out += [f"{sep}{name} {{{len(value)}}}\r\n".encode(), value]
            else:
                out.append(f"{sep}{name} {value}".encode())
        out.append(b")\r\n")
        return b"".join(out)


IMAPResponse = StatusResponse | Continuation | Data | FetchData
"""Anything an IMAP server sends."""


# --- capabilities and the responses that carry data ------------------------------------


@lru_cache(maxsize=16)
def capabilities(*, starttls: bool, login_disabled: bool, authenticated: bool) -> tuple[str, ...]:
    """What CAPABILITY lists. IMAP4rev1 too, for its clients (RFC 9051 Appendix E);
    STARTTLS only while it may be used; AUTH=PLAIN only where a password may travel."""
    caps = ["IMAP4rev2", "IMAP4rev1", "LITERAL+", "SASL-IR", "ENABLE", "IDLE", "UNSELECT"]
    if not authenticated:
        if starttls:
            caps.append("STARTTLS")
        caps.append("LOGINDISABLED" if login_disabled else "AUTH=PLAIN")
    return tuple(caps)


def imap_greeting(caps: Iterable[str]) -> StatusResponse:
    """``* OK [CAPABILITY …] IMAP4rev2 server ready`` (RFC 9051 §7.1.1)."""
    return StatusResponse("*", IMAPStatus("OK", "IMAP4rev2 server ready",
                                          "CAPABILITY " + " ".join(caps)))


def logged_in(caps: Iterable[str]) -> IMAPStatus:
    """The tagged OK of LOGIN/AUTHENTICATE, with the capabilities now in force."""
    return IMAPStatus("OK", "Logged in", "CAPABILITY " + " ".join(caps))


def capability_data(caps: Iterable[str]) -> Data:
    """``* CAPABILITY …``."""
    return Data("CAPABILITY " + " ".join(caps))


def exists(count: int) -> Data:
    """``* n EXISTS``: the mailbox holds n messages."""
    return Data(f"{count} EXISTS")


def recent(count: int) -> Data:
    """``* n RECENT`` (IMAP4rev1 only: RFC 3501 requires it in SELECT)."""
    return Data(f"{count} RECENT")


def expunged(number: int) -> Data:
    """``* n EXPUNGE``: message n is gone and those after it move down by one."""
    return Data(f"{number} EXPUNGE")


def flags_data(flags: Iterable[str] = SYSTEM_FLAGS) -> Data:
    """``* FLAGS (…)``: the flags defined in the mailbox."""
    return Data("FLAGS " + format_flags(flags))


def permanent_flags(flags: Iterable[str]) -> StatusResponse:
    """``* OK [PERMANENTFLAGS (…)]``: the flags a STORE changes for good."""
    return StatusResponse("*", IMAPStatus("OK", "Flags permitted",
                                          "PERMANENTFLAGS " + format_flags(flags)))


def uidvalidity(value: int) -> StatusResponse:
    """``* OK [UIDVALIDITY n]``."""
    return StatusResponse("*", IMAPStatus("OK", "UIDs valid", f"UIDVALIDITY {value}"))


def uidnext(value: int) -> StatusResponse:
    """``* OK [UIDNEXT n]``: the UID the next message will get."""
    return StatusResponse("*", IMAPStatus("OK", "Predicted next UID", f"UIDNEXT {value}"))


def list_data(name: str, attributes: str = "") -> Data:
    """``* LIST (attributes) "/" name`` (``""`` for the root asked by ``LIST "" ""``)."""
    shown = name if name else '""'
    return Data(f'LIST ({attributes}) "/" {shown}')


def search(numbers: Iterable[int]) -> Data:
    """``* SEARCH 1 2 3`` (IMAP4rev1's result)."""
    return Data(" ".join(["SEARCH", *map(str, numbers)]))


def esearch(tag: str, numbers: Iterable[int], *, uid: bool) -> Data:
    """``* ESEARCH (TAG "a1") UID ALL 1:3`` (IMAP4rev2's result; no ALL when none match)."""
    found = list(numbers)
    text = f'ESEARCH (TAG "{tag}")' + (" UID" if uid else "")
    if found:
        text += " ALL " + SequenceSet.of(found).to_text()
    return Data(text)


def exists_count(data: Data) -> int | None:
    """n for ``* n EXISTS``; None for other data."""
    number, _, name = data.text.partition(" ")
    return int(number) if name.upper() == "EXISTS" and number.isdigit() else None


def search_results(data: Data) -> list[int] | None:
    """The numbers a SEARCH or ESEARCH response names, ascending; None for other data.

    Raises:
        ValueError: For an ESEARCH whose ALL is not a sequence set.
    """
    words = data.text.split()
    head = words[0].upper() if words else ""
    if head == "SEARCH":
        return sorted({int(w) for w in words[1:] if w.isdigit()})
    if head != "ESEARCH":
        return None
    upper = [w.upper() for w in words]
    if "ALL" not in upper[:-1]:
        return []
    found = SequenceSet.parse(words[upper.index("ALL") + 1])
    return sorted({n for a, b in found.ranges
                   for n in range(min(a or 0, b or 0), max(a or 0, b or 0) + 1)})  # fmt: skip


def enabled(extensions: Iterable[str]) -> Data:
    """``* ENABLED …``: the extensions ENABLE turned on."""
    return Data(" ".join(["ENABLED", *extensions]))


# --- named conditions -------------------------------------------------------------------

OK_NOOP = IMAPStatus("OK", "NOOP completed")
OK_CAPABILITY = IMAPStatus("OK", "CAPABILITY completed")
OK_LOGOUT = IMAPStatus("OK", "LOGOUT completed")
OK_BEGIN_TLS = IMAPStatus("OK", "Begin TLS negotiation now")
OK_ENABLE = IMAPStatus("OK", "ENABLE completed")
OK_LIST = IMAPStatus("OK", "LIST completed")
OK_SELECT_READ_WRITE = IMAPStatus("OK", "SELECT completed", "READ-WRITE")
OK_EXAMINE_READ_ONLY = IMAPStatus("OK", "EXAMINE completed", "READ-ONLY")
OK_PREVIOUS_MAILBOX_CLOSED = IMAPStatus("OK", "Previous mailbox closed", "CLOSED")
OK_FETCH = IMAPStatus("OK", "FETCH completed")
OK_STORE = IMAPStatus("OK", "STORE completed")
OK_SEARCH = IMAPStatus("OK", "SEARCH completed")
OK_EXPUNGE = IMAPStatus("OK", "EXPUNGE completed")
OK_CLOSE = IMAPStatus("OK", "CLOSE completed")
OK_UNSELECT = IMAPStatus("OK", "UNSELECT completed")
OK_IDLE_TERMINATED = IMAPStatus("OK", "IDLE terminated")
NO_AUTHENTICATION_FAILED = IMAPStatus("NO", "Invalid credentials", "AUTHENTICATIONFAILED")
NO_AUTHORIZATION_FAILED = IMAPStatus(
    "NO", "Cannot act as another user", "AUTHORIZATIONFAILED"
)
NO_PRIVACY_REQUIRED = IMAPStatus(
    "NO", "Plaintext authentication disallowed on non-secure connections", "PRIVACYREQUIRED"
)
NO_UNSUPPORTED_MECHANISM = IMAPStatus("NO", "Unsupported authentication mechanism", "CANNOT")
NO_MAILBOX_IN_USE = IMAPStatus("NO", "Mailbox is in use", "INUSE")
NO_NONEXISTENT_MAILBOX = IMAPStatus("NO", "No such mailbox", "NONEXISTENT")
NO_READ_ONLY = IMAPStatus("NO", "Mailbox is read-only", "CANNOT")
BAD_MISSING_TAG = IMAPStatus("BAD", "Missing or invalid tag")
BAD_UNKNOWN_COMMAND = IMAPStatus("BAD", "Unknown command")
BAD_SYNTAX = IMAPStatus("BAD", "Syntax error in arguments")
BAD_UNSUPPORTED_ARGUMENT = IMAPStatus("BAD", "Argument not supported by this server")
BAD_WRONG_STATE = IMAPStatus("BAD", "Command not valid in this state")
BAD_NO_SUCH_MESSAGE = IMAPStatus("BAD", "Invalid message sequence number")
BAD_LITERAL_TOO_LARGE = IMAPStatus("BAD", "Literal too large", "TOOBIG")
BAD_AUTHENTICATE_CANCELLED = IMAPStatus("BAD", "AUTHENTICATE cancelled")
BAD_INVALID_BASE64 = IMAPStatus("BAD", "Invalid base64 data")
BAD_EXPECTED_DONE = IMAPStatus("BAD", "Expected DONE")
BAD_STARTTLS_UNAVAILABLE = IMAPStatus("BAD", "STARTTLS not available")
BAD_TLS_ACTIVE = IMAPStatus("BAD", "TLS already active")
BYE_LOGGING_OUT = IMAPStatus("BYE", "Logging out")
BYE_TOO_MANY_ERRORS = IMAPStatus("BYE", "Too many errors, closing connection", "ALERT")
BYE_LINE_TOO_LONG = IMAPStatus("BYE", "Line too long, closing connection")
BYE_BARE_LINE_END = IMAPStatus("BYE", "Bare CR or LF in a command: lines end with CRLF")
BYE_BUSY = IMAPStatus("BYE", "Too many sessions, try again later", "UNAVAILABLE")
CONTINUE_LITERAL = Continuation("Ready for literal data")
CONTINUE_IDLING = Continuation("idling")
CONTINUE_SASL = Continuation("")  # PLAIN's empty challenge: the client sends its response

#: Every named condition and continuation above, by name.
IMAP_RESPONSES: dict[str, IMAPStatus | Continuation] = {
    name: value
    for name, value in list(globals().items())
    if name.startswith(("OK_", "NO_", "BAD_", "BYE_", "CONTINUE_"))
    and isinstance(value, IMAPStatus | Continuation)
}

__all__ += sorted(IMAP_RESPONSES)  # the constants are the public table
