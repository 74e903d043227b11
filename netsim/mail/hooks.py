"""The engines' hook objects for one session: where protocol meets the server's state.

The SimPy adapter sets ``at`` (the simulated instant the server acts) before each command,
so whatever a hook records carries the exact time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, cast

from netsim.mail.consult import ConsultedServer, Entry, first_refusal, steps_of
from netsim.mail.facts import Ask, data_ask, recipient, session_ask
from netsim.mail.mailbox import UIDVALIDITY, Maildrops
from netsim.mail.message import Mail
from netsim.protocols import Envelope, POP3Session, Reply, SMTPSession, StoredMessage
from netsim.protocols.imap_session import IMAPMailbox, IMAPSession, IMAPStoredMessage
from netsim.protocols.replies import S250_QUEUED, S454_TOO_MANY_AUTH_FAILURES
from netsim.protocols.wire import line_octets


class SMTPHookServer(ConsultedServer, Protocol):
    """What the SMTP hooks use of their server (``MailServer`` is one): what asking its
    policies uses (:class:`~netsim.mail.consult.ConsultedServer`), its accounts' passwords
    and where accepted mail goes."""

    def password_ok(self, name: str, password: str) -> bool:
        """Whether ``password`` is the account's."""

    def auth_failed(self, client: object, at: float) -> None:
        """Count a failed login from ``client``."""

    def auth_throttled(self, client: object, at: float) -> bool:
        """Whether ``client`` failed too many logins of late."""

    def accept(self, mail: Mail, recipients: list[str], at: float, *, junk: bool = False,
               accounts: Mapping[str, int] | None = None) -> None:
        """Take responsibility for accepted recipients (into the junk folder if ``junk``;
        ``accounts``: the account each local recipient named at RCPT)."""


class POP3HookServer(Protocol):
    """What the POP3 hooks use of their server (``MailServer`` is one): its accounts and
    their maildrops."""

    @property
    def maildrops(self) -> Maildrops: ...

    def user_index(self, name: str) -> int | None:
        """The index of an account name, None if unknown."""

    def password(self, user: int) -> str:
        """The account's password."""

    def password_ok(self, name: str, password: str) -> bool:
        """Whether ``password`` is the account's."""

    @property
    def now(self) -> float: ...

    def auth_failed(self, client: object, at: float) -> None:
        """Count a failed login from ``client``."""

    def auth_throttled(self, client: object, at: float) -> bool:
        """Whether ``client`` failed too many logins of late."""


class SMTPHooks:
    """SMTP policy boundary: asks the server's policies (:mod:`netsim.mail.consult`) about
    the session's facts, hands accepted mail over."""

    def __init__(self, server: SMTPHookServer):
        self.server = server
        self.at = 0.0
        self.steps = steps_of(server)
        self._ask: Ask | None = None
        self._user: str | None = None
        # the account each local recipient named at RCPT, for the delivery (one parse)
        self.accounts: dict[str, int] = {}

    def facts(self, session: SMTPSession) -> Ask:
        """The session's facts as of now (made once a session; the account after AUTH)."""
        ask = self._ask
        if ask is None:
            ask = self._ask = session_ask(self.server, session)
            self._user = session.authenticated_user
        elif session.authenticated_user != self._user:
            self._user = name = session.authenticated_user
            user = self.server.user_index(name) if name else None
            ask.user = -1 if user is None else user
        ask.at = self.server.now
        ask.reverse_path = session.mail_from or ""
        return ask

    def on_connect(self, session: SMTPSession) -> Reply | None:
        return first_refusal(self.server, self.steps.entries["connect"], self.facts(session),
                             session)

    def check_mail(self, session: SMTPSession, reverse_path: str) -> Reply | None:
        ask = self.facts(session)
        ask.reverse_path = reverse_path
        return first_refusal(self.server, self.steps.entries["mail"], ask, session,
                             reverse_path)

    def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
        ask = self.recipient(self.facts(session), forward_path)
        return first_refusal(self.server, self.steps.entries["rcpt"], ask, session,
                             forward_path)

    def recipient(self, ask: Ask, forward_path: str) -> Ask:
        """``ask`` about ``forward_path`` (``netsim.mail.policy.recipient``); the account a
        local recipient names is kept for its delivery."""
        recipient(self.server, ask, forward_path)
        if ask.local:
            self.accounts[forward_path] = ask.account
        return ask

    def check_auth(self, session: SMTPSession) -> Reply | None:
        if self.server.auth_throttled(session.client_address, self.server.now):
            return S454_TOO_MANY_AUTH_FAILURES
        return None

    def authenticate(self, session: SMTPSession, mechanism: str, username: str,
                     password: str) -> bool:
        ok = self.server.password_ok(username, password)
        if not ok:
            self.server.auth_failed(session.client_address, self.server.now)
        return ok

    def refusal_of_data(self, session: SMTPSession, envelope: Envelope,
                        entries: list[Entry] | None = None) -> Reply | None:
        """The data step's refusal (``entries``: the policies to ask; all by default); a
        junk verdict is left in ``session.extra["folder"]``."""
        ask = data_ask(self.facts(session), envelope)
        return first_refusal(self.server, self.steps.entries["data"] if entries is None
                             else entries, ask, session, envelope)

    def deliver(self, session: SMTPSession, envelope: Envelope) -> Reply:
        reply = self.refusal_of_data(session, envelope)
        if reply is not None:
            return reply
        mail = envelope.payload
        assert isinstance(mail, Mail), "the simulation carries a Mail as the payload"
        junk = session.extra.pop("folder", None) == "junk"
        self.server.accept(mail, list(envelope.rcpt_to), self.at, junk=junk,
                           accounts=self.accounts)
        return S250_QUEUED


