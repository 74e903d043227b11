"""POP3 client engine: log in, fetch every message (or none), optionally delete, quit. Sans-I/O.

The sequence (what Thunderbird-like MUAs do, RFC 1939)::

    greeting +OK -> [STLS] -> USER/PASS or APOP -> STAT
      -> (n > 0) LIST -> UIDL -> RETR k [-> DELE k] for each message -> QUIT

UIDL tells the caller which stored messages were fetched (:attr:`POP3Client.retrieved_uids`).
A refusal of the greeting, STLS, USER, PASS, APOP, STAT or LIST ends the attempt: it is
kept in :attr:`~POP3Client.failed_reply` and the client sends QUIT (or stops, after a
refused greeting). :attr:`~POP3Client.credentials_on_wire` tells an eavesdropper model
whether a password crossed the network in the clear.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .pop3_commands import Apop, Dele, List, Pass, POP3Command, Quit, Retr, Stat, Stls, Uidl, User
from .pop3_replies import POP3Reply

__all__ = ["POP3Client", "POP3ClientState", "RetrievedMessage"]


@dataclass(frozen=True, slots=True)
class RetrievedMessage:
    """One message fetched with RETR.

    Attributes:
        number: Its message number in the session.
        uid: Its UIDL id (``None`` if the server does not offer UIDL).
        size: Its size from LIST.
        lines: The message text lines as the server rendered them.
    """

    number: int
    uid: str | None
    size: int | None
    lines: tuple[str, ...]


class POP3ClientState(enum.StrEnum):
    """What the client waits for: the reply to the command it sent last."""

    GREETING = "GREETING"
    STLS = "STLS"
    USER = "USER"
    PASS = "PASS"
    APOP = "APOP"
    STAT = "STAT"
    LIST = "LIST"
    UIDL = "UIDL"
    RETR = "RETR"
    DELE = "DELE"
    QUIT = "QUIT"
    DONE = "DONE"


def apop_digest(timestamp: str, secret: str) -> str:
    """RFC 1939 §7: hex MD5 of the greeting's timestamp followed by the shared secret."""
    return hashlib.md5((timestamp + secret).encode("utf-8")).hexdigest()


def _timestamp(text: str) -> str | None:
    start = text.find("<")
    end = text.find(">", start + 1)
    if start < 0 or end < 0 or "@" not in text[start:end]:
        return None
    return text[start : end + 1]


def _int_fields(text: str, count: int) -> list[int]:
    parts = text.split()
    if len(parts) < count or not all(p.isdigit() for p in parts[:count]):
        raise RemoteProtocolError(f"expected {count} numbers, got {text!r}")
    return [int(p) for p in parts[:count]]


