"""The states of an IMAP server session and every transition between them (RFC 9051 §3).

Rules this module keeps (after h11's ``_state.py``):

1. Every state change lives in :data:`IMAP_TRANSITIONS`. The RFC's states are
   NOT_AUTHENTICATED, AUTHENTICATED, SELECTED and LOGOUT; three more wait for the line that
   answers the server's ``+``: AUTHENTICATING (a SASL response), AUTHENTICATED_IDLE and
   SELECTED_IDLE (DONE). An edge names where a command leads when its last response is an
   OK, a NO or BAD (``None``: unchanged), or a ``+`` continuation request.
2. A command the table does not list for the current state is answered ``BAD`` and changes
   nothing.
3. A ``* BYE`` among the responses ends the session whatever the table says: LOGOUT.
4. Any event before the greeting or after LOGOUT, a DONE or SASL line outside the state
   that waits for it, or a command inside such a state is the adapter's bug:
   LocalProtocolError.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

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
from .imap_responses import Continuation, IMAPResponse, StatusResponse

__all__ = ["IMAP_TRANSITIONS", "IMAPEdge", "IMAPState", "next_state", "transition", "waiting"]


class IMAPState(enum.StrEnum):
    """States of the server side of one IMAP session (RFC 9051 §3)."""

    NEW = "NEW"  # before greeting()
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTHENTICATING = "AUTHENTICATING"  # AUTHENTICATE sent "+": the next line is SASL data
    AUTHENTICATED = "AUTHENTICATED"
    SELECTED = "SELECTED"
    AUTHENTICATED_IDLE = "AUTHENTICATED_IDLE"  # IDLE sent "+": waiting for DONE
    SELECTED_IDLE = "SELECTED_IDLE"
    LOGOUT = "LOGOUT"  # closed: after LOGOUT or any * BYE


@dataclass(frozen=True, slots=True)
class IMAPEdge:
    """Where a command leads on OK, on NO/BAD (``None``: unchanged) and on ``+``."""

    ok: IMAPState
    error: IMAPState | None = None
    more: IMAPState | None = None


_S = IMAPState
_NOT, _AUTH, _SEL = _S.NOT_AUTHENTICATED, _S.AUTHENTICATED, _S.SELECTED
_ANY_STATE = {Capability: None, Noop: None, Logout: _S.LOGOUT, Unknown: None, Invalid: None}


def _edges(state: IMAPState, table: dict[type, IMAPEdge]) -> dict[type, IMAPEdge]:
    """The commands valid in every state (they stay, or log out), plus ``table``."""
    common = {kind: IMAPEdge(target or state) for kind, target in _ANY_STATE.items()}
    return common | table


IMAP_TRANSITIONS: dict[IMAPState, dict[type, IMAPEdge]] = {
    _S.NEW: {},
    _NOT: _edges(_NOT, {
        StartTLS: IMAPEdge(_NOT), Login: IMAPEdge(_AUTH),
        Authenticate: IMAPEdge(_AUTH, more=_S.AUTHENTICATING),
    }),
    _S.AUTHENTICATING: {
        AuthenticateResponse: IMAPEdge(_AUTH, error=_NOT), Invalid: IMAPEdge(_NOT, error=_NOT),
    },
    _AUTH: _edges(_AUTH, {
        Enable: IMAPEdge(_AUTH), Select: IMAPEdge(_SEL), Examine: IMAPEdge(_SEL),
        List: IMAPEdge(_AUTH), Idle: IMAPEdge(_AUTH, more=_S.AUTHENTICATED_IDLE),
    }),
    _SEL: _edges(_SEL, {
        Select: IMAPEdge(_SEL, error=_AUTH), Examine: IMAPEdge(_SEL, error=_AUTH),
        List: IMAPEdge(_SEL), Fetch: IMAPEdge(_SEL), Store: IMAPEdge(_SEL),
        Search: IMAPEdge(_SEL), Expunge: IMAPEdge(_SEL), Close: IMAPEdge(_AUTH),
        Unselect: IMAPEdge(_AUTH), Idle: IMAPEdge(_SEL, more=_S.SELECTED_IDLE),
    }),
    _S.AUTHENTICATED_IDLE: {Done: IMAPEdge(_AUTH), Invalid: IMAPEdge(_AUTH, error=_AUTH)},
    _S.SELECTED_IDLE: {Done: IMAPEdge(_SEL), Invalid: IMAPEdge(_SEL, error=_SEL)},
    _S.LOGOUT: {},
}  # fmt: skip

_WAITING = frozenset({_S.AUTHENTICATING, _S.AUTHENTICATED_IDLE, _S.SELECTED_IDLE})
_ADAPTER_ONLY = _WAITING | {_S.NEW, _S.LOGOUT}
_ANSWERS = (Done, AuthenticateResponse)  # lines that answer a "+", not commands


def transition(state: IMAPState, kind: type) -> IMAPEdge | None:
    """The edge ``kind`` takes from ``state``; ``None``: refuse it with BAD (rule 2).

    Raises:
        LocalProtocolError: Rule 4.
    """
    edge = IMAP_TRANSITIONS[state].get(kind)
    if edge is None and (state in _ADAPTER_ONLY or kind in _ANSWERS):
        raise LocalProtocolError(f"{kind.__name__} is impossible in state {state}")
    return edge


def next_state(state: IMAPState, edge: IMAPEdge | None, responses: Sequence[IMAPResponse]
               ) -> IMAPState:
    """Where the session goes once a command got ``responses`` (rules 1 to 3)."""
    if any(isinstance(x, StatusResponse) and x.status.kind == "BYE" for x in responses):
        return IMAPState.LOGOUT
    if edge is None:
        return state
    final = responses[-1]
    if isinstance(final, Continuation):
        return edge.more or state
    if isinstance(final, StatusResponse) and final.status.ok:
        return edge.ok
    return edge.error or state


def waiting(state: IMAPState) -> bool:
    """True in a state that waits for the line answering a ``+`` (the tag is the command's
    that asked for it)."""
    return state in _WAITING
