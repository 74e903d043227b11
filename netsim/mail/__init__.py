"""The mail layer: mail servers, queues, maildrops and sessions, as SimPy adapters around the
sans-I/O protocol engines."""

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
