"""The IMAP byte layer on the client side (RFC 9051 §7 and §9 ``response``):
IMAPResponseReader.

Bytes in, response events out, for an :class:`~.imap_client.IMAPClient`, as
:class:`~.imap_wire.IMAPWireServer` is for the server. A line ends at CRLF and nowhere else.
Untagged data (``* 3 EXISTS``, ``* n FETCH (…)``) may go on after ``{n}`` CRLF and n octets
of a literal (RFC 9051 §4.3), kept exactly: 8-bit, CRLFs included. In a FETCH item such a
literal is the item's ``bytes`` value; inside a parenthesised value or other data
(``* LIST () "/" {5}``) it is written back as a quoted string, as the events hold only text
there. Status responses and ``+`` continuations never carry a literal (``resp-text`` has
none), so a ``{5}`` ending one of them is text. Servers send only synchronizing literals.

Malformed input (a bare CR or LF, a line or literal over its limit, a response the grammar
has no place for) raises :class:`~.errors.RemoteProtocolError`. What follows it can no
longer be framed, so every later call raises the same error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .errors import RemoteProtocolError
from .imap_parsing import literal_announced
from .imap_responses import (
    STATUS_KINDS,
    Continuation,
    Data,
    FetchData,
    IMAPResponse,
    IMAPStatus,
    StatusResponse,
)
from .imap_syntax import is_tag, quote

__all__ = ["MAX_RESPONSE", "MAX_RESPONSE_LINE", "MAX_RESPONSE_LITERAL", "IMAPResponseReader"]

MAX_RESPONSE_LINE = 1_000_000  # imaplib's _MAXLINE: SEARCH over a large mailbox is long
MAX_RESPONSE_LITERAL = 64 * 1024 * 1024  # one message's octets
MAX_RESPONSE = MAX_RESPONSE_LITERAL + MAX_RESPONSE_LINE  # all lines and literals of one

_TAGGED_KINDS = frozenset({"OK", "NO", "BAD"})  # BYE and PREAUTH are untagged only
_FETCH_HEAD = re.compile(r"([0-9]{1,10}) FETCH \(", re.IGNORECASE | re.ASCII)
_LITERAL = "\0"  # stands for a literal in a response's text: a line never holds NUL
_NOT_IN_ATOM = frozenset('("' + _LITERAL)


class IMAPResponseReader:
    """Server bytes in, :data:`~.imap_responses.IMAPResponse` events out; sans-I/O.

    ``feed(data)`` returns the responses ``data`` completes; ``receive_data`` and
    ``next_event`` do the same one response at a time, so the responses before a malformed
    one are still delivered. :attr:`last_octets` holds the wire octets of the response
    returned last (for a dialogue echo: what crossed, not what the event would write).

    Args:
        max_line: Longest line in octets with CRLF (a response's text between literals).
        max_literal: Largest literal.
        max_response: Largest response, its lines and literals together.
    """

    def __init__(
        self,
        *,
        max_line: int = MAX_RESPONSE_LINE,
        max_literal: int = MAX_RESPONSE_LITERAL,
        max_response: int = MAX_RESPONSE,
    ) -> None:
        if max_line < 3:
            raise ValueError("max_line must allow at least one octet and CRLF")
        self._max_line = max_line
        self._max_literal = max_literal
        self._max_response = max_response
        self._buffer = bytearray()
        self._lines: list[bytes] = []  # the response being read: its lines so far …
        self._literals: list[bytes] = []  # … and the literals after them
        self._literal = bytearray()
        self._literal_left = 0  # octets of the current literal still to come
        self._size = 0
        self._error: RemoteProtocolError | None = None
        self.last_octets = b""

    @property
    def in_response(self) -> bool:
        """True while a response is partly received: a connection ending now cut it."""
        return bool(self._buffer or self._lines or self._literal_left)

    def receive_data(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_event(self) -> IMAPResponse | None:
        """The next complete response, or None until more bytes arrive.

        Raises:
            RemoteProtocolError: For malformed input, now and on every later call.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def feed(self, data: bytes) -> list[IMAPResponse]:
        """Append received bytes; return every response now complete.

        Raises:
            RemoteProtocolError: For malformed input (the responses before it are lost to
                this call: use :meth:`next_event` to have them).
        """
        self.receive_data(data)
        return list(iter(self.next_event, None))

    # --- framing -------------------------------------------------------------------------

    def _next(self) -> IMAPResponse | None:
        while True:
            if self._literal_left:
                chunk = self._buffer[: self._literal_left]
                if not chunk:
                    return None
                del self._buffer[: len(chunk)]
                self._literal += chunk
                self._literal_left -= len(chunk)
                if not self._literal_left:
                    self._literals.append(bytes(self._literal))
                    self._literal.clear()
                continue
            line = self._line()
            if line is None:
                return None
            self._lines.append(line)
            self._grow(len(line) + 2)
            count = self._announced(line)
            if count is None:
                return self._complete()
            if count > self._max_literal:
                raise RemoteProtocolError(f"a literal of {count} octets is over the limit "
                                          f"of {self._max_literal}")
            self._grow(count)
            self._literal_left = count
            if not count:
                self._literals.append(b"")

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) >= self._max_line:  # cannot end in time: fail now
                raise RemoteProtocolError(f"a response line over {self._max_line} octets")
            return None
        if end + 2 > self._max_line:
            raise RemoteProtocolError(f"a response line over {self._max_line} octets")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        if b"\r" in line or b"\n" in line:
            raise RemoteProtocolError("a bare CR or LF in a response: lines end with CRLF")
        if b"\0" in line:
            raise RemoteProtocolError("NUL in a response line")
        return line

    def _grow(self, octets: int) -> None:
        self._size += octets
        if self._size > self._max_response:
            raise RemoteProtocolError(f"a response over {self._max_response} octets")

    def _announced(self, line: bytes) -> int | None:
        """n if ``line`` ends with a literal's ``{n}`` and its response may carry one."""
        first = self._lines[0]
        if not first.startswith(b"* ") or _word(first[2:]).upper() in STATUS_KINDS:
            return None  # continuations and status responses: text only
        announced = literal_announced(line)
        if announced is None:
            return None
        count, synchronizing = announced
        if not synchronizing:
            raise RemoteProtocolError("a non-synchronizing literal {n+} from a server")
        return count

    def _complete(self) -> IMAPResponse:
        lines, literals = self._lines, self._literals
        self._lines, self._literals, self._size = [], [], 0
        parts: list[bytes] = []
        for i, line in enumerate(lines):
            parts += [line, b"\r\n", literals[i] if i < len(literals) else b""]
        self.last_octets = b"".join(parts)
        try:
            return _response(lines, literals)
        except ValueError as exc:  # an event refused what the grammar let through
            raise RemoteProtocolError(f"unusable response: {exc}") from None


