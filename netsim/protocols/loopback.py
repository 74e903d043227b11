"""Run a client engine against a server engine with no network: a transcript, no time.

Like h11's ``ConnectionPair``: it pumps commands and replies between the two engines and
records what would cross the wire, as ``("C", line)`` / ``("S", line)`` pairs. Tests use it,
and so can anything that wants a readable trace of a session. The simulation's own sessions
drive the engines themselves, because every exchange costs a round trip.
"""

from __future__ import annotations

from .imap_client import IMAPClient
from .imap_commands import IMAPCommand
from .imap_responses import IMAPResponse
from .imap_server import IMAPServer
from .pop3_client import POP3Client
from .pop3_server import POP3Server
from .smtp_client import SMTPClient
from .smtp_commands import Content
from .smtp_server import SMTPServer

__all__ = ["Transcript", "imap_exchange", "pop3_exchange", "smtp_exchange"]

Transcript = list[tuple[str, str]]
"""What crossed the wire: ``("C", line)`` from the client, ``("S", line)`` from the server."""


def smtp_exchange(client: SMTPClient, server: SMTPServer, *, max_steps: int = 10_000) -> Transcript:
    """Greet, then pump until the client is done or the server closed.

    Message content shows as its placeholder line and the final ``.``.

    Raises:
        RuntimeError: If the exchange does not end within ``max_steps`` commands.
    """
    transcript: Transcript = []
    reply = server.greeting()
    transcript += [("S", line) for line in reply.wire_lines()]
    command = client.receive(reply)
    for _ in range(max_steps):
        if command is None:
            return transcript
        transcript.append(("C", command.to_line()))
        if isinstance(command, Content):
            transcript.append(("C", "."))
        reply = server.handle(command)
        transcript += [("S", line) for line in reply.wire_lines()]
        command = client.receive(reply)
    raise RuntimeError("SMTP exchange did not finish")


def pop3_exchange(client: POP3Client, server: POP3Server, *, max_steps: int = 10_000) -> Transcript:
    """Greet, then pump until the client is done; multi-line bodies appear dot-stuffed.

    Raises:
        RuntimeError: If the exchange does not end within ``max_steps`` commands.
    """
    transcript: Transcript = []
    reply = server.greeting()
    transcript += [("S", line) for line in reply.wire_lines()]
    command = client.receive(reply)
    for _ in range(max_steps):
        if command is None:
            return transcript
        transcript.append(("C", command.to_line()))
        reply = server.handle(command)
        transcript += [("S", line) for line in reply.wire_lines()]
        command = client.receive(reply)
    raise RuntimeError("POP3 exchange did not finish")


def imap_exchange(client: IMAPClient, server: IMAPServer, *, max_steps: int = 10_000) -> Transcript:
    """Greet, then pump until the client is done or the server closed.

    The client sees the server's responses one by one and answers with at most one command
    per turn; literals appear cut at their CRLFs, as on the wire.

    Raises:
        RuntimeError: If the exchange does not end within ``max_steps`` commands, or the
            client waits for a response the server does not give.
    """
    transcript: Transcript = []
    responses: list[IMAPResponse] = [server.greeting()]
    for _ in range(max_steps):
        command: IMAPCommand | None = None
        for response in responses:
            transcript += [("S", line) for line in response.wire_lines()]
            answer = client.receive(response) if not client.done else None
            if answer is not None:
                if command is not None:
                    raise RuntimeError("the IMAP client sent two commands in one turn")
                command = answer
        if command is None:
            if client.done or server.closed:
                return transcript
            raise RuntimeError("the IMAP client waits for a response that does not come")
        transcript.append(("C", command.to_line()))
        responses = server.handle(command)
    raise RuntimeError("IMAP exchange did not finish")
