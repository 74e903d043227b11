"""The one table of SMTP replies (RFC 5321 §4.2, enhanced codes per RFC 3463 / RFC 2034).

Every reply an engine or a policy hook gives is one of the named constants below, or a
variant of one made with :func:`with_text` (same code, other text). A constant's name starts
with ``S`` and its code, so ``S550_USER_UNKNOWN.code == 550``; ``REPLIES`` lists them all and
``tests/protocols/test_replies.py`` checks the table itself.

Texts follow Postfix where Postfix has a well-known wording (``554 5.7.1 Relay access
denied``) and the RFCs otherwise. Per RFC 2034 the greeting and the HELO/EHLO replies carry no
enhanced code; 3xx replies have none either (RFC 3463 defines classes 2, 4 and 5 only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

__all__ = [
    "REPLIES",
    "Reply",
    "ehlo_reply",
    "greeting",
    "helo_reply",
    "relay_denied",
    "user_unknown",
    "with_text",
]

# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF.
MAX_REPLY_LINE = 510


def _check_enhanced(code: int, enhanced: str) -> None:
    # Plain string checks instead of a regex: replies are built per session (EHLO, greeting).
    parts = enhanced.split(".")
    if len(parts) != 3 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(f"enhanced status code must look like 5.1.1, got {enhanced!r}")
    if parts[0] != str(code // 100) or parts[0] not in ("2", "4", "5"):
        raise ValueError(f"enhanced code {enhanced} has the wrong class for {code}")
    if len(parts[1]) > 3 or len(parts[2]) > 3:
        raise ValueError(f"enhanced code {enhanced} has more than three digits in a part")


def _check_text(text: str) -> None:
    if "\r" in text or "\n" in text:
        raise ValueError(f"reply text must not contain CR or LF: {text!r}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply, possibly multi-line.

    Attributes:
        code: The three-digit reply code, 200-599.
        enhanced: The RFC 3463 enhanced status code (``"5.1.1"``), or ``None``.
        text: The text of the first line.
        lines: Further lines of a multi-line reply (EHLO keywords); the first line is ``text``.
    """

    code: int
    enhanced: str | None
    text: str
    lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code must be 200-599, got {self.code}")
        if self.enhanced is not None:
            _check_enhanced(self.code, self.enhanced)
        _check_text(self.text)
        for line in self.lines:
            _check_text(line)
            if len(line) + 4 > MAX_REPLY_LINE:
                raise ValueError("reply line longer than 512 octets")
        if len(self.text) + 4 + len(self.enhanced or "") + 1 > MAX_REPLY_LINE:
            raise ValueError("reply line longer than 512 octets")

    @property
    def is_positive(self) -> bool:
        """True for 2xx and 3xx replies."""
        return self.code < 400

    @property
    def is_completion(self) -> bool:
        """True for 2xx replies: the command succeeded and nothing more is needed."""
        return self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """True for 3xx replies: the server waits for more (354, 334)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """True for 4xx replies: try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """True for 5xx replies: do not repeat the same request."""
        return self.code >= 500

    def wire_lines(self) -> list[str]:
        """The reply as wire lines without CRLF, e.g. ``["550 5.1.1 <bob@x> User unknown"]``.

        Every line of a multi-line reply but the last has a hyphen after the code; the
        enhanced code (when present) is repeated on every line, as RFC 2034 asks.
        """
        prefix = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        if not self.lines:
            return [prefix + self.text]
        dash = prefix.replace(" ", "-", 1)
        texts = (self.text, *self.lines)
        out = [dash + t for t in texts[:-1]]
        out.append(prefix + texts[-1])
        return out

    def with_text(self, text: str) -> Reply:
        """A variant of this reply with other text (same code and enhanced code)."""
        return replace(self, text=text)


def with_text(reply: Reply, text: str) -> Reply:
    """A variant of ``reply`` with other text, e.g. naming the rejected address."""
    return reply.with_text(text)


