"""POP3 server engine (RFC 1939; CAPA per RFC 2449; STLS per RFC 2595). Sans-I/O.

Rules this module keeps (after h11's ``_state.py``):

1. Every state change lives in :data:`POP3_TRANSITIONS`: AUTHORIZATION -> TRANSACTION on a
   successful PASS/APOP; QUIT leads from AUTHORIZATION to CLOSED (nothing committed) and
   from TRANSACTION to UPDATE, where :meth:`POP3ServerHooks.commit` deletes the marked
   messages. Deletions happen then and only then.
2. A command not listed for the current state gets ``-ERR command not valid in this state``;
   a refused command leaves the state unchanged. Within AUTHORIZATION a USER name may be
   pending; PASS consumes it whatever the outcome (a wrong password starts over).
3. STLS is legal only in AUTHORIZATION before USER, if enabled; the session stays in
   AUTHORIZATION with ``session.tls`` set. CAPA is legal in every state.
4. Syntax and sequence errors (unknown commands, parser rejections, wrong state, PASS
   without USER) count against ``max_errors``; the one that exceeds it is answered with
   ``-ERR too many errors`` and closes without UPDATE.
5. Any event before ``greeting()`` or after the session closed is the adapter's bug:
   LocalProtocolError.

A session that ends without QUIT (connection lost, error budget) never reaches UPDATE: the
adapter must release the maildrop lock itself.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from .errors import LocalProtocolError
from .pop3_commands import (
    Apop,
    Capa,
    Dele,
    Invalid,
    List,
    Noop,
    Pass,
    POP3Command,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    Unknown,
    User,
)
from .pop3_replies import (
    ERR_APOP_UNAVAILABLE,
    ERR_AUTH_FAILED,
    ERR_IN_USE,
    ERR_NEED_USER,
    ERR_NO_SUCH_MESSAGE,
    ERR_PLAINTEXT_DISABLED,
    ERR_STLS_UNAVAILABLE,
    ERR_TLS_ACTIVE,
    ERR_TOO_MANY_ERRORS,
    ERR_UNKNOWN_COMMAND,
    ERR_WRONG_STATE,
    OK,
    OK_BEGIN_TLS,
    OK_BYE,
    OK_SEND_PASS,
    POP3Reply,
    already_deleted,
    capabilities,
    deleted,
    maildrop_ready,
    pop3_greeting,
    scan_listing,
    signing_off,
)
from .pop3_session import POP3ServerHooks, POP3Session, StoredMessage

__all__ = [
    "POP3_TRANSITIONS",
    "POP3Edge",
    "POP3Server",
    "POP3ServerHooks",
    "POP3Session",
    "POP3State",
    "StoredMessage",
]


class POP3State(enum.StrEnum):
    """States of the server side of one POP3 session (RFC 1939 §3)."""

    NEW = "NEW"  # before greeting()
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"  # QUIT from TRANSACTION: committed and closed
    CLOSED = "CLOSED"  # QUIT from AUTHORIZATION, or too many errors


@dataclass(frozen=True, slots=True)
class POP3Edge:
    """Where a command leads on ``+OK`` and on ``-ERR`` (``None``: unchanged)."""

    ok: POP3State
    error: POP3State | None = None


_P = POP3State
_AUTH, _TRANS = _P.AUTHORIZATION, _P.TRANSACTION

POP3_TRANSITIONS: dict[POP3State, dict[type, POP3Edge]] = {
    _P.NEW: {},
    _AUTH: {
        User: POP3Edge(_AUTH), Pass: POP3Edge(_TRANS), Apop: POP3Edge(_TRANS),
        Stls: POP3Edge(_AUTH), Capa: POP3Edge(_AUTH), Quit: POP3Edge(_P.CLOSED),
        Unknown: POP3Edge(_AUTH), Invalid: POP3Edge(_AUTH),
    },
    _TRANS: {
        Stat: POP3Edge(_TRANS), List: POP3Edge(_TRANS), Retr: POP3Edge(_TRANS),
        Dele: POP3Edge(_TRANS), Noop: POP3Edge(_TRANS), Rset: POP3Edge(_TRANS),
        Uidl: POP3Edge(_TRANS), Top: POP3Edge(_TRANS), Capa: POP3Edge(_TRANS),
        Quit: POP3Edge(_P.UPDATE), Unknown: POP3Edge(_TRANS), Invalid: POP3Edge(_TRANS),
    },
    _P.UPDATE: {},
    _P.CLOSED: {},
}  # fmt: skip

_ADAPTER_ONLY = frozenset({_P.NEW, _P.UPDATE, _P.CLOSED})


class POP3Server:
    """The server side of one POP3 session: one command event in, one reply out.

    Args:
        hostname: The server's name (used in the default APOP timestamp).
        hooks: Authentication and maildrop storage (see :class:`POP3ServerHooks`).
        client_address: Opaque peer address, passed to hooks via the session.
        port: The port the client connected to.
        timestamp: The APOP timestamp in the greeting, ``<...@...>``; the adapter passes a
            unique one per session. ``None`` gives ``<0.0@hostname>``.
        apop: Offer APOP (the greeting carries the timestamp only when True).
        allow_plaintext: Accept USER/PASS without TLS.
        stls: Offer STLS.
        tls: The connection is TLS from the start (port 995).
        max_errors: Syntax and sequence errors tolerated; the next one closes.
    """

    def __init__(
        self,
        hostname: str,
        hooks: POP3ServerHooks,
        *,
        client_address: object = None,
        port: int = 110,
        timestamp: str | None = None,
        apop: bool = True,
        allow_plaintext: bool = True,
        stls: bool = False,
        tls: bool = False,
        max_errors: int = 10,
    ) -> None:
        if timestamp is None:
            timestamp = f"<0.0@{hostname}>"
        if not (timestamp.startswith("<") and timestamp.endswith(">") and "@" in timestamp):
            raise ValueError(f"APOP timestamp must look like <id@host>, got {timestamp!r}")
        self._hooks = hooks
        self._failed_logins = 0
        self._timestamp = timestamp if apop else None
        self._allow_plaintext = allow_plaintext
        self._stls = stls
        self._max_errors = max_errors
        self._session = POP3Session(client_address=client_address, port=port,
                                    server_hostname=hostname, tls=tls)  # fmt: skip
        self._state = POP3State.NEW
        self._errors = 0
        self._user: str | None = None  # pending USER name
        self._messages: tuple[StoredMessage, ...] = ()
        self._deleted: list[bool] = []
        self._live_count = 0
        self._live_octets = 0

    @property
    def state(self) -> POP3State:
        """The current state (see :data:`POP3_TRANSITIONS`)."""
        return self._state

    @property
    def session(self) -> POP3Session:
        """What hooks see of this session."""
        return self._session

    @property
    def closed(self) -> bool:
        """True after QUIT (UPDATE or CLOSED) or after too many errors."""
        return self._state in (POP3State.UPDATE, POP3State.CLOSED)

    @property
    def timestamp(self) -> str | None:
        """The APOP timestamp of the greeting (``None`` when APOP is not offered)."""
        return self._timestamp

    def greeting(self) -> POP3Reply:
        """``+OK POP3 server ready <timestamp>``. Call exactly once, first."""
        if self._state is not POP3State.NEW:
            raise LocalProtocolError("greeting() was already given")
        self._state = POP3State.AUTHORIZATION
        return pop3_greeting(self._timestamp)

    def handle(self, command: POP3Command) -> POP3Reply:
        """Process one command event and return the reply to send.

        Raises:
            LocalProtocolError: Before ``greeting()`` or after the session closed.
        """
        state = self._state
        kind: type = type(command)
        edge = POP3_TRANSITIONS[state].get(kind)
        if edge is None:
            if state in _ADAPTER_ONLY:
                raise LocalProtocolError(f"{kind.__name__} is impossible in state {state}")
            reply, target, counted = ERR_WRONG_STATE, state, True
        else:
            reply = _HANDLERS[kind](self, command)
            target = edge.ok if reply.ok else (edge.error or state)
            counted = (
                kind is Unknown or kind is Invalid
                or reply is ERR_NEED_USER or reply is ERR_WRONG_STATE
            )  # fmt: skip
        if counted:
            self._errors += 1
            if self._errors > self._max_errors:
                reply, target = ERR_TOO_MANY_ERRORS, POP3State.CLOSED
        self._state = target
        return reply

    # --- AUTHORIZATION ---------------------------------------------------------------------

    def _plaintext_refused(self) -> bool:
        return not self._allow_plaintext and not self._session.tls

    def _cmd_user(self, command: User) -> POP3Reply:
        if self._plaintext_refused():
            return ERR_PLAINTEXT_DISABLED
        self._user = command.name
        return OK_SEND_PASS

    def _cmd_pass(self, command: Pass) -> POP3Reply:
        username, self._user = self._user, None
        if username is None:
            return ERR_NEED_USER
        if self._plaintext_refused():
            return ERR_PLAINTEXT_DISABLED
        if not self._hooks.authenticate(self._session, username, command.password):
            self._failed_logins += 1
            return ERR_AUTH_FAILED
        return self._open(username)

    @property
    def failed_logins(self) -> int:
        """PASS commands refused (an adapter may make each cost the client time)."""
        return self._failed_logins

    def _cmd_apop(self, command: Apop) -> POP3Reply:
        self._user = None
        if self._timestamp is None:
            return ERR_APOP_UNAVAILABLE
        secret = self._hooks.apop_secret(self._session, command.name)
        if secret is None:
            return ERR_AUTH_FAILED
        expected = hashlib.md5((self._timestamp + secret).encode("utf-8")).hexdigest()
        if not hmac.compare_digest(expected, command.digest):
            return ERR_AUTH_FAILED
        return self._open(command.name)

    def _open(self, username: str) -> POP3Reply:
        messages = self._hooks.open_maildrop(self._session, username)
        if messages is None:
            return ERR_IN_USE
        self._messages = tuple(messages)
        self._deleted = [False] * len(self._messages)
        self._live_count = len(self._messages)
        self._live_octets = sum(m.size for m in self._messages)
        self._session.username = username
        return maildrop_ready(self._live_count, self._live_octets)

    def _cmd_stls(self, command: Stls) -> POP3Reply:
        if self._session.tls:
            return ERR_TLS_ACTIVE
        if not self._stls:
            return ERR_STLS_UNAVAILABLE
        if self._user is not None:
            return ERR_WRONG_STATE
        self._session.tls = True
        return OK_BEGIN_TLS

    def _cmd_capa(self, command: Capa) -> POP3Reply:
        user = self._allow_plaintext or self._session.tls
        stls = self._stls and not self._session.tls and self._state is POP3State.AUTHORIZATION
        return capabilities(user, stls)

    def _cmd_quit(self, command: Quit) -> POP3Reply:
        if self._state is not POP3State.TRANSACTION:
            return OK_BYE
        uids = [m.uid for m, gone in zip(self._messages, self._deleted, strict=True) if gone]
        username = self._session.username or ""
        self._hooks.commit(self._session, username, uids)
        return signing_off(self._live_count)

    def _cmd_unknown(self, command: Unknown) -> POP3Reply:
        return ERR_UNKNOWN_COMMAND

    def _cmd_invalid(self, command: Invalid) -> POP3Reply:
        return command.reply

    # --- TRANSACTION -----------------------------------------------------------------------

    def _lookup(self, number: int) -> StoredMessage | POP3Reply:
        if number > len(self._messages):
            return ERR_NO_SUCH_MESSAGE
        if self._deleted[number - 1]:
            return already_deleted(number)
        return self._messages[number - 1]

    def _live(self) -> list[tuple[int, StoredMessage]]:
        return [
            (i, m)
            for i, (m, gone) in enumerate(zip(self._messages, self._deleted, strict=True), 1)
            if not gone
        ]

    def _cmd_stat(self, command: Stat) -> POP3Reply:
        return scan_listing(self._live_count, self._live_octets)

    def _cmd_list(self, command: List) -> POP3Reply:
        if command.msg is None:
            lines = tuple(f"{i} {m.size}" for i, m in self._live())
            text = f"{self._live_count} messages ({self._live_octets} octets)"
            return POP3Reply(True, text, lines)
        found = self._lookup(command.msg)
        if isinstance(found, POP3Reply):
            return found
        return scan_listing(command.msg, found.size)

    def _cmd_uidl(self, command: Uidl) -> POP3Reply:
        if command.msg is None:
            return POP3Reply(True, "", tuple(f"{i} {m.uid}" for i, m in self._live()))
        found = self._lookup(command.msg)
        if isinstance(found, POP3Reply):
            return found
        return POP3Reply(True, f"{command.msg} {found.uid}")

    def _cmd_retr(self, command: Retr) -> POP3Reply:
        found = self._lookup(command.msg)
        if isinstance(found, POP3Reply):
            return found
        return POP3Reply(True, f"{found.size} octets", tuple(self._hooks.render(found, None)))

    def _cmd_top(self, command: Top) -> POP3Reply:
        found = self._lookup(command.msg)
        if isinstance(found, POP3Reply):
            return found
        lines = tuple(self._hooks.render(found, command.lines))
        return POP3Reply(True, "top of message follows", lines)

    def _cmd_dele(self, command: Dele) -> POP3Reply:
        found = self._lookup(command.msg)
        if isinstance(found, POP3Reply):
            return found
        self._deleted[command.msg - 1] = True
        self._live_count -= 1
        self._live_octets -= found.size
        return deleted(command.msg)

    def _cmd_noop(self, command: Noop) -> POP3Reply:
        return OK

    def _cmd_rset(self, command: Rset) -> POP3Reply:
        self._deleted = [False] * len(self._messages)
        self._live_count = len(self._messages)
        self._live_octets = sum(m.size for m in self._messages)
        return maildrop_ready(self._live_count, self._live_octets)


_HANDLERS: dict[type, Any] = {
    User: POP3Server._cmd_user,
    Pass: POP3Server._cmd_pass,
    Apop: POP3Server._cmd_apop,
    Stls: POP3Server._cmd_stls,
    Capa: POP3Server._cmd_capa,
    Quit: POP3Server._cmd_quit,
    Unknown: POP3Server._cmd_unknown,
    Invalid: POP3Server._cmd_invalid,
    Stat: POP3Server._cmd_stat,
    List: POP3Server._cmd_list,
    Uidl: POP3Server._cmd_uidl,
    Retr: POP3Server._cmd_retr,
    Top: POP3Server._cmd_top,
    Dele: POP3Server._cmd_dele,
    Noop: POP3Server._cmd_noop,
    Rset: POP3Server._cmd_rset,
}
