"""POP3 replies (RFC 1939 §3; response codes per RFC 2449 §8 and RFC 3206).

Fixed replies are preallocated constants named ``OK_*`` / ``ERR_*``; replies that carry
numbers are built by the small functions below. ``POP3_REPLIES`` lists the constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "POP3_REPLIES",
    "POP3Reply",
    "already_deleted",
    "capabilities",
    "deleted",
    "maildrop_ready",
    "pop3_greeting",
    "scan_listing",
    "signing_off",
]

# RFC 2449 §4: a response line is at most 512 octets including CRLF.
MAX_RESPONSE_LINE = 510


@dataclass(frozen=True, slots=True)
class POP3Reply:
    """One POP3 reply.

    Attributes:
        ok: ``+OK`` (True) or ``-ERR`` (False).
        text: The rest of the status line (may be empty).
        lines: The body of a multi-line reply (LIST, UIDL, RETR, TOP, CAPA), unstuffed;
            ``None`` for a single-line reply. An empty tuple is an empty listing.
    """

    ok: bool
    text: str
    lines: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if "\r" in self.text or "\n" in self.text:
            raise ValueError("reply text must not contain CR or LF")
        if len(self.text) + 5 > MAX_RESPONSE_LINE:
            raise ValueError("POP3 status line longer than 512 octets")
        if self.lines is not None and not self.ok:
            raise ValueError("an -ERR reply has no multi-line body")

    @property
    def status(self) -> str:
        """``"+OK"`` or ``"-ERR"``."""
        return "+OK" if self.ok else "-ERR"

    def status_line(self) -> str:
        """The first line without CRLF, e.g. ``"+OK 2 320"``."""
        status = "+OK" if self.ok else "-ERR"
        return f"{status} {self.text}" if self.text else status

    def wire_lines(self) -> list[str]:
        """The status line, then (multi-line) the dot-stuffed body and the final ``.``."""
        first = self.status_line()
        if self.lines is None:
            return [first]
        out = [first]
        out.extend("." + line if line[:1] == "." else line for line in self.lines)
        out.append(".")
        return out


def pop3_greeting(timestamp: str | None) -> POP3Reply:
    """``+OK POP3 server ready <timestamp>``; the timestamp is APOP's shared nonce."""
    if timestamp is None:
        return POP3Reply(True, "POP3 server ready")
    return POP3Reply(True, f"POP3 server ready {timestamp}")


def maildrop_ready(count: int, octets: int) -> POP3Reply:
    """The reply to a successful login or RSET."""
    return POP3Reply(True, f"maildrop has {count} messages ({octets} octets)")


def scan_listing(number: int, size: int) -> POP3Reply:
    """``+OK n size``: STAT's drop listing and LIST n's scan listing."""
    return POP3Reply(True, f"{number} {size}")


def deleted(number: int) -> POP3Reply:
    """``+OK message n deleted``."""
    return POP3Reply(True, f"message {number} deleted")


def already_deleted(number: int) -> POP3Reply:
    """``-ERR message n already deleted``."""
    return POP3Reply(False, f"message {number} already deleted")


@lru_cache(maxsize=8)
def capabilities(user: bool, stls: bool) -> POP3Reply:
    """The CAPA reply (RFC 2449): USER only where plaintext login is allowed, STLS if offered."""
    lines = ["TOP", "UIDL", "RESP-CODES"]
    if user:
        lines.append("USER")
    if stls:
        lines.append("STLS")
    lines.append("IMPLEMENTATION netsim")
    return POP3Reply(True, "Capability list follows", tuple(lines))


def signing_off(remaining: int) -> POP3Reply:
    """The reply to QUIT in TRANSACTION, after the UPDATE state."""
    return POP3Reply(True, f"POP3 server signing off ({remaining} messages left)")


OK = POP3Reply(True, "")
OK_BYE = POP3Reply(True, "POP3 server signing off")
OK_SEND_PASS = POP3Reply(True, "send PASS")  # never says whether the user exists
OK_BEGIN_TLS = POP3Reply(True, "Begin TLS negotiation")
ERR_AUTH_FAILED = POP3Reply(False, "[AUTH] invalid user name or password")
ERR_PLAINTEXT_DISABLED = POP3Reply(
    False, "[AUTH] plaintext authentication disallowed on non-secure connections"
)
ERR_IN_USE = POP3Reply(False, "[IN-USE] unable to lock maildrop")
ERR_APOP_UNAVAILABLE = POP3Reply(False, "APOP not available")
ERR_NEED_USER = POP3Reply(False, "no USER command")
ERR_WRONG_STATE = POP3Reply(False, "command not valid in this state")
ERR_NO_SUCH_MESSAGE = POP3Reply(False, "no such message")
ERR_UNKNOWN_COMMAND = POP3Reply(False, "unknown command")
ERR_SYNTAX = POP3Reply(False, "syntax error")
ERR_LINE_TOO_LONG = POP3Reply(False, "line too long")
ERR_BARE_LINE_END = POP3Reply(False, "bare CR or LF in a command: lines end with CRLF")
ERR_TOO_MANY_ERRORS = POP3Reply(False, "too many errors, closing connection")
ERR_STLS_UNAVAILABLE = POP3Reply(False, "STLS not available")
ERR_TLS_ACTIVE = POP3Reply(False, "command not permitted when TLS active")
ERR_BUSY = POP3Reply(False, "[SYS/TEMP] too many sessions, try again later")  # RFC 2449 §8.1.2
ERR_TOO_MANY_FROM_ADDRESS = POP3Reply(False, "[SYS/TEMP] too many connections from your address")

#: Every fixed reply above, by name.
POP3_REPLIES: dict[str, POP3Reply] = {
    name: value
    for name, value in list(globals().items())
    if (name == "OK" or name.startswith(("OK_", "ERR_"))) and isinstance(value, POP3Reply)
}

__all__ += sorted(POP3_REPLIES)  # the constants are the public table
