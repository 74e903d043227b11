"""Run a client engine against a server engine with no network: a transcript, no time.

Like h11's ``ConnectionPair``: it pumps commands and replies between the two engines and
records what would cross the wire, as ``("C", line)`` / ``("S", line)`` pairs. Tests use it,
and so can anything that wants a readable trace of a session. The simulation's own sessions
drive the engines themselves, because every exchange costs a round trip.
"""

from __future__ import annotations

from .pop3_client import POP3Client
from .pop3_server import POP3Server
from .smtp_client import SMTPClient
from .smtp_commands import Content
from .smtp_server import SMTPServer

__all__ = ["Transcript", "pop3_exchange", "smtp_exchange"]

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