@lru_cache(maxsize=1024)
def greeting(hostname: str) -> Reply:
    """The 220 greeting of the server ``hostname`` (cached: one object per hostname)."""
    return Reply(220, None, f"{hostname} ESMTP netsim")


@lru_cache(maxsize=1024)
def helo_reply(hostname: str) -> Reply:
    """The 250 answering HELO: just the server's name (no enhanced code, RFC 2034)."""
    return Reply(250, None, hostname)


@lru_cache(maxsize=1024)
def ehlo_reply(hostname: str, max_size: int, auth: str | None,
               starttls: bool = False) -> Reply:
    """The multi-line 250 answering EHLO, keywords in Postfix's order.

    PIPELINING holds for the engines because replies come back in command order.

    Args:
        hostname: The server's name (the first line).
        max_size: Advertised as ``SIZE max_size`` (RFC 1870).
        auth: The mechanisms for ``AUTH ...``, or ``None`` not to offer AUTH.
        starttls: Offer ``STARTTLS`` (RFC 3207).
    """
    keywords = ["PIPELINING", f"SIZE {max_size}"]
    if starttls:
        keywords.append("STARTTLS")
    if auth:
        keywords.append(f"AUTH {auth}")
    keywords += ["ENHANCEDSTATUSCODES", "8BITMIME"]
    return Reply(250, None, hostname, tuple(keywords))


# --- 2xx -----------------------------------------------------------------------------
S220_READY = Reply(220, None, "Service ready")
S221_BYE = Reply(221, "2.0.0", "Bye")
S235_AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
S220_READY_FOR_TLS = Reply(220, "2.0.0", "Ready to start TLS")
S250_OK = Reply(250, "2.0.0", "Ok")
S250_SENDER_OK = Reply(250, "2.1.0", "Sender ok")
S250_RECIPIENT_OK = Reply(250, "2.1.5", "Recipient ok")
S250_QUEUED = Reply(250, "2.0.0", "Ok: queued")
# --- 3xx -----------------------------------------------------------------------------
S334_CONTINUE = Reply(334, None, "")
S334_USERNAME = Reply(334, None, "VXNlcm5hbWU6")  # base64 "Username:" (AUTH LOGIN)
S334_PASSWORD = Reply(334, None, "UGFzc3dvcmQ6")  # base64 "Password:" (AUTH LOGIN)
S354_START_INPUT = Reply(354, None, "Start mail input; end with <CRLF>.<CRLF>")
# --- 4xx -----------------------------------------------------------------------------
S421_SHUTTING_DOWN = Reply(421, "4.3.2", "Service not available, closing transmission channel")
S421_TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
S421_TOO_MANY_SESSIONS = Reply(421, "4.3.2", "Too many sessions, try again later")
# Postfix smtpd_client_connection_count_limit
S421_TOO_MANY_FROM_ADDRESS = Reply(421, "4.7.0", "Too many connections from your address")
S421_TIMEOUT = Reply(421, "4.4.2", "Error: timeout exceeded")  # RFC 3463 4.4.2: bad connection
S450_MAILBOX_BUSY = Reply(450, "4.2.0", "Requested mail action not taken: mailbox unavailable")
S450_GREYLISTED = Reply(450, "4.2.0", "Greylisted, please try again later")
S451_LOCAL_ERROR = Reply(451, "4.3.0", "Requested action aborted: local error in processing")
S451_RATE_LIMITED = Reply(451, "4.7.1", "Rate limit exceeded, try again later")
S452_TOO_MANY_RCPTS = Reply(452, "4.5.3", "Too many recipients")
S452_INSUFFICIENT_STORAGE = Reply(452, "4.3.1", "Insufficient system storage")
S454_TEMP_AUTH_FAILURE = Reply(454, "4.7.0", "Temporary authentication failure")
S454_TOO_MANY_AUTH_FAILURES = S454_TEMP_AUTH_FAILURE.with_text(
    "Too many authentication failures from this address, try again later")
