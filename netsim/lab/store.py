"""Where the lab puts accepted mail: local recipients' maildrops, or the relay queue.

The maildrops are the world's own (``MailServer.maildrops``: per user, read by POP3 with its
exclusive lock and deletions at QUIT, and by IMAP, which deletes at EXPUNGE); the world is
never run, so they hold only the lab's mail, as bytes with CRLF line ends. Each accepted
message gets a ``Received:`` line on top, so a student reading it with RETR or FETCH sees
the path it took. Each delivery is told to the postmaster's listeners (the sessions, which
tell IMAP clients of new mail).
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Callable, Sequence

from netsim.lab.addresses import text
from netsim.lab.spool import Spool
from netsim.mail import MailServer, domain_of
from netsim.protocols import SMTPSession, StoredMessage

__all__ = ["Postmaster", "received_line"]

log = logging.getLogger("netsim.lab")

Forward = Callable[[int, str, list[str], bytes, str], None]
"""Hands mail for other domains to the relay: (server index, reverse path, recipients, bytes,
the message's id)."""

Delivered = Callable[[int, int], None]
"""Told of each message put in a maildrop: (server index, user)."""


def received_line(session: SMTPSession, hostname: str, uid: str) -> bytes:
    """The trace header a server adds on accepting a message (RFC 5321 §4.4)."""
    peer = session.extra.get("peer", "unknown")
    client = session.client_address
    where = text(client) if isinstance(client, int) else "outside the scenario"
    proto = ("ESMTPA" if session.authenticated_user else "ESMTP") if session.esmtp else "SMTP"
    return (f"Received: from {session.helo_name or 'unknown'} ({peer} [{where}])\r\n"
            f"\tby {hostname} (netsim lab) with {proto} id {uid};\r\n"
            f"\t{email.utils.formatdate(localtime=True)}\r\n").encode("ascii", "replace")


class Postmaster:
    """Stores local mail and forwards the rest, for every server of the lab.

    Args:
        servers: The world's servers, by index.
        forward: Where mail for other domains goes (the relay's ``enqueue``).
    """

    def __init__(self, servers: Sequence[MailServer], forward: Forward,
                 spool: Spool | None = None) -> None:
        self.servers = list(servers)
        self.forward = forward
        self.spool = spool
        self._seq = 0 if spool is None else spool.last_sequence()
        #: Told of every delivery to a maildrop (the sessions: IMAP's news of new mail).
        self.listeners: list[Delivered] = []

    def new_uid(self, server: int) -> str:
        """A message id unique in the lab, also its POP3 UIDL id."""
        self._seq += 1
        return f"{self._seq}.{self.servers[server].isp}"

    def accept(self, server: int, mail_from: str, rcpt_to: Sequence[str], payload: bytes,
               uid: str | None = None) -> str:
        """Take responsibility for a message: local recipients now, the others via the relay.

        Returns:
            The message's id.
        """
        uid = uid or self.new_uid(server)
        mail = self.servers[server]
        remote: list[str] = []
        stored: set[int] = set()   # a mailbox named twice (or two ways) gets one copy
        for rcpt in dict.fromkeys(rcpt_to):
            if "@" in rcpt and domain_of(rcpt) != mail.domain:   # a bare <postmaster>: ours
                remote.append(rcpt)
                continue
            user = mail.user_index(rcpt)
            if user is None:  # the world's LocalRecipients policy refuses these at RCPT
                log.warning("%s: no mailbox for %s; message %s dropped for it",
                            mail.hostname, rcpt, uid)
                continue
            if user in stored:
                continue
            stored.add(user)
            if self.spool is not None:   # on disk before the 250
                self.spool.store(mail.domain, user, uid, payload)
            mail.maildrops.add(user, StoredMessage(uid, len(payload), payload))
            log.info("%s: message %s from <%s> delivered to %s's maildrop", mail.hostname,
                     uid, mail_from, rcpt)
            for listener in self.listeners:
                listener(server, user)
        if remote:
            self.forward(server, mail_from, remote, payload, uid)
        return uid

    def load(self) -> int:
        """Put the spool's maildrop copies back in the maildrops (a restarted lab); returns
        how many."""
        if self.spool is None:
            return 0
        by_domain = {s.domain: s for s in self.servers}
        count = 0
        for domain, user, uid, payload in self.spool.stored():
            server = by_domain.get(domain)
            if server is not None:
                server.maildrops.add(user, StoredMessage(uid, len(payload), payload))
                count += 1
        return count

    def bounce(self, server: int, mail_from: str, failures: dict[str, str],
               payload: bytes) -> None:
        """Report permanent failures to the sender (never for a bounce: no ``<>`` sender)."""
        if not mail_from:
            return
        mail = self.servers[server]
        uid = self.new_uid(server)
        headers = payload.split(b"\r\n\r\n", 1)[0]
        lines = [
            f"From: MAILER-DAEMON@{mail.domain}",
            f"To: <{mail_from}>",
            "Subject: Undelivered Mail Returned to Sender",
            f"Date: {email.utils.formatdate(localtime=True)}",
            f"Message-ID: <{uid}@{mail.hostname}>",
            "",
            f"This is the mail system at {mail.hostname}.",
            "Your message could not be delivered to these recipients:",
            "",
            *(f"<{rcpt}>: {reason}" for rcpt, reason in failures.items()),
            "",
            "The headers of your message follow.",
            "",
        ]
        dsn = ("\r\n".join(lines) + "\r\n").encode("utf-8") + headers + b"\r\n"
        log.info("%s: bounce %s to <%s> for %s", mail.hostname, uid, mail_from,
                 ", ".join(failures))
        self.accept(server, "", [mail_from], dsn, uid)

    def mailbox(self, server: int, user: int) -> list[bytes]:
        """The messages waiting for a user, as bytes (without locking)."""
        return [m.payload for m in self.servers[server].maildrops.peek(user)
                if isinstance(m.payload, bytes)]
