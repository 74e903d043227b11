"""Spam at fidelity ``flow``: bots' and spammer servers' sessions decided as arrays.

A sender picks its bot, strategy and message at each session's instant as on the engine
path (``netsim.world.spam``) and hands the session here instead of running it; a sender
that learns nothing from its sessions (spammer servers, a botnet that does not adapt) draws
a block of them at once and hands them over ahead of their instants, each decided as if
handed over then. Sessions are kept as columns (``Tries``) from then on. At the end of
each minute, before the queues' attempts (as the engines' sessions of the minute came
before them), every session handed over is decided, in time order, as
``SpamSessions.run`` decides one: the MX and A lookups through the sender's ISP's
subscriber resolver (``Lookups``), the connection (``Connections``), the SMTP session at
the recipient's server (``Dialogue``), one retry after a 4xx (``SpamSessions.retries``,
keyed by the message), and each recipient's outcome at the instant the engines record it.
A session with stolen credentials logs in at its account's server on 587; the owners'
submissions of the accounts spammers hold wait for it (``LegitFlow.owners_due``), and both
are decided in one dialogue, so that an account's rate limit sees them in time order.

An adaptive bot learns from a session at the instant it ends, as on the engine path: what
its decided sessions taught is applied in time order before its botnet's choice reads its
state (a choice reads the state of the bot it falls on alone, ``Botnet._choose``), and
every minute's end; a bot whose strategy could move, or who could stop, with a session of
its own still undecided has every session due decided first.
"""

from __future__ import annotations

import bisect
import heapq
import math
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import simpy

from netsim.mail import Kind, Outcome
from netsim.mail.defences import Listing
from netsim.mail.ledger import KINDS, Ledger
from netsim.net import Resolver
from netsim.world.columns import Columns, group_rows
from netsim.world.dialogue import Decided, Part, decide_parts
from netsim.world.lookups import ROUTED, Lookups
from netsim.world.spam import SenderKind, first_hop_port, helo_of

if TYPE_CHECKING:
    from netsim.world.flow import LegitFlow
    from netsim.world.spam import Botnet, Drawn, Messages, SpamSessions

SPAM = KINDS.index(Kind.SPAM)


class SpamFlowWorld(Protocol):
    """What deciding spam's sessions reads of the world."""

    @property
    def env(self) -> simpy.Environment: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def listing(self) -> Listing | None: ...

    def next_ids(self, n: int) -> np.ndarray: ...


class Tries(NamedTuple):
    """Spam sessions' tries as columns: ``s`` one entry a try (``t``: when it starts;
    ``mid``, -1 until it is decided; its sender's ``kind`` (``SpamFlow.kind``),
    ``address``, ``isp`` and ``subnet``; ``dst``: a server's index in ``ServerArrays``, an
    ISP's or an open relay's, -1 the recipients' domain's MX; its message's ``target``,
    ``forged_server``, ``forged_user``, ``size`` and ``key``; ``account``: the account at
    ``dst`` whose stolen password it logs in with on 587, -1 none, on 25; ``botnet`` and
    ``bot``: whom it teaches, -1 nobody; ``round``: 0 the first try, 1 the retry;
    ``accepted``: whether a try so far had a recipient taken; ``count``: its recipients),
    ``r`` one entry a recipient, grouped by try in ``s``'s order (``place`` in its message,
    ``user``, ``typo``, and ``row``: its ledger row, -1 until the message is decided)."""

    s: Columns
    r: Columns

    @staticmethod
    def join(parts: list[Tries]) -> Tries:
        return Tries(Columns.join([p.s for p in parts]), Columns.join([p.r for p in parts]))

    def __len__(self) -> int:
        return len(self.s)

    def take(self, index: np.ndarray) -> Tries:
        """The tries ``index`` (an index array), in its order, with their recipients; every
        column read (a try's are changed in place as it is decided)."""
        rows = group_rows(self.s.count, index)
        return Tries(_read(self.s, index), _read(self.r, rows))

    def cut(self, now: float) -> tuple[Tries, Tries]:
        """Of tries in time order: those that start by ``now``, and the rest (views)."""
        k = int(np.searchsorted(self.s.t, now, side="right"))
        m = int(self.s.count[:k].sum())
        return (Tries(_read(self.s, slice(0, k)), _read(self.r, slice(0, m))),
                Tries(_read(self.s, slice(k, None)), _read(self.r, slice(m, None))))


