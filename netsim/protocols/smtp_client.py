"""SMTP client engine: a message to one server (and, kept open, the next ones on the same
connection), recipient outcomes kept exactly. Sans-I/O.

The sequence (RFC 5321 §3.3, AUTH per RFC 4954)::

    greeting 220 -> EHLO (HELO if esmtp=False, or if EHLO gets 500/502)
      -> AUTH (if credentials: PLAIN with an initial response, or LOGIN via two 334s)
      -> MAIL FROM -> RCPT TO for every recipient
      -> DATA -> 354 -> Content -> final reply        (only if some RCPT got a 2xx)
      -> QUIT -> done

How failures are reported (the simulation relies on this):

* Every recipient ends with exactly one reply in :attr:`SMTPClient.rcpt_replies`: its RCPT
  reply if that was a refusal, otherwise the final end-of-data reply, otherwise the reply
  that ended the attempt (greeting, HELO, AUTH, MAIL, DATA refusal, or a 421).
* :attr:`~SMTPClient.failed_at` names the step that failed ("greeting", "helo", "auth",
  "mail", "rcpt", "data", "content"), or is ``None`` when the message went through to at
  least one recipient. "rcpt" means every recipient was refused at RCPT (no DATA is sent).
* After a failure the client sends QUIT, except after a 421 (the server closed).
* :meth:`~SMTPClient.abort` decides the remaining recipients when the adapter loses the
  connection (timeout, reset).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .replies import S421_SHUTTING_DOWN, Reply
from .sasl import MECHANISMS, b64encode, encode_plain
from .smtp_commands import (
    Auth,
    AuthResponse,
    Content,
    Data,
    Ehlo,
    Helo,
    Mail,
    Quit,
    Rcpt,
    SMTPCommand,
    validate_address,
)

__all__ = ["ClientState", "Credentials", "SMTPClient"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password for SMTP AUTH, and the mechanism to use."""

    username: str
    password: str
    mechanism: str = "PLAIN"

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("username must not be empty")
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")


class ClientState(enum.StrEnum):
    """What the client waits for: the reply to the command it sent last."""

    GREETING = "GREETING"
    EHLO = "EHLO"
    HELO = "HELO"
    AUTH = "AUTH"  # AUTH PLAIN <initial response> sent
    AUTH_PLAIN = "AUTH_PLAIN"  # the PLAIN response sent after a bare 334
    AUTH_LOGIN = "AUTH_LOGIN"  # AUTH LOGIN sent, awaiting the username prompt
    AUTH_LOGIN_USER = "AUTH_LOGIN_USER"  # username sent
    AUTH_LOGIN_PASS = "AUTH_LOGIN_PASS"  # password sent
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    CONTENT = "CONTENT"
    IDLE = "IDLE"  # a message delivered, the connection kept for the next (keep_open)
    QUIT = "QUIT"
    DONE = "DONE"


_C = ClientState
# The step named in failed_at when a state's reply is a refusal.
_STEP = {
    _C.GREETING: "greeting", _C.EHLO: "helo", _C.HELO: "helo", _C.AUTH: "auth",
    _C.AUTH_PLAIN: "auth", _C.AUTH_LOGIN: "auth", _C.AUTH_LOGIN_USER: "auth",
    _C.AUTH_LOGIN_PASS: "auth", _C.MAIL: "mail", _C.RCPT: "rcpt", _C.DATA: "data",
    _C.CONTENT: "content",
}  # fmt: skip


