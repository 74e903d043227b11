"""The engines' hook objects for one session: where protocol meets the server's state.

The SimPy adapter sets ``at`` (the simulated instant the server acts) before each command,
so whatever a hook records carries the exact time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from netsim.mail.message import Mail
from netsim.mail.policy import Policy
from netsim.protocols import Envelope, POP3Session, Reply, SMTPSession, StoredMessage
from netsim.protocols.replies import S250_QUEUED

if TYPE_CHECKING:
    from netsim.mail.server import MailServer


class SMTPHooks:
    """SMTP policy boundary: consults the server's policies, hands accepted mail over."""

    def __init__(self, server: MailServer):
        self.server = server
        self.at = 0.0
        self._checks: dict[str, list[Callable[..., Reply | None]]] = {}

    def checks(self, check: str) -> list[Callable[..., Reply | None]]:
        """The policies' ``check`` methods, in order, of those that check this step at all
        (looked up once a session)."""
        checks = self._checks.get(check)
        if checks is None:
            checks = self._checks[check] = [
                getattr(p, check) for p in self.server.policies
                if getattr(type(p), check, None) is not getattr(Policy, check)]
        return checks

    def _consult(self, check: str, session: SMTPSession, *args: object) -> Reply | None:
        """The first refusal among the server's policies, in order; None if none objects."""
        for method in self.checks(check):
            reply: Reply | None = method(self.server, session, *args)
            if reply is not None:
                return reply
        return None

    def on_connect(self, session: SMTPSession) -> Reply | None:
        return self._consult("check_connect", session)

    def check_mail(self, session: SMTPSession, reverse_path: str) -> Reply | None:
        return self._consult("check_mail", session, reverse_path)

    def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
        return self._consult("check_rcpt", session, forward_path)

    def authenticate(self, session: SMTPSession, mechanism: str, username: str,
                     password: str) -> bool:
        return self.server.password_ok(username, password)

    def deliver(self, session: SMTPSession, envelope: Envelope) -> Reply:
        reply = self._consult("check_data", session, envelope)
        if reply is not None:
            return reply
        mail = envelope.payload
        assert isinstance(mail, Mail), "the simulation carries a Mail as the payload"
        junk = session.extra.pop("folder", None) == "junk"
        self.server.accept(mail, list(envelope.rcpt_to), self.at, junk=junk)
        return S250_QUEUED


class POP3Hooks:
    """POP3 maildrop access; records each retrieval with the instant RETR is answered."""

    def __init__(self, server: MailServer):
        self.server = server
        self.at = 0.0
        self.last_size = 0
        self.retrieved: list[int] = []   # ledger rows retrieved by the last command
        self._user: int | None = None

    def authenticate(self, session: POP3Session, username: str, password: str) -> bool:
        return self.server.password_ok(username, password)

    def apop_secret(self, session: POP3Session, username: str) -> str | None:
        user = self.server.user_index(username)
        return None if user is None else self.server.password(user)

    def open_maildrop(self, session: POP3Session, username: str,
                      ) -> Sequence[StoredMessage] | None:
        user = self.server.user_index(username)
        if user is None:
            return None
        drop = self.server.maildrops.open(user, self.at)
        if drop is not None:
            self._user = user
        return drop

    def commit(self, session: POP3Session, username: str, deleted_uids: Sequence[str]) -> None:
        if self._user is not None:
            self.server.maildrops.close(self._user, set(deleted_uids))
            self._user = None

    def release(self) -> None:
        """Unlock a maildrop whose session ended without QUIT: nothing is deleted."""
        if self._user is not None:
            self.server.maildrops.close(self._user, set())
            self._user = None

    def render(self, message: StoredMessage, top_lines: int | None) -> list[str]:
        mail, row = cast(tuple[Mail, int], message.payload)
        self.last_size = message.size
        if top_lines is None:
            self.retrieved.append(row)
            return mail.text_lines()
        lines = mail.text_lines()
        blank = lines.index("")
        return lines[: blank + 1 + top_lines]
