"""Receiver defences: server policies a scenario may switch on (docs/model.md "Policies").

Each defence is a :class:`~netsim.mail.policy.Policy`, so a server gains one by having it
appended to ``server.policies``; none touches protocol code. What each models:

- :class:`Blocklist`: a server consulting a DNS blocklist (:class:`Listing`): address ranges
  that should not send mail directly to MX hosts, like the Spamhaus PBL (a share of the
  dynamic pools' and hotel networks' ranges), and spam sources listed once seen, like its
  SBL (spammer servers, open relays). An unauthenticated session's recipients on port 25 are
  refused with 554 at RCPT; submission (587), and AUTH on 25, are never checked, as
  Spamhaus asks of PBL users.
- :class:`Greylisting`: postgrey's triplet rule. An unknown (client, sender, recipient) is
  deferred with 450; a retry after ``delay_s`` (postgrey: 300 s) passes, and so does later
  mail with the same triplet. Real MTAs retry, most spam bots do not.
- :class:`ContentFilter`: a SpamAssassin-like filter with a detection rate and a
  false-positive rate, rejecting (550) or filing into the junk folder.
- :class:`RateLimit`: a per-account recipient limit on authenticated submission, a token
  bucket as in Postfix's anvil ``smtpd_client_recipient_rate_limit`` or policyd's quotas,
  so a hijacked account cannot spray spam through its ISP's own server.
- :class:`MailboxQuota`: a mailbox holding its quota refuses more mail (552 5.2.2 at
  RCPT), as Dovecot's quota-status service answers Postfix; IMAP users, whose mail stays
  on the server, fill theirs.

Each decides over the facts of :class:`~netsim.mail.policy.Ask`, one expression for one
recipient or many (``netsim.mail.policy``, module rule 1). Each refusal is a named reply;
``netsim.mail.policy.MECHANISMS`` names the mechanism.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

import numpy as np

from netsim.draws import keyed_uniform, salt
from netsim.mail.facts import Ask, inbound, not_
from netsim.mail.mailbox import MailboxUsage, MaildropUsage
from netsim.mail.policy import JUNK, Policy
from netsim.net import AddressPlan, NetKind
from netsim.protocols import Reply
from netsim.protocols.replies import (
    S450_GREYLISTED,
    S451_RATE_LIMITED,
    S550_CONTENT_REJECTED,
    S552_MAILBOX_FULL,
    S554_BLOCKLISTED,
)
from netsim.runs import runs

__all__ = [
    "Blocklist", "ContentFilter", "Greylisting", "Listing", "RateLimit",
    "coverage_by_subnet",
]


def coverage_by_subnet(plan: AddressPlan, coverage: Mapping[NetKind, float]) -> np.ndarray:
    """The share of ranges listed in each subnet of the plan, by its index, from the share
    of each kind (0 for a kind not given); one more entry, 0, for "no subnet" (-1)."""
    table = np.zeros(len(plan.subnets) + 1)
    for subnet in plan.subnets:
        table[subnet.index] = coverage.get(subnet.kind, 0.0)
    return table


# the asks of a round (each account's k-th) taken as arrays from this many; fewer one at a
# time (an array round costs some tens of microseconds, an ask alone under one)
ROUND_AT_ONCE = 64


def _many(ask: Ask) -> bool:
    """Whether ``ask`` holds many asks (arrays) rather than one."""
    return isinstance(ask.at, np.ndarray)


class Listing:
    """One DNS blocklist, the same object for every server that consults it.

    It names address ranges by the kind of network they are in, as the PBL does: a range
    (a /24 by default) of a kind with coverage ``c`` is listed when a keyed draw of the
    range is below ``c``, so which ranges are listed depends on the range alone, not on who
    asks or when. And it names spam sources once seen, as the SBL does: a watched address
    (a spammer server, an open relay) is listed ``seen_after_s`` after the first instant it
    opens a session for spam at any mail server (:meth:`seen`), until the run's end.

    Args:
        coverage: The share of ranges listed in each subnet, by index (``coverage_by_subnet``).
        range_prefix: The length of the prefix of the ranges listed as one: 24 lists /24s,
            32 decides address by address.
        salt: The list's salt (``netsim.draws``), drawn from its own stream.
        seen_after_s: How long after it is first seen a watched address is listed [s];
            None: never.
    """

    def __init__(self, coverage: np.ndarray, range_prefix: int, salt: int,
                 seen_after_s: float | None = None):
        if not 0 <= range_prefix <= 32:
            raise ValueError(f"range_prefix must be within [0, 32], got {range_prefix}")
        self.coverage = np.asarray(coverage, dtype=float)
        self.shift = 32 - range_prefix
        self.salt = salt
        self.seen_after_s = seen_after_s
        # Asks answered for a watched address at or after an instant from which a later
        # record lists it (the flow path's queues record a minute's sessions at its end):
        # each may have been answered otherwise than the engines would (docs/fidelity.md).
        self.out_of_order = 0
        self.row_of: dict[int, int] = {}
        self.watch(())

    def watch(self, addresses: Iterable[int]) -> None:
        """Add spam sources whose sessions the list's operators see (before the run)."""
        found = sorted(set(self.row_of) | set(addresses))
        # sorted, with a sentinel above every address, so a lookup needs no bounds check;
        # listed_from and asked have one more entry, for "not watched"
        self.watched = np.array([*found, 2**62], dtype=np.int64)
        self.row_of = {a: i for i, a in enumerate(found)}
        self.listed_from = np.full(len(found) + 2, np.inf)
        self.asked = np.full(len(found) + 2, -np.inf)   # the latest instant asked about each

    def _rows(self, client: Any) -> Any:
        """Each client's row among the watched addresses (the last row if not watched)."""
        if isinstance(client, int):
            return self.row_of.get(client, -1)
        i = np.searchsorted(self.watched, client)
        return np.where(self.watched[i] == client, i, -1)

    def lists(self, client: Any, subnet: Any, at: Any) -> Any:
        """Whether the list names ``client`` (in network ``subnet``) at ``at``: one
        expression for one ask (Python scalars) or many (arrays)."""
        ranged = keyed_uniform(client >> self.shift, self.salt) < self.coverage[subnet]
        if self.seen_after_s is None:
            return ranged
        rows = self._rows(client)
        if isinstance(rows, int):
            self.asked[rows] = max(self.asked[rows], at)
        else:
            np.maximum.at(self.asked, rows, at)
        return ranged | (at >= self.listed_from[rows])

    def seen(self, client: Any, at: Any, spam: Any) -> None:
        """Sessions opened at ``at`` by ``client`` (one or many), for spam where ``spam``:
        a watched address is listed from its first such instant plus ``seen_after_s``."""
        if self.seen_after_s is None:
            return
        rows = np.atleast_1d(self._rows(client))
        take = np.atleast_1d(spam) & (rows >= 0)
        if not take.any():
            return
        rows = rows[take]
        listed = np.broadcast_to(np.asarray(at, dtype=float), take.shape)[take] \
            + self.seen_after_s
        before = self.listed_from[rows]
        # an ask already answered at or after the new instant, when the old one was later
        self.out_of_order += int(((listed < before) & (self.asked[rows] >= listed)).sum())
        np.minimum.at(self.listed_from, rows, listed)


