"""The engines' hooks in the lab: the world's own hooks, with bytes where the simulation has
a ``Mail``.

Everything that decides (connect checks, relay control, unknown users, blocklists,
greylisting, rate limits, passwords, maildrop locking) is inherited from
:mod:`netsim.mail.hooks` and the server's policies; only what happens to an accepted message
differs: it is stored as bytes by the lab's :class:`~netsim.lab.store.Postmaster`.
"""

from __future__ import annotations

from collections.abc import Sequence

from netsim.lab.spool import Spool
from netsim.lab.store import Postmaster, received_line
from netsim.mail import ContentFilter, MailServer
from netsim.mail.hooks import POP3Hooks, SMTPHooks
from netsim.mail.policy import Judge
from netsim.protocols import Envelope, POP3Session, Reply, SMTPSession, StoredMessage
from netsim.protocols.replies import S250_QUEUED
from netsim.protocols.wire import message_text

__all__ = ["LabPOP3Hooks", "LabSMTPHooks", "message_lines"]


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
