"""Where a server's policies are asked: the one place, for one session or recipient (the
engines' hooks, :func:`first_refusal`) and for arrays of them at many servers (the flow
path, :meth:`Consultation.refusals`).

A server's policies are asked in the server's order, step by step; the first refusal wins,
and a data step's :data:`~netsim.mail.policy.JUNK` files the message and goes on. A policy
judged over facts is asked through its :class:`~netsim.mail.policy.Judge`; one with
classic hooks only, through them (``netsim.mail.policy``, module rules 1-3). Arrays are
asked in time order, the j-th policy of every server before the (j+1)-th of any (which
keeps each server's order); the j-th policies of one class are decided together, a
stateless one in one expression, a stateful one server by server, a classic hook one ask
at a time with the server's clock set to the ask's instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from netsim.mail.facts import Ask, Asks, PolicyServer
from netsim.mail.policy import JUNK, STEPS, InboundPolicy, Judge, Panel, Policy, judge_many
from netsim.protocols import Reply, SMTPSession


class Hook:
    """A classic hook of a policy, asked as a :class:`~netsim.mail.policy.Judge` is (one
    call an entry, whichever kind it is)."""

    __slots__ = ("hook", "takes_arg")

    def __init__(self, hook: Callable[..., Reply | None], takes_arg: bool):
        self.hook = hook
        self.takes_arg = takes_arg

    def one(self, ask: object, server: object, session: SMTPSession, arg: object,
            ) -> Reply | None:
        if self.takes_arg:
            return self.hook(server, session, arg)
        return self.hook(server, session)


Entry = Judge | Hook


class ConsultedServer(PolicyServer, Protocol):
    """What asking a server's policies uses of the server (``MailServer`` is one): what the
    policies may read of it (:class:`~netsim.mail.policy.PolicyServer`), and the policies.

    Attributes:
        policies: The server's policies, in the order they are asked.
        steps: Its policies by step (:func:`steps_of` keeps it; None: not made yet).
        instant: The instant the server acts on, set while a classic hook is asked at an
            instant of its own (:class:`Consultation`); None: the clock's.
    """

    steps: Steps | None
    instant: float | None

    @property
    def policies(self) -> Sequence[InboundPolicy]: ...


def classic(policy: object, step: str) -> bool:
    """Whether ``policy`` has a classic hook of its own for ``step`` (not a facts
    policy's, which :class:`~netsim.mail.policy.Policy` derives from its decision)."""
    method = getattr(type(policy), f"check_{step}", None)
    return method is not None and method is not getattr(Policy, f"check_{step}")


class Steps:
    """A list of policies by step, ready to be asked: a ``Judge`` for a policy judged
    over facts, a ``Hook`` for a classic one; policies that do not look at a step are left
    out of it."""

    def __init__(self, policies: Sequence[object]):
        self.policies = tuple(policies)
        self.entries: dict[str, list[Entry]] = {}
        self.signature: dict[str, tuple[tuple[type, bool], ...]] = {}
        for step in STEPS:
            entries: list[Entry] = []
            kinds: list[tuple[type, bool]] = []
            for policy in self.policies:
                if isinstance(policy, Policy) and policy.judges(step):
                    entries.append(Judge(policy, step))
                    kinds.append((type(policy), True))
                elif classic(policy, step):
                    entries.append(Hook(getattr(policy, f"check_{step}"), step != "connect"))
                    kinds.append((type(policy), False))
            self.entries[step] = entries
            self.signature[step] = tuple(kinds)


def steps_of(server: ConsultedServer) -> Steps:
    """The server's policies by step (made again only when its list of policies changed)."""
    found: Steps | None = server.steps
    if found is None or found.policies != tuple(server.policies):
        found = server.steps = Steps(server.policies)
    return found


def first_refusal(server: PolicyServer, entries: list[Entry], ask: Ask, session: SMTPSession,
                  arg: object = None) -> Reply | None:
    """One ask of one step, through ``entries`` (``steps_of(server).entries[step]``):
    the first refusal, or None. A junk verdict files the message (``session.extra``)."""
    for entry in entries:
        reply = entry.one(ask, server, session, arg)
        if reply is not None:
            if reply is not JUNK:
                return reply
            session.extra["folder"] = "junk"
    return None


@dataclass
class Refusals:
    """Per ask: the refusing reply (``replies[reply[i]]``; 0: none) and whether a data
    step filed the message as junk."""

    reply: np.ndarray
    replies: list[Reply | None]
    junk: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Refusals:
        """``n`` asks, none refused (yet)."""
        return cls(np.zeros(n, dtype=np.int64), [None], np.zeros(n, dtype=bool))

    @property
    def is_empty(self) -> bool:
        """Whether no ask was refused or filed as junk."""
        return len(self.replies) == 1


class Consultation:
    """The policies of many servers laid out for asking arrays of asks (the flow path): for
    each step, layer ``j`` holds the j-th policy of every server, grouped by class into
    panels. Made once a world's policies are final (when its run starts)."""

    def __init__(self, servers: Sequence[ConsultedServer]):
        self.servers = servers
        steps = [steps_of(s) for s in servers]
        self.layers: dict[str, list[list[_Group]]] = {}
        for step in STEPS:
            depth = max((len(st.entries[step]) for st in steps), default=0)
            layers = []
            for j in range(depth):
                kinds: dict[tuple[type, bool], list[int]] = {}
                for i, st in enumerate(steps):
                    if j < len(st.signature[step]):
                        kinds.setdefault(st.signature[step][j], []).append(i)
                layers.append([_Group(len(servers), members,
                                      [steps[m].entries[step][j] for m in members], judged)
                               for (_, judged), members in kinds.items()])
            self.layers[step] = layers
        # the steps whose asks must be put in time order: a classic hook or a stateful
        # policy answers by what it was asked before; the others judge each ask alone
        self.in_order = {step: any(g.panel is None or g.panel.cls.stateful
                                   for groups in layers for g in groups)
                         for step, layers in self.layers.items()}

    def count(self) -> None:
        """Add what was asked through the panels to each policy's counts."""
        for layers in self.layers.values():
            for groups in layers:
                for group in groups:
                    if group.panel is not None:
                        group.panel.count()

    def asks(self, step: str) -> bool:
        """Whether any server has a policy for ``step``."""
        return bool(self.layers[step])

    def refusals(self, step: str, server: np.ndarray, asks: Asks,
                 session_of: Callable[[int], tuple[SMTPSession, object]],
                 asked: np.ndarray | None = None) -> Refusals:
        """Many asks of one step, at the servers ``servers[server[i]]``: each ask's first
        refusal. ``asked`` limits the asks put (the others were refused before this
        step): a mask, or the asks' indices in time order; ``session_of(i)`` makes the
        session and argument a classic hook of ask ``i`` sees."""
        found = Refusals.empty(len(server))
        reply, replies, junk = found.reply, found.replies, found.junk
        ids: dict[int, int] = {}   # by identity: replies are the few constants policies give
        layers = self.layers[step]
        if not layers:
            return found
        if asked is not None and asked.dtype != bool:
            order = asked   # already in time order
        else:
            order = np.flatnonzero(asked) if asked is not None else np.arange(len(server))
            if self.in_order[step]:
                order = order[np.argsort(asks.at[order], kind="stable")]

        def id_of(r: Reply) -> int:
            known = ids.get(id(r))
            if known is None:
                known = ids[id(r)] = len(replies)
                replies.append(r)
            return known

        for j, groups in enumerate(layers):
            if j:   # what an earlier layer refused is not asked again
                order = order[reply[order] == 0]
                if not len(order):
                    break
            for group in groups:
                # its asks, in time order
                rows = order if group.everyone else order[group.slot[server[order]] >= 0]
                if not len(rows):
                    continue
                owner = group.slot[server[rows]]
                if group.panel is not None:
                    hit = judge_many(group.panel, owner, asks.take(rows))
                    if not hit.any():
                        continue
                    rid = np.array([id_of(r) for r in group.replies])[
                        group.reply_of[owner[hit]]]
                    is_junk = rid == ids.get(id(JUNK), -1)
                    junk[rows[hit][is_junk]] = True
                    reply[rows[hit][~is_junk]] = rid[~is_junk]
                    continue
                for r, k in zip(rows.tolist(), owner.tolist(), strict=True):
                    answer = _ask_hook(group.entries[k], self.servers[group.members[k]],
                                       float(asks.at[r]), *session_of(r))
                    if answer is JUNK:
                        junk[r] = True
                    elif answer is not None:
                        reply[r] = id_of(answer)
        return found


class _Group:
    """The j-th policies of some servers, of one class: a panel, or classic hooks."""

    def __init__(self, servers: int, members: list[int], entries: list[Entry], judged: bool):
        self.members = members
        self.entries = entries
        self.slot = np.full(servers, -1)              # a server's place among the members
        self.slot[members] = np.arange(len(members))
        self.everyone = len(members) == servers
        judges = [e for e in entries if isinstance(e, Judge)]
        self.panel = Panel(judges) if judged else None
        # the replies the members' policies give, each once (most give one constant), and
        # each member's among them
        self.replies: list[Reply] = []
        self.reply_of = np.zeros(len(judges), dtype=np.int64)
        seen: dict[int, int] = {}   # by identity, as ``Consultation.refusals`` tells them
        for i, judge in enumerate(judges):
            if id(judge.reply) not in seen:
                seen[id(judge.reply)] = len(self.replies)
                self.replies.append(judge.reply)
            self.reply_of[i] = seen[id(judge.reply)]


def _ask_hook(entry: Hook, server: ConsultedServer, at: float, session: SMTPSession,
              arg: object) -> Reply | None:
    """A classic hook, asked as the engines ask it: the server's clock at the ask's
    instant; JUNK if it filed the message as junk."""
    server.instant = at
    try:
        reply = entry.one(None, server, session, arg)
    finally:
        server.instant = None
    if reply is None and session.extra.get("folder") == "junk":
        return JUNK
    return reply
