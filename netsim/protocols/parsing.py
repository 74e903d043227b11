"""Command-line parsers: one wire line in, one command event out; never raises.

A line the grammar rejects becomes an ``Invalid`` event carrying the reply the server must
give, so the engine answers it (and counts it against the error budget) like any other.
Verbs and keywords are case-insensitive. This is the wire path only: the simulation builds
command events directly.
"""

from __future__ import annotations

from collections.abc import Callable

from . import pop3_commands as p
from . import smtp_commands as s
from .pop3_replies import ERR_NO_SUCH_MESSAGE, ERR_SYNTAX, ERR_UNKNOWN_COMMAND, POP3Reply
from .replies import (
    S500_SYNTAX,
    S501_ARG_SYNTAX,
    S501_BAD_RECIPIENT_SYNTAX,
    S501_BAD_SENDER_SYNTAX,
    S555_PARAMS_UNRECOGNISED,
)

__all__ = ["parse_pop3_command", "parse_smtp_command"]

# MAIL parameters accepted and ignored: the 8BITMIME body types, and RFC 4954's AUTH=.
_IGNORED_MAIL_PARAMS = frozenset({"BODY=7BIT", "BODY=8BITMIME"})


def _path(rest: str, keyword: str) -> tuple[str, list[str]] | None:
    """Split ``FROM:<path> params`` into the path (no brackets) and the parameters."""
    if rest[: len(keyword)].upper() != keyword:
        return None
    rest = rest[len(keyword) :].lstrip(" ")  # tolerate "MAIL FROM: <a@b>"
    if not rest.startswith("<"):
        return None
    close = rest.find(">", _quoted_end(rest))   # a quoted local part may hold a ">"
    if close < 0:
        return None
    path, params = rest[1:close], rest[close + 1 :]
    if params and not params.startswith(" "):
        return None
    if path.startswith("@") and ":" in path:  # RFC 5321 §4.1.2: ignore a source route
        path = path.split(":", 1)[1]
    return _unquoted(path), params.split()


def _quoted_end(rest: str) -> int:
    """Where the quoted local part of ``<"…"@domain>`` ends (1 when there is none; the end of
    ``rest`` when it does not close)."""
    start = rest.find('"')
    if start < 0:
        return 1
    end = s.quoted_string_end(rest, start)
    return len(rest) if end < 0 else end


_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   "!#$%&'*+-/=?^_`{|}~")


def _unquoted(path: str) -> str:
    """A path whose quoted local part is a plain dot-string, as that dot-string:
    ``"user7"@d`` and ``user7@d`` are the same mailbox (RFC 5321 §4.1.2). Other quoted
    local parts stay quoted (looked up as they are)."""
    local, at, domain = path.rpartition("@")
    plain = s.unquoted(local) if at else None
    if plain is not None and all(atom and set(atom) <= _ATEXT for atom in plain.split(".")):
        return f"{plain}@{domain}"
    return path


def _smtp_mail(line: str, rest: str) -> s.SMTPCommand:
    parsed = _path(rest, "FROM:")
    if parsed is None:
        return s.Invalid(S501_ARG_SYNTAX, line)
    path, params = parsed
    size: int | None = None
    for param in params:
        keyword, _, value = param.partition("=")
        keyword = keyword.upper()
        if keyword == "SIZE":
            if not value.isdigit() or size is not None:
                return s.Invalid(S501_ARG_SYNTAX, line)
            size = int(value)
        elif keyword == "AUTH" or param.upper() in _IGNORED_MAIL_PARAMS:
            continue
        else:
            return s.Invalid(S555_PARAMS_UNRECOGNISED, line)
    try:
        return s.Mail(path, size)
    except ValueError:
        return s.Invalid(S501_BAD_SENDER_SYNTAX, line)


def _smtp_rcpt(line: str, rest: str) -> s.SMTPCommand:
    parsed = _path(rest, "TO:")
    if parsed is None:
        return s.Invalid(S501_ARG_SYNTAX, line)
    path, params = parsed
    if params:
        return s.Invalid(S555_PARAMS_UNRECOGNISED, line)
    try:
        return s.Rcpt(path)
    except ValueError:
        return s.Invalid(S501_BAD_RECIPIENT_SYNTAX, line)


def _smtp_greet(kind: type[s.Helo] | type[s.Ehlo]) -> Callable[[str, str], s.SMTPCommand]:
    def parse(line: str, rest: str) -> s.SMTPCommand:
        domain = rest.strip(" ")
        try:
            return kind(domain)
        except ValueError:
            return s.Invalid(S501_ARG_SYNTAX, line)

    return parse


def _smtp_auth(line: str, rest: str) -> s.SMTPCommand:
    args = rest.split()
    if not 1 <= len(args) <= 2:
        return s.Invalid(S501_ARG_SYNTAX, line)
    try:
        return s.Auth(args[0], args[1] if len(args) == 2 else None)
    except ValueError:
        return s.Invalid(S501_ARG_SYNTAX, line)


