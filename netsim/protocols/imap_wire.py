"""The IMAP byte layer (RFC 9051 §4.3 literals; LITERAL+ per RFC 7888): IMAPWireServer.

Bytes in, bytes out around an :class:`IMAPServer`, as :class:`~.wire.POP3WireServer` does
for POP3. It frames lines (:class:`~.framing.LineBuffer`: a line ends at CRLF only), and
where a line ends with ``{n}`` it answers ``+ Ready for literal data`` and collects the next
n octets as they are (``{n+}``: without the ``+``), CRLFs included; then it hands the whole
command to the parser (:mod:`.imap_parsing`) and the engine. While the engine waits for the
line that answers its ``+``, that line is the SASL response, or DONE.

A line over the limit, or one holding a bare CR or LF, ends the session with ``* BYE``:
the refused line may have announced a literal, so what follows can no longer be framed. A
literal over its limit is refused with ``BAD [TOOBIG]``: before it is sent if synchronizing,
and after its octets were read and dropped if not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .framing import BareLineEnd, LineBuffer, LineTooLong
from .handoff import WireServer
from .imap_commands import AuthenticateResponse, Done, IMAPCommand, Invalid, StartTLS
from .imap_parsing import literal_announced, parse_imap_command, printable, tag_of
from .imap_responses import (
    BAD_EXPECTED_DONE,
    BAD_LITERAL_TOO_LARGE,
    BYE_BARE_LINE_END,
    BYE_LINE_TOO_LONG,
    CONTINUE_LITERAL,
    OK_BEGIN_TLS,
    IMAPResponse,
    IMAPStatus,
    StatusResponse,
)
from .imap_server import IMAPServer, IMAPState
from .imap_session import IMAPStoredMessage

__all__ = [
    "MAX_IMAP_COMMAND",
    "MAX_IMAP_LINE",
    "MAX_IMAP_LITERAL",
    "IMAPWireServer",
    "encode_imap_responses",
]

MAX_IMAP_LINE = 8192  # octets with CRLF (RFC 7162 §4's recommended minimum)
MAX_IMAP_LITERAL = 65_536  # commands here carry only short strings: there is no APPEND
MAX_IMAP_COMMAND = 131_072  # all lines and literals of one command
_IDLE = frozenset({IMAPState.AUTHENTICATED_IDLE, IMAPState.SELECTED_IDLE})


def encode_imap_responses(responses: Iterable[IMAPResponse]) -> bytes:
    """Responses as wire bytes: literals as ``{n}`` CRLF and their octets, unchanged."""
    return b"".join(response.to_bytes() for response in responses)


class IMAPWireServer(WireServer[IMAPServer]):
    """Bytes in, bytes out around an :class:`IMAPServer`.

    Args:
        engine: The IMAP engine, not yet greeted.
        max_line: Line limit in octets with CRLF (over: ``* BYE``).
        max_literal: Largest literal accepted (over: ``BAD [TOOBIG]``).
        max_command: Largest command, its lines and literals together.
    """

    def __init__(
        self,
        engine: IMAPServer,
        *,
        max_line: int = MAX_IMAP_LINE,
        max_literal: int = MAX_IMAP_LITERAL,
        max_command: int = MAX_IMAP_COMMAND,
    ) -> None:
        super().__init__(engine)
        self._max_line = max_line
        self._max_literal = max_literal
        self._max_command = max_command
        self._buffer = LineBuffer(max_line)
        self._lines: list[bytes] = []  # the command being received: its lines so far …
        self._literals: list[bytes] = []  # … and the literals after them
        self._literal = bytearray()
        self._literal_left = 0  # octets of the current literal still to come
        self._size = 0
        self._refused: IMAPStatus | None = None  # the command is too large: drop the rest

    @property
    def in_record(self) -> bool:
        """Whether a command (a line, or a literal) is partly received."""
        return self._buffer.pending > 0 or bool(self._lines) or self._literal_left > 0

    def greeting(self) -> bytes:
        """The greeting to send on connect."""
        return self._engine.greeting().to_bytes()

    def receive_data(self, data: bytes) -> bytes:
        """Take received bytes; return the bytes to send (possibly empty).

        Input after the engine closed, or while TLS is pending, is ignored.
        """
        if self._engine.closed or self.tls_pending:
            return b""
        self._buffer.feed(data)
        out: list[bytes] = []
        while not self._engine.closed and not self.tls_pending:
            if self._literal_left:
                chunk = self._buffer.take(self._literal_left)
                if not chunk:
                    break
                self._collect(chunk)
                continue
            item = next(self._buffer.lines(), None)
            if item is None:
                break
            out.append(self._line(item))
        return b"".join(out)

    def new_messages(self, messages: Sequence[IMAPStoredMessage]) -> bytes:
        """New mail in the selected mailbox: ``* n EXISTS`` now if the client idles."""
        return encode_imap_responses(self._engine.add_messages(messages))

    def _collect(self, chunk: bytes) -> None:
        self._literal_left -= len(chunk)
        if self._refused is None:  # a refused literal's octets are read and dropped
            self._literal += chunk
        if not self._literal_left:
            self._literals.append(bytes(self._literal))
            self._literal.clear()

    def _line(self, item: bytes | LineTooLong | BareLineEnd) -> bytes:
        if isinstance(item, LineTooLong):
            return self._respond(Invalid(None, BYE_LINE_TOO_LONG))
        if isinstance(item, BareLineEnd):
            return self._respond(Invalid(None, BYE_BARE_LINE_END))
        state = self._engine.state
        if not self._lines and state is IMAPState.AUTHENTICATING:
            return self._respond(AuthenticateResponse(printable(item)))
        if not self._lines and state in _IDLE:
            if item.upper() == b"DONE":
                return self._respond(Done())
            return self._respond(Invalid(None, BAD_EXPECTED_DONE, printable(item)))
        self._lines.append(item)
        self._size += len(item) + 2
        announced = literal_announced(item)
        if announced is None:
            return self._finish()
        count, synchronizing = announced
        self._size += count
        if count > self._max_literal or self._size > self._max_command:
            self._refused = BAD_LITERAL_TOO_LARGE
        if synchronizing and self._refused is not None:
            return self._finish()  # refused before the client sends it
        self._literal_left = count
        if not count:
            self._literals.append(b"")
        return CONTINUE_LITERAL.to_bytes() if synchronizing else b""

    def _finish(self) -> bytes:
        lines, literals, refused = self._lines, self._literals, self._refused
        self._lines, self._literals, self._refused, self._size = [], [], None, 0
        command: IMAPCommand
        if refused is not None:
            command = Invalid(tag_of(lines[0]), refused, printable(lines[0]))
        else:
            command = parse_imap_command(lines, literals)
        return self._respond(command)

    def _respond(self, command: IMAPCommand) -> bytes:
        responses = self._engine.handle(command)
        final = responses[-1]
        if isinstance(command, StartTLS) and isinstance(final, StatusResponse) and (
            final.status == OK_BEGIN_TLS
        ):
            self.tls_pending = True  # the adapter starts TLS after sending this response
            self._buffer = LineBuffer(self._max_line)  # plain text pipelined after it: dropped
        return encode_imap_responses(responses)
