"""IMAP client engine: log in, fetch all (or the unseen) messages, optionally delete, log
out. Sans-I/O (RFC 9051; AUTHENTICATE PLAIN per RFC 4616 with SASL-IR per RFC 4959).

The sequence (what a mail client checking for mail does)::

    greeting -> [CAPABILITY] -> [STARTTLS -> CAPABILITY] -> AUTHENTICATE PLAIN or LOGIN
      -> SELECT INBOX (EXAMINE if read-only) -> (EXISTS > 0) UID SEARCH ALL or UNSEEN
      -> (found) UID FETCH set (UID RFC822.SIZE BODY[])
      -> [UID STORE set +FLAGS.SILENT (\\Deleted) -> EXPUNGE] -> LOGOUT

AUTHENTICATE PLAIN is used where the server offers it (with the initial response if it
offers SASL-IR, else after the ``+``), LOGIN otherwise. A refusal of STARTTLS, the login,
SELECT, SEARCH or STORE ends the attempt: it is kept in :attr:`IMAPClient.failed_response`
and the client logs out. :attr:`~IMAPClient.credentials_on_wire` tells an eavesdropper model
whether a password crossed the network in the clear.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .imap_commands import (
    Authenticate,
    AuthenticateResponse,
    Capability,
    Examine,
    Expunge,
    Fetch,
    IMAPCommand,
    Login,
    Logout,
    Search,
    Select,
    StartTLS,
    Store,
)
from .imap_responses import (
    Continuation,
    Data,
    FetchData,
    IMAPResponse,
    IMAPStatus,
    exists_count,
    search_results,
)
from .imap_syntax import DELETED, FetchAttribute, SearchKey, SequenceSet, StoreMode
from .sasl import encode_plain

__all__ = ["NO_STARTTLS_OFFERED", "NO_USABLE_LOGIN", "FetchPlan", "FetchedMessage", "IMAPClient",
           "IMAPClientState"]  # fmt: skip


class FetchPlan(enum.StrEnum):
    """Which messages the client fetches after SELECT."""

    ALL = "ALL"
    UNSEEN = "UNSEEN"  # the new ones: BODY[] marks what it fetched \Seen
    NONE = "NONE"  # log in and out (what opens POP/IMAP-before-SMTP relay)


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message fetched with UID FETCH.

    Attributes:
        uid: Its UID.
        size: Its RFC822.SIZE.
        content: Its octets, exactly as the server sent them.
    """

    uid: int
    size: int | None
    content: bytes


class IMAPClientState(enum.StrEnum):
    """What the client waits for: the completion of the command it sent last."""

    GREETING = "GREETING"
    CAPABILITY = "CAPABILITY"
    STARTTLS = "STARTTLS"
    LOGIN = "LOGIN"
    AUTHENTICATE = "AUTHENTICATE"
    SELECT = "SELECT"
    SEARCH = "SEARCH"
    FETCH = "FETCH"
    STORE = "STORE"
    EXPUNGE = "EXPUNGE"
    LOGOUT = "LOGOUT"
    DONE = "DONE"


# What the client notes itself when the server offers no usable way on.
NO_STARTTLS_OFFERED = IMAPStatus("NO", "STARTTLS not offered")
NO_USABLE_LOGIN = IMAPStatus("NO", "LOGIN disabled and no usable SASL mechanism")


