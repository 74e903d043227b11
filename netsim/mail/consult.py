"""Where a server's policies are asked: the one place, for one session or recipient (the
engines' hooks, :func:`first_refusal`) and for arrays of them at many servers (the flow
path, :func:`refusals`).

A server's policies are asked in the server's order, step by step; the first refusal wins,
and a data step's :data:`~netsim.mail.policy.JUNK` files the message and goes on. A policy
judged over facts is asked through its :class:`~netsim.mail.policy.Judge`; one with
classic hooks only, through them (``netsim.mail.policy``, module rules 1-3). Arrays are
asked in time order: servers whose policies are of the same classes are decided together,
a stateless policy in one expression, a stateful one server by server, a classic hook one
ask at a time with the server's clock set to the ask's instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from netsim.mail.policy import JUNK, STEPS, Ask, Judge, Policy, judge_many
from netsim.protocols import Reply, SMTPSession

if TYPE_CHECKING:
    from netsim.mail.server import MailServer

Hook = Callable[..., Reply | None]
Entry = Judge | Hook


def classic(policy: object, step: str) -> bool:
    """Whether ``policy`` has a classic hook of its own for ``step`` (not a facts
    policy's, which :class:`~netsim.mail.policy.Policy` derives from its decision)."""
    method = getattr(type(policy), f"check_{step}", None)
    return method is not None and method is not getattr(Policy, f"check_{step}")


class Steps:
    """A list of policies by step, ready to be asked: a ``Judge`` for a policy judged
    over facts, the bound hook for a classic one; policies that do not look at a step are
    left out of it."""

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
                    entries.append(getattr(policy, f"check_{step}"))
                    kinds.append((type(policy), False))
            self.entries[step] = entries
            self.signature[step] = tuple(kinds)


def steps_of(server: MailServer) -> Steps:
    """The server's policies by step (made again only when its list of policies changed)."""
    found: Steps | None = server.steps
    if found is None or found.policies != tuple(server.policies):
        found = server.steps = Steps(server.policies)
    return found


def first_refusal(server: MailServer, entries: list[Entry], ask: Ask, session: SMTPSession,
                  arg: object = None) -> Reply | None:
    """One ask of one step, through ``entries`` (``steps_of(server).entries[step]``):
    the first refusal, or None. A junk verdict files the message (``session.extra``)."""
    for entry in entries:
        if isinstance(entry, Judge):
            reply = entry.one(ask)
            if reply is JUNK:
                session.extra["folder"] = "junk"
                continue
        elif arg is None:
            reply = entry(server, session)
        else:
            reply = entry(server, session, arg)
        if reply is not None:
            return reply
    return None


@dataclass
class Refusals:
    """Per ask: the refusing reply (``replies[reply[i]]``; 0: none) and whether a data
    step filed the message as junk."""

    reply: np.ndarray
    replies: list[Reply | None]
    junk: np.ndarray

    def codes(self) -> np.ndarray:
        """Per ask, the refusal's reply code (0: none)."""
        return np.array([0 if r is None else r.code for r in self.replies])[self.reply]


def refusals(servers: Sequence[MailServer], step: str, server: np.ndarray, asks: Ask,
             session_of: Callable[[int], tuple[SMTPSession, object]],
             asked: np.ndarray | None = None) -> Refusals:
    """Many asks of one step, at the servers ``servers[server[i]]``: each ask's first
    refusal. ``asked`` limits the asks put (the others were refused before this step);
    ``session_of(i)`` makes the session and argument a classic hook of ask ``i`` sees."""
    n = len(server)
    replies: list[Reply | None] = [None]
    ids: dict[Reply, int] = {}
    reply = np.zeros(n, dtype=np.int64)
    junk = np.zeros(n, dtype=bool)
    live = np.ones(n, dtype=bool) if asked is None else asked.copy()
    order = np.argsort(asks.at, kind="stable")
    order = order[live[order]]
    all_steps = [steps_of(s) for s in servers]
    groups: dict[tuple[tuple[type, bool], ...], list[int]] = {}
    for i in np.unique(server[order]).tolist():
        signature = all_steps[i].signature[step]
        if signature:
            groups.setdefault(signature, []).append(i)

    def id_of(r: Reply) -> int:
        found = ids.get(r)
        if found is None:
            found = ids[r] = len(replies)
            replies.append(r)
        return found

    for signature, members in groups.items():
        slot = np.full(len(servers), -1)
        slot[members] = np.arange(len(members))
        rows = order[slot[server[order]] >= 0]          # this group's asks, in time order
        for j, (_, judged) in enumerate(signature):
            rows = rows[reply[rows] == 0]
            if not len(rows):
                break
            entries = [all_steps[m].entries[step][j] for m in members]
            owner = slot[server[rows]]
            if judged:
                judges: list[Judge] = entries   # type: ignore[assignment]
                hit = judge_many(judges, owner, asks.take(rows))
                rid = np.array([id_of(jd.reply) for jd in judges])[owner[hit]]
                is_junk = rid == ids.get(JUNK, -1)
                junk[rows[hit][is_junk]] = True
                reply[rows[hit][~is_junk]] = rid[~is_junk]
            else:
                for r, k in zip(rows.tolist(), owner.tolist(), strict=True):
                    found = _ask_hook(entries[k], servers[members[k]], float(asks.at[r]),
                                      *session_of(r))
                    if found is JUNK:
                        junk[r] = True
                    elif found is not None:
                        reply[r] = id_of(found)
    return Refusals(reply, replies, junk)


def _ask_hook(hook: Any, server: MailServer, at: float, session: SMTPSession,
              arg: object) -> Reply | None:
    """A classic hook, asked as the engines ask it: the server's clock at the ask's
    instant; JUNK if it filed the message as junk."""
    server.instant = at
    try:
        reply: Reply | None = hook(server, session) if arg is None else hook(server, session,
                                                                             arg)
    finally:
        server.instant = None
    if reply is None and session.extra.get("folder") == "junk":
        return JUNK
    return reply
