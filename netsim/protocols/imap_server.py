"""IMAP4rev2 server engine (RFC 9051; IMAP4rev1 clients per its Appendix E). Sans-I/O.

Its states and every transition are :mod:`.imap_state`'s table and rules. Rules this
engine keeps besides:

1. Leaving SELECTED releases the mailbox (:meth:`IMAPServerHooks.close_mailbox`). Only
   EXPUNGE, UID EXPUNGE and CLOSE delete mail, and they commit at once; flags are stored as
   they change. A failed SELECT or EXAMINE leaves no mailbox selected (RFC 9051 §6.3.2).
2. LOGIN and AUTHENTICATE PLAIN send a password: where plaintext login needs TLS and there
   is none, CAPABILITY says LOGINDISABLED (no AUTH=PLAIN) and both get
   ``NO [PRIVACYREQUIRED]``.
3. Every command answered with a BAD counts against ``max_errors``; the one that exceeds
   it adds ``* BYE``. Failed logins do not count (see :attr:`IMAPServer.failed_logins`).
4. News (new mail from :meth:`IMAPServer.add_messages`) is told as ``* n EXISTS``: at once
   while the client idles, else before the responses of its next command.
5. The server knows one mailbox, INBOX (case-insensitive); other names do not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import imap_responses as r
from .errors import LocalProtocolError
from .imap_commands import (
    Authenticate,
    AuthenticateResponse,
    Capability,
    Close,
    Done,
    Enable,
    Examine,
    Expunge,
    Fetch,
    Idle,
    IMAPCommand,
    Invalid,
    List,
    Login,
    Logout,
    Noop,
    Search,
    Select,
    StartTLS,
    Store,
    Unknown,
    Unselect,
)
from .imap_mailbox import SelectedMailbox
from .imap_responses import IMAPResponse, IMAPStatus, StatusResponse
from .imap_session import IMAPServerHooks, IMAPSession, IMAPStoredMessage
from .imap_state import IMAP_TRANSITIONS, IMAPState, next_state, transition, waiting
from .imap_syntax import SequenceSet, list_matches
from .sasl import PlainRefused, plain_credentials

__all__ = ["IMAP_TRANSITIONS", "IMAPServer", "IMAPState"]


_SELECTED_STATES = frozenset({IMAPState.SELECTED, IMAPState.SELECTED_IDLE})
_INBOX = "INBOX"  # the one mailbox this server knows (its name is case-insensitive)
_PLAIN_REFUSED = {
    PlainRefused.NOT_BASE64: r.BAD_INVALID_BASE64,
    PlainRefused.MALFORMED: r.NO_AUTHENTICATION_FAILED,
    PlainRefused.OTHER_IDENTITY: r.NO_AUTHORIZATION_FAILED,
}


class IMAPServer:
    """The server side of one IMAP session: one command event in, its responses out.

    Args:
        hostname: The server's name.
        hooks: Authentication and mailbox storage (see :class:`IMAPServerHooks`).
        client_address: Opaque peer address, passed to hooks via the session.
        port: The port the client connected to.
        allow_plaintext: Accept LOGIN and AUTHENTICATE PLAIN without TLS.
        starttls: Offer STARTTLS.
        tls: The connection is TLS from the start (port 993).
        max_errors: BAD responses tolerated; the next one closes.
    """

    def __init__(
        self,
        hostname: str,
        hooks: IMAPServerHooks,
        *,
        client_address: object = None,
        port: int = 143,
        allow_plaintext: bool = True,
        starttls: bool = False,
        tls: bool = False,
        max_errors: int = 10,
    ) -> None:
        self._hooks = hooks
        self._allow_plaintext = allow_plaintext
        self._starttls = starttls
        self._max_errors = max_errors
        self._session = IMAPSession(client_address=client_address, port=port,
                                    server_hostname=hostname, tls=tls)  # fmt: skip
        self._state = IMAPState.NEW
        self._errors = 0
        self._failed_logins = 0
        self._rev2 = False  # ENABLE IMAP4rev2 given: ESEARCH, no RECENT
        self._waiting_tag = ""  # the tag of AUTHENTICATE or IDLE while it waits
        self._mailbox: SelectedMailbox | None = None
        self._arrived: list[IMAPStoredMessage] = []  # new mail not yet reported

    @property
    def state(self) -> IMAPState:
        """The current state (see :data:`IMAP_TRANSITIONS`)."""
        return self._state

    @property
    def session(self) -> IMAPSession:
        """What hooks see of this session."""
        return self._session

    @property
    def closed(self) -> bool:
        """True after LOGOUT or any ``* BYE``: send what was returned, then close."""
        return self._state is IMAPState.LOGOUT

    @property
    def failed_logins(self) -> int:
        """LOGIN and AUTHENTICATE attempts refused for their credentials."""
        return self._failed_logins

    @property
    def mailbox(self) -> SelectedMailbox | None:
        """The selected mailbox, if any."""
        return self._mailbox

    def capabilities(self) -> tuple[str, ...]:
        """What CAPABILITY lists now."""
        return r.capabilities(
            starttls=self._starttls and not self._session.tls,
            login_disabled=self._plaintext_refused(),
            authenticated=self._session.username is not None,
        )

    def greeting(self) -> StatusResponse:
        """``* OK [CAPABILITY …] IMAP4rev2 server ready``. Call exactly once, first."""
        if self._state is not IMAPState.NEW:
            raise LocalProtocolError("greeting() was already given")
        self._state = IMAPState.NOT_AUTHENTICATED
        return r.imap_greeting(self.capabilities())

    def handle(self, command: IMAPCommand) -> list[IMAPResponse]:
        """Process one command event; return the responses to send, the last one final.

        Raises:
            LocalProtocolError: For the adapter's misuse (:mod:`.imap_state`, rule 4).
        """
        state = self._state
        edge = transition(state, type(command))
        responses: list[IMAPResponse] = []
        if state is IMAPState.SELECTED and self._arrived:  # news first, before renumbering
            responses.append(self._report_arrivals())
        if edge is None:
            responses.append(StatusResponse(getattr(command, "tag", "*"), r.BAD_WRONG_STATE))
        else:
            responses += _HANDLERS[type(command)](self, command)
        if any(isinstance(x, StatusResponse) and x.status.kind == "BAD" for x in responses):
            self._errors += 1
            if self._errors > self._max_errors:
                responses.append(StatusResponse("*", r.BYE_TOO_MANY_ERRORS))
        target = next_state(state, edge, responses)
        if target not in _SELECTED_STATES:
            self._deselect()
        self._state = target
        return responses

    def add_messages(self, messages: Sequence[IMAPStoredMessage]) -> list[IMAPResponse]:
        """New mail reached the selected mailbox (the adapter learnt it from storage).

        Returns ``* n EXISTS`` at once while the client idles; otherwise the news waits for
        the next command's responses (an empty list now). Outside SELECTED: nothing.

        Raises:
            LocalProtocolError: After the session closed, or for UIDs not above the last.
        """
        if self._state is IMAPState.LOGOUT:
            raise LocalProtocolError("the IMAP session is closed")
        if self._mailbox is None or not messages:
            return []
        floor = self._arrived[-1].uid + 1 if self._arrived else self._mailbox.uidnext
        for message in messages:
            if message.uid < floor:
                raise LocalProtocolError(f"new message UID {message.uid} is not above {floor - 1}")
            floor = message.uid + 1
        self._arrived.extend(messages)
        if self._state is IMAPState.SELECTED_IDLE:
            return [self._report_arrivals()]
        return []

    def abort(self) -> None:
        """The connection is gone: release the mailbox and close (nothing is expunged)."""
        self._deselect()
        self._state = IMAPState.LOGOUT

    # --- helpers ---------------------------------------------------------------------------

    def _report_arrivals(self) -> IMAPResponse:
        assert self._mailbox is not None
        self._mailbox.append(self._arrived)
        self._arrived = []
        return r.exists(len(self._mailbox))

    def _deselect(self) -> None:
        mailbox, self._mailbox = self._mailbox, None
        self._arrived = []
        if mailbox is not None:
            self._session.mailbox, self._session.readonly = None, False
            self._hooks.close_mailbox(self._session, self._user(), mailbox.name)

    def _user(self) -> str:
        return self._session.username or ""

    def _plaintext_refused(self) -> bool:
        return not self._allow_plaintext and not self._session.tls

    @staticmethod
    def _tagged(tag: str, status: IMAPStatus) -> list[IMAPResponse]:
        return [StatusResponse(tag, status)]

    # --- any state -------------------------------------------------------------------------

    def _cmd_capability(self, command: Capability) -> list[IMAPResponse]:
        caps = r.capability_data(self.capabilities())
        return [caps, StatusResponse(command.tag, r.OK_CAPABILITY)]

    def _cmd_noop(self, command: Noop) -> list[IMAPResponse]:
        return self._tagged(command.tag, r.OK_NOOP)

    def _cmd_logout(self, command: Logout) -> list[IMAPResponse]:
        return [StatusResponse("*", r.BYE_LOGGING_OUT), StatusResponse(command.tag, r.OK_LOGOUT)]

    def _cmd_unknown(self, command: Unknown) -> list[IMAPResponse]:
        return self._tagged(command.tag, r.BAD_UNKNOWN_COMMAND)

    def _cmd_invalid(self, command: Invalid) -> list[IMAPResponse]:
        if command.status.kind == "BYE":
            return [StatusResponse("*", command.status)]
        tag = self._waiting_tag if waiting(self._state) else command.tag
        return self._tagged(tag or "*", command.status)

    # --- NOT_AUTHENTICATED -----------------------------------------------------------------

    def _cmd_starttls(self, command: StartTLS) -> list[IMAPResponse]:
        if self._session.tls:
            return self._tagged(command.tag, r.BAD_TLS_ACTIVE)
        if not self._starttls:
            return self._tagged(command.tag, r.BAD_STARTTLS_UNAVAILABLE)
        self._session.tls = True
        return self._tagged(command.tag, r.OK_BEGIN_TLS)

    def _cmd_login(self, command: Login) -> list[IMAPResponse]:
        if self._plaintext_refused():
            return self._tagged(command.tag, r.NO_PRIVACY_REQUIRED)
        return self._check(command.tag, command.username, command.password)

    def _check(self, tag: str, username: str, password: str) -> list[IMAPResponse]:
        if not self._hooks.authenticate(self._session, username, password):
            self._failed_logins += 1
            return self._tagged(tag, r.NO_AUTHENTICATION_FAILED)
        self._session.username = username
        return self._tagged(tag, r.logged_in(self.capabilities()))

    def _cmd_authenticate(self, command: Authenticate) -> list[IMAPResponse]:
        if command.mechanism.upper() != "PLAIN":
            return self._tagged(command.tag, r.NO_UNSUPPORTED_MECHANISM)
        if self._plaintext_refused():
            return self._tagged(command.tag, r.NO_PRIVACY_REQUIRED)
        if command.initial_response is None:
            self._waiting_tag = command.tag
            return [r.CONTINUE_SASL]
        return self._plain(command.tag, command.initial_response)

    def _cmd_authenticate_response(self, command: AuthenticateResponse) -> list[IMAPResponse]:
        if command.data == "*":
            return self._tagged(self._waiting_tag, r.BAD_AUTHENTICATE_CANCELLED)
        return self._plain(self._waiting_tag, command.data)

    def _plain(self, tag: str, data: str) -> list[IMAPResponse]:
        found = plain_credentials(data)
        if isinstance(found, PlainRefused):  # RFC 9051 §6.2.2: invalid base64 is a BAD
            return self._tagged(tag, _PLAIN_REFUSED[found])
        return self._check(tag, *found)

    # --- AUTHENTICATED ---------------------------------------------------------------------

    def _cmd_enable(self, command: Enable) -> list[IMAPResponse]:
        wanted = {e.upper() for e in command.extensions}
        responses: list[IMAPResponse] = []
        if "IMAP4REV2" in wanted and not self._rev2:
            self._rev2 = True
            responses.append(r.enabled(["IMAP4rev2"]))
        return [*responses, StatusResponse(command.tag, r.OK_ENABLE)]

    def _cmd_select(self, command: Select | Examine) -> list[IMAPResponse]:
        readonly = isinstance(command, Examine)
        responses: list[IMAPResponse] = []
        if self._mailbox is not None:
            self._deselect()
            responses.append(StatusResponse("*", r.OK_PREVIOUS_MAILBOX_CLOSED))
        if command.mailbox.upper() != _INBOX:
            return [*responses, StatusResponse(command.tag, r.NO_NONEXISTENT_MAILBOX)]
        opened = self._hooks.open_mailbox(self._session, self._user(), _INBOX, readonly)
        if opened is None:
            return [*responses, StatusResponse(command.tag, r.NO_MAILBOX_IN_USE)]
        self._mailbox = mailbox = SelectedMailbox(_INBOX, opened, readonly=readonly)
        self._session.mailbox, self._session.readonly = _INBOX, readonly
        responses += mailbox.status(rev2=self._rev2)
        done = r.OK_EXAMINE_READ_ONLY if readonly else r.OK_SELECT_READ_WRITE
        return [*responses, StatusResponse(command.tag, done)]

    def _cmd_list(self, command: List) -> list[IMAPResponse]:
        responses: list[IMAPResponse] = []
        if not command.pattern:  # LIST "" "": the hierarchy delimiter and root
            responses.append(r.list_data("", "\\Noselect"))
        elif list_matches(command.reference + command.pattern, _INBOX):
            responses.append(r.list_data(_INBOX, "\\HasNoChildren"))
        return [*responses, StatusResponse(command.tag, r.OK_LIST)]

    def _cmd_idle(self, command: Idle) -> list[IMAPResponse]:
        self._waiting_tag = command.tag
        return [r.CONTINUE_IDLING]

    def _cmd_done(self, command: Done) -> list[IMAPResponse]:
        return self._tagged(self._waiting_tag, r.OK_IDLE_TERMINATED)

    # --- SELECTED --------------------------------------------------------------------------

    def _selected(self) -> SelectedMailbox:
        assert self._mailbox is not None  # the table admits these commands only in SELECTED
        return self._mailbox

    def _cmd_fetch(self, command: Fetch) -> list[IMAPResponse]:
        mailbox = self._selected()
        positions = mailbox.resolve(command.sequence, uid=command.uid)
        if positions is None:
            return self._tagged(command.tag, r.BAD_NO_SUCH_MESSAGE)
        found, changes = mailbox.fetch(positions, command.attributes, uid=command.uid,
                                       render=self._hooks.render)  # fmt: skip
        if changes:
            self._hooks.store_flags(self._session, self._user(), changes)
        return [*found, StatusResponse(command.tag, r.OK_FETCH)]

    def _cmd_store(self, command: Store) -> list[IMAPResponse]:
        mailbox = self._selected()
        if mailbox.readonly:
            return self._tagged(command.tag, r.NO_READ_ONLY)
        positions = mailbox.resolve(command.sequence, uid=command.uid)
        if positions is None:
            return self._tagged(command.tag, r.BAD_NO_SUCH_MESSAGE)
        found, changes = mailbox.store(positions, command.mode, command.flags,
                                       silent=command.silent, uid=command.uid)  # fmt: skip
        if changes:
            self._hooks.store_flags(self._session, self._user(), changes)
        return [*found, StatusResponse(command.tag, r.OK_STORE)]

    def _cmd_search(self, command: Search) -> list[IMAPResponse]:
        numbers = self._selected().search(command.keys, uid=command.uid)
        data = (r.esearch(command.tag, numbers, uid=command.uid) if self._rev2
                else r.search(numbers))  # fmt: skip
        return [data, StatusResponse(command.tag, r.OK_SEARCH)]

    def _expunge(self, only_uids: SequenceSet | None) -> list[IMAPResponse]:
        gone, uids = self._selected().expunge(only_uids)
        if uids:
            self._hooks.expunge(self._session, self._user(), uids)
        return list(gone)

    def _cmd_expunge(self, command: Expunge) -> list[IMAPResponse]:
        if self._selected().readonly:
            return self._tagged(command.tag, r.NO_READ_ONLY)
        return [*self._expunge(command.uids), StatusResponse(command.tag, r.OK_EXPUNGE)]

    def _cmd_close(self, command: Close) -> list[IMAPResponse]:
        if not self._selected().readonly:
            self._expunge(None)  # silently: no EXPUNGE responses (RFC 9051 §6.4.1)
        return self._tagged(command.tag, r.OK_CLOSE)

    def _cmd_unselect(self, command: Unselect) -> list[IMAPResponse]:
        return self._tagged(command.tag, r.OK_UNSELECT)


_HANDLERS: dict[type, Any] = {
    Capability: IMAPServer._cmd_capability,
    Noop: IMAPServer._cmd_noop,
    Logout: IMAPServer._cmd_logout,
    Unknown: IMAPServer._cmd_unknown,
    Invalid: IMAPServer._cmd_invalid,
    StartTLS: IMAPServer._cmd_starttls,
    Login: IMAPServer._cmd_login,
    Authenticate: IMAPServer._cmd_authenticate,
    AuthenticateResponse: IMAPServer._cmd_authenticate_response,
    Enable: IMAPServer._cmd_enable,
    Select: IMAPServer._cmd_select,
    Examine: IMAPServer._cmd_select,
    List: IMAPServer._cmd_list,
    Idle: IMAPServer._cmd_idle,
    Done: IMAPServer._cmd_done,
    Fetch: IMAPServer._cmd_fetch,
    Store: IMAPServer._cmd_store,
    Search: IMAPServer._cmd_search,
    Expunge: IMAPServer._cmd_expunge,
    Close: IMAPServer._cmd_close,
    Unselect: IMAPServer._cmd_unselect,
}