class Blocklist(Policy):
    """Refuse recipients of port-25 sessions from addresses the list names (:class:`Listing`)
    at RCPT, unless the client authenticated: Postfix's ``permit_sasl_authenticated`` before
    ``reject_rbl_client``, with client restrictions delayed to RCPT as Postfix does by
    default (``smtpd_delay_reject``), so a traveller with SMTP AUTH on 25 from a listed range
    still relays.

    Own subscribers are not checked (an ISP does not block its own pool on its MX), nor is
    submission: Spamhaus asks PBL users to check port 25 only. A server that does not
    consult the list has no Blocklist.

    Args:
        listing: The list, shared by every server that consults it.
    """

    reply_rcpt = S554_BLOCKLISTED

    def __init__(self, listing: Listing):
        self.listing = listing

    def scope_rcpt(self, ask: Ask) -> Any:
        return (ask.port == 25) & not_(ask.own) & (ask.subnet >= 0) & (ask.user < 0)

    def refuses_rcpt(self, ask: Ask) -> Any:
        return self.listing.lists(ask.client, ask.subnet, ask.at)


class Greylisting(Policy):
    """Defer the first attempt of every unknown triplet (postgrey).

    ``refused`` counts 450 replies; ``examined - refused`` the recipients let through by a
    known triplet (the first retry after the delay, and every later use of the triplet).

    Args:
        delay_s: How long a triplet must wait before a retry passes (postgrey: 300 s).
        retry_window_s: How long after the first attempt a retry is still recognised;
            later, the triplet is new again.
    """

    stateful: ClassVar[bool] = True
    reply_rcpt = S450_GREYLISTED

    def __init__(self, delay_s: float, retry_window_s: float):
        if not 0 <= delay_s <= retry_window_s:
            raise ValueError("need 0 <= delay_s <= retry_window_s")
        self.delay_s = delay_s
        self.retry_window_s = retry_window_s
        # Pending triplets in order of first sight, so old ones are pruned from the front
        # in O(1) each; passed triplets are kept for the run (postgrey: 35 days).
        self._pending: OrderedDict[tuple[int, str, str], float] = OrderedDict()
        self._passed: dict[tuple[int, str, str], float] = {}   # triplet → when it passed

    def scope_rcpt(self, ask: Ask) -> Any:
        return inbound(ask.user, ask.own)

    def refuses_rcpt(self, ask: Ask) -> Any:
        if not _many(ask):
            return self._defers(ask.client, ask.reverse_path, ask.forward_path, ask.at)
        defers = self._defers
        return np.array([defers(client, sender, rcpt, at) for client, sender, rcpt, at in zip(
            ask.client.tolist(), ask.reverse_path.texts(), ask.forward_path.texts(),
            ask.at.tolist(), strict=True)], dtype=bool)

    def _defers(self, client: int, sender: str, rcpt: str, now: float) -> bool:
        key = (client, sender, rcpt)
        passed = self._passed.get(key)
        if passed is not None:
            if now < passed:   # asked earlier than the ask that let it pass (flow)
                self.out_of_order += 1
            return False
        pending = self._pending
        first_seen = pending.get(key)
        if first_seen is not None and now < first_seen:
            self.out_of_order += 1
        if first_seen is None or now - first_seen > self.retry_window_s:
            # new, or new again: not retried within the window (each triplet judged by its
            # own first sight, whatever order other triplets are asked in)
            pending.pop(key, None)
            pending[key] = now
            # forget what no ask can find pending any more (twice the window: asks may
            # come a little out of time order at fidelity flow)
            while now - next(iter(pending.values())) > 2 * self.retry_window_s:
                pending.popitem(last=False)
            return True
        if now - first_seen >= self.delay_s:
            del pending[key]
            self._passed[key] = now
            return False
        return True


