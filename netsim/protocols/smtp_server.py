"""SMTP server engine (RFC 5321; AUTH per RFC 4954; submission per RFC 6409). Sans-I/O.

Rules this module keeps (after h11's ``_state.py``):

1. Every state change of the server lives in :data:`TRANSITIONS`, one table: for each state,
   the commands it accepts and where each leads. Nothing else assigns the state.
2. A command not listed for the current state gets that state's entry in
   :data:`SEQUENCE_ERRORS` (a 503) and the state does not change: illegal peer input is
   answered, never raised.
3. A listed command leads to ``ok`` on a 2xx reply, ``more`` on a 3xx and ``error`` on a
   4xx/5xx (``error=None``: the state does not change). A reply class the edge does not
   allow (e.g. a hook answering MAIL with 354) is the adapter's bug: LocalProtocolError.
4. Entering READY clears the mail transaction; the greeting and the AUTH identity survive it
   (RSET, a new HELO/EHLO, the end of DATA).
5. Any 421 closes the session, as does the 221 to QUIT. A 554 greeting leaves the session
   in REFUSED, where only QUIT is answered with anything but 503 (RFC 5321 §3.1).
6. Syntax and sequence errors (500-504, 555; not policy rejections) and failed logins (535)
   count against ``max_errors``; the one that exceeds it is answered with 421 4.7.0 and
   closes.
7. In AUTH every event is the client's answer to the 334 (as on the wire). In DATA only
   :class:`Content` is expected (and :class:`Invalid` from the byte layer, e.g. a text line
   too long); any other event there, any event before ``greeting()`` or after CLOSED is
   the adapter's bug: LocalProtocolError.

Decisions: DATA before any accepted RCPT is ``503 5.5.1 Error: need RCPT command`` (RFC
5321 §3.3 also allows 554 no valid recipients; 503 keeps it a sequence error). Content
outside DATA is 503 5.5.1 bad sequence. VRFY, EXPN, HELP, TURN, ETRN and BDAT are 502 5.5.1
(known, not implemented), and STARTTLS where the server does not offer it; other verbs 500
5.5.2. After STARTTLS's 220 the adapter turns the connection to TLS (``session.tls``) and the
session is back before EHLO, its HELO name and login forgotten (RFC 3207 §4.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .errors import LocalProtocolError
from .replies import (
    S220_READY_FOR_TLS,
    S221_BYE,
    S250_OK,
    S250_RECIPIENT_OK,
    S250_SENDER_OK,
    S354_START_INPUT,
    S421_TOO_MANY_ERRORS,
    S452_TOO_MANY_RCPTS,
    S500_SYNTAX,
    S502_NOT_IMPLEMENTED,
    S503_ALREADY_AUTH,
    S503_AUTH_IN_TRANSACTION,
    S503_AUTH_NOT_ENABLED,
    S503_BAD_SEQUENCE,
    S503_HELO_FIRST,
    S503_NEED_MAIL,
    S503_NEED_RCPT,
    S503_NESTED_MAIL,
    S503_NO_SERVICE,
    S503_TLS_ACTIVE,
    S504_UNRECOGNISED_AUTH,
    S530_AUTH_REQUIRED,
    S538_ENCRYPTION_REQUIRED,
    S552_SIZE_EXCEEDED,
    Reply,
    ehlo_reply,
    greeting,
    helo_reply,
)
from .sasl import MECHANISMS
from .smtp_auth import AuthExchange
from .smtp_commands import (
    Auth,
    AuthResponse,
    Content,
    Data,
    Ehlo,
    Helo,
    Invalid,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    SMTPCommand,
    StartTLS,
    Unknown,
)
from .smtp_session import DefaultHooks, Envelope, SMTPServerHooks, SMTPSession

__all__ = [
    "SEQUENCE_ERRORS",
    "TRANSITIONS",
    "DefaultHooks",
    "Edge",
    "Envelope",
    "SMTPServer",
    "SMTPServerHooks",
    "SMTPSession",
    "SMTPState",
    "auth_required",
    "mail_checks",
    "too_many_recipients",
]


def auth_required(port: Any) -> Any:
    """Whether a listener requires AUTH before MAIL: on the submission port (RFC 6409
    §4.3); for one port, or an array of them."""
    return port == 587


# The engine's own refusals, before any hook: each a rule over what the engine knows, one
# expression for one session (here) or for arrays of them (the simulation's flow path).
def mail_checks(auth_required: Any, authenticated: Any, size: Any, max_size: Any,
                ) -> tuple[tuple[Any, Reply], ...]:
    """MAIL FROM's checks in order, as (where it refuses, the reply): AUTH first where
    required (RFC 6409 §4.3), then the declared SIZE (RFC 1870)."""
    return ((auth_required & (authenticated ^ True), S530_AUTH_REQUIRED),
            (size > max_size, S552_SIZE_EXCEEDED))


def too_many_recipients(accepted: Any, max_recipients: Any) -> Any:
    """RCPT's check: the transaction holds its limit of recipients already (RFC 5321
    §4.5.3.1.8), 452."""
    return accepted >= max_recipients


class SMTPState(enum.StrEnum):
    """States of the server side of one SMTP session."""

    NEW = "NEW"  # before greeting()
    CONNECTED = "CONNECTED"  # greeted by the server, awaiting HELO/EHLO
    REFUSED = "REFUSED"  # 554 greeting: awaiting QUIT
    READY = "READY"  # HELO/EHLO done, no transaction
    AUTH = "AUTH"  # 334 sent, awaiting the client's SASL response
    MAIL = "MAIL"  # MAIL accepted
    RCPT = "RCPT"  # at least one RCPT accepted
    DATA = "DATA"  # 354 sent, awaiting Content
    CLOSED = "CLOSED"  # after 221 or 421


@dataclass(frozen=True, slots=True)
class Edge:
    """Where a command leads, by the class of its reply (``None``: see module rule 3)."""

    ok: SMTPState | None
    more: SMTPState | None = None
    error: SMTPState | None = None


_S = SMTPState
# Commands answered in every state where a peer may speak (NOOP/RSET/QUIT are always legal).
_ALWAYS: dict[type, Edge] = {Quit: Edge(_S.CLOSED), Unknown: Edge(None), Invalid: Edge(None)}

TRANSITIONS: dict[SMTPState, dict[type, Edge]] = {
    _S.NEW: {},
    _S.CONNECTED: {
        Helo: Edge(_S.READY), Ehlo: Edge(_S.READY),
        Rset: Edge(_S.CONNECTED), Noop: Edge(_S.CONNECTED), **_ALWAYS,
    },
    _S.REFUSED: {Quit: Edge(_S.CLOSED)},
    _S.READY: {
        Helo: Edge(_S.READY), Ehlo: Edge(_S.READY), StartTLS: Edge(_S.CONNECTED, error=_S.READY),
        Auth: Edge(_S.READY, more=_S.AUTH), Mail: Edge(_S.MAIL),
        Rset: Edge(_S.READY), Noop: Edge(_S.READY), **_ALWAYS,
    },
    _S.AUTH: {AuthResponse: Edge(_S.READY, more=_S.AUTH, error=_S.READY)},
    _S.MAIL: {
        Rcpt: Edge(_S.RCPT), Helo: Edge(_S.READY), Ehlo: Edge(_S.READY),
        Rset: Edge(_S.READY), Noop: Edge(_S.MAIL), **_ALWAYS,
    },
    _S.RCPT: {
        Rcpt: Edge(_S.RCPT), Data: Edge(None, more=_S.DATA),
        Helo: Edge(_S.READY), Ehlo: Edge(_S.READY),
        Rset: Edge(_S.READY), Noop: Edge(_S.RCPT), **_ALWAYS,
    },
    _S.DATA: {Content: Edge(_S.READY, error=_S.READY), Invalid: Edge(None, error=_S.READY)},
    _S.CLOSED: {},
}  # fmt: skip

#: The 503 for a command the state does not list; key ``None`` is the state's default.
SEQUENCE_ERRORS: dict[SMTPState, dict[type | None, Reply]] = {
    _S.CONNECTED: {None: S503_HELO_FIRST},
    _S.REFUSED: {None: S503_NO_SERVICE},
    _S.READY: {Rcpt: S503_NEED_MAIL, Data: S503_NEED_RCPT, None: S503_BAD_SEQUENCE},
    _S.MAIL: {
        Mail: S503_NESTED_MAIL, Data: S503_NEED_RCPT, Auth: S503_AUTH_IN_TRANSACTION,
        None: S503_BAD_SEQUENCE,
    },
    _S.RCPT: {Mail: S503_NESTED_MAIL, Auth: S503_AUTH_IN_TRANSACTION, None: S503_BAD_SEQUENCE},
}  # fmt: skip

# States in which the peer cannot have produced an unlisted event (module rule 7).
_ADAPTER_ONLY = frozenset({_S.NEW, _S.DATA, _S.CLOSED})
# Reply codes that count against the error budget (module rule 6).
# what counts against the error budget: syntax and sequence errors, and failed logins (a
# password guessed again and again costs the session)
_ERROR_CODES = frozenset({500, 501, 502, 503, 504, 535, 555})
_NOT_IMPLEMENTED = frozenset({"VRFY", "EXPN", "HELP", "TURN", "ETRN", "BDAT"})


class SMTPServer:
    """The server side of one SMTP session: one command event in, one :class:`Reply` out.

    Args:
        hostname: The server's name, used in the greeting and the EHLO reply.
        hooks: The policy (see :class:`SMTPServerHooks`).
        client_address: Opaque peer address, passed to hooks via the session.
        port: The port the client connected to.
        auth_mechanisms: SASL mechanisms offered; a subset of ``("PLAIN", "LOGIN")``.
        auth_required: Refuse MAIL from unauthenticated sessions with 530 (RFC 6409 on 587).
        max_recipients: Accepted recipients per transaction; more get 452 4.5.3.
        max_message_size: Octets; larger SIZE= or content gets 552 5.3.4 (Postfix default).
        max_errors: Syntax/sequence errors tolerated; the next one gets 421 and closes.
        offer_auth: Advertise and accept AUTH.
        auth_requires_tls: Neither advertise nor accept AUTH without TLS (538 5.7.11).
        tls: The connection is TLS from the start (port 465, RFC 8314).
        starttls: Offer STARTTLS (RFC 3207) until the connection is TLS.
    """

    def __init__(
        self,
        hostname: str,
        hooks: SMTPServerHooks | None = None,
        *,
        client_address: object = None,
        port: int = 25,
        auth_mechanisms: tuple[str, ...] = MECHANISMS,
        auth_required: bool = False,
        max_recipients: int = 100,
        max_message_size: int = 10_240_000,
        max_errors: int = 10,
        offer_auth: bool = True,
        auth_requires_tls: bool = False,
        tls: bool = False,
        starttls: bool = False,
    ) -> None:
        unknown = set(auth_mechanisms) - set(MECHANISMS)
        if unknown:
            raise ValueError(f"unsupported AUTH mechanisms: {sorted(unknown)}")
        if auth_required and not (offer_auth and auth_mechanisms):
            raise ValueError("auth_required needs AUTH offered with at least one mechanism")
        if max_recipients < 1 or max_message_size < 0 or max_errors < 0:
            raise ValueError("limits must be positive")
        self._hostname = hostname
        self._hooks: SMTPServerHooks = hooks if hooks is not None else DefaultHooks()
        self._mechanisms = frozenset(auth_mechanisms)
        self._auth_keyword = " ".join(auth_mechanisms) if offer_auth else None
        self._auth_required = auth_required
        self._max_recipients = max_recipients
        self._max_size = max_message_size
        self._max_errors = max_errors
        self._offer_auth = offer_auth
        self._auth_requires_tls = auth_requires_tls
        self._offer_starttls = starttls
        self._session = SMTPSession(client_address=client_address, port=port,
                                    server_hostname=hostname, tls=tls)  # fmt: skip
        self._state = SMTPState.NEW
        self._errors = 0
        self._failed_logins = 0
        self._exchange: AuthExchange | None = None

    @property
    def state(self) -> SMTPState:
        """The current state (see :data:`TRANSITIONS`)."""
        return self._state

    @property
    def session(self) -> SMTPSession:
        """What hooks see of this session."""
        return self._session

    @property
    def closed(self) -> bool:
        """True once the server has answered QUIT or sent a 421."""
        return self._state is SMTPState.CLOSED

    @property
    def max_message_size(self) -> int:
        """The largest message accepted, in octets (advertised as SIZE)."""
        return self._max_size

    @property
    def errors(self) -> int:
        """Syntax and sequence errors, and failed logins, counted so far."""
        return self._errors

    @property
    def failed_logins(self) -> int:
        """AUTH exchanges that ended in 535 (an adapter may make each cost the client time,
        as Postfix's smtpd_error_sleep_time does)."""
        return self._failed_logins

    def greeting(self) -> Reply:
        """The opening reply: 220, or the hooks' 554/421 refusal. Call exactly once.

        Raises:
            LocalProtocolError: If called twice or the hook's reply is not 220, 421 or 554.
        """
        if self._state is not SMTPState.NEW:
            raise LocalProtocolError("greeting() was already given")
        reply = self._hooks.on_connect(self._session)
        if reply is None:
            reply = greeting(self._hostname)
        if reply.code == 220:
            self._state = SMTPState.CONNECTED
        elif reply.code == 554:
            self._state = SMTPState.REFUSED
        elif reply.code == 421:
            self._state = SMTPState.CLOSED
        else:
            raise LocalProtocolError(f"on_connect returned {reply.code}; want 220, 421 or 554")
        return reply

    def handle(self, command: SMTPCommand) -> Reply:
        """Process one command event and return the reply to send.

        Raises:
            LocalProtocolError: See module rule 7, or a hook's reply of an impossible class.
        """
        state = self._state
        kind: type = type(command)
        if state is SMTPState.AUTH and kind is not AuthResponse:
            if kind is Content:
                raise LocalProtocolError("Content while awaiting an AUTH response")
            command = AuthResponse(command.to_line())
            kind = AuthResponse
        edge = TRANSITIONS[state].get(kind)
        target: SMTPState
        if edge is None:
            if state in _ADAPTER_ONLY:
                raise LocalProtocolError(f"{kind.__name__} is impossible in state {state}")
            errors = SEQUENCE_ERRORS[state]
            reply = errors.get(kind) or errors[None]
            target = state
        else:
            reply = _HANDLERS[kind](self, command)
            code = reply.code
            if code < 300:
                found = edge.ok
            elif code < 400:
                found = edge.more
            else:
                found = edge.error or state
            if found is None:
                raise LocalProtocolError(f"{code} cannot answer {kind.__name__} in {state}")
            target = found
        if reply.code == 421:
            target = SMTPState.CLOSED
        elif reply.code in _ERROR_CODES:
            self._errors += 1
            if self._errors > self._max_errors:
                reply, target = S421_TOO_MANY_ERRORS, SMTPState.CLOSED
        if target is SMTPState.READY and self._session.mail_from is not None:
            self._session.mail_from = None
            self._session.rcpt_to.clear()
        self._state = target
        return reply

    # --- handlers: return the reply; the table decides the state --------------------------

    def _helo(self, command: Helo) -> Reply:
        self._session.helo_name = command.domain
        self._session.esmtp = False
        return helo_reply(self._hostname)

    def _ehlo(self, command: Ehlo) -> Reply:
        session = self._session
        session.helo_name = command.domain
        session.esmtp = True
        auth = self._auth_keyword
        if auth and self._auth_requires_tls and not session.tls:
            auth = None
        return ehlo_reply(self._hostname, self._max_size, auth,
                          starttls=self._offer_starttls and not session.tls)

    def _starttls(self, command: StartTLS) -> Reply:
        session = self._session
        if not self._offer_starttls:
            return S502_NOT_IMPLEMENTED
        if session.tls:
            return S503_TLS_ACTIVE
        # the adapter turns the connection to TLS after this reply; what the client said
        # before it counts for nothing (RFC 3207 §4.2)
        session.tls = True
        session.helo_name, session.esmtp, session.authenticated_user = None, False, None
        return S220_READY_FOR_TLS

    def _mail(self, command: Mail) -> Reply:
        session = self._session
        for refuses, refusal in mail_checks(self._auth_required,
                                            session.authenticated_user is not None,
                                            command.size or 0, self._max_size):
            if refuses:
                return refusal
        reply = self._hooks.check_mail(session, command.reverse_path) or S250_SENDER_OK
        if reply.code < 300:
            session.mail_from = command.reverse_path
        return reply

    def _rcpt(self, command: Rcpt) -> Reply:
        session = self._session
        if too_many_recipients(len(session.rcpt_to), self._max_recipients):
            return S452_TOO_MANY_RCPTS
        reply = self._hooks.check_rcpt(session, command.forward_path) or S250_RECIPIENT_OK
        if reply.code < 300:
            session.rcpt_to.append(command.forward_path)
        return reply

    def _data(self, command: Data) -> Reply:
        return S354_START_INPUT

    def _content(self, command: Content) -> Reply:
        if command.size > self._max_size:
            return S552_SIZE_EXCEEDED
        session = self._session
        envelope = Envelope(
            mail_from=session.mail_from or "",
            rcpt_to=tuple(session.rcpt_to),
            size=command.size,
            payload=command.payload,
            helo_name=session.helo_name,
            authenticated_user=session.authenticated_user,
        )
        return self._hooks.deliver(session, envelope)

    def _rset(self, command: Rset) -> Reply:
        return S250_OK

    def _noop(self, command: Noop) -> Reply:
        return S250_OK

    def _quit(self, command: Quit) -> Reply:
        return S221_BYE

    def _unknown(self, command: Unknown) -> Reply:
        return S502_NOT_IMPLEMENTED if command.verb in _NOT_IMPLEMENTED else S500_SYNTAX

    def _invalid(self, command: Invalid) -> Reply:
        return command.reply

    def _auth(self, command: Auth) -> Reply:
        session = self._session
        if not self._offer_auth:
            return S503_AUTH_NOT_ENABLED
        if session.authenticated_user is not None:
            return S503_ALREADY_AUTH
        if command.mechanism not in self._mechanisms:
            return S504_UNRECOGNISED_AUTH
        if self._auth_requires_tls and not session.tls:
            return S538_ENCRYPTION_REQUIRED
        refusal = self._hooks.check_auth(session)
        if refusal is not None:
            return refusal
        self._exchange = AuthExchange(command.mechanism, self._authenticate)
        return self._auth_outcome(self._exchange.start(command.initial_response))

    def _auth_response(self, command: AuthResponse) -> Reply:
        assert self._exchange is not None  # the table allows AuthResponse only in AUTH
        return self._auth_outcome(self._exchange.respond(command.data))

    def _auth_outcome(self, reply: Reply) -> Reply:
        exchange = self._exchange
        if exchange is not None and exchange.username is not None:
            self._session.authenticated_user = exchange.username
        if reply.code == 535:
            self._failed_logins += 1
        if not reply.is_intermediate:
            self._exchange = None
        return reply

    def _authenticate(self, mechanism: str, username: str, password: str) -> bool:
        return self._hooks.authenticate(self._session, mechanism, username, password)


_HANDLERS: dict[type, Any] = {
    Helo: SMTPServer._helo,
    Ehlo: SMTPServer._ehlo,
    Mail: SMTPServer._mail,
    Rcpt: SMTPServer._rcpt,
    Data: SMTPServer._data,
    Content: SMTPServer._content,
    Rset: SMTPServer._rset,
    Noop: SMTPServer._noop,
    Quit: SMTPServer._quit,
    Unknown: SMTPServer._unknown,
    Invalid: SMTPServer._invalid,
    Auth: SMTPServer._auth,
    AuthResponse: SMTPServer._auth_response,
    StartTLS: SMTPServer._starttls,
}
