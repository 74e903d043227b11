"""Receiver defences: server policies a scenario may switch on (MODEL.md "Policies").

Each defence is a :class:`~netsim.mail.policy.Policy`, so a server gains one by having it
appended to ``server.policies``; none touches protocol code. What each models:

- :class:`Blocklist`: a DNS blocklist of address ranges that should not send mail directly
  to MX hosts, like the Spamhaus PBL (dynamic pools, hotel networks). The greeting on port 25
  is refused with 554; submission (587) is never checked, as Spamhaus asks of PBL users.
- :class:`Greylisting`: postgrey's triplet rule. An unknown (client, sender, recipient) is
  deferred with 450; a retry after ``delay_s`` (postgrey: 300 s) passes, and so does later
  mail with the same triplet. Real MTAs retry, most spam bots do not.
- :class:`ContentFilter`: a SpamAssassin-like filter with a detection rate and a
  false-positive rate, rejecting (550) or filing into the junk folder.
- :class:`RateLimit`: a per-account recipient limit on authenticated submission, a token
  bucket as in Postfix's anvil ``smtpd_client_recipient_rate_limit`` or policyd's quotas,
  so a hijacked account cannot spray spam through its ISP's own server.

Each refusal is a named reply; ``netsim.mail.policy.MECHANISMS`` names the mechanism.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np

from netsim.mail.draws import keyed_uniform_one, salt
from netsim.mail.message import Kind, Mail
from netsim.mail.policy import Policy
from netsim.net import AddressPlan, NetKind
from netsim.protocols import Envelope, Reply, SMTPSession
from netsim.protocols.replies import (
    S450_GREYLISTED,
    S451_RATE_LIMITED,
    S550_CONTENT_REJECTED,
    S554_BLOCKLISTED,
)

if TYPE_CHECKING:
    from netsim.mail.server import MailServer

__all__ = [
    "Blocklist", "ContentFilter", "Greylisting", "RateLimit",
    "listed_subnets",
]


def listed_subnets(plan: AddressPlan, kinds: Iterable[NetKind]) -> frozenset[int]:
    """The indices of every subnet of the plan whose kind is one of ``kinds``."""
    wanted = frozenset(kinds)
    return frozenset(s.index for s in plan.subnets if s.kind in wanted)


def _inbound(server: MailServer, session: SMTPSession) -> bool:
    """True for a stranger's unauthenticated session: what inbound defences examine."""
    return not session.authenticated_user and not server.is_own_client(session.client_address)


class Blocklist(Policy):
    """Refuse port-25 sessions from listed address ranges (PBL-like).

    Args:
        listed_subnets: Indices (in the address plan) of the listed networks.
    """

    def __init__(self, listed_subnets: frozenset[int]):
        self.listed_subnets = frozenset(listed_subnets)
        self.refused = 0

    def check_connect(self, server: MailServer, session: SMTPSession) -> Reply | None:
        address = session.client_address
        # Own subscribers are not checked: an ISP does not block its own pool on its MX.
        if (session.port != 25 or not isinstance(address, int)
                or server.is_own_client(address)):
            return None
        if server.network.plan.subnet_of(address).index in self.listed_subnets:
            self.refused += 1
            return S554_BLOCKLISTED
        return None