class ContentFilter(Policy):
    """Judge each inbound message once, after DATA (SpamAssassin-like).

    ``examined`` counts the messages judged, ``refused`` those caught (rejected or junked).

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
        self.reply_data: Reply = S550_CONTENT_REJECTED if action == "reject" else JUNK
        self.salt = salt(rng)

    def scope_data(self, ask: Ask) -> Any:
        # outbound mail of own or authenticated clients is not filtered
        return inbound(ask.user, ask.own)

    def refuses_data(self, ask: Ask) -> Any:
        fp = self.false_positive_rate
        rate = fp + (self.detection_rate - fp) * ask.spam
        return keyed_uniform(ask.key, self.salt) < rate


class RateLimit(Policy):
    """Limit the recipients each authenticated account may submit (a token bucket).

    Each account's bucket holds ``recipients_per_hour`` tokens, starts full and refills
    continuously; each accepted recipient takes a token, and an empty bucket defers with 451.
    The buckets are two typed arrays indexed by account (16 bytes an account up to the
    highest that sent), not a dictionary entry each: a country's run keeps a bucket for
    every account that ever sent.

    Args:
        recipients_per_hour: The bucket's capacity and its refill rate per hour.
        start_s: The simulated time from which the limit applies (an ISP introducing it).
    """

    stateful: ClassVar[bool] = True
    reply_rcpt = S451_RATE_LIMITED

    def __init__(self, recipients_per_hour: float, start_s: float = 0.0):
        if recipients_per_hour <= 0:
            raise ValueError("recipients_per_hour must be positive")
        self.recipients_per_hour = recipients_per_hour
        self.start_s = start_s
        # per account: tokens, and the last update (NaN: the account never sent)
        self._tokens = array("d")
        self._last = array("d")

    def scope_rcpt(self, ask: Ask) -> Any:
        return (ask.user >= 0) & (ask.at >= self.start_s)

    def refuses_rcpt(self, ask: Ask) -> Any:
        if not _many(ask):
            self._grow(ask.user + 1)
            return self._take_one(ask.user, ask.at)
        return self._empty(ask.user, ask.at)

    def _empty(self, users: np.ndarray, instants: np.ndarray) -> np.ndarray:
        """Take a token of each account's bucket at its instant, in the order given (time
        order); True where the bucket is empty (451). Accounts' buckets are independent:
        the k-th asks of every account are taken together, as arrays, while there are
        many of them; the rest one at a time, in the order given."""
        empty = np.empty(len(users), dtype=bool)
        if not len(users):
            return empty
        self._grow(int(users.max()) + 1)
        rest = np.arange(len(users))
        if len(users) >= ROUND_AT_ONCE:   # else no round can be taken as arrays
            order = np.argsort(users, kind="stable")   # each account's asks, in order
            rank = runs(users[order])[2]
            by_rank = order[np.argsort(rank, kind="stable")]
            done = 0
            for end in np.cumsum(np.bincount(rank)).tolist():
                if end - done < ROUND_AT_ONCE:
                    break
                asks = by_rank[done:end]
                empty[asks] = self._take(users[asks], instants[asks])
                done = end
            rest = np.sort(by_rank[done:])   # back in the order given
        for i, user, now in zip(rest.tolist(), users[rest].tolist(), instants[rest].tolist(),
                                strict=True):
            empty[i] = self._take_one(user, now)
        return empty

    def _take(self, users: np.ndarray, now: np.ndarray) -> np.ndarray:
        """A token from each of these distinct accounts' buckets (``_take_one`` as arrays)."""
        capacity = self.recipients_per_hour
        # views of the buckets (dropped on return: the arrays can grow again)
        tokens_of, last_of = np.frombuffer(self._tokens), np.frombuffer(self._last)
        tokens, last = tokens_of[users], last_of[users]
        never = np.isnan(last)
        last[never] = now[never]
        early = now < last
        self.out_of_order += int(early.sum())
        now = np.where(early, last, now)
        tokens = np.minimum(capacity, _refilled(tokens, now - last, capacity))
        last_of[users] = now
        empty = tokens < 1.0
        tokens_of[users] = np.where(empty, tokens, tokens - 1.0)
        return empty

    def _take_one(self, user: int, now: float) -> bool:
        tokens, last = self._tokens[user], self._last[user]
        if last != last:   # NaN: a full bucket, as of now
            last = now
        elif now < last:   # an ask earlier than one already taken (fidelity flow)
            self.out_of_order += 1
            now = last
        capacity = self.recipients_per_hour
        tokens = min(capacity, _refilled(tokens, now - last, capacity))
        self._last[user] = now
        if tokens < 1.0:
            self._tokens[user] = tokens
            return True
        self._tokens[user] = tokens - 1.0
        return False

    def _grow(self, accounts: int) -> None:
        """Buckets up to account ``accounts - 1``."""
        more = accounts - len(self._last)
        if more > 0:
            self._tokens.extend(array("d", [self.recipients_per_hour]) * more)
            self._last.extend(array("d", [math.nan]) * more)