# --- 5xx: syntax and sequence (these count towards the server's error budget) ---------
S500_SYNTAX = Reply(500, "5.5.2", "Syntax error, command unrecognized")
S500_LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long")
# RFC 5321 §2.3.8: CR and LF only together; a bare one ends nothing (SMTP smuggling)
S500_BARE_LINE_END = Reply(500, "5.5.2", "Bare <CR> or <LF> in a command: lines end with <CRLF>")
S550_BARE_LINE_END = Reply(550, "5.5.2", "Message refused: bare <CR> or <LF> in its text")
S501_ARG_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
S501_BAD_SENDER_SYNTAX = Reply(501, "5.1.7", "Bad sender address syntax")
S501_BAD_RECIPIENT_SYNTAX = Reply(501, "5.1.3", "Bad recipient address syntax")
S501_INVALID_BASE64 = Reply(501, "5.5.2", "Invalid base64 data")
S501_AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
S502_NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
S503_BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
S503_TLS_ACTIVE = Reply(503, "5.5.1", "TLS already active")
S503_HELO_FIRST = Reply(503, "5.5.1", "Error: send HELO/EHLO first")
S503_NESTED_MAIL = Reply(503, "5.5.1", "Error: nested MAIL command")
S503_NEED_MAIL = Reply(503, "5.5.1", "Error: need MAIL command")
S503_NEED_RCPT = Reply(503, "5.5.1", "Error: need RCPT command")
S503_ALREADY_AUTH = Reply(503, "5.5.1", "Error: already authenticated")
S503_AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "Error: MAIL transaction in progress")
S503_AUTH_NOT_ENABLED = Reply(503, "5.5.1", "Error: authentication not enabled")
S503_NO_SERVICE = Reply(503, "5.5.1", "Error: no SMTP service here")
S504_UNRECOGNISED_AUTH = Reply(504, "5.5.4", "Unrecognized authentication type")
S555_PARAMS_UNRECOGNISED = Reply(
    555, "5.5.4", "MAIL FROM/RCPT TO parameters not recognized or not implemented"
)
# --- 5xx: authentication and policy ---------------------------------------------------
S530_AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
S535_AUTH_INVALID = Reply(535, "5.7.8", "Authentication credentials invalid")
S538_ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
S550_MAILBOX_UNAVAILABLE = Reply(550, "5.2.0", "Requested action not taken: mailbox unavailable")
S550_USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")
S550_POLICY = Reply(550, "5.7.1", "Rejected by local policy")
S550_RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")  # RFC 5321 §3.6.2 wording
S550_CONTENT_REJECTED = Reply(550, "5.7.1", "Message content rejected")
S552_SIZE_EXCEEDED = Reply(552, "5.3.4", "Message size exceeds fixed limit")
S552_MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full")
S553_MAILBOX_NAME = Reply(553, "5.1.3", "Requested action not taken: mailbox name not allowed")
# Postfix reject_sender_login_mismatch
S553_SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address rejected: not owned by the "
                              "authenticated user")
S554_TRANSACTION_FAILED = Reply(554, "5.0.0", "Transaction failed")
S554_RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")  # Postfix wording
S554_ACCESS_DENIED = Reply(554, "5.7.1", "Access denied")
S554_BLOCKLISTED = Reply(554, "5.7.1", "Service unavailable; client host blocked")
S554_NO_VALID_RCPTS = Reply(554, "5.5.1", "No valid recipients")

#: Every named reply above, by name.
REPLIES: dict[str, Reply] = {
    name: value
    for name, value in list(globals().items())
    if name[:1] == "S" and name[1:4].isdigit() and isinstance(value, Reply)
}

__all__ += sorted(REPLIES)  # the constants are the public table


def user_unknown(address: str) -> Reply:
    """``550 5.1.1 <address> User unknown``, Postfix style."""
    return S550_USER_UNKNOWN.with_text(f"<{address}> User unknown")


def relay_denied(address: str) -> Reply:
    """``554 5.7.1 <address> Relay access denied``, Postfix style."""
    return S554_RELAY_DENIED.with_text(f"<{address}> Relay access denied")