# --- the grammar ---------------------------------------------------------------------------


def _word(line: bytes) -> str:
    return line.split(b" ", 1)[0].decode("ascii", "replace")


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace")  # human text: a stray octet is no reason to fail


def _response(lines: list[bytes], literals: list[bytes]) -> IMAPResponse:
    first = lines[0]
    if first == b"+" or first.startswith(b"+ "):
        return Continuation(_text(first[2:]))
    if first.startswith(b"* "):
        if _word(first[2:]).upper() in STATUS_KINDS:
            return StatusResponse("*", _status(_text(first[2:])))
        # the text with each literal's {n} cut off and the literal's place marked
        segments = [first[2:], *lines[1:]]
        cut = [_text(line[: line.rfind(b"{")]) for line in segments[:-1]]
        text = _LITERAL.join([*cut, _text(segments[-1])])
        if _FETCH_HEAD.match(text):
            return _fetch(text, iter(literals))
        pieces = text.split(_LITERAL)
        return Data("".join(p + _quoted(lit) for p, lit in zip(pieces, literals, strict=False))
                    + pieces[-1])  # fmt: skip
    tag, _, rest = _text(first).partition(" ")
    if not is_tag(tag):
        raise RemoteProtocolError(f"a response that is neither tagged, * nor +: {first[:80]!r}")
    if rest.partition(" ")[0].upper() not in _TAGGED_KINDS:
        raise RemoteProtocolError(f"a tagged response that is not OK, NO or BAD: {first[:80]!r}")
    return StatusResponse(tag, _status(rest))


