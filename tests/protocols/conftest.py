"""Shared fixtures for the protocol engine tests: hooks that record what they were asked."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace

import pytest

from netsim.protocols import (
    DefaultHooks,
    Envelope,
    IMAPMailbox,
    IMAPSession,
    IMAPStoredMessage,
    IMAPWireServer,
    POP3WireServer,
    Reply,
    SMTPSession,
    SMTPWireServer,
)
from netsim.protocols.pop3_session import POP3Session, StoredMessage
from netsim.protocols.replies import S554_ACCESS_DENIED, relay_denied, user_unknown


class MailHooks(DefaultHooks):
    """A tiny mail system: local domain isp-b.example with users bob and carol."""

    def __init__(self, *, refuse: Reply | None = None, deliver_reply: Reply | None = None):
        self.users = {"bob", "carol"}
        self.passwords = {"alice": "secret"}
        self.delivered: list[Envelope] = []
        self.refuse = refuse
        self.deliver_reply = deliver_reply

    def on_connect(self, session: SMTPSession) -> Reply | None:
        return self.refuse

    def check_rcpt(self, session: SMTPSession, forward_path: str) -> Reply | None:
        local, _, domain = forward_path.partition("@")
        if domain != "isp-b.example":
            return None if session.authenticated_user else relay_denied(forward_path)
        return None if local in self.users else user_unknown(forward_path)

    def authenticate(
        self, session: SMTPSession, mechanism: str, username: str, password: str
    ) -> bool:
        return self.passwords.get(username) == password

    def deliver(self, session: SMTPSession, envelope: Envelope) -> Reply:
        self.delivered.append(envelope)
        return (
            super().deliver(session, envelope)
            if self.deliver_reply is None
            else (self.deliver_reply)
        )


class Maildrop:
    """POP3 hooks over an in-memory maildrop per user."""

    def __init__(self, messages: Sequence[StoredMessage] = ()) -> None:
        self.passwords = {"alice": "secret"}
        self.messages = {"alice": list(messages)}
        self.locked: set[str] = set()
        self.commits: list[tuple[str, list[str]]] = []

    def authenticate(self, session: POP3Session, username: str, password: str) -> bool:
        return self.passwords.get(username) == password

    def apop_secret(self, session: POP3Session, username: str) -> str | None:
        return self.passwords.get(username)

    def open_maildrop(self, session: POP3Session, username: str) -> list[StoredMessage] | None:
        if username in self.locked:
            return None
        self.locked.add(username)
        return list(self.messages.get(username, []))

    def commit(self, session: POP3Session, username: str, deleted_uids: Sequence[str]) -> None:
        self.commits.append((username, list(deleted_uids)))
        self.messages[username] = [
            m for m in self.messages[username] if m.uid not in set(deleted_uids)
        ]
        self.locked.discard(username)

    def render(self, message: StoredMessage, top_lines: int | None) -> list[str]:
        if isinstance(message.payload, bytes):
            lines = message.payload.decode("utf-8").split("\r\n")
            return lines[:-1] if lines and lines[-1] == "" else lines
        body = [f"Subject: message {message.uid}", "", "hello", ".dotted line"]
        return body if top_lines is None else body[: 2 + top_lines]


@pytest.fixture
def mail_hooks() -> MailHooks:
    return MailHooks()


@pytest.fixture
def refusing_hooks() -> MailHooks:
    return MailHooks(refuse=S554_ACCESS_DENIED)


THREE = (
    StoredMessage("uid-1", 100),
    StoredMessage("uid-2", 200),
    StoredMessage("uid-3", 300),
)


@pytest.fixture
def maildrop() -> Maildrop:
    return Maildrop(THREE)


@pytest.fixture(scope="session")
def make_mail_hooks() -> type[MailHooks]:
    return MailHooks


@pytest.fixture(scope="session")
def make_maildrop() -> type[Maildrop]:
    return Maildrop


def imap_message(uid: int, text: bytes = b"hello", flags: Iterable[str] = ()) -> IMAPStoredMessage:
    """A stored message whose payload is its octets (``render`` gives them back)."""
    payload = b"Subject: message %d\r\n\r\n%s\r\n" % (uid, text)
    return IMAPStoredMessage(uid, len(payload), frozenset(flags), payload)


class IMAPStore:
    """IMAP hooks over one in-memory INBOX per user; records every storage call."""

    def __init__(
        self,
        messages: Sequence[IMAPStoredMessage] = (),
        *,
        uidvalidity: int = 1,
        exclusive: bool = False,
    ) -> None:
        self.passwords = {"alice": "secret"}
        self.mailboxes = {"alice": list(messages)}
        self.uidvalidity = uidvalidity
        self.exclusive = exclusive  # refuse a second session while one has the mailbox open
        self.open_now: set[str] = set()
        self.calls: list[tuple[object, ...]] = []

    def authenticate(self, session: IMAPSession, username: str, password: str) -> bool:
        return self.passwords.get(username) == password

    def open_mailbox(
        self, session: IMAPSession, username: str, name: str, readonly: bool
    ) -> IMAPMailbox | None:
        self.calls.append(("open", username, name, readonly))
        if self.exclusive and username in self.open_now:
            return None
        self.open_now.add(username)
        return IMAPMailbox(self.uidvalidity, tuple(self.mailboxes.get(username, [])))

    def store_flags(
        self, session: IMAPSession, username: str, flags: Mapping[int, frozenset[str]]
    ) -> None:
        self.calls.append(("flags", username, dict(flags)))
        self.mailboxes[username] = [
            replace(m, flags=flags[m.uid]) if m.uid in flags else m
            for m in self.mailboxes[username]
        ]

    def expunge(self, session: IMAPSession, username: str, uids: Sequence[int]) -> None:
        self.calls.append(("expunge", username, list(uids)))
        gone = set(uids)
        self.mailboxes[username] = [m for m in self.mailboxes[username] if m.uid not in gone]

    def close_mailbox(self, session: IMAPSession, username: str, name: str) -> None:
        self.calls.append(("close", username, name))
        self.open_now.discard(username)

    def render(self, message: IMAPStoredMessage) -> bytes:
        assert isinstance(message.payload, bytes)
        return message.payload

    def deliver(self, username: str, message: IMAPStoredMessage) -> None:
        """New mail arrives in storage (the adapter tells a selected session)."""
        self.mailboxes.setdefault(username, []).append(message)

    def uids(self, username: str = "alice") -> list[int]:
        return [m.uid for m in self.mailboxes[username]]

    def flags(self, username: str = "alice") -> dict[int, set[str]]:
        return {m.uid: set(m.flags) for m in self.mailboxes[username]}


# UIDs 1, 2, 5: sequence numbers and UIDs differ for the third message
IMAP_THREE = (imap_message(1), imap_message(2, b"second"), imap_message(5, b"third"))


@pytest.fixture
def imap_store() -> IMAPStore:
    return IMAPStore(IMAP_THREE)


@pytest.fixture(scope="session")
def make_imap_store() -> type[IMAPStore]:
    return IMAPStore


# --- loopback sockets, for the interoperability tests against smtplib / poplib ---------

Wire = SMTPWireServer | POP3WireServer | IMAPWireServer


@contextmanager
def _serve(make_wire: Callable[[], Wire]) -> Iterator[int]:
    """Serve each connection with a fresh wire server; yield the port."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            wire = make_wire()
            self.request.settimeout(10)  # never hang the suite on a stuck client
            self.request.sendall(wire.greeting())
            while not wire.closed:
                data = self.request.recv(4096)
                if not data:
                    return
                self.request.sendall(wire.receive_data(data))

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join(timeout=5)


@pytest.fixture(scope="session")
def serve() -> Callable[[Callable[[], Wire]], AbstractContextManager[int]]:
    """Run wire servers behind a loopback socket; skip where sockets are unavailable."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
    except OSError:
        pytest.skip("no loopback sockets")
    return _serve