class IMAPClient:
    """The client side of one IMAP session.

    Args:
        username: The mailbox user.
        password: The password.
        mechanism: ``"PLAIN"`` (AUTHENTICATE) or ``"LOGIN"`` (the LOGIN command); ``None``
            picks PLAIN where offered, else LOGIN.
        use_starttls: Send STARTTLS first and give up if the server does not offer it.
        tls: The connection is TLS already (port 993).
        fetch: Which messages to fetch (:class:`FetchPlan`).
        delete: Mark the fetched messages ``\\Deleted`` and EXPUNGE them.
        readonly: EXAMINE instead of SELECT (nothing can change, not even ``\\Seen``).
        tag_prefix: Tags are this prefix and a counter (``A1``, ``A2``, …).
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        mechanism: str | None = None,
        use_starttls: bool = False,
        tls: bool = False,
        fetch: FetchPlan = FetchPlan.ALL,
        delete: bool = False,
        readonly: bool = False,
        tag_prefix: str = "A",
    ) -> None:
        Login("A", username, password).to_line()  # validate early: what can be sent
        if mechanism not in (None, "PLAIN", "LOGIN"):
            raise ValueError(f"mechanism must be PLAIN, LOGIN or None, got {mechanism!r}")
        self._username = username
        self._password = password
        self._mechanism = mechanism
        self._use_starttls = use_starttls and not tls
        self._tls = tls
        self._plan = fetch
        self._delete = delete and not readonly
        self._readonly = readonly
        self._prefix = tag_prefix
        self._counter = 0
        self._tag = ""
        self._state = IMAPClientState.GREETING
        self._capabilities: tuple[str, ...] = ()
        self._authenticated = False
        self._credentials_on_wire = False
        self._failed: IMAPStatus | None = None
        self._exists = 0
        self._uidvalidity: int | None = None
        self._found: list[int] = []
        self._retrieved: list[FetchedMessage] = []
        self._deleted: list[int] = []
        self._committed = False

    # --- results ---------------------------------------------------------------------------

    @property
    def state(self) -> IMAPClientState:
        """What the client is waiting for."""
        return self._state

    @property
    def done(self) -> bool:
        """True when the session is over."""
        return self._state is IMAPClientState.DONE

    @property
    def authenticated(self) -> bool:
        """True once LOGIN or AUTHENTICATE succeeded (or the greeting was PREAUTH)."""
        return self._authenticated

    @property
    def credentials_on_wire(self) -> bool:
        """True if the password went out without TLS (PLAIN's base64 is no protection)."""
        return self._credentials_on_wire

    @property
    def failed_response(self) -> IMAPStatus | None:
        """The NO, BAD or BYE that ended the attempt, if any."""
        return self._failed

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The server's capabilities as last announced."""
        return self._capabilities

    @property
    def message_count(self) -> int:
        """Messages in the mailbox according to EXISTS."""
        return self._exists

    @property
    def uidvalidity(self) -> int | None:
        """The mailbox's UIDVALIDITY."""
        return self._uidvalidity

    @property
    def retrieved(self) -> list[FetchedMessage]:
        """Messages fetched, in UID order."""
        return self._retrieved

    @property
    def retrieved_uids(self) -> list[int]:
        """UIDs of the messages fetched."""
        return [m.uid for m in self._retrieved]

    @property
    def deleted_uids(self) -> list[int]:
        """UIDs marked ``\\Deleted``; they are gone only if :attr:`committed`."""
        return self._deleted

    @property
    def committed(self) -> bool:
        """True if EXPUNGE was answered OK: the deletions took effect."""
        return self._committed

    @property
    def tls(self) -> bool:
        """True on a TLS connection (implicit, or after STARTTLS)."""
        return self._tls

    # --- driving ---------------------------------------------------------------------------

    def receive(self, response: IMAPResponse) -> IMAPCommand | None:
        """Take one server response; return the next command, or ``None`` (nothing to send
        yet, or :attr:`done`).

        Raises:
            LocalProtocolError: If the client is already done.
            RemoteProtocolError: For a response impossible here (a foreign tag, a ``+``
                nobody asked for, a FETCH without its UID).
        """
        state = self._state
        if state is IMAPClientState.DONE:
            raise LocalProtocolError("the IMAP client is done")
        if isinstance(response, Continuation):
            return self._on_continuation()
        if isinstance(response, Data):
            self._on_data(response)
            return None
        if isinstance(response, FetchData):
            self._on_fetch_data(response)
            return None
        status = response.status
        self._note_code(status)
        if response.tag == "*":
            if state is IMAPClientState.GREETING:
                return self._on_greeting(status)
            if status.kind == "BYE" and state is not IMAPClientState.LOGOUT:
                self._failed = status  # the server is closing the connection
                self._state = IMAPClientState.DONE
            return None
        if response.tag != self._tag:
            raise RemoteProtocolError(f"response for tag {response.tag!r}, not {self._tag!r}")
        if state is IMAPClientState.LOGOUT:
            self._state = IMAPClientState.DONE
            return None
        return _HANDLERS[state](self, status)

    def abort(self) -> None:
        """The connection is gone: stop."""
        self._state = IMAPClientState.DONE

    def _send(self, state: IMAPClientState, command: IMAPCommand) -> IMAPCommand:
        self._state = state
        return command

    def _next_tag(self) -> str:
        self._counter += 1
        self._tag = f"{self._prefix}{self._counter}"
        return self._tag

    def _logout(self) -> IMAPCommand:
        return self._send(IMAPClientState.LOGOUT, Logout(self._next_tag()))

    def _give_up(self, status: IMAPStatus) -> IMAPCommand:
        self._failed = status
        return self._logout()

    # --- untagged data ---------------------------------------------------------------------

    def _note_code(self, status: IMAPStatus) -> None:
        name, _, value = (status.code or "").partition(" ")
        if name == "CAPABILITY":
            self._capabilities = tuple(value.split())
        elif name == "UIDVALIDITY" and value.isdigit():
            self._uidvalidity = int(value)

    def _on_data(self, data: Data) -> None:
        head, _, rest = data.text.partition(" ")
        if head.upper() == "CAPABILITY":
            self._capabilities = tuple(rest.split())
        found = search_results(data)
        if found is not None:
            self._found = found
        exists = exists_count(data)
        if exists is not None:
            self._exists = exists

    def _on_fetch_data(self, data: FetchData) -> None:
        if self._state is not IMAPClientState.FETCH:
            return  # a FETCH that a STORE or the server's news caused
        uid, size, content = data.get("UID"), data.get("RFC822.SIZE"), data.get("BODY[]")
        if not isinstance(uid, str) or not uid.isdigit():
            raise RemoteProtocolError(f"FETCH response without a UID: {data!r}")
        if not isinstance(content, bytes):
            raise RemoteProtocolError(f"FETCH response without the message: {data!r}")
        octets = int(size) if isinstance(size, str) and size.isdigit() else None
        self._retrieved.append(FetchedMessage(int(uid), octets, content))

    # --- each completion -------------------------------------------------------------------

    def _on_greeting(self, status: IMAPStatus) -> IMAPCommand | None:
        if status.kind == "PREAUTH":
            self._authenticated = True
            return self._after_login()
        if status.kind != "OK":
            self._failed = status
            self._state = IMAPClientState.DONE
            return None
        if not self._capabilities:
            return self._send(IMAPClientState.CAPABILITY, Capability(self._next_tag()))
        return self._start()

    def _on_capability(self, status: IMAPStatus) -> IMAPCommand:
        if not status.ok:
            return self._give_up(status)
        return self._start()

    def _start(self) -> IMAPCommand:
        if self._use_starttls and not self._tls:
            if "STARTTLS" not in self._capabilities:
                return self._give_up(NO_STARTTLS_OFFERED)
            return self._send(IMAPClientState.STARTTLS, StartTLS(self._next_tag()))
        return self._login()

    def _on_starttls(self, status: IMAPStatus) -> IMAPCommand:
        if not status.ok:
            return self._give_up(status)  # configured for TLS: never fall back to plaintext
        self._tls = True
        self._capabilities = ()  # RFC 9051 §6.2.1: forget what was said in plain text
        return self._send(IMAPClientState.CAPABILITY, Capability(self._next_tag()))

    def _login(self) -> IMAPCommand:
        caps = {c.upper() for c in self._capabilities}
        mechanism = self._mechanism or ("PLAIN" if "AUTH=PLAIN" in caps else "LOGIN")
        if mechanism == "LOGIN" and "LOGINDISABLED" in caps:
            return self._give_up(NO_USABLE_LOGIN)
        tag = self._next_tag()
        if mechanism == "LOGIN":
            self._credentials_on_wire |= not self._tls
            return self._send(IMAPClientState.LOGIN, Login(tag, self._username, self._password))
        if "SASL-IR" not in caps:
            return self._send(IMAPClientState.AUTHENTICATE, Authenticate(tag, "PLAIN"))
        self._credentials_on_wire |= not self._tls
        initial = encode_plain(self._username, self._password)
        return self._send(IMAPClientState.AUTHENTICATE, Authenticate(tag, "PLAIN", initial))

    def _on_continuation(self) -> IMAPCommand:
        if self._state is not IMAPClientState.AUTHENTICATE:
            raise RemoteProtocolError(f"a continuation request while waiting for {self._state}")
        self._credentials_on_wire |= not self._tls
        return AuthenticateResponse(encode_plain(self._username, self._password))

    def _on_login(self, status: IMAPStatus) -> IMAPCommand:
        if not status.ok:
            return self._give_up(status)
        self._authenticated = True
        return self._after_login()

    def _after_login(self) -> IMAPCommand:
        if self._plan is FetchPlan.NONE:
            return self._logout()
        kind = Examine if self._readonly else Select
        return self._send(IMAPClientState.SELECT, kind(self._next_tag(), "INBOX"))

    def _on_select(self, status: IMAPStatus) -> IMAPCommand:
        if not status.ok:
            return self._give_up(status)
        if not self._exists:
            return self._logout()
        key = SearchKey("UNSEEN" if self._plan is FetchPlan.UNSEEN else "ALL")
        return self._send(IMAPClientState.SEARCH, Search(self._next_tag(), (key,), uid=True))

    def _on_search(self, status: IMAPStatus) -> IMAPCommand:
        if not status.ok:
            return self._give_up(status)
        if not self._found:
            return self._logout()
        items = (FetchAttribute.UID, FetchAttribute.RFC822_SIZE, FetchAttribute.BODY)
        fetch = Fetch(self._next_tag(), SequenceSet.of(self._found), items, uid=True)
        return self._send(IMAPClientState.FETCH, fetch)

    def _on_fetch(self, status: IMAPStatus) -> IMAPCommand:
        self._retrieved.sort(key=lambda m: m.uid)
        if not status.ok or not self._delete or not self._retrieved:
            return self._logout()  # keep what arrived; nothing to delete
        uids = SequenceSet.of(self.retrieved_uids)
        store = Store(self._next_tag(), uids, StoreMode.ADD, frozenset({DELETED}), silent=True,
                      uid=True)  # fmt: skip
        return self._send(IMAPClientState.STORE, store)

    def _on_store(self, status: IMAPStatus) -> IMAPCommand:
        if not status.ok:
            return self._give_up(status)
        self._deleted = self.retrieved_uids
        return self._send(IMAPClientState.EXPUNGE, Expunge(self._next_tag()))

    def _on_expunge(self, status: IMAPStatus) -> IMAPCommand:
        self._committed = status.ok
        return self._logout()


_S = IMAPClientState
_HANDLERS = {
    _S.CAPABILITY: IMAPClient._on_capability,
    _S.STARTTLS: IMAPClient._on_starttls,
    _S.LOGIN: IMAPClient._on_login,
    _S.AUTHENTICATE: IMAPClient._on_login,
    _S.SELECT: IMAPClient._on_select,
    _S.SEARCH: IMAPClient._on_search,
    _S.FETCH: IMAPClient._on_fetch,
    _S.STORE: IMAPClient._on_store,
    _S.EXPUNGE: IMAPClient._on_expunge,
}