def _refilled(tokens: Any, elapsed: Any, per_hour: float) -> Any:
    """A bucket's tokens after ``elapsed`` seconds at ``per_hour`` (uncapped; one bucket or
    arrays of them). Multiply before dividing: 360 s at 10/h refills exactly one token."""
    return tokens + elapsed * per_hour / 3600.0


class MailboxQuota(Policy):
    """Refuse mail for a mailbox that holds its quota or more: 552 5.2.2 at RCPT, as
    Dovecot's quota-status service answers Postfix (``quota_status_overquota``), so the
    sending server bounces it. The mailbox is what :class:`~netsim.mail.mailbox.
    MailboxUsage` says it holds at the ask's instant.

    Args:
        quota_bytes: The octets a mailbox may hold.
        usage: The server's mailboxes over time (or, in the live lab, its maildrops).
    """

    stateful: ClassVar[bool] = True   # each server reads its own mailboxes
    reply_rcpt = S552_MAILBOX_FULL

    def __init__(self, quota_bytes: int, usage: MailboxUsage | MaildropUsage):
        if quota_bytes <= 0:
            raise ValueError("quota_bytes must be positive")
        self.quota_bytes = quota_bytes
        self.usage = usage

    @property
    def out_of_order(self) -> int:   # type: ignore[override]
        return self.usage.late

    def scope_rcpt(self, ask: Ask) -> Any:
        return ask.local & (ask.account >= 0)

    def refuses_rcpt(self, ask: Ask) -> Any:
        held, quota = self.usage.held, self.quota_bytes
        if not _many(ask):
            return held(ask.account, ask.at) >= quota
        return np.array([held(a, t) >= quota
                         for a, t in zip(ask.account.tolist(), ask.at.tolist(), strict=True)],
                        dtype=bool)
