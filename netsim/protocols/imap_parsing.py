"""IMAP command parser: one command in, one command event out; never raises.

The grammar is RFC 9051 §9's, for the commands the engine implements. A command arrives as
its lines and the literals between them: the wire adapter cut it where a line ended with
``{n}`` or ``{n+}`` (RFC 9051 §4.3, RFC 7888) and collected the n octets, so CR and LF inside
a literal are data. A command the grammar rejects becomes an ``Invalid`` event carrying the
``BAD`` the server must give; one without a readable tag gets an untagged ``* BAD``.
Command names and keywords are case-insensitive. This is the wire path only: the
simulation builds command events directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import imap_commands as c
from .imap_responses import (
    BAD_MISSING_TAG,
    BAD_SYNTAX,
    BAD_UNSUPPORTED_ARGUMENT,
    IMAPStatus,
)
from .imap_syntax import (
    FLAG_KEYS,
    FetchAttribute,
    SearchKey,
    SequenceSet,
    StoreMode,
    canonical_flag,
    is_atom,
    is_tag,
)

__all__ = ["literal_announced", "parse_imap_command", "printable", "tag_of"]

Token = str | bytes | list["Token"]
"""An atom (``str``), a string (quoted or literal: its octets, ``bytes``) or a list."""

_WORD_END = frozenset(b' ()"{')
_CHARSETS = frozenset({"US-ASCII", "UTF-8"})
_FETCH = {a.value: a for a in FetchAttribute}
_STORE = {m.value: m for m in StoreMode}


class _Refused(Exception):
    """The command is refused with ``status``."""

    def __init__(self, status: IMAPStatus = BAD_SYNTAX) -> None:
        super().__init__(status.text)
        self.status = status


def printable(line: bytes) -> str:
    """A line for logs: anything not printable ASCII as ``?``."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in line)


def tag_of(line: bytes) -> str | None:
    """The tag a command line starts with, if it has a valid one."""
    word = line.split(b" ", 1)[0]
    text = word.decode("ascii", "replace")
    return text if word.isascii() and is_tag(text) else None


