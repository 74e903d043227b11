"""Server-side mail policies: each decision written once, for one recipient or for arrays.

Rules this module keeps (after h11's ``_state.py``):

1. A policy judges the facts of an SMTP step (``netsim.mail.facts``): the client, its
   port and networks, the authenticated account, the recipient, the message. The engines'
   hooks ask about one session or recipient, with Python scalars; the flow path asks about
   many at once, with numpy arrays, one entry each. A built-in policy writes each decision
   as one expression valid for both (``&``, ``|``, comparisons, ``not_``), so the two
   paths cannot disagree.
2. A decision is a scope (what the policy examines, e.g. only inbound sessions) and a
   verdict among those (where it refuses), with one reply. A policy whose verdict depends on
   earlier asks (a rate limit's bucket, greylisting's triplets) says so (``stateful``): it
   is asked server by server, in time order.
3. A policy written with classic hooks only (``check_connect(server, session)`` and the
   others, aiosmtpd's habit; ``server`` is what a policy may read, :class:`PolicyServer`)
   is honoured on every path: the flow path asks it one session or recipient at a time, in
   time order, with a session built from the arrays. The flow path decides a minute at a
   time and spam senders' sessions in between, so it cannot keep the engines' order across
   all of them: it asks classic hooks only of a policy that declares
   ``order_free = True`` (its answers do not depend on what it was asked before), and
   refuses to start with any other (``FlowError``, naming the policy, hook and server).
4. Policies are consulted in one place (:mod:`netsim.mail.consult`), in the server's order;
   the first refusal wins. ``MECHANISMS`` names what stopped a recipient from its reply.

Relay rules and unknown users are policies like any other, so a new defence is a new class
here or in :mod:`netsim.mail.defences` and one line where the server is built, never a
branch in protocol code.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

import numpy as np

from netsim.mail.accounts import NULL_SENDER, sender_account
from netsim.mail.facts import Ask, Asks, PolicyServer, data_ask, not_, recipient, session_ask
from netsim.protocols import Envelope, Reply, SMTPSession
from netsim.protocols.replies import (
    S450_GREYLISTED,
    S451_RATE_LIMITED,
    S452_TOO_MANY_RCPTS,
    S530_AUTH_REQUIRED,
    S535_AUTH_INVALID,
    S550_CONTENT_REJECTED,
    S550_USER_UNKNOWN,
    S552_MAILBOX_FULL,
    S552_SIZE_EXCEEDED,
    S553_SENDER_NOT_OWNED,
    S554_BLOCKLISTED,
    S554_RELAY_DENIED,
)
from netsim.runs import changes

__all__ = [
    "JUNK",
    "MECHANISMS",
    "STEPS",
    "InboundPolicy",
    "Judge",
    "LocalRecipients",
    "Panel",
    "Policy",
    "RelayControl",
    "SenderLoginMatch",
    "default_policies",
    "judge_many",
    "mechanism",
]

STEPS = ("connect", "mail", "rcpt", "data")

#: A data step's "refusal" that accepts the message into the junk folder (POP3 does not
#: serve it) instead of refusing it.
JUNK = Reply(250, "2.0.0", "Ok: filed as junk")


class InboundPolicy(Protocol):
    """The classic hooks a policy may have; each returns a refusal or None. ``server`` is
    what the policy may read of the server that asks it (:class:`PolicyServer`).

    ``check_data`` may instead file the message as junk by setting
    ``session.extra["folder"] = "junk"`` and returning None.
    """

    def check_connect(self, server: PolicyServer, session: SMTPSession) -> Reply | None: ...

    def check_mail(self, server: PolicyServer, session: SMTPSession, reverse_path: str,
                   ) -> Reply | None: ...

    def check_rcpt(self, server: PolicyServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None: ...

    def check_data(self, server: PolicyServer, session: SMTPSession, envelope: Envelope,
                   ) -> Reply | None: ...


class Policy:
    """A policy with no objections. A subclass judges a step (``connect``, ``mail``,
    ``rcpt``, ``data``) either over facts, by defining ``refuses_<step>(ask)`` (where it
    refuses), optionally ``scope_<step>(ask)`` (what it examines; default everything), and
    ``reply_<step>`` (the refusal; for ``data``, :data:`JUNK` files the message in the junk
    folder instead); or by overriding a classic hook ``check_<step>(server, session, arg)``
    (module rule 3).

    ``examined`` and ``refused`` count the asks in scope and the refusals of a policy
    judged over facts, on every path alike. A stateful policy counts in ``out_of_order``
    the asks about one key (an account, a triplet) that came earlier in time than one it
    already answered: none on the engine path; at fidelity flow the spam senders' sessions
    come between the flow path's minutes, and each such ask may be answered otherwise
    than the engines would (docs/fidelity.md).
    """

    stateful: ClassVar[bool] = False   # verdicts depend on earlier asks (module rule 2)
    # Classic hooks answer alike whatever order they are asked in (a pure function of the
    # session and its argument): the flow path asks them only then (module rule 3).
    order_free: ClassVar[bool] = False
    examined = 0
    refused = 0
    out_of_order = 0   # a stateful policy's asks for one key that came out of time order

    def judges(self, step: str) -> bool:
        """Whether this policy judges ``step`` over facts."""
        return hasattr(self, f"refuses_{step}")

    # The classic hooks of a policy judged over facts: the same decision, asked once.
    def check_connect(self, server: PolicyServer, session: SMTPSession) -> Reply | None:
        if not self.judges("connect"):
            return None
        return Judge(self, "connect").one(session_ask(server, session))

    def check_mail(self, server: PolicyServer, session: SMTPSession, reverse_path: str,
                   ) -> Reply | None:
        if not self.judges("mail"):
            return None
        ask = session_ask(server, session)
        ask.reverse_path = reverse_path
        return Judge(self, "mail").one(ask)

    def check_rcpt(self, server: PolicyServer, session: SMTPSession, forward_path: str,
                   ) -> Reply | None:
        if not self.judges("rcpt"):
            return None
        return Judge(self, "rcpt").one(
            recipient(server, session_ask(server, session), forward_path))

    def check_data(self, server: PolicyServer, session: SMTPSession, envelope: Envelope,
                   ) -> Reply | None:
        if not self.judges("data"):
            return None
        reply = Judge(self, "data").one(data_ask(session_ask(server, session), envelope))
        if reply is JUNK:
            session.extra["folder"] = "junk"
            return None
        return reply


class Judge:
    """One step of a policy judged over facts: the scope, the verdict and the counts, for
    one ask (:meth:`one`) or many (:func:`judge_many`)."""

    __slots__ = ("policy", "refuses", "reply", "scope", "step")

    def __init__(self, policy: Policy, step: str):
        self.policy = policy
        self.step = step
        self.scope = getattr(policy, f"scope_{step}", None)
        self.refuses = getattr(policy, f"refuses_{step}")
        self.reply: Reply = getattr(policy, f"reply_{step}")

    def one(self, ask: Ask, server: object = None, session: object = None,
            arg: object = None) -> Reply | None:
        """The reply if the policy refuses this one ask, else None (the server, session and
        argument a classic hook would be asked with are not needed)."""
        policy = self.policy
        if self.scope is not None and not self.scope(ask):
            return None
        policy.examined += 1
        if not self.refuses(ask):
            return None
        policy.refused += 1
        return self.reply


class Panel:
    """One step of the policies of one class at several servers, asked together: their
    settings gathered once (a setting they share is itself, one that differs an array, one
    entry a server)."""

    def __init__(self, judges: list[Judge]):
        self.judges = judges
        self.policies = [j.policy for j in judges]
        first = judges[0]
        self.cls, self.step = type(first.policy), first.step
        # the class's scope and verdict of the step, looked up once
        self.scope = getattr(self.cls, f"scope_{self.step}", None)
        self.verdict = getattr(self.cls, f"refuses_{self.step}")
        self._settings: dict[str, Any] = {}
        # what the policies examined and refused here, added to their counts by ``count``
        self.examined = np.zeros(len(judges), dtype=np.int64)
        self.refused = np.zeros(len(judges), dtype=np.int64)

    def count(self) -> None:
        """Add what was asked through the panel to each policy's counts."""
        for policy, examined, refused in zip(self.policies, self.examined.tolist(),
                                             self.refused.tolist(), strict=True):
            policy.examined += examined
            policy.refused += refused
        self.examined[:] = 0
        self.refused[:] = 0

    def setting(self, name: str) -> tuple[Any, bool]:
        """The policies' ``name``, and whether it differs between them (then an array)."""
        found = self._settings.get(name)
        if found is None:
            values = [getattr(p, name) for p in self.policies]
            first = values[0]
            if isinstance(first, np.ndarray):
                if not all(isinstance(v, np.ndarray) and np.array_equal(v, first)
                           for v in values):
                    raise TypeError(f"{self.cls.__name__}.{name} differs between servers "
                                    "and is not a number: the policy must be stateful")
                found = (first, False)
            elif all(v is first or v == first for v in values):
                found = (first, False)
            else:
                found = (np.array(values), True)
            self._settings[name] = found
        return found