# a try's columns (``Tries``), in the order ``SpamFlow.hand`` records them
HANDED = ("t", "kind", "address", "isp", "subnet", "dst", "botnet", "bot", "account",
          "target", "forged_server", "forged_user", "size", "key")


class SpamFlow:
    """The spam sessions handed over since the last decision, and their deciding."""

    def __init__(self, world: SpamFlowWorld, flow: LegitFlow, sessions: SpamSessions,
                 resolvers: list[Resolver]):
        self.world = world
        self.flow = flow
        self.ledger = world.ledger
        self.sessions = sessions
        self.arrays = flow.arrays
        self.connections = flow.connections
        self.custody = flow.custody
        self.queues = flow.queues
        self.lookups = Lookups(resolvers, self.arrays.servers[:self.arrays.isps])
        self.end = self.custody.end
        # sessions handed over one at a time (``hand``), and a block at a time ahead of
        # their instants (``hand_ahead``), not decided yet
        self.undecided: list[tuple[object, ...]] = []
        self.ahead: list[Tries] = []       # (each in time order)
        self.retries: list[Tries] = []     # the retries after a 4xx, not tried yet (each
        # in time order)
        self.next_retry = math.inf         # the earliest of them
        self.botnets: dict[int, Botnet] = {}
        # by (botnet, bot): sessions the bot has not learnt from yet, those undecided, the
        # instants of its retries not tried yet (a heap), and what its decided sessions
        # teach: (when it ends, sequence, whether a try had a recipient taken)
        self.unlearned: dict[tuple[int, int], int] = {}
        self.undecided_of: dict[tuple[int, int], int] = {}
        self.retry_at: dict[tuple[int, int], list[float]] = {}
        self.lessons: dict[tuple[int, int], list[tuple[float, int, bool]]] = {}
        self._seq = 0
        self.kinds: dict[SenderKind, int] = {}
        self._kinds: list[SenderKind] = []
        self._kind_origin = np.zeros(0, dtype=np.int64)
        self._kind_retry = np.zeros(0)
        self._kind_delay = np.zeros(0)
        # by kind: the ledger's codes of its sender, origin ISP, network and path, and its
        # first port (-1: not coded yet; coded when first opened, in the ledger's order)
        self._codes = np.zeros((0, 5), dtype=np.int64)
        self.dns_failure = self.ledger.code("stopped_by", "dns_failure")
        flow.spam = self

    # -- from the senders ------------------------------------------------------------------
    def kind(self, kind: SenderKind) -> int:
        """The number of a kind of sender (registered when first seen)."""
        known = self.kinds.get(kind)
        if known is None:
            known = self.kinds[kind] = len(self._kinds)
            self._kinds.append(kind)
            self._codes = np.vstack([self._codes, np.full(5, -1)])
            self._kind_origin = np.append(self._kind_origin, self.queues.origin(kind.origin))
            self._kind_retry = np.append(self._kind_retry, kind.retry_4xx)
            self._kind_delay = np.append(self._kind_delay, kind.retry_delay_s)
        return known

    def hand(self, kind: int, address: int, isp: int, subnet: int, drawn: Drawn, dst: int,
             botnet: Botnet | None = None, bot: int = -1, account: int = -1) -> None:
        """A session starting now, from ``address`` (a sender of ``kind`` in ISP ``isp``'s
        network ``subnet``) to the server ``dst`` (-1: the MX); ``botnet`` and ``bot``:
        whom it teaches (None: nobody); ``account``: the account at ``dst`` it logs in to
        (-1: none)."""
        index = -1
        if botnet is not None:
            index = botnet.index
            self.botnets[index] = botnet
            key = (index, bot)
            self.unlearned[key] = self.unlearned.get(key, 0) + 1
            self.undecided_of[key] = self.undecided_of.get(key, 0) + 1
        self.undecided.append((self.world.env.now, kind, address, isp, subnet, dst, index,
                               bot, account, drawn.target, drawn.forged_server,
                               drawn.forged_user, drawn.size, drawn.key, drawn.users,
                               drawn.typos))

    def hand_ahead(self, t: np.ndarray, kind: np.ndarray, address: np.ndarray,
                   isp: np.ndarray, subnet: np.ndarray, dst: np.ndarray,
                   messages: Messages) -> None:
        """Sessions starting at ``t`` (ascending, from now on) of senders whose sessions
        teach them nothing (``hand``'s arguments, one entry a session, of ``messages`` in
        order): each is decided as if handed over at its instant; those from the run's end
        on never start."""
        n = int(np.searchsorted(t, self.end, side="left"))
        if not n:
            return
        count = messages.recipients[:n]
        m = int(count.sum())
        none = np.full(n, -1)
        s = {"t": t[:n], "kind": kind[:n], "address": address[:n], "isp": isp[:n],
             "subnet": subnet[:n], "dst": dst[:n], "botnet": none, "bot": none,
             "account": none, **{name: getattr(messages, name)[:n] for name in
                                 ("target", "forged_server", "forged_user", "size", "key")}}
        self.ahead.append(_tries(s, count, messages.users[:m], messages.typos[:m]))

    def settle(self, botnet: Botnet, bot: int) -> None:
        """Make ``bot``'s state (its strategy, whether it is active) exact as of now:
        what its decided sessions that ended by now taught is learnt, in time order. Where
        a session of its own is due and undecided (its end and outcome unknown), that
        order is known only once it is decided: every session due is decided first if its
        outcome could move the bot (``Botnet.may_change``); if it could not, the state is
        exact as it stands and the lessons wait."""
        key = (botnet.index, bot)
        if key not in self.unlearned or not botnet.active[bot]:
            return   # (nothing to learn; a stopped bot stays stopped)
        now = self.world.env.now
        unknown = self.undecided_of.get(key, 0) + sum(
            t <= now for t in self.retry_at.get(key, ()))
        if unknown:
            lessons = self.lessons.get(key, [])
            ended = self._ended(lessons, now)
            if not botnet.may_change(bot, [a for _, _, a in lessons[:ended]], unknown):
                return
            self._decide(now)
        self._learn(key, now)

    def unsent(self, botnet: Botnet, bot: int) -> None:
        """A session of ``bot`` that had nowhere to go failed now: learnt in time order
        with what its other sessions teach."""
        key = (botnet.index, bot)
        self.botnets[botnet.index] = botnet
        self.unlearned[key] = self.unlearned.get(key, 0) + 1
        self._seq += 1
        self.lessons.setdefault(key, []).append((self.world.env.now, self._seq, False))

    @staticmethod
    def _ended(lessons: list[tuple[float, int, bool]], now: float) -> int:
        """Sorts a bot's lessons in time order: how many ended by ``now``."""
        lessons.sort()
        return bisect.bisect_right(lessons, (now, math.inf))

    def _learn(self, key: tuple[int, int], now: float) -> None:
        """What the bot ``key``'s decided sessions that ended by ``now`` taught, in time
        order (none of its sessions due is undecided)."""
        lessons = self.lessons.get(key)
        if not lessons:
            return
        ended = self._ended(lessons, now)
        botnet, bot = self.botnets[key[0]], key[1]
        for _, _, accepted in lessons[:ended]:
            self._learnt(key)
            botnet.learn(bot, accepted)
        if ended == len(lessons):
            del self.lessons[key]
        else:
            del lessons[:ended]

    def _learnt(self, key: tuple[int, int]) -> None:
        left = self.unlearned[key] - 1
        if left:
            self.unlearned[key] = left
        else:
            del self.unlearned[key]

    # -- deciding ----------------------------------------------------------------------------
    def decide(self, now: float) -> None:
        """Every session handed over, and every retry due, by ``now``; then what every
        bot's sessions taught by ``now`` (none due is undecided now)."""
        self._decide(now)
        for key in list(self.lessons):
            self._learn(key, now)

    def _decide(self, now: float) -> None:
        work = self._handed(now)
        self.undecided_of = {}
        # the owners' sessions of the accounts spammers log in to, in the same dialogue
        owners = self.flow.owners_due(now)
        while True:   # a retry due within the same span is tried in it too
            work += self._retries_due(now)
            if not work:
                if owners is not None:
                    decide_parts(self.arrays, self.ledger, [owners])
                break
            tries = Tries.join(work)   # (every column read: deciding changes some in place)
            t = tries.s.t
            if (t[1:] < t[:-1]).any():   # in time order (one part handed over is already)
                tries = tries.take(np.argsort(t, kind="stable"))
            self._open_rows(tries)
            self._attempt(tries, owners)
            work, owners = [], None

    def _handed(self, now: float) -> list[Tries]:
        """The sessions handed over that start by ``now``: one at a time, then ahead."""
        work = []
        if self.undecided:
            columns = list(zip(*self.undecided, strict=True))
            self.undecided = []
            typos, users = columns.pop(), columns.pop()
            s = dict(zip(HANDED, (np.array(c) for c in columns), strict=True))
            count = np.array([len(u) for u in users])
            work.append(_tries(s, count, np.concatenate(users), np.concatenate(typos)))
        ahead = []
        for block in self.ahead:
            if block.s.t[0] > now:
                ahead.append(block)
                continue
            due, rest = block.cut(now)
            work.append(due)
            if len(rest):
                ahead.append(rest)
        self.ahead = ahead
        return work

    def _retry_due(self, now: float) -> bool:
        return bool(self.retries) and self.next_retry <= now

    def _retries_due(self, now: float) -> list[Tries]:
        if not self._retry_due(now):
            return []
        work, later = [], []
        for block in self.retries:
            due, rest = block.cut(now)
            if len(due):
                work.append(due)
                for key in _teachers(due.s)[1]:
                    at = self.retry_at[key]
                    heapq.heappop(at)   # (a bot's due retries are its earliest)
                    if not at:
                        del self.retry_at[key]
            if len(rest):
                later.append(rest)
        self.retries = later
        self.next_retry = min((float(b.s.t[0]) for b in later), default=math.inf)
        return work

    def held_rows(self) -> list[np.ndarray]:
        """Rows of retries not yet due (a session handed over opens its rows when it is
        decided)."""
        return [block.r.row for block in self.retries]

    def _open_rows(self, tries: Tries) -> None:
        """The new sessions' message ids and rows, as the engines open them at the
        session's start (in time order)."""
        s, r = tries
        new = np.flatnonzero(s.mid < 0)
        if not len(new):
            return
        s.mid[new] = self.world.next_ids(len(new))
        rows = np.flatnonzero(r.row < 0)
        per_row = np.repeat(np.arange(len(s)), s.count)[rows]
        kind = s.kind[per_row]
        # each kind of sender as the ledger codes it, coded when first opened
        codes = self._codes
        new = kind[codes[kind, 0] < 0]
        for k in new[np.sort(np.unique(new, return_index=True)[1])].tolist():
            code, of = self.ledger.code, self._kinds[k]
            codes[k] = (code("sender", of.sender.value), code("origin_isp", of.origin),
                        code("origin_network", of.network), code("path", of.strategy),
                        first_hop_port(of.strategy))
        sender, origin_isp, origin_network, path, port = codes[kind].T
        row0 = self.ledger.add_rows(
            Kind.SPAM, message_id=s.mid[per_row], rcpt_index=r.place[rows], sender=sender,
            origin_isp=origin_isp, origin_network=origin_network, path=path,
            first_hop_port=port, rcpt_domain=self.queues.domain_code[s.target[per_row]],
            created=s.t[per_row])
        r.row[rows] = row0 + np.arange(len(rows))

    def _attempt(self, tries: Tries, owners: Part | None) -> None:
        """One try of each session (``SpamSessions.run``'s loop body), in time order; their
        SMTP sessions in one dialogue with ``owners``' (``LegitFlow.owners_due``)."""
        custody, end = self.custody, self.end
        s, r = tries
        n = len(s)
        t, dst, target = s.t, s.dst, s.target
        server = np.where(dst >= 0, dst, target)
        per_row = np.repeat(np.arange(n), s.count)
        rows = r.row
        ready = t.copy()            # when the connection is attempted
        done = np.full(n, np.nan)   # when the sender is done with the session (NaN: not yet)
        waits = np.zeros(n, dtype=bool)   # for its retry
        lost = np.zeros(n, dtype=bool)
        mx = np.flatnonzero(dst < 0)
        if len(mx):   # the route to the recipients' domain
            ready[mx], rcode = self.lookups.route(
                s.isp[mx], target[mx], np.zeros(len(mx), int), t[mx],
                (s.key[mx], s.round[mx] + 1), end)
            lost[mx[rcode != ROUTED]] = True
            # a failed lookup: every recipient expires when its answer comes
            custody.finish(rows[lost[per_row]], Outcome.EXPIRED, ready[per_row][lost[per_row]],
                           cause=self.dns_failure)
            heard = lost & (ready < end)
            done[heard] = ready[heard]
        go = ~lost & (ready < end)
        custody.hold(rows[(~lost & ~go)[per_row]])
        ask = np.flatnonzero(go)
        # each session's port: 587 to log in with a stolen password, else 25
        port = np.where(s.account >= 0, 587, 25)
        is_open, delay, one_way, cause = self.connections.connect(
            s.subnet[ask], s.address[ask], server[ask], port[ask], ready[ask])
        opened = np.full(n, np.inf)
        opened[ask] = ready[ask] + delay
        lanes = np.zeros(n)
        lanes[ask] = one_way
        shut = np.zeros(n, dtype=bool)
        shut[ask[~is_open]] = True
        why = np.zeros(n, dtype=np.int64)
        why[ask[~is_open]] = cause[~is_open]
        # a connection that never opened: every recipient blocked, by what stopped it
        custody.finish(rows[shut[per_row]], Outcome.BLOCKED, opened[per_row][shut[per_row]],
                       cause=why[per_row][shut[per_row]])
        heard = shut & (opened < end)
        done[heard] = opened[heard]
        live = np.zeros(n, dtype=bool)
        live[ask[is_open]] = True
        custody.hold(rows[(live & (opened >= end))[per_row]])
        live &= opened < end
        parts = [] if owners is None else [owners]
        if live.any():
            parts.append(self._sessions(tries, live, server, opened, lanes, port, per_row,
                                        done, waits))
        decide_parts(self.arrays, self.ledger, parts)
        taught, keys = _teachers(s)
        for at, key, accepted, retry in zip(
                done[taught].tolist(), keys, s.accepted[taught].tolist(),
                waits[taught].tolist(), strict=True):
            if at == at:
                self._seq += 1
                self.lessons.setdefault(key, []).append((at, self._seq, accepted))
            elif not retry:   # never heard within the run: never learnt from
                self._learnt(key)

    def _sessions(self, tries: Tries, live: np.ndarray, server: np.ndarray,
                  opened: np.ndarray, one_way: np.ndarray, port: np.ndarray,
                  per_row: np.ndarray, done: np.ndarray, waits: np.ndarray) -> Part:
        """The SMTP sessions of the tries that connected, for their dialogue; what each
        recipient came to is taken in by ``_sessions_decided``."""
        s, r = tries
        pick = np.flatnonzero(live)
        index = np.full(len(s), -1)
        index[pick] = np.arange(len(pick))
        mine = np.flatnonzero(index[per_row] >= 0)
        r_session = index[per_row[mine]]
        srv = server[pick]
        origin = self._kind_origin[s.kind[pick]]
        src = s.address[pick]
        # carried out of the sender's networks, and seen by a blocklist, once open
        server_origin = self.queues.owner_origin   # an ISP's server's: its ISP's index
        r_rows = r.row[mine]
        self.ledger.sent_out_rows(r_rows[(server_origin[srv] != origin)[r_session]])
        if self.world.listing is not None:
            self.world.listing.seen(src, opened[pick], np.ones(len(pick), dtype=bool))
        n = len(pick)
        from_srv, from_user = s.forged_server[pick], s.forged_user[pick]
        login = s.account[pick]
        stolen = np.flatnonzero(login >= 0)
        if len(stolen):   # a stolen password's session logs in to its account, sends as it
            from_srv, from_user = from_srv.copy(), from_user.copy()
            from_srv[stolen], from_user[stolen] = srv[stolen], login[stolen]
        sessions = Columns({
            "server": srv, "opened": opened[pick], "one_way": one_way[pick], "client": src,
            "subnet": s.subnet[pick], "port": port[pick], "user": login,
            "from_srv": from_srv, "from_user": from_user, "size": s.size[pick],
            "key": s.key[pick], "kind": np.full(n, SPAM), "mid": s.mid[pick],
            "pop_at": self.arrays.last_logins(srv, src, opened[pick], one_way[pick],
                                              np.ones(n, dtype=bool))})
        recipients = Columns({
            "session": r_session, "place": r.place[mine],
            "rcpt_isp": s.target[pick][r_session], "rcpt_user": r.user[mine],
            "typo": r.typo[mine], "row": r_rows})
        return Part(sessions, recipients, lambda k: helo_of(int(src[k])),
                    lambda d: self._sessions_decided(d, tries, pick, sessions, recipients,
                                                     origin, done, waits))

    def _sessions_decided(self, d: Decided, tries: Tries, pick: np.ndarray,
                          sessions: Columns, recipients: Columns, origin: np.ndarray,
                          done: np.ndarray, waits: np.ndarray) -> None:
        """What each recipient of the sessions ``pick`` of ``tries`` came to (``d``), and
        each session's end and retry."""
        custody, end, ledger = self.custody, self.end, self.ledger
        s = tries.s
        server_origin = self.queues.owner_origin
        srv, r_rows, r_session = sessions.server, recipients.row, recipients.session
        code, cause, ends = d.code, d.cause, d.end
        accepted = code == 0
        taken = recipients.take(accepted)
        k = taken.session
        ledger.taken_outside_rows(taken.row[server_origin[srv[k]] != origin[k]])
        # into the maildrops, or relayed for the server's own networks into its queue
        self.queues.accept(Columns({
            "row": taken.row, "rcpt_isp": taken.rcpt_isp, "rcpt_user": taken.rcpt_user,
            "typo": taken.typo, "qsrv": srv[k], "origin": origin[k],
            **{name: getattr(sessions, name)[k]
               for name in ("mid", "size", "key", "from_srv", "from_user", "kind")}}),
            d.dot[k], d.junk[accepted], self.queues.stepped + 1)
        n = len(pick)
        s.accepted[pick] |= np.bincount(r_session[accepted], minlength=n) > 0
        heard = ends < end   # what the sender hears at the session's end
        done[pick[heard]] = ends[heard]
        row_end = ends[r_session]
        refused = ~accepted
        permanent = refused & (code >= 500)
        custody.finish(r_rows[permanent], Outcome.REJECTED, row_end[permanent],
                       code=code[permanent], cause=cause[permanent])
        temporary = refused & ~permanent
        # the one retry after a 4xx, a delay later, if the sender retries this message
        again = heard & (s.round[pick] == 0) & (
            np.bincount(r_session[temporary], minlength=n) > 0)
        maybe = np.flatnonzero(again)
        kind = s.kind[pick[maybe]]
        again[maybe] = self.sessions.retries(self._kind_retry[kind], s.key[pick[maybe]])
        again_row = again[r_session]
        last = temporary & ~again_row
        custody.finish(r_rows[last], Outcome.REJECTED, row_end[last], code=code[last],
                       cause=cause[last])
        if not again.any():
            return
        j = np.flatnonzero(again)
        done[pick[j]] = np.nan
        at = ends[j] + self._kind_delay[s.kind[pick[j]]]
        retry = tries.take(pick[j])
        retried = temporary & again_row   # the recipients refused with a 4xx
        kept = retry.r.take(retried[again_row])
        count = np.bincount(r_session[retried], minlength=n)[j]
        soon = at < end
        waits[pick[j[soon]]] = True
        custody.hold(kept.row[~soon[np.repeat(np.arange(len(j)), count)]])
        waiting = np.flatnonzero(soon)
        if len(waiting):
            later = Tries(retry.s.but(t=at, round=np.ones(len(j), dtype=np.int64),
                                      count=count), kept)
            later = later.take(waiting[np.argsort(at[waiting], kind="stable")])
            self.retries.append(later)
            taught, keys = _teachers(later.s)
            for t, key in zip(later.s.t[taught].tolist(), keys, strict=True):
                heapq.heappush(self.retry_at.setdefault(key, []), t)
            self.next_retry = min(self.next_retry, float(later.s.t[0]))


def _teachers(s: Columns) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Of tries' columns (``Tries.s``): those that teach a bot, and whom, as ``(botnet,
    bot)``."""
    taught = np.flatnonzero(s.botnet >= 0)
    return taught, list(zip(s.botnet[taught].tolist(), s.bot[taught].tolist(), strict=True))


def _read(columns: Columns, index: np.ndarray | slice) -> Columns:
    """Every column at ``index``, read now (a slice's are views)."""
    return Columns(columns.take(index).data)


def _tries(s: dict[str, np.ndarray], count: np.ndarray, users: np.ndarray,
           typos: np.ndarray) -> Tries:
    """New sessions' tries (``Tries``) of the columns ``s`` (``HANDED``)."""
    n, m = len(count), len(users)
    first = np.cumsum(count) - count
    return Tries(
        Columns({**s, "mid": np.full(n, -1), "round": np.zeros(n, dtype=np.int64),
                 "accepted": np.zeros(n, dtype=bool), "count": count}),
        Columns({"place": np.arange(m) - np.repeat(first, count), "user": users,
                 "typo": typos, "row": np.full(m, -1)}))