def login_ok(server: POP3HookServer, client: object, username: str, password: str) -> bool:
    """A POP3 or IMAP login. An address that failed too many logins (SMTP AUTH, POP3 or
    IMAP) is refused outright: the right password passes no more than a guess until its
    failures age out."""
    now = server.now
    if server.auth_throttled(client, now):
        return False
    ok = server.password_ok(username, password)
    if not ok:
        server.auth_failed(client, now)
    return ok


class POP3Hooks:
    """POP3 maildrop access; records each retrieval with the instant RETR is answered."""

    def __init__(self, server: POP3HookServer):
        self.server = server
        self.at = 0.0
        self.last_size = 0
        self.retrieved: list[int] = []   # ledger rows retrieved by the last command
        self.login_at: float | None = None   # when the session logged in
        self._user: int | None = None

    def authenticate(self, session: POP3Session, username: str, password: str) -> bool:
        return login_ok(self.server, session.client_address, username, password)

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
            self.login_at = self.at
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


class IMAPHooks:
    """IMAP access to the same maildrops as POP3 (INBOX, the only mailbox); records each
    first retrieval, the content of a message no client had seen, as it is rendered. The
    adapter times them: ``fetched`` holds the ledger rows and modelled sizes of the last
    command's, in the order they go out."""

    def __init__(self, server: POP3HookServer):
        self.server = server
        self.at = 0.0
        self.fetched: list[tuple[int, int]] = []
        self.login_at: float | None = None
        self._user: int | None = None
        self._unseen: set[int] = set()   # UIDs no client had seen when the mailbox opened

    def authenticate(self, session: IMAPSession, username: str, password: str) -> bool:
        ok = login_ok(self.server, session.client_address, username, password)
        if ok:
            self.login_at = self.at
        return ok

    def open_mailbox(self, session: IMAPSession, username: str, name: str,
                     readonly: bool) -> IMAPMailbox | None:
        user = self.server.user_index(username)
        if user is None or name.upper() != "INBOX":
            return None
        self._user = user
        stored = self.server.maildrops.mailbox(user, self.at)
        self._unseen = {s.uid for s in stored if not s.seen}
        return IMAPMailbox(UIDVALIDITY, tuple(
            IMAPStoredMessage(s.uid, s.message.size, s.flags, s.message.payload)
            for s in stored), uidnext=self.server.maildrops.next_uid(user))

    def store_flags(self, session: IMAPSession, username: str,
                    flags: Mapping[int, frozenset[str]]) -> None:
        if self._user is not None:
            self.server.maildrops.set_flags(self._user, flags)

    def expunge(self, session: IMAPSession, username: str, uids: Sequence[int]) -> None:
        if self._user is not None:
            self.server.maildrops.expunge(self._user, uids)

    def close_mailbox(self, session: IMAPSession, username: str, name: str) -> None:
        self._user = None

    def render(self, message: IMAPStoredMessage) -> bytes:
        mail, row = cast(tuple[Mail, int], message.payload)
        if message.uid in self._unseen:   # the engine may have flagged it \Seen already
            self._unseen.discard(message.uid)
            self.fetched.append((row, message.size))
        return line_octets(mail.text_lines())