class SMTPClient:
    """The client side of one SMTP session delivering one message.

    Args:
        helo_name: The name given in EHLO/HELO.
        mail_from: The reverse path (``""`` for a bounce).
        rcpt_to: The recipients, at least one, no duplicates.
        size: The message size in octets (sent as SIZE= when the server offers SIZE).
        payload: Opaque message record carried in the :class:`Content` event.
        credentials: Authenticate with these before MAIL.
        esmtp: Start with EHLO (True) or HELO (False).
        keep_open: After a message the server took, wait (``IDLE``: :meth:`receive`
            returns ``None``) instead of QUIT, so :meth:`next_message` can send another on
            the same connection (a connection cache) or :meth:`close` end it.
    """

    def __init__(
        self,
        helo_name: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        *,
        size: int,
        payload: object = None,
        credentials: Credentials | None = None,
        esmtp: bool = True,
        keep_open: bool = False,
    ) -> None:
        self._helo_name = helo_name
        self._credentials = credentials
        self._esmtp = esmtp
        self._keep_open = keep_open
        self._state = ClientState.GREETING
        self._extensions: dict[str, str] = {}
        self._message(mail_from, rcpt_to, size, payload)

    def _message(self, mail_from: str, rcpt_to: Sequence[str], size: int,
                 payload: object) -> None:
        """Take the next message to send: its envelope, and fresh results."""
        validate_address(mail_from, allow_null=True)
        if not rcpt_to:
            raise ValueError("at least one recipient is needed")
        if len(set(rcpt_to)) != len(rcpt_to):
            raise ValueError("duplicate recipients")
        for rcpt in rcpt_to:
            validate_address(rcpt)
        self._mail_from = mail_from
        self._rcpt_to = tuple(rcpt_to)
        self._content = Content(size, payload)
        self._index = 0  # next recipient to send
        self._provisional: list[str] = []  # RCPT 2xx, awaiting the end of data
        self._replies: dict[str, Reply] = {}
        self._accepted: tuple[str, ...] = ()
        self._final: Reply | None = None
        self._failed_at: str | None = None

    def next_message(self, mail_from: str, rcpt_to: Sequence[str], *, size: int,
                     payload: object = None) -> SMTPCommand:
        """In ``IDLE``: send another message on the same connection; returns its MAIL.

        Raises:
            LocalProtocolError: If the client is not idle.
        """
        if self._state is not ClientState.IDLE:
            raise LocalProtocolError(f"next_message in {self._state}; the client is not idle")
        self._message(mail_from, rcpt_to, size, payload)
        return self._mail()

    def close(self) -> SMTPCommand:
        """In ``IDLE``: end the session; returns the QUIT.

        Raises:
            LocalProtocolError: If the client is not idle.
        """
        if self._state is not ClientState.IDLE:
            raise LocalProtocolError(f"close in {self._state}; the client is not idle")
        return self._send(ClientState.QUIT, Quit())

    # --- results ---------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """What the client is waiting for."""
        return self._state

    @property
    def done(self) -> bool:
        """True when the session is over (after the reply to QUIT, a 421, or abort())."""
        return self._state is ClientState.DONE

    @property
    def idle(self) -> bool:
        """True when a message went through and the connection waits for the next."""
        return self._state is ClientState.IDLE

    @property
    def rcpt_to(self) -> tuple[str, ...]:
        """The recipients this client was asked to deliver to, in order."""
        return self._rcpt_to

    @property
    def rcpt_replies(self) -> dict[str, Reply]:
        """Per recipient, the reply that decided it (see the module docstring)."""
        return self._replies

    @property
    def accepted(self) -> tuple[str, ...]:
        """Recipients the server took responsibility for: RCPT 2xx and end-of-data 2xx."""
        return self._accepted

    @property
    def final_reply(self) -> Reply | None:
        """The reply to the end of data, or the reply that aborted the transaction."""
        return self._final

    @property
    def failed_at(self) -> str | None:
        """The step that failed, or ``None`` if the message was accepted for someone."""
        return self._failed_at

    @property
    def extensions(self) -> dict[str, str]:
        """The EHLO keywords the server offered, upper-case keyword -> parameters."""
        return self._extensions

    # --- driving ---------------------------------------------------------------------------

    def receive(self, reply: Reply) -> SMTPCommand | None:
        """Take the server's reply; return the next command, or ``None`` when finished.

        The first call takes the greeting.

        Raises:
            LocalProtocolError: If the client is already done.
            RemoteProtocolError: If the reply is impossible here (e.g. 354 to MAIL).
        """
        state = self._state
        if state is ClientState.DONE:
            raise LocalProtocolError("the SMTP client is done")
        if state is ClientState.IDLE:
            raise LocalProtocolError("no command is outstanding: next_message() or close()")
        if state is ClientState.QUIT:
            self._state = ClientState.DONE
            return None
        if reply.code == 421:
            self._fail(state, reply)
            self._state = ClientState.DONE
            return None
        handler = _HANDLERS[state]
        return handler(self, reply)

    def abort(self, reply: Reply = S421_SHUTTING_DOWN) -> None:
        """The connection is gone: decide every open recipient with ``reply``; done."""
        if self._state is not ClientState.DONE:
            if self._state not in (ClientState.QUIT, ClientState.IDLE):
                self._fail(self._state, reply)
            self._state = ClientState.DONE

    def _send(self, state: ClientState, command: SMTPCommand) -> SMTPCommand:
        self._state = state
        return command

    def _fail(self, state: ClientState, reply: Reply) -> None:
        # Recipients not yet decided (including those RCPT accepted) take this reply.
        undecided = [r for r in self._rcpt_to if r not in self._replies]
        if not undecided:
            return
        for rcpt in undecided:
            self._replies[rcpt] = reply
        self._provisional.clear()
        self._final = reply
        self._failed_at = _STEP.get(state, self._failed_at)

    def _quit_after_failure(self, reply: Reply) -> SMTPCommand:
        self._fail(self._state, reply)
        return self._send(ClientState.QUIT, Quit())

    @staticmethod
    def _expect_completion(reply: Reply, what: str) -> bool:
        """True for 2xx, False for 4xx/5xx; a 3xx here is the server's error."""
        if reply.is_intermediate:
            raise RemoteProtocolError(f"{reply.code} is not a possible answer to {what}")
        return reply.code < 300

    def _on_greeting(self, reply: Reply) -> SMTPCommand:
        if not self._expect_completion(reply, "the greeting"):
            return self._quit_after_failure(reply)
        if self._esmtp:
            return self._send(ClientState.EHLO, Ehlo(self._helo_name))
        return self._send(ClientState.HELO, Helo(self._helo_name))

    def _on_ehlo(self, reply: Reply) -> SMTPCommand:
        if not self._expect_completion(reply, "EHLO"):
            if reply.code in (500, 502):  # RFC 5321 §3.2: fall back to HELO
                return self._send(ClientState.HELO, Helo(self._helo_name))
            return self._quit_after_failure(reply)
        for line in reply.lines:
            keyword, _, params = line.partition(" ")
            self._extensions[keyword.upper()] = params
        return self._after_greeting()

    def _on_helo(self, reply: Reply) -> SMTPCommand:
        if not self._expect_completion(reply, "HELO"):
            return self._quit_after_failure(reply)
        return self._after_greeting()

    def _after_greeting(self) -> SMTPCommand:
        credentials = self._credentials
        if credentials is None:
            return self._mail()
        if credentials.mechanism == "LOGIN":
            return self._send(ClientState.AUTH_LOGIN, Auth("LOGIN"))
        initial = encode_plain(credentials.username, credentials.password)
        return self._send(ClientState.AUTH, Auth("PLAIN", initial))

    def _on_auth(self, reply: Reply) -> SMTPCommand:
        state = self._state
        if reply.is_intermediate:
            # A server that ignores the initial response asks again with a bare 334.
            if state is ClientState.AUTH and self._credentials is not None:
                creds = self._credentials
                response = AuthResponse(encode_plain(creds.username, creds.password))
                return self._send(ClientState.AUTH_PLAIN, response)
            raise RemoteProtocolError(f"unexpected {reply.code} in {state}")
        if reply.code < 300:
            return self._mail()
        return self._quit_after_failure(reply)

    def _on_auth_login(self, reply: Reply) -> SMTPCommand:
        state = self._state
        creds = self._credentials
        assert creds is not None  # only reachable with credentials
        if reply.is_intermediate and state is ClientState.AUTH_LOGIN:
            return self._send(ClientState.AUTH_LOGIN_USER, AuthResponse(b64encode(creds.username)))
        if reply.is_intermediate and state is ClientState.AUTH_LOGIN_USER:
            return self._send(ClientState.AUTH_LOGIN_PASS, AuthResponse(b64encode(creds.password)))
        if reply.is_intermediate:
            raise RemoteProtocolError(f"unexpected {reply.code} after the LOGIN password")
        if reply.code < 300:
            if state is not ClientState.AUTH_LOGIN_PASS:
                raise RemoteProtocolError(f"{reply.code} before the LOGIN password was sent")
            return self._mail()
        return self._quit_after_failure(reply)

    def _mail(self) -> SMTPCommand:
        size = self._content.size if "SIZE" in self._extensions else None
        return self._send(ClientState.MAIL, Mail(self._mail_from, size))

    def _on_mail(self, reply: Reply) -> SMTPCommand:
        if not self._expect_completion(reply, "MAIL"):
            return self._quit_after_failure(reply)
        return self._send(ClientState.RCPT, Rcpt(self._rcpt_to[0]))

    def _on_rcpt(self, reply: Reply) -> SMTPCommand:
        rcpt = self._rcpt_to[self._index]
        if self._expect_completion(reply, "RCPT"):
            self._provisional.append(rcpt)
        else:
            self._replies[rcpt] = reply
        self._index += 1
        if self._index < len(self._rcpt_to):
            return self._send(ClientState.RCPT, Rcpt(self._rcpt_to[self._index]))
        if self._provisional:
            return self._send(ClientState.DATA, Data())
        # Every recipient refused: nothing to send.
        self._final = reply
        self._failed_at = "rcpt"
        return self._send(ClientState.QUIT, Quit())

    def _on_data(self, reply: Reply) -> SMTPCommand:
        if reply.is_intermediate:
            return self._send(ClientState.CONTENT, self._content)
        if reply.code < 300:
            raise RemoteProtocolError(f"{reply.code} to DATA; want 354")
        return self._quit_after_failure(reply)

    def _on_content(self, reply: Reply) -> SMTPCommand | None:
        if self._expect_completion(reply, "the end of data"):
            self._accepted = tuple(self._provisional)
            for rcpt in self._provisional:
                self._replies[rcpt] = reply
            self._provisional.clear()
            self._final = reply
            if self._keep_open:
                self._state = ClientState.IDLE
                return None
            return self._send(ClientState.QUIT, Quit())
        return self._quit_after_failure(reply)


_HANDLERS = {
    _C.GREETING: SMTPClient._on_greeting,
    _C.EHLO: SMTPClient._on_ehlo,
    _C.HELO: SMTPClient._on_helo,
    _C.AUTH: SMTPClient._on_auth,
    _C.AUTH_PLAIN: SMTPClient._on_auth,
    _C.AUTH_LOGIN: SMTPClient._on_auth_login,
    _C.AUTH_LOGIN_USER: SMTPClient._on_auth_login,
    _C.AUTH_LOGIN_PASS: SMTPClient._on_auth_login,
    _C.MAIL: SMTPClient._on_mail,
    _C.RCPT: SMTPClient._on_rcpt,
    _C.DATA: SMTPClient._on_data,
    _C.CONTENT: SMTPClient._on_content,
}
