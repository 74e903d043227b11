"""The mail layer: mail servers, queues, maildrops and sessions, as SimPy adapters around the
sans-I/O protocol engines.

Its names are imported when first used: what needs one module (the command line's list of
kinds, say) does not load the servers, the policies and the protocol engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsim.lazy import lazy_names

if TYPE_CHECKING:
    from netsim.mail.defences import (
        Blocklist,
        ContentFilter,
        Greylisting,
        Listing,
        RateLimit,
        coverage_by_subnet,
    )
    from netsim.mail.ledger import ConservationError, Ledger, Outcome
    from netsim.mail.message import Kind, Mail, SenderType, domain_of, local_part
    from netsim.mail.policy import MECHANISMS, InboundPolicy, Policy, mechanism
    from netsim.mail.queue import OutboundQueue, RetryPolicy
    from netsim.mail.retrieval_session import imap_session, pop3_session
    from netsim.mail.server import Listener, MailServer, ServerSettings
    from netsim.mail.session import smtp_session
    from netsim.mail.trace import TraceLine, Tracer

# each name by the module that defines it
_WHERE = {
    **dict.fromkeys(("Blocklist", "ContentFilter", "Greylisting", "Listing", "RateLimit",
                     "coverage_by_subnet"), "defences"),
    **dict.fromkeys(("ConservationError", "Ledger", "Outcome"), "ledger"),
    **dict.fromkeys(("Kind", "Mail", "SenderType", "domain_of", "local_part"), "message"),
    **dict.fromkeys(("InboundPolicy", "MECHANISMS", "Policy", "mechanism"), "policy"),
    **dict.fromkeys(("OutboundQueue", "RetryPolicy"), "queue"),
    **dict.fromkeys(("imap_session", "pop3_session"), "retrieval_session"),
    **dict.fromkeys(("Listener", "MailServer", "ServerSettings"), "server"),
    **dict.fromkeys(("smtp_session",), "session"),
    **dict.fromkeys(("TraceLine", "Tracer"), "trace"),
}

__all__ = [
    "MECHANISMS",
    "Blocklist",
    "ConservationError",
    "ContentFilter",
    "Greylisting",
    "InboundPolicy",
    "Kind",
    "Ledger",
    "Listener",
    "Listing",
    "Mail",
    "MailServer",
    "OutboundQueue",
    "Outcome",
    "Policy",
    "RateLimit",
    "RetryPolicy",
    "SenderType",
    "ServerSettings",
    "TraceLine",
    "Tracer",
    "coverage_by_subnet",
    "domain_of",
    "imap_session",
    "local_part",
    "mechanism",
    "pop3_session",
    "smtp_session",
]


__getattr__ = lazy_names(__name__, _WHERE)