class Greylisting(Policy):
    """Defer the first attempt of every unknown triplet (postgrey).

    ``greylisted`` counts 450 replies; ``passed`` counts recipients let through by a known
    triplet (the first retry after the delay, and every later use of the triplet).

    Args:
        delay_s: How long a triplet must wait before a retry passes (postgrey: 300 s).
        retry_window_s: How long after the first attempt a retry is still recognised;
            later, the triplet is new again.
    """

    def __init__(self, delay_s: float, retry_window_s: float):
        if not 0 <= delay_s <= retry_window_s:
            raise ValueError("need 0 <= delay_s <= retry_window_s")
        self.delay_s = delay_s
        self.retry_window_s = retry_window_s
        # Pending triplets in order of first sight, so expired ones are pruned from the
        # front in O(1) each; passed triplets are kept for the run (postgrey: 35 days).
        self._pending: OrderedDict[tuple[object, str | None, str], float] = OrderedDict()
        self._passed: set[tuple[object, str | None, str]] = set()
        self.greylisted = 0
        self.passed = 0

    def check_rcpt(self, server: MailServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None:
        if not _inbound(server, session):
            return None
        key = (session.client_address, session.mail_from, forward_path)
        if key in self._passed:
            self.passed += 1
            return None
        now = server.now
        pending = self._pending
        # A triplet not retried within the window is new again, so forgetting it is exact.
        while pending and now - next(iter(pending.values())) > self.retry_window_s:
            pending.popitem(last=False)
        first_seen = pending.get(key)
        if first_seen is None:
            pending[key] = now
        elif now - first_seen >= self.delay_s:
            del pending[key]
            self._passed.add(key)
            self.passed += 1
            return None
        self.greylisted += 1
        return S450_GREYLISTED


class ContentFilter(Policy):
    """Judge each inbound message once, after DATA (SpamAssassin-like).

    Args:
        detection_rate: Probability that spam is caught.
        false_positive_rate: Probability that anything else (legit mail, a bounce) is caught.
        action: ``"reject"`` refuses a caught message with 550; ``"junk"`` accepts it into
            the junk folder, which POP3 does not serve.
        rng: The filter's own random stream; it is drawn once, for a key, and each
            message's verdict is a keyed hash of the message's ``key``: the same message
            gets the same verdict whatever order messages are judged in, and whichever path
            (engine or flow) judges it.
    """

    def __init__(self, detection_rate: float, false_positive_rate: float,
                 action: Literal["reject", "junk"], rng: np.random.Generator):
        for name, rate in (("detection_rate", detection_rate),
                           ("false_positive_rate", false_positive_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if action not in ("reject", "junk"):
            raise ValueError(f"action must be 'reject' or 'junk', got {action!r}")
        self.detection_rate = detection_rate
        self.false_positive_rate = false_positive_rate
        self.action = action
        self.salt = salt(rng)
        self.examined = 0
        self.caught = 0

    def check_data(self, server: MailServer, session: SMTPSession, envelope: Envelope,
                   ) -> Reply | None:
        # Outbound mail of own or authenticated clients is not filtered.
        if not _inbound(server, session):
            return None
        mail = envelope.payload
        assert isinstance(mail, Mail), "the simulation carries a Mail as the payload"
        self.examined += 1
        rate = self.detection_rate if mail.kind is Kind.SPAM else self.false_positive_rate
        if keyed_uniform_one(mail.key, self.salt) >= rate:
            return None
        self.caught += 1
        if self.action == "reject":
            return S550_CONTENT_REJECTED
        session.extra["folder"] = "junk"
        return None


class RateLimit(Policy):
    """Limit the recipients each authenticated account may submit (a token bucket).

    Each account's bucket holds ``recipients_per_hour`` tokens, starts full and refills
    continuously; each accepted recipient takes a token, and an empty bucket defers with 451.
    Only accounts that send get an entry.

    Args:
        recipients_per_hour: The bucket's capacity and its refill rate per hour.
        start_s: The simulated time from which the limit applies (an ISP introducing it).
    """

    def __init__(self, recipients_per_hour: float, start_s: float = 0.0):
        if recipients_per_hour <= 0:
            raise ValueError("recipients_per_hour must be positive")
        self.recipients_per_hour = recipients_per_hour
        self.start_s = start_s
        self._bucket: dict[str, tuple[float, float]] = {}   # account → tokens, last update
        self.limited = 0

    def check_rcpt(self, server: MailServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None:
        user = session.authenticated_user
        if not user:
            return None
        return S451_RATE_LIMITED if self.limits([user], [server.now])[0] else None

    def limits(self, users: Iterable[str], instants: Iterable[float]) -> list[bool]:
        """Take a token for each authenticated recipient, in the order given (time order);
        True where the account's bucket is empty (451). The flow path asks in bulk."""
        capacity, start = self.recipients_per_hour, self.start_s
        bucket = self._bucket
        out = []
        for user, now in zip(users, instants, strict=True):
            if now < start:
                out.append(False)
                continue
            tokens, last = bucket.get(user, (capacity, now))
            # Multiply before dividing: 360 s at 10/h refills exactly one token.
            tokens = min(capacity, tokens + (now - last) * capacity / 3600.0)
            if tokens < 1.0:
                bucket[user] = (tokens, now)
                self.limited += 1
                out.append(True)
            else:
                bucket[user] = (tokens - 1.0, now)
                out.append(False)
        return out


#: What stopped a recipient, by the reply of the defence that stopped it.