def _status(text: str) -> IMAPStatus:
    """``OK [CODE args] text`` (code and text optional)."""
    kind, _, rest = text.partition(" ")
    code = None
    if rest.startswith("["):
        inside, bracket, after = rest[1:].partition("]")
        if bracket:
            code, rest = inside, after[1:] if after.startswith(" ") else after
    return IMAPStatus(kind.upper(), rest, code)


def _quoted(octets: bytes) -> str:
    try:
        return quote(_text(octets))
    except ValueError:
        raise RemoteProtocolError("a literal holding CR, LF or NUL where only a quoted "
                                  "string can stand") from None


def _fetch(text: str, literals: Iterator[bytes]) -> FetchData:
    """``n FETCH (name value …)``: literal values as bytes, the others as written."""
    head = _FETCH_HEAD.match(text)
    assert head is not None
    pos = head.end()
    items: list[tuple[str, str | bytes]] = []
    while not text.startswith(")", pos):
        if items:
            pos = _expect(text, pos, " ")
        name, pos = _name(text, pos)
        pos = _expect(text, pos, " ")
        value, pos = _value(text, pos, literals)
        items.append((name, value))
    if pos + 1 != len(text):
        raise RemoteProtocolError(f"text after a FETCH response's ')': {text[pos + 1:][:40]!r}")
    return FetchData(int(head.group(1)), tuple(items))


def _expect(text: str, pos: int, char: str) -> int:
    if not text.startswith(char, pos):
        raise RemoteProtocolError(f"FETCH response: {char!r} expected at {text[pos:][:40]!r}")
    return pos + 1


def _name(text: str, pos: int) -> tuple[str, int]:
    """An item name: ``UID``, ``BODY[HEADER.FIELDS (FROM)]<0>`` (spaces inside [])."""
    depth, i = 0, pos
    while i < len(text) and (depth or text[i] not in " )"):
        char = text[i]
        if char == _LITERAL or (not depth and char in _NOT_IN_ATOM):
            raise RemoteProtocolError(f"FETCH response: bad item name at {text[pos:][:40]!r}")
        depth += (char == "[") - (char == "]" and depth > 0)
        i += 1
    if i == pos or depth:
        raise RemoteProtocolError(f"FETCH response: bad item name at {text[pos:][:40]!r}")
    return text[pos:i], i


def _value(text: str, pos: int, literals: Iterator[bytes]) -> tuple[str | bytes, int]:
    char = text[pos : pos + 1]
    if char == _LITERAL:
        return next(literals), pos + 1
    if char == '"':
        end = _quoted_end(text, pos)
        return text[pos:end], end
    if char == "(":
        return _parenthesised(text, pos, literals)
    end = pos
    while end < len(text) and text[end] not in " )":
        if text[end] in _NOT_IN_ATOM:
            raise RemoteProtocolError(f"FETCH response: bad value at {text[pos:][:40]!r}")
        end += 1
    if end == pos:
        raise RemoteProtocolError(f"FETCH response: a value expected at {text[pos:][:40]!r}")
    return text[pos:end], end


def _quoted_end(text: str, pos: int) -> int:
    """Where the quoted string starting at ``pos`` ends (after its closing quote)."""
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return i + 1
        if char == _LITERAL or (char == "\\" and text[i + 1 : i + 2] not in ('"', "\\")):
            break
        i += 2 if char == "\\" else 1
    raise RemoteProtocolError(f"FETCH response: a bad quoted string at {text[pos:][:40]!r}")


def _parenthesised(text: str, pos: int, literals: Iterator[bytes]) -> tuple[str, int]:
    """A list up to its matching ')', quoted strings skipped, literals made quoted."""
    out: list[str] = []
    depth, i, start = 0, pos, pos
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _quoted_end(text, i)
            continue
        if char == _LITERAL:
            out += [text[start:i], _quoted(next(literals))]
            i += 1
            start = i
            continue
        depth += (char == "(") - (char == ")")
        i += 1
        if not depth:
            out.append(text[start:i])
            return "".join(out), i
    raise RemoteProtocolError(f"FETCH response: an unclosed '(' at {text[pos:][:40]!r}")
