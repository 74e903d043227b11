"""The client engines on a real socket: read replies as bytes, hand them to the sans-I/O
:class:`~netsim.protocols.SMTPClient` / :class:`~netsim.protocols.POP3Client` /
:class:`~netsim.protocols.IMAPClient`, send what they return. The relay and the ``send`` /
``fetch`` tools share these drivers.

Every line that crosses the wire is reported to ``echo`` as ``("C", line)`` or
``("S", line)``, the way ``netsim trace`` prints a dialogue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from netsim.protocols import (
    Capa,
    Content,
    IMAPClient,
    IMAPResponseReader,
    List,
    POP3Client,
    POP3Command,
    POP3Reply,
    RemoteProtocolError,
    Reply,
    Retr,
    SMTPClient,
    SMTPCommand,
    Top,
    Uidl,
    encode_command,
)

__all__ = ["Echo", "parse_reply", "run_imap_client", "run_pop3_client", "run_smtp_client"]

Echo = Callable[[str, str], None]
"""Reports one wire line: ``("C", line)`` sent by the client, ``("S", line)`` by the server."""

MAX_REPLY_LINES = 100  # an SMTP reply longer than this is the server's error
MAX_BODY_LINES = 1_000_000
READ_SIZE = 65536  # IMAP: what one read asks for; the response reader frames it


def _quiet(direction: str, line: str) -> None:
    return None


def parse_reply(lines: list[str]) -> Reply:
    """An SMTP reply from its wire lines (without CRLF); enhanced codes are recognised.

    Raises:
        RemoteProtocolError: If the lines are not one well-formed reply.
    """
    code = lines[0][:3]
    texts: list[str] = []
    enhanced: str | None = None
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        sep = line[3:4]
        if line[:3] != code or not code.isdigit() or sep not in (("", " ") if last else ("-",)):
            raise RemoteProtocolError(f"malformed reply line {line!r}")
        rest = line[4:]
        first, _, tail = rest.partition(" ")
        parts = first.split(".")
        if (code[0] in "245" and len(parts) == 3 and parts[0] == code[0]
                and all(p.isdigit() and len(p) <= 3 for p in parts)):
            enhanced, rest = first, tail
        texts.append(rest)
    try:
        return Reply(int(code), enhanced, texts[0], tuple(texts[1:]))
    except ValueError as exc:
        raise RemoteProtocolError(f"unusable reply {lines!r}: {exc}") from None


async def _line(reader: asyncio.StreamReader, timeout: float) -> str:
    # readline raises ValueError past the reader's limit (64 KiB): a broken server
    async with asyncio.timeout(timeout):
        raw = await reader.readline()
    if not raw.endswith(b"\n"):
        raise ConnectionError("the server closed the connection")
    return raw.rstrip(b"\r\n").decode("utf-8", "replace")


async def read_reply(reader: asyncio.StreamReader, timeout: float, echo: Echo) -> Reply:
    """Read one (possibly multi-line) SMTP reply."""
    lines: list[str] = []
    while True:
        line = await _line(reader, timeout)
        echo("S", line)
        lines.append(line)
        if line[3:4] != "-" or len(lines) >= MAX_REPLY_LINES:
            return parse_reply(lines)


def _content_lines(command: Content) -> list[str]:
    payload = command.payload
    assert isinstance(payload, bytes)
    lines = payload.decode("utf-8", "replace").split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [*lines, "."]


async def run_smtp_client(client: SMTPClient, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter, *, timeout: float,
                          echo: Echo = _quiet, first: SMTPCommand | None = None) -> None:
    """Drive an SMTP client engine to the end of its session, or (kept open) of its
    message; ``first``: the command that starts a further message on a kept connection
    (no greeting to read then).

    A lost connection, a timeout or a malformed reply aborts the engine, which then decides
    every open recipient with 421 (see :meth:`SMTPClient.abort`).
    """
    try:
        command = (client.receive(await read_reply(reader, timeout, echo)) if first is None
                   else first)
        while command is not None:
            if isinstance(command, Content):
                for line in _content_lines(command):
                    echo("C", line)
            else:
                echo("C", command.to_line())
            writer.write(encode_command(command))
            async with asyncio.timeout(timeout):
                await writer.drain()
            command = client.receive(await read_reply(reader, timeout, echo))
    except (OSError, TimeoutError, ValueError, RemoteProtocolError) as exc:
        echo("!", _why(exc))
        client.abort()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _multiline(command: POP3Command) -> bool:
    """Whether a ``+OK`` to this command carries a body (RFC 1939, RFC 2449)."""
    if isinstance(command, List | Uidl):
        return command.msg is None
    return isinstance(command, Retr | Top | Capa)


async def read_pop3_reply(reader: asyncio.StreamReader, timeout: float, echo: Echo,
                          multiline: bool) -> POP3Reply:
    """Read one POP3 reply; a ``+OK`` to a multi-line command brings its unstuffed body."""
    status = await _line(reader, timeout)
    echo("S", status)
    word, _, text = status.partition(" ")
    if word not in ("+OK", "-ERR"):
        raise RemoteProtocolError(f"malformed POP3 status line {status!r}")
    ok = word == "+OK"
    if not (ok and multiline):
        return POP3Reply(ok, text[:500])
    body: list[str] = []
    while len(body) < MAX_BODY_LINES:
        line = await _line(reader, timeout)
        echo("S", line)
        if line == ".":
            break
        body.append(line[1:] if line.startswith(".") else line)
    return POP3Reply(True, text[:500], tuple(body))


async def run_pop3_client(client: POP3Client, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter, *, timeout: float,
                          echo: Echo = _quiet) -> None:
    """Drive a POP3 client engine to the end of its session (aborted if the line fails)."""
    try:
        command = client.receive(await read_pop3_reply(reader, timeout, echo, False))
        while command is not None:
            echo("C", command.to_line())
            writer.write(encode_command(command))
            async with asyncio.timeout(timeout):
                await writer.drain()
            reply = await read_pop3_reply(reader, timeout, echo, _multiline(command))
            command = client.receive(reply)
    except (OSError, TimeoutError, ValueError, RemoteProtocolError) as exc:
        echo("!", _why(exc))
        client.abort()



async def run_imap_client(client: IMAPClient, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter, *, timeout: float,
                          echo: Echo = _quiet) -> bool:
    """Drive an IMAP client engine to the end of its session; False if it was aborted (the
    line failed, or the server sent what no IMAP server may).

    IMAP is not line by line (a literal carries its own CRLFs), so the bytes go through an
    :class:`~netsim.protocols.IMAPResponseReader`; each response is echoed as the lines
    that crossed, a message's octets cut at their CRLFs.
    """
    responses = IMAPResponseReader()
    try:
        while not client.done:
            async with asyncio.timeout(timeout):
                data = await reader.read(READ_SIZE)
            if not data:
                raise ConnectionError("the server closed the connection")
            responses.receive_data(data)
            while not client.done and (response := responses.next_event()) is not None:
                for line in responses.last_octets.split(b"\r\n")[:-1]:
                    echo("S", line.decode("utf-8", "replace"))
                command = client.receive(response)
                if command is not None:
                    echo("C", command.to_line())
                    writer.write((command.to_line() + "\r\n").encode("utf-8"))
                    async with asyncio.timeout(timeout):
                        await writer.drain()
    except (OSError, TimeoutError, ValueError, RemoteProtocolError) as exc:
        echo("!", _why(exc))
        client.abort()
        return False
    return True
