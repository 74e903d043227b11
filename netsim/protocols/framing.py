"""Line framing for SMTP, POP3 and IMAP: line splitting with limits, dot-stuffing, DATA
collection, and the octets of IMAP literals.

Limits count octets *including* the CRLF, as the RFCs state them: SMTP command lines 512 and
text lines 1000 (RFC 5321 §4.5.3.1.4 and .6), POP3 commands 255 (RFC 2449 §4). IMAP sets
none; RFC 7162 §4 asks servers to take lines of at least 8192 octets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

__all__ = [
    "BARE_LINE_END",
    "LINE_TOO_LONG",
    "BareLineEnd",
    "DataReader",
    "LineBuffer",
    "LineTooLong",
    "dot_stuff",
    "dot_unstuff",
]


class LineTooLong:
    """Marker yielded by :class:`LineBuffer` in place of a line over the limit."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LINE_TOO_LONG"


LINE_TOO_LONG: Final = LineTooLong()


class BareLineEnd:
    """Marker yielded by :class:`LineBuffer` in place of a line holding a bare CR or LF."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BARE_LINE_END"


BARE_LINE_END: Final = BareLineEnd()


class LineBuffer:
    """Collects bytes and yields complete lines without their line end.

    A line ends at CRLF and nowhere else (RFC 5321 §2.3.8: CR and LF only as CRLF). A line
    that holds a bare CR or a bare LF is yielded as :data:`BARE_LINE_END`: it is never split
    there, so ``\n.\n`` can neither end DATA nor start a command (SMTP smuggling), and the
    engine refuses it. A line longer than ``max_line`` octets (including CRLF) is yielded as
    :data:`LINE_TOO_LONG` once its end arrives; its octets are discarded as they come, so
    memory stays bounded whatever the peer sends.

    ``max_line`` may be changed between lines (SMTP switches to 1000 in DATA): :meth:`lines`
    reads it afresh for every line it yields.
    """

    def __init__(self, max_line: int) -> None:
        if max_line < 3:
            raise ValueError("max_line must allow at least one octet and CRLF")
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    @property
    def pending(self) -> int:
        """Octets held that do not yet form a complete line."""
        return len(self._buffer)

    def take(self, count: int) -> bytes:
        """Remove and return up to ``count`` octets as they are: an IMAP literal's data
        (RFC 9051 §4.3), where CR and LF are data, not line ends."""
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    def lines(self) -> Iterator[bytes | LineTooLong | BareLineEnd]:
        """Yield each complete line held (bytes without CRLF), LINE_TOO_LONG or
        BARE_LINE_END."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                # No line end yet: if what we hold can no longer fit, drop it now (keeping
                # a last CR, which may be the first half of the CRLF to come).
                if len(buffer) > self.max_line:
                    self._discarding = True
                    del buffer[: len(buffer) - 1 if buffer[-1:] == b"\r" else len(buffer)]
                return
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            bare = b"\n" in line or b"\r" in line
            if self._discarding or len(line) + 2 > self.max_line:
                self._discarding = False
                yield LINE_TOO_LONG
            elif bare:
                yield BARE_LINE_END
            else:
                yield line


def dot_stuff(lines: Iterable[str]) -> list[str]:
    """Prefix a ``.`` to every line starting with ``.`` (RFC 5321 §4.5.2, RFC 1939 §3)."""
    return ["." + line if line[:1] == "." else line for line in lines]


def dot_unstuff(lines: Iterable[str]) -> list[str]:
    """Remove the ``.`` that :func:`dot_stuff` added (the terminator is not included)."""
    return [line[1:] if line[:1] == "." else line for line in lines]


class DataReader:
    """Collects the text after a 354 until the ``.`` line: unstuffs, counts, bounds.

    Feed it the items a :class:`LineBuffer` (``max_line`` 1000) yields. The message is kept
    as bytes with CRLF line ends; its size is counted even past ``max_size``, but nothing
    beyond ``max_size`` is stored.

    Attributes:
        size: Octets of the unstuffed message, CRLFs included.
        line_too_long: True if some text line went over the line limit (the line is lost).
        bare_line_end: True if some text line held a bare CR or LF (the message is refused).
        done: True once the terminating ``.`` arrived.
    """

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._chunks: list[bytes] = []
        self.size = 0
        self.line_too_long = False
        self.bare_line_end = False
        self.done = False

    def feed(self, item: bytes | LineTooLong | BareLineEnd) -> bool:
        """Take one line; return True when it was the terminating ``.``."""
        if self.done:
            raise ValueError("the DATA terminator was already seen")
        if isinstance(item, LineTooLong):
            self.line_too_long = True
            return False
        if isinstance(item, BareLineEnd):
            self.bare_line_end = True
            return False
        if item[:1] == b".":
            if len(item) == 1:
                self.done = True
                return True
            item = item[1:]
        self.size += len(item) + 2
        if self.size <= self._max_size:
            self._chunks.append(item + b"\r\n")
        return False

    @property
    def overflow(self) -> bool:
        """True if the message outgrew ``max_size`` (its payload is incomplete)."""
        return self.size > self._max_size

    def payload(self) -> bytes:
        """The unstuffed message collected so far, CRLF line ends."""
        return b"".join(self._chunks)
