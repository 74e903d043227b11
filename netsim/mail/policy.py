"""Server-side mail policies: hooks that return a reply, or ``None`` for "no objection".

A server consults its policies in order; the first reply wins. Relay rules and unknown users
are policies like any other, so a new defence (a blocklist, greylisting, a rate limit) is a
new class here and one line where the server is built, never a branch in protocol code.
Each refusal is a named reply, and ``MECHANISMS`` names what stopped a recipient from it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

from netsim.protocols import Envelope, Reply, SMTPSession
from netsim.protocols.replies import (
    S450_GREYLISTED,
    S451_RATE_LIMITED,
    S452_TOO_MANY_RCPTS,
    S530_AUTH_REQUIRED,
    S535_AUTH_INVALID,
    S550_CONTENT_REJECTED,
    S550_USER_UNKNOWN,
    S552_SIZE_EXCEEDED,
    S554_BLOCKLISTED,
    S554_RELAY_DENIED,
)

if TYPE_CHECKING:
    from netsim.mail.server import MailServer


class InboundPolicy(Protocol):
    """What a policy may look at; each method returns a refusal or None.

    ``check_data`` may instead file the message as junk by setting
    ``session.extra["folder"] = "junk"`` and returning None.
    """

    def check_connect(self, server: MailServer, session: SMTPSession) -> Reply | None: ...

    def check_mail(self, server: MailServer, session: SMTPSession, reverse_path: str,
                   ) -> Reply | None: ...

    def check_rcpt(self, server: MailServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None: ...

    def check_data(self, server: MailServer, session: SMTPSession, envelope: Envelope,
                   ) -> Reply | None: ...


class Policy:
    """A policy with no objections; subclasses override what they check."""

    def check_connect(self, server: MailServer, session: SMTPSession) -> Reply | None:
        return None

    def check_mail(self, server: MailServer, session: SMTPSession, reverse_path: str,
                   ) -> Reply | None:
        return None

    def check_rcpt(self, server: MailServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None:
        return None

    def check_data(self, server: MailServer, session: SMTPSession, envelope: Envelope,
                   ) -> Reply | None:
        return None


class LocalRecipients(Policy):
    """Mail for the server's own domain must name an existing mailbox (550 5.1.1)."""

    def check_rcpt(self, server: MailServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None:
        local, _, domain = forward_path.rpartition("@")   # asked per recipient: no helpers
        if domain.lower() == server.domain and server.user_index(local) is None:
            return S550_USER_UNKNOWN
        return None


class RelayControl(Policy):
    """Relay to other domains only for authenticated clients, or for the ISP's own networks
    on port 25 until ``auth_on_25_from`` (Postfix ``permit_mynetworks,
    permit_sasl_authenticated, reject_unauth_destination``). Never for strangers."""

    def __init__(self, auth_on_25_from: float = math.inf):
        self.auth_on_25_from = auth_on_25_from

    def check_rcpt(self, server: MailServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None:
        if (forward_path.rpartition("@")[2].lower() == server.domain
                or session.authenticated_user):
            return None
        if (session.port == 25 and server.now < self.auth_on_25_from
                and server.is_own_client(session.client_address)):
            return None
        return S554_RELAY_DENIED



def default_policies() -> list[InboundPolicy]:
    return [RelayControl(), LocalRecipients()]


# What stopped a recipient, by the reply that stopped it.
MECHANISMS: dict[Reply, str] = {
    S554_RELAY_DENIED: "relay_denied",
    S530_AUTH_REQUIRED: "auth_required",
    S535_AUTH_INVALID: "auth_failed",
    S550_USER_UNKNOWN: "user_unknown",
    S552_SIZE_EXCEEDED: "message_size",
    S452_TOO_MANY_RCPTS: "too_many_recipients",
    # receiver defences (netsim.mail.defences)
    S554_BLOCKLISTED: "blocklist",
    S450_GREYLISTED: "greylisting",
    S550_CONTENT_REJECTED: "content_filter",
    S451_RATE_LIMITED: "rate_limit",
}


def mechanism(reply: Reply) -> str:
    """The name of what a refusal stands for; ``smtp_<code>`` for a reply nobody named."""
    return MECHANISMS.get(reply, f"smtp_{reply.code}")
