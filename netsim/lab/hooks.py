"""The engines' hooks in the lab: the world's own hooks, with bytes where the simulation has
a ``Mail``.

Everything that decides (connect checks, relay control, unknown users, blocklists,
greylisting, rate limits, passwords, maildrop locking) is inherited from
:mod:`netsim.mail.hooks` and the server's policies; only what happens to an accepted message
differs: it is stored as bytes by the lab's :class:`~netsim.lab.store.Postmaster`, and a
retrieved message is those bytes again. POP3 and IMAP read the same maildrops; what either
deletes leaves the spool too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from netsim.lab.spool import Spool
from netsim.lab.store import Postmaster, received_line
from netsim.mail import ContentFilter, MailServer
from netsim.mail.hooks import IMAPHooks, POP3Hooks, SMTPHooks
from netsim.mail.policy import Judge
from netsim.protocols import Envelope, POP3Session, Reply, SMTPSession, StoredMessage
from netsim.protocols.imap_session import IMAPMailbox, IMAPSession, IMAPStoredMessage
from netsim.protocols.replies import S250_QUEUED
from netsim.protocols.wire import message_text

__all__ = ["LabIMAPHooks", "LabPOP3Hooks", "LabSMTPHooks", "message_lines"]


class LabSMTPHooks(SMTPHooks):
    """The world server's SMTP policies; accepted mail goes to the lab's postmaster.

    Args:
        server: The world's mail server.
        index: Its index in ``world.servers``.
        postmaster: Where accepted mail goes.
    """

    def __init__(self, server: MailServer, index: int, postmaster: Postmaster) -> None:
        super().__init__(server)
        # for the Received: line; ``self.server`` is typed as what the mail hooks use of it
        self.hostname = server.hostname
        self.index = index
        self.postmaster = postmaster

    def deliver(self, session: SMTPSession, envelope: Envelope) -> Reply:
        """Apply the policies' end-of-data checks, then store or queue the message."""
        # The content filter draws against the simulated message's kind (spam or not);
        # real text has none, so the lab leaves it out.
        checks = [e for e in self.steps.entries["data"]
                  if not (isinstance(e, Judge) and isinstance(e.policy, ContentFilter))]
        reply = self.refusal_of_data(session, envelope, checks)
        if reply is not None:
            return reply
        payload = envelope.payload
        assert isinstance(payload, bytes), "the wire layer carries the message bytes"
        uid = self.postmaster.new_uid(self.index)
        stamped = received_line(session, self.hostname, uid) + payload
        self.postmaster.accept(self.index, envelope.mail_from, envelope.rcpt_to, stamped, uid)
        return S250_QUEUED.with_text(f"Ok: queued as {uid}")


def message_lines(payload: bytes, top_lines: int | None = None) -> list[str]:
    """A stored message as text lines for RETR (``top_lines`` None) or TOP n, which the
    byte layer sends as exactly the stored octets (8-bit clean: ``message_text``)."""
    lines = message_text(payload).split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    if top_lines is None:
        return lines
    blank = lines.index("") if "" in lines else len(lines)
    return lines[: blank + 1 + top_lines]


class LabPOP3Hooks(POP3Hooks):
    """The world server's accounts and maildrops; messages render from their bytes, and
    what a session deletes leaves the spool too."""

    def __init__(self, server: MailServer, spool: Spool | None = None) -> None:
        super().__init__(server)
        self.domain = server.domain
        self.spool = spool

    def commit(self, session: POP3Session, username: str, deleted_uids: Sequence[str]) -> None:
        user = self._user
        super().commit(session, username, deleted_uids)
        if self.spool is not None and user is not None and deleted_uids:
            self.spool.delete(self.domain, user, set(deleted_uids))

    def render(self, message: StoredMessage, top_lines: int | None) -> list[str]:
        """The message's lines (all of them, or the headers and ``top_lines`` of the body)."""
        payload = message.payload
        assert isinstance(payload, bytes), "the lab stores message bytes"
        return message_lines(payload, top_lines)


class LabIMAPHooks(IMAPHooks):
    """The world server's accounts and maildrops over IMAP: messages render as their stored
    bytes, what a session expunges leaves the spool too, and mail delivered while a mailbox
    is selected can be told to its session (:meth:`arrivals`).

    Args:
        server: The world's mail server.
        uidvalidity: The lab's UIDVALIDITY. The maildrops number their messages afresh
            each time the lab starts (from the spool, or empty), so each start needs a new
            and larger one (RFC 9051 §2.3.1.1): the lab passes its start time in seconds.
        spool: Where the lab keeps mail on disk, if it does.
    """

    def __init__(self, server: MailServer, uidvalidity: int, spool: Spool | None = None,
                 ) -> None:
        super().__init__(server)
        self.domain = server.domain
        self.uidvalidity = uidvalidity
        self.spool = spool
        self._told = 0   # the largest UID the session knows of in its selected mailbox

    @property
    def user(self) -> int | None:
        """The account whose mailbox is selected, if any."""
        return self._user

    def open_mailbox(self, session: IMAPSession, username: str, name: str,
                     readonly: bool) -> IMAPMailbox | None:
        opened = super().open_mailbox(session, username, name, readonly)
        if opened is None:
            return None
        self._told = opened.next_uid - 1
        return dataclasses.replace(opened, uidvalidity=self.uidvalidity)

    def arrivals(self) -> list[IMAPStoredMessage]:
        """Messages delivered to the selected mailbox since the session last heard of it."""
        if self._user is None:
            return []
        new = [IMAPStoredMessage(s.uid, s.message.size, s.flags, s.message.payload)
               for s in self.server.maildrops.mailbox(self._user, self.at) if s.uid > self._told]
        if new:
            self._told = new[-1].uid
        return new

    def expunge(self, session: IMAPSession, username: str, uids: Sequence[int]) -> None:
        user, gone = self._user, set(uids)
        # the spool names a copy by its message id (POP3's UIDL), not by its IMAP UID
        ids = set() if user is None else {
            s.message.uid for s in self.server.maildrops.mailbox(user) if s.uid in gone}
        super().expunge(session, username, uids)
        if self.spool is not None and user is not None and ids:
            self.spool.delete(self.domain, user, ids)

    def render(self, message: IMAPStoredMessage) -> bytes:
        """The message's octets exactly as they were stored."""
        payload = message.payload
        assert isinstance(payload, bytes), "the lab stores message bytes"
        return payload