def _smtp_bare(event: s.SMTPCommand) -> Callable[[str, str], s.SMTPCommand]:
    def parse(line: str, rest: str) -> s.SMTPCommand:
        return s.Invalid(S501_ARG_SYNTAX, line) if rest.strip(" ") else event

    return parse


_SMTP_VERBS: dict[str, Callable[[str, str], s.SMTPCommand]] = {
    "HELO": _smtp_greet(s.Helo),
    "EHLO": _smtp_greet(s.Ehlo),
    "MAIL": _smtp_mail,
    "RCPT": _smtp_rcpt,
    "DATA": _smtp_bare(s.Data()),
    "RSET": _smtp_bare(s.Rset()),
    "QUIT": _smtp_bare(s.Quit()),
    "NOOP": lambda line, rest: s.Noop(),  # RFC 5321 §4.1.1.9: NOOP may take a string
    "AUTH": _smtp_auth,
    "STARTTLS": _smtp_bare(s.StartTLS()),
}


def parse_smtp_command(line: str) -> s.SMTPCommand:
    """Parse one SMTP command line (without CRLF) into a command event.

    Non-ASCII or control characters give ``Invalid(500 5.5.2)`` (no SMTPUTF8 here);
    an unknown verb gives ``Unknown``.
    """
    if not line.isascii() or not line.isprintable():
        return s.Invalid(S500_SYNTAX, _printable(line))
    verb, _, rest = line.partition(" ")
    parser = _SMTP_VERBS.get(verb.upper())
    if parser is None:
        return s.Unknown(line)
    return parser(line, rest)


def _printable(line: str) -> str:
    return "".join(c if c.isprintable() and c.isascii() else "?" for c in line)


def _pop3_number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 10 else None


def _pop3_invalid(reply: POP3Reply, line: str) -> p.POP3Command:
    return p.Invalid(reply, line)


def parse_pop3_command(line: str) -> p.POP3Command:
    """Parse one POP3 command line (without CRLF) into a command event.

    RFC 2449 §4: keywords are 3-4 characters, arguments at most 40; violations, bad
    numbers and wrong argument counts give ``Invalid`` with an ``-ERR``.
    """
    if not line.isascii() or not line.isprintable():
        return p.Invalid(ERR_SYNTAX, _printable(line))
    keyword, _, rest = line.partition(" ")
    keyword = keyword.upper()
    if not 3 <= len(keyword) <= 4 or not keyword.isalpha():
        return p.Invalid(ERR_UNKNOWN_COMMAND, line)
    if keyword == "PASS":  # the one argument may contain spaces (RFC 1939 §7)
        try:
            return p.Pass(rest)
        except ValueError:
            return p.Invalid(ERR_SYNTAX, line)
    args = rest.split(" ") if rest else []
    if any(not a or len(a) > p.MAX_ARGUMENT for a in args):
        return p.Invalid(ERR_SYNTAX, line)
    numbers = [_pop3_number(a) for a in args]
    try:
        return _pop3_event(keyword, args, numbers, line)
    except ValueError:  # a message number 0: RFC 1939 calls that "no such message"
        return p.Invalid(ERR_NO_SUCH_MESSAGE, line)


_POP3_BARE: dict[str, p.POP3Command] = {
    "STAT": p.Stat(), "NOOP": p.Noop(), "RSET": p.Rset(), "QUIT": p.Quit(),
    "CAPA": p.Capa(), "STLS": p.Stls(),
}  # fmt: skip


def _pop3_event(
    keyword: str, args: list[str], numbers: list[int | None], line: str
) -> p.POP3Command:
    n = len(args)
    if keyword in _POP3_BARE:
        return _POP3_BARE[keyword] if n == 0 else _pop3_invalid(ERR_SYNTAX, line)
    if keyword == "USER":
        return p.User(args[0]) if n == 1 else _pop3_invalid(ERR_SYNTAX, line)
    if keyword == "APOP":
        try:
            return p.Apop(args[0], args[1].lower()) if n == 2 else p.Invalid(ERR_SYNTAX, line)
        except ValueError:
            return _pop3_invalid(ERR_SYNTAX, line)
    if keyword in ("LIST", "UIDL"):
        kind = p.List if keyword == "LIST" else p.Uidl
        if n == 0:
            return kind()
        if n == 1 and numbers[0] is not None:
            return kind(numbers[0])
        return _pop3_invalid(ERR_SYNTAX, line)
    if keyword in ("RETR", "DELE"):
        if n != 1 or numbers[0] is None:
            return _pop3_invalid(ERR_SYNTAX, line)
        return p.Retr(numbers[0]) if keyword == "RETR" else p.Dele(numbers[0])
    if keyword == "TOP":
        if n != 2 or numbers[0] is None or numbers[1] is None:
            return _pop3_invalid(ERR_SYNTAX, line)
        return p.Top(numbers[0], numbers[1])
    return p.Unknown(line)