class POP3Client:
    """The client side of one POP3 session.

    Args:
        username: The mailbox user.
        password: The password (USER/PASS) or shared secret (APOP).
        use_apop: Log in with APOP: the password never crosses the wire.
        delete: DELE each message after RETR (the messages go at QUIT).
        use_stls: Send STLS first and give up if the server refuses it.
        tls: The connection is TLS already (port 995).
        fetch: Fetch the mail after logging in; ``False``: log in and quit (what a mail
            client does to open POP-before-SMTP relay).
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        use_apop: bool = False,
        delete: bool = True,
        use_stls: bool = False,
        tls: bool = False,
        fetch: bool = True,
    ) -> None:
        User(username)  # validate early: the same rules as the wire
        Pass(password)
        self._username = username
        self._password = password
        self._use_apop = use_apop
        self._delete = delete
        self._use_stls = use_stls and not tls
        self._tls = tls
        self._fetch = fetch
        self._state = POP3ClientState.GREETING
        self._timestamp: str | None = None
        self._authenticated = False
        self._credentials_on_wire = False
        self._failed: POP3Reply | None = None
        self._count = 0
        self._sizes: dict[int, int] = {}
        self._uids: dict[int, str] = {}
        self._queue: list[int] = []  # message numbers still to fetch
        self._current = 0
        self._retrieved: list[RetrievedMessage] = []
        self._deleted: list[str] = []
        self._committed = False

    # --- results ---------------------------------------------------------------------------

    @property
    def state(self) -> POP3ClientState:
        """What the client is waiting for."""
        return self._state

    @property
    def done(self) -> bool:
        """True when the session is over."""
        return self._state is POP3ClientState.DONE

    @property
    def authenticated(self) -> bool:
        """True once PASS or APOP succeeded."""
        return self._authenticated

    @property
    def credentials_on_wire(self) -> bool:
        """True if PASS went out without TLS: an eavesdropper on the path has the password."""
        return self._credentials_on_wire

    @property
    def failed_reply(self) -> POP3Reply | None:
        """The ``-ERR`` (or unusable greeting) that ended the attempt, if any."""
        return self._failed

    @property
    def message_count(self) -> int:
        """Messages in the maildrop according to STAT."""
        return self._count

    @property
    def retrieved(self) -> list[RetrievedMessage]:
        """Messages fetched, in order."""
        return self._retrieved

    @property
    def retrieved_uids(self) -> list[str]:
        """UIDL ids of the messages fetched (those the server gave an id)."""
        return [m.uid for m in self._retrieved if m.uid is not None]

    @property
    def deleted_uids(self) -> list[str]:
        """Ids marked with DELE; they are gone only if :attr:`committed`."""
        return self._deleted

    @property
    def committed(self) -> bool:
        """True if QUIT was answered ``+OK`` after login: the deletions took effect."""
        return self._committed

    @property
    def tls(self) -> bool:
        """True on a TLS connection (implicit, or after STLS)."""
        return self._tls

    # --- driving ---------------------------------------------------------------------------

    def receive(self, reply: POP3Reply) -> POP3Command | None:
        """Take the server's reply; return the next command, or ``None`` when finished.

        Raises:
            LocalProtocolError: If the client is already done.
            RemoteProtocolError: If a reply cannot be parsed (e.g. STAT without numbers).
        """
        state = self._state
        if state is POP3ClientState.DONE:
            raise LocalProtocolError("the POP3 client is done")
        if state is POP3ClientState.QUIT:
            self._committed = reply.ok and self._authenticated
            self._state = POP3ClientState.DONE
            return None
        return _HANDLERS[state](self, reply)

    def abort(self) -> None:
        """The connection is gone: stop (nothing is committed)."""
        self._state = POP3ClientState.DONE

    def _send(self, state: POP3ClientState, command: POP3Command) -> POP3Command:
        self._state = state
        return command

    def _give_up(self, reply: POP3Reply) -> POP3Command:
        self._failed = reply
        return self._send(POP3ClientState.QUIT, Quit())

    def _on_greeting(self, reply: POP3Reply) -> POP3Command | None:
        if not reply.ok:
            self._failed = reply
            self._state = POP3ClientState.DONE
            return None
        self._timestamp = _timestamp(reply.text)
        if self._use_stls:
            return self._send(POP3ClientState.STLS, Stls())
        return self._login()

    def _on_stls(self, reply: POP3Reply) -> POP3Command:
        if not reply.ok:
            return self._give_up(reply)  # configured for TLS: never fall back to plaintext
        self._tls = True
        return self._login()

    def _login(self) -> POP3Command:
        if not self._use_apop:
            return self._send(POP3ClientState.USER, User(self._username))
        if self._timestamp is None:
            return self._give_up(POP3Reply(False, "no APOP timestamp in the greeting"))
        digest = apop_digest(self._timestamp, self._password)
        return self._send(POP3ClientState.APOP, Apop(self._username, digest))

    def _on_user(self, reply: POP3Reply) -> POP3Command:
        if not reply.ok:
            return self._give_up(reply)
        self._credentials_on_wire = self._credentials_on_wire or not self._tls
        return self._send(POP3ClientState.PASS, Pass(self._password))

    def _on_login(self, reply: POP3Reply) -> POP3Command:
        if not reply.ok:
            return self._give_up(reply)
        self._authenticated = True
        if not self._fetch:   # a login only (POP-before-SMTP): its mail waits
            return self._send(POP3ClientState.QUIT, Quit())
        return self._send(POP3ClientState.STAT, Stat())

    def _on_stat(self, reply: POP3Reply) -> POP3Command:
        if not reply.ok:
            return self._give_up(reply)
        self._count = _int_fields(reply.text, 2)[0]
        if self._count == 0:
            return self._send(POP3ClientState.QUIT, Quit())
        return self._send(POP3ClientState.LIST, List())

    def _on_list(self, reply: POP3Reply) -> POP3Command:
        if not reply.ok or reply.lines is None:
            return self._give_up(reply)
        for line in reply.lines:
            number, size = _int_fields(line, 2)
            self._sizes[number] = size
        self._queue = sorted(self._sizes, reverse=True)  # popped from the end: ascending
        return self._send(POP3ClientState.UIDL, Uidl())

    def _on_uidl(self, reply: POP3Reply) -> POP3Command:
        if reply.ok and reply.lines is not None:
            for line in reply.lines:
                number, _, uid = line.partition(" ")
                if not number.isdigit() or not uid:
                    raise RemoteProtocolError(f"bad UIDL line {line!r}")
                self._uids[int(number)] = uid
        return self._next_message()

    def _next_message(self) -> POP3Command:
        if not self._queue:
            return self._send(POP3ClientState.QUIT, Quit())
        self._current = self._queue.pop()
        return self._send(POP3ClientState.RETR, Retr(self._current))

    def _on_retr(self, reply: POP3Reply) -> POP3Command:
        number = self._current
        if not reply.ok:
            return self._next_message()  # skip it; try the others
        uid = self._uids.get(number)
        message = RetrievedMessage(number, uid, self._sizes.get(number), reply.lines or ())
        self._retrieved.append(message)
        if self._delete:
            return self._send(POP3ClientState.DELE, Dele(number))
        return self._next_message()

    def _on_dele(self, reply: POP3Reply) -> POP3Command:
        uid = self._uids.get(self._current)
        if reply.ok and uid is not None:
            self._deleted.append(uid)
        return self._next_message()


_S = POP3ClientState
_HANDLERS = {
    _S.GREETING: POP3Client._on_greeting,
    _S.STLS: POP3Client._on_stls,
    _S.USER: POP3Client._on_user,
    _S.PASS: POP3Client._on_login,
    _S.APOP: POP3Client._on_login,
    _S.STAT: POP3Client._on_stat,
    _S.LIST: POP3Client._on_list,
    _S.UIDL: POP3Client._on_uidl,
    _S.RETR: POP3Client._on_retr,
    _S.DELE: POP3Client._on_dele,
}
