"""The byte layer: serialisation, and byte-level drivers around the engines.

A socket adapter (the live lab's asyncio server) only moves bytes::

    wire = SMTPWireServer(SMTPServer("mail.isp-a.example", hooks))
    send(wire.greeting())
    while not wire.closed:
        send(wire.receive_data(recv()))

The drivers frame lines (:mod:`.framing`), parse them (:mod:`.parsing`), hand the engine
command events and encode its replies. In DATA they collect the message, unstuffed, and give
the engine ``Content(size, payload=message bytes)``. While the SMTP engine awaits an AUTH
response, the next line is that response. This module also re-exports the framing and
parsing names, and IMAP's driver from :mod:`.imap_wire`, so ``netsim.protocols.wire`` is the
whole byte layer.
"""

from __future__ import annotations

from .errors import LocalProtocolError
from .framing import (
    BARE_LINE_END,
    LINE_TOO_LONG,
    BareLineEnd,
    DataReader,
    LineBuffer,
    LineTooLong,
    dot_stuff,
    dot_unstuff,
)
from .handoff import WireServer
from .imap_wire import IMAPWireServer, encode_imap_responses
from .parsing import parse_pop3_command, parse_smtp_command
from .pop3_commands import Invalid as POP3Invalid
from .pop3_commands import POP3Command, Stls
from .pop3_replies import ERR_BARE_LINE_END, ERR_LINE_TOO_LONG, POP3Reply
from .pop3_server import POP3Server
from .replies import S500_BARE_LINE_END, S500_LINE_TOO_LONG, S550_BARE_LINE_END, Reply
from .smtp_commands import AuthResponse, Content, Invalid, SMTPCommand, StartTLS
from .smtp_server import SMTPServer, SMTPState

__all__ = [
    "BARE_LINE_END",
    "LINE_TOO_LONG",
    "MAX_POP3_COMMAND_LINE",
    "MAX_SMTP_COMMAND_LINE",
    "MAX_SMTP_TEXT_LINE",
    "BareLineEnd",
    "DataReader",
    "IMAPWireServer",
    "LineBuffer",
    "LineTooLong",
    "POP3WireServer",
    "SMTPWireServer",
    "dot_stuff",
    "dot_unstuff",
    "encode_command",
    "encode_content",
    "encode_imap_responses",
    "encode_pop3_reply",
    "encode_reply",
    "line_octets",
    "message_text",
    "parse_pop3_command",
    "parse_smtp_command",
]

MAX_SMTP_COMMAND_LINE = 512  # RFC 5321 §4.5.3.1.4, including CRLF
MAX_SMTP_TEXT_LINE = 1000  # RFC 5321 §4.5.3.1.6, including CRLF
MAX_POP3_COMMAND_LINE = 255  # RFC 2449 §4, including CRLF


def encode_reply(reply: Reply) -> bytes:
    """An SMTP reply as wire bytes, every line CRLF-terminated."""
    return ("\r\n".join(reply.wire_lines()) + "\r\n").encode("utf-8")


def line_octets(lines: list[str]) -> bytes:
    """Text lines as the octets they travel as, each ending in CRLF. A message's octets
    that are not UTF-8 travel as surrogate escapes (:func:`message_text`) and go out as the
    octets they were."""
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")


def encode_pop3_reply(reply: POP3Reply) -> bytes:
    """A POP3 reply as wire bytes (multi-line bodies dot-stuffed and terminated): RETR is
    8-bit clean (:func:`line_octets`)."""
    return line_octets(reply.wire_lines())


def message_text(payload: bytes) -> str:
    """A message's octets as text that :func:`line_octets` turns back into exactly those
    octets (UTF-8, anything else as surrogate escapes)."""
    return payload.decode("utf-8", "surrogateescape")


def encode_content(message: bytes) -> bytes:
    """A message as sent after 354: CRLF line ends, dot-stuffed, then ``.`` CRLF."""
    if not message:
        return b".\r\n"
    lines = message.replace(b"\r\n", b"\n").split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the message ended with a line end
    stuffed = [b"." + line if line[:1] == b"." else line for line in lines]
    return b"\r\n".join(stuffed) + b"\r\n.\r\n"


def encode_command(command: SMTPCommand | POP3Command) -> bytes:
    """A command as wire bytes; ``Content`` needs its payload as bytes.

    Raises:
        LocalProtocolError: For a ``Content`` whose payload is not bytes.
    """
    if isinstance(command, Content):
        if not isinstance(command.payload, bytes):
            raise LocalProtocolError("Content needs a bytes payload to go on the wire")
        return encode_content(command.payload)
    return (command.to_line() + "\r\n").encode("utf-8")


def _printable(line: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in line)