def judge_many(panel: Panel, owner: np.ndarray, asks: Asks) -> np.ndarray:
    """Where many asks are refused, in time order; ask ``i`` is put to the policy
    ``panel.policies[owner[i]]``. The scope is one expression for all, the settings
    gathered per ask; so is the verdict of a stateless policy, while a stateful one decides
    what it examines server by server, one call a server. The panel counts what each policy
    examined and refused (``Panel.count`` adds them)."""
    policies, scope, verdict = panel.policies, panel.scope, panel.verdict
    picked = (np.arange(len(owner)) if scope is None
              else np.flatnonzero(np.asarray(scope(_Gathered(panel, owner), asks), dtype=bool)))
    refused = np.zeros(len(owner), dtype=bool)
    if not len(picked):
        return refused
    if panel.cls.stateful:
        # the asks server by server, each server's in time order (a stable sort keeps it)
        rows = picked[np.argsort(owner[picked], kind="stable")]
        mine = owner[rows]
        starts = np.flatnonzero(changes(mine)).tolist()
        for start, stop in zip(starts, [*starts[1:], len(rows)], strict=True):
            part = rows[start:stop]
            refused[part] = np.asarray(verdict(policies[int(mine[start])], asks.take(part)),
                                       dtype=bool)
    else:
        every = len(picked) == len(owner)   # every ask in scope: the asks as they are
        refused[picked] = np.asarray(verdict(
            _Gathered(panel, owner if every else owner[picked]),
            asks if every else asks.take(picked)), dtype=bool)
    panel.examined += np.bincount(owner[picked], minlength=len(policies))
    panel.refused += np.bincount(owner[refused], minlength=len(policies))
    return refused


