"""The server side of one SMTP AUTH exchange (RFC 4954): PLAIN (RFC 4616) and LOGIN.

The SMTP server decides whether AUTH may start (offered, not yet authenticated, no
transaction, mechanism known, TLS if required); this exchange then runs the 334 prompts
and turns the client's base64 answers into one credential check.
"""

from __future__ import annotations

from collections.abc import Callable

from .replies import (
    S235_AUTH_OK,
    S334_CONTINUE,
    S334_PASSWORD,
    S334_USERNAME,
    S501_AUTH_CANCELLED,
    S501_INVALID_BASE64,
    S535_AUTH_INVALID,
    Reply,
)
from .sasl import PlainRefused, b64decode, plain_credentials

__all__ = ["AuthExchange", "Authenticator"]

Authenticator = Callable[[str, str, str], bool]
"""``(mechanism, username, password) -> bool``: the credential check (a hook)."""


class AuthExchange:
    """One SASL exchange; every reply is 235, 334, 501 or 535.

    Args:
        mechanism: ``"PLAIN"`` or ``"LOGIN"`` (the server checked it is offered).
        authenticate: The credential check.
    """

    __slots__ = ("_authenticate", "_login_user", "_mechanism", "_step", "username")

    def __init__(self, mechanism: str, authenticate: Authenticator) -> None:
        self._mechanism = mechanism
        self._authenticate = authenticate
        self._step = mechanism
        self._login_user = ""
        #: The authenticated user once a 235 was given.
        self.username: str | None = None

    def start(self, initial_response: str | None) -> Reply:
        """The reply to ``AUTH mechanism [initial-response]``."""
        if initial_response is None:
            if self._mechanism == "PLAIN":
                return S334_CONTINUE
            self._step = "LOGIN-USER"
            return S334_USERNAME
        if self._mechanism == "PLAIN":
            return self._plain(initial_response)
        return self._login_username(initial_response)  # RFC 4954 allows it for LOGIN too

    def respond(self, data: str) -> Reply:
        """The reply to a line answering a 334 (``*`` cancels)."""
        if data == "*":
            return S501_AUTH_CANCELLED
        if self._step == "PLAIN":
            return self._plain(data)
        if self._step in ("LOGIN", "LOGIN-USER"):
            return self._login_username(data)
        password = b64decode(data)
        if password is None:
            return S501_INVALID_BASE64
        return self._check(self._login_user, password)

    def _login_username(self, data: str) -> Reply:
        username = b64decode(data)
        if not username:
            return S501_INVALID_BASE64
        self._login_user = username
        self._step = "LOGIN-PASS"
        return S334_PASSWORD

    def _plain(self, data: str) -> Reply:
        found = plain_credentials(data)
        if found is PlainRefused.OTHER_IDENTITY:
            return S535_AUTH_INVALID
        if isinstance(found, PlainRefused):
            return S501_INVALID_BASE64
        return self._check(*found)

    def _check(self, username: str, password: str) -> Reply:
        if not self._authenticate(self._mechanism, username, password):
            return S535_AUTH_INVALID
        self.username = username
        return S235_AUTH_OK