class SMTPWireServer(WireServer[SMTPServer]):
    """Bytes in, bytes out around an :class:`SMTPServer`.

    Args:
        engine: The SMTP engine, not yet greeted.
        max_command_line: Command line limit in octets with CRLF (over: 500 5.5.6).
        max_text_line: DATA text line limit with CRLF (over: the message is refused with
            500 5.5.6 after its final dot).
    """

    def __init__(
        self,
        engine: SMTPServer,
        *,
        max_command_line: int = MAX_SMTP_COMMAND_LINE,
        max_text_line: int = MAX_SMTP_TEXT_LINE,
    ) -> None:
        super().__init__(engine)
        self._max_command = max_command_line
        self._max_text = max_text_line
        self._buffer = LineBuffer(max_command_line)
        self._reader: DataReader | None = None

    @property
    def in_record(self) -> bool:
        """Whether a command line or a message is partly received (an adapter's deadline
        for one record runs while this holds: Postfix smtpd_per_record_deadline)."""
        return self._buffer.pending > 0 or self._reader is not None

    def greeting(self) -> bytes:
        """The greeting to send on connect."""
        return encode_reply(self._engine.greeting())

    def receive_data(self, data: bytes) -> bytes:
        """Take received bytes; return the bytes to send (possibly empty).

        Input after the engine closed is ignored.
        """
        if self._engine.closed or self.tls_pending:
            return b""
        self._buffer.feed(data)
        out: list[bytes] = []
        for item in self._buffer.lines():
            reply = self._line(item)
            if reply is not None:
                out.append(encode_reply(reply))
            if self.tls_pending:   # what came after STARTTLS in plain text is dropped
                self._buffer = LineBuffer(self._max_command)
                break
            if self._engine.closed:
                break
        return b"".join(out)

    def _line(self, item: bytes | LineTooLong | BareLineEnd) -> Reply | None:
        engine = self._engine
        reader = self._reader
        if reader is not None:
            if not reader.feed(item):
                return None
            self._reader = None
            self._buffer.max_line = self._max_command
            if reader.line_too_long:
                return engine.handle(Invalid(S500_LINE_TOO_LONG))
            if reader.bare_line_end:
                return engine.handle(Invalid(S550_BARE_LINE_END))
            payload = b"" if reader.overflow else reader.payload()
            return engine.handle(Content(reader.size, payload))
        command: SMTPCommand
        if isinstance(item, LineTooLong):
            command = Invalid(S500_LINE_TOO_LONG)
        elif isinstance(item, BareLineEnd):
            command = Invalid(S500_BARE_LINE_END)
        elif engine.state is SMTPState.AUTH:
            command = AuthResponse(_printable(item.decode("latin-1")))
        else:
            command = parse_smtp_command(item.decode("latin-1"))
        reply = engine.handle(command)
        if isinstance(command, StartTLS) and reply.code == 220:
            self.tls_pending = True   # the adapter starts TLS after sending this reply
        if engine.state is SMTPState.DATA:
            self._reader = DataReader(engine.max_message_size)
            self._buffer.max_line = self._max_text
        return reply


class POP3WireServer(WireServer[POP3Server]):
    """Bytes in, bytes out around a :class:`POP3Server`.

    Args:
        engine: The POP3 engine, not yet greeted.
        max_command_line: Command line limit in octets with CRLF (over: ``-ERR``).
    """

    def __init__(self, engine: POP3Server, *, max_command_line: int = MAX_POP3_COMMAND_LINE):
        super().__init__(engine)
        self._max_command = max_command_line
        self._buffer = LineBuffer(max_command_line)

    @property
    def in_record(self) -> bool:
        """Whether a command line is partly received."""
        return self._buffer.pending > 0

    def greeting(self) -> bytes:
        """The greeting to send on connect."""
        return encode_pop3_reply(self._engine.greeting())

    def receive_data(self, data: bytes) -> bytes:
        """Take received bytes; return the bytes to send (possibly empty)."""
        if self._engine.closed or self.tls_pending:
            return b""
        self._buffer.feed(data)
        out: list[bytes] = []
        for item in self._buffer.lines():
            command: POP3Command
            if isinstance(item, LineTooLong):
                command = POP3Invalid(ERR_LINE_TOO_LONG)
            elif isinstance(item, BareLineEnd):
                command = POP3Invalid(ERR_BARE_LINE_END)
            else:
                command = parse_pop3_command(item.decode("latin-1"))
            reply = self._engine.handle(command)
            out.append(encode_pop3_reply(reply))
            if isinstance(command, Stls) and reply.ok:
                self.tls_pending = True   # the adapter starts TLS after this reply
                self._buffer = LineBuffer(self._max_command)   # plain text after it: dropped
                break
            if self._engine.closed:
                break
        return b"".join(out)