def literal_announced(line: bytes) -> tuple[int, bool] | None:
    """``(n, synchronizing)`` if the line ends with ``{n}`` or ``{n+}``, else None."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    inside = line[start + 1 : -1]
    sync = not inside.endswith(b"+")
    digits = inside if sync else inside[:-1]
    if start < 0 or not digits.isdigit() or len(digits) > 10:
        return None
    return int(digits), sync


def _words(body: bytes, stack: list[list[Token]]) -> None:
    """Add the tokens of one stretch of a line (no literal in it) to ``stack``."""
    i, end = 0, len(body)
    while i < end:
        char = body[i]
        if char == 0x20:
            i += 1
        elif char == 0x28:  # (
            stack.append([])
            i += 1
        elif char == 0x29:  # )
            if len(stack) == 1:
                raise _Refused()
            inner = stack.pop()
            stack[-1].append(inner)
            i += 1
        elif char == 0x22:  # "
            i = _quoted(body, i + 1, stack[-1])
        elif char == 0x7B:  # { : a literal is announced only at a line's end
            raise _Refused()
        else:
            j = i
            while j < end and body[j] not in _WORD_END:
                j += 1
            word = body[i:j]
            if any(b <= 0x20 or b >= 0x7F for b in word):
                raise _Refused()
            stack[-1].append(word.decode("ascii"))
            i = j


def _quoted(body: bytes, i: int, into: list[Token]) -> int:
    """Read a quoted string whose opening quote is before ``i``; return where it ended."""
    out = bytearray()
    while i < len(body):
        char = body[i]
        if char == 0x22:
            into.append(bytes(out))
            return i + 1
        if char == 0x5C:  # backslash: only \" and \\ are escapes
            if i + 1 >= len(body) or body[i + 1] not in b'"\\':
                raise _Refused()
            i += 1
            char = body[i]
        elif char == 0:
            raise _Refused()
        out.append(char)
        i += 1
    raise _Refused()


def tokenize(lines: Sequence[bytes], literals: Sequence[bytes] = ()) -> list[Token]:
    """The tokens of a command: its lines, each but the last followed by a literal.

    Raises:
        ValueError: On unbalanced parentheses, bad quoting or stray octets.
    """
    if len(lines) != len(literals) + 1:
        raise ValueError("a command has one line more than literals")
    if any(literal_announced(line) is None for line in lines[:-1]):
        raise ValueError("each line before a literal ends with {n} or {n+}")
    stack: list[list[Token]] = [[]]
    try:
        for i, line in enumerate(lines):
            if i and line and line[:1] not in b" )":
                raise _Refused()  # a literal ends its token
            body = line[: line.rfind(b"{")] if i < len(literals) else line
            if i < len(literals) and body and body[-1:] not in b" (":
                raise _Refused()
            _words(body, stack)
            if i < len(literals):
                stack[-1].append(literals[i])
    except _Refused:
        raise ValueError("not a well-formed IMAP command") from None
    if len(stack) != 1:
        raise ValueError("unbalanced parentheses")
    return stack[0]


# --- arguments --------------------------------------------------------------------------


def _string(token: Token) -> str:
    """An astring: an atom, or a quoted/literal string (UTF-8)."""
    if isinstance(token, str):
        return token
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused() from None
    raise _Refused()


def _atom(token: Token) -> str:
    if not isinstance(token, str):
        raise _Refused()
    return token


def _sequence(token: Token) -> SequenceSet:
    try:
        return SequenceSet.parse(_atom(token))
    except ValueError:
        raise _Refused() from None


def _count(args: list[Token], *allowed: int) -> None:
    if len(args) not in allowed:
        raise _Refused()


def _bare(kind: Callable[[str], c.IMAPCommand]) -> Callable[[str, list[Token]], c.IMAPCommand]:
    def parse(tag: str, args: list[Token]) -> c.IMAPCommand:
        _count(args, 0)
        return kind(tag)

    return parse


def _login(tag: str, args: list[Token]) -> c.IMAPCommand:
    _count(args, 2)
    return c.Login(tag, _string(args[0]), _string(args[1]))


def _authenticate(tag: str, args: list[Token]) -> c.IMAPCommand:
    _count(args, 1, 2)
    initial = _atom(args[1]) if len(args) == 2 else None
    return c.Authenticate(tag, _atom(args[0]), initial)


def _enable(tag: str, args: list[Token]) -> c.IMAPCommand:
    return c.Enable(tag, tuple(_atom(a) for a in args))


def _open(kind: type[c.Select] | type[c.Examine]) -> Callable[[str, list[Token]], c.IMAPCommand]:
    def parse(tag: str, args: list[Token]) -> c.IMAPCommand:
        if len(args) == 2 and isinstance(args[1], list):
            raise _Refused(BAD_UNSUPPORTED_ARGUMENT)  # SELECT parameters (CONDSTORE, …)
        _count(args, 1)
        return kind(tag, _string(args[0]))

    return parse


def _list(tag: str, args: list[Token]) -> c.IMAPCommand:
    if (args and isinstance(args[0], list)) or len(args) > 2:
        raise _Refused(BAD_UNSUPPORTED_ARGUMENT)  # LIST-EXTENDED selection/return options
    _count(args, 2)
    return c.List(tag, _string(args[0]), _string(args[1]))


def _fetch(tag: str, args: list[Token], uid: bool) -> c.IMAPCommand:
    _count(args, 2)
    items = args[1] if isinstance(args[1], list) else [args[1]]
    attributes: list[FetchAttribute] = []
    for item in items:
        attribute = _FETCH.get(_atom(item).upper())
        if attribute is None:  # macros, sections, partial fetches, ENVELOPE, …
            raise _Refused(BAD_UNSUPPORTED_ARGUMENT)
        attributes.append(attribute)
    return c.Fetch(tag, _sequence(args[0]), tuple(attributes), uid)


def _store(tag: str, args: list[Token], uid: bool) -> c.IMAPCommand:
    if len(args) < 3:
        raise _Refused()
    item = _atom(args[1]).upper()
    silent = item.endswith(".SILENT")
    mode = _STORE.get(item.removesuffix(".SILENT"))
    if mode is None:
        raise _Refused(BAD_UNSUPPORTED_ARGUMENT)
    given = args[2] if len(args) == 3 and isinstance(args[2], list) else args[2:]
    flags = [canonical_flag(_atom(f)) for f in given]
    if None in flags:
        raise _Refused()
    return c.Store(tag, _sequence(args[0]), mode, frozenset(f for f in flags if f), silent, uid)


def _search_keys(tokens: list[Token]) -> list[SearchKey]:
    keys: list[SearchKey] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if isinstance(token, list):  # a parenthesised group: AND, like the top level
            keys += _search_keys(token)
            continue
        name = _atom(token).upper()
        if name == "ALL" or name in FLAG_KEYS:
            keys.append(SearchKey(name))
        elif name == "UID" and i < len(tokens):
            keys.append(SearchKey("UID", _sequence(tokens[i])))
            i += 1
        elif name[:1].isdigit() or name[:1] == "*":
            keys.append(SearchKey("SEQUENCE", _sequence(token)))
        else:  # NOT, OR, FROM, SINCE, …
            raise _Refused(BAD_UNSUPPORTED_ARGUMENT)
    return keys


def _search(tag: str, args: list[Token], uid: bool) -> c.IMAPCommand:
    if len(args) >= 2 and isinstance(args[0], str) and args[0].upper() == "CHARSET":
        if _string(args[1]).upper() not in _CHARSETS:
            raise _Refused(BAD_UNSUPPORTED_ARGUMENT)
        args = args[2:]
    keys = _search_keys(args)
    if not keys:
        raise _Refused()
    return c.Search(tag, tuple(keys), uid)


def _expunge(tag: str, args: list[Token], uid: bool) -> c.IMAPCommand:
    _count(args, 1 if uid else 0)
    return c.Expunge(tag, _sequence(args[0]) if uid else None)


_COMMANDS: dict[str, Callable[[str, list[Token]], c.IMAPCommand]] = {
    "CAPABILITY": _bare(c.Capability), "NOOP": _bare(c.Noop), "LOGOUT": _bare(c.Logout),
    "STARTTLS": _bare(c.StartTLS), "CLOSE": _bare(c.Close), "UNSELECT": _bare(c.Unselect),
    "IDLE": _bare(c.Idle), "LOGIN": _login, "AUTHENTICATE": _authenticate,
    "ENABLE": _enable, "SELECT": _open(c.Select), "EXAMINE": _open(c.Examine), "LIST": _list,
}  # fmt: skip
# The commands that may follow UID (RFC 9051 §6.4.9) take the flag as a third argument.
_UID_COMMANDS: dict[str, Callable[[str, list[Token], bool], c.IMAPCommand]] = {
    "FETCH": _fetch, "STORE": _store, "SEARCH": _search, "EXPUNGE": _expunge,
}  # fmt: skip


def parse_imap_command(lines: Sequence[bytes], literals: Sequence[bytes] = ()) -> c.IMAPCommand:
    """Parse one command (its lines without CRLF, and the literals between them).

    A line without a valid tag gives ``Invalid(None, BAD_MISSING_TAG)``; an unknown name
    gives ``Unknown``; bad arguments give ``Invalid`` with ``BAD_SYNTAX``, or with
    ``BAD_UNSUPPORTED_ARGUMENT`` where the syntax is IMAP's but beyond this server's subset.
    """
    line = printable(lines[0]) if lines else ""
    tag = tag_of(lines[0]) if lines else None
    if tag is None:
        return c.Invalid(None, BAD_MISSING_TAG, line)
    try:
        tokens = tokenize(lines, literals)
        if len(tokens) < 2 or not isinstance(tokens[1], str):
            raise _Refused()
        name, args = tokens[1].upper(), tokens[2:]
        if name == "UID":
            if not args or not isinstance(args[0], str) or args[0].upper() not in _UID_COMMANDS:
                return c.Unknown(tag, line)
            return _UID_COMMANDS[args[0].upper()](tag, args[1:], True)
        if name in _UID_COMMANDS:
            return _UID_COMMANDS[name](tag, args, False)
        parser = _COMMANDS.get(name)
        if parser is None:
            return c.Unknown(tag, line) if is_atom(name) else c.Invalid(tag, BAD_SYNTAX, line)
        return parser(tag, args)
    except _Refused as refused:
        return c.Invalid(tag, refused.status, line)
    except ValueError:  # tokenizer, or an event's own validation
        return c.Invalid(tag, BAD_SYNTAX, line)