class _Gathered:
    """Stands in for ``self`` when the policies of a panel decide many asks at once: each
    setting as the panel gathered it, per ask where it differs (``owner`` says whose)."""

    def __init__(self, panel: Panel, owner: np.ndarray):
        self._panel = panel
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        value, differs = self._panel.setting(name)
        return value[self._owner] if differs else value


class LocalRecipients(Policy):
    """Mail for the server's own domain must name an existing account (550 5.1.1)."""

    reply_rcpt = S550_USER_UNKNOWN

    def refuses_rcpt(self, ask: Ask) -> Any:
        return ask.local & (ask.account < 0)


class RelayControl(Policy):
    """Relay to other domains only for authenticated clients, for the ISP's own networks
    on port 25 until ``auth_on_25_from`` (Postfix ``permit_mynetworks,
    permit_sasl_authenticated, reject_unauth_destination``), and, where POP-before-SMTP is
    in force (from ``pop_from``), on port 25 for an address that logged in by POP3 at most
    ``pop_window_s`` before. Never for strangers."""

    reply_rcpt = S554_RELAY_DENIED

    def __init__(self, auth_on_25_from: float = math.inf, pop_from: float = math.inf,
                 pop_window_s: float = 0.0):
        self.auth_on_25_from = auth_on_25_from
        self.pop_from = pop_from
        self.pop_window_s = pop_window_s

    def refuses_rcpt(self, ask: Ask) -> Any:
        on_25 = ask.port == 25
        mynetworks = ask.own & (ask.at < self.auth_on_25_from)
        after_pop = (ask.at >= self.pop_from) & (ask.at - ask.pop_at <= self.pop_window_s)
        return not_(ask.local | (ask.user >= 0) | (on_25 & (mynetworks | after_pop)))


class SenderLoginMatch(Policy):
    """An authenticated client sends only as its own account: MAIL FROM must be the
    address of the account it logged in as (Postfix ``reject_sender_login_mismatch``; the
    null sender passes). Otherwise 553 5.7.1, and nothing of the session is relayed."""

    reply_mail = S553_SENDER_NOT_OWNED

    def __init__(self, domain: str, users: int, start_s: float = 0.0):
        self.domain = domain
        self.users = users
        self.start_s = start_s

    def scope_mail(self, ask: Ask) -> Any:
        return (ask.user >= 0) & (ask.at >= self.start_s)

    def refuses_mail(self, ask: Ask) -> Any:
        # the engines carry the reverse path as text, the flow path its account as arrays
        sender = ask.sender
        if sender is None:
            sender = sender_account(ask.reverse_path, self.domain, self.users)
        return (sender != NULL_SENDER) & (sender != ask.user)


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
    S553_SENDER_NOT_OWNED: "sender_mismatch",
    S552_MAILBOX_FULL: "mailbox_full",
}


def mechanism(reply: Reply) -> str:
    """The name of what a refusal stands for; ``smtp_<code>`` for a reply nobody named."""
    return MECHANISMS.get(reply, f"smtp_{reply.code}")
