"""Spam at fidelity ``flow``: bots' and spammer servers' sessions decided as arrays.

A sender picks its bot, strategy and message at each session's instant as on the engine
path (``netsim.world.spam``) and hands the session here instead of running it. At the end of
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
decided sessions taught is applied in time order before any later choice or strategy reads
it; a bot whose strategy could move with an undecided session of its own has every
undecided session decided first, and so has a botnet whose choice could read a bot that
an undecided session may have stopped.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy

from netsim.mail import Kind, Outcome
from netsim.mail.defences import Listing
from netsim.mail.ledger import KINDS, Ledger
from netsim.net import Resolver
from netsim.world.columns import Columns
from netsim.world.dialogue import Decided, Part, decide_parts
from netsim.world.lookups import ROUTED, Lookups
from netsim.world.spam import first_hop_port, helo_of

if TYPE_CHECKING:
    from netsim.world.flow import LegitFlow
    from netsim.world.spam import Botnet, Drawn, Sender, SpamSessions

SPAM = KINDS.index(Kind.SPAM)


class SpamFlowWorld(Protocol):
    """What deciding spam's sessions reads of the world."""

    @property
    def env(self) -> simpy.Environment: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def listing(self) -> Listing | None: ...

    def next_id(self) -> int: ...


@dataclass(slots=True, eq=False)
class Handed:
    """One spam session handed over: who sends what, where (``dst``: a server's index in
    ``ServerArrays``, an ISP's or an open relay's; -1 the recipients' domain's MX), from
    when (``t``), which try (``round``); ``botnet`` and ``bot``: whom it teaches (None: a
    spammer server's, or a botnet's that does not adapt); ``account``: the account at
    ``dst`` whose stolen password it logs in with on 587 (-1: none, on 25)."""

    t: float
    mid: int
    sender: Sender
    drawn: Drawn
    dst: int
    botnet: Botnet | None
    bot: int
    account: int = -1
    rows: int = -1        # the message's first ledger row (-1: not opened yet)
    round: int = 0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    accepted: bool = False
    waits: bool = False   # for its retry


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
        self.undecided: list[Handed] = []
        self.retries: list[tuple[float, int, Handed]] = []   # a heap, by instant
        self.learning: list[tuple[float, int, Handed]] = []  # decided, by when they end
        # by (botnet, bot): sessions the bot has not learnt from yet, and those undecided
        self.unlearned: dict[tuple[int, int], int] = {}
        self.undecided_of: dict[tuple[int, int], int] = {}
        # by botnet: undecided sessions of bots that could stop before they are learnt from
        self.stopping: dict[int, int] = {}
        self._seq = 0
        self._coded: dict[tuple[object, ...], tuple[int, ...]] = {}   # by kind of sender
        self.dns_failure = self.ledger.code("stopped_by", "dns_failure")
        flow.spam = self

    # -- from the senders ------------------------------------------------------------------
    def hand(self, sender: Sender, drawn: Drawn, dst: int, botnet: Botnet | None = None,
             bot: int = -1, account: int = -1) -> None:
        """A session starting now, to the server ``dst`` (-1: the MX); ``botnet``
        and ``bot``: whom it teaches (None: nobody); ``account``: the account at ``dst``
        it logs in to (-1: none)."""
        world = self.world
        self.undecided.append(Handed(world.env.now, world.next_id(), sender, drawn, dst,
                                     botnet, bot, account))
        if botnet is not None:
            key = (botnet.index, bot)
            self.unlearned[key] = unlearned = self.unlearned.get(key, 0) + 1
            self.undecided_of[key] = self.undecided_of.get(key, 0) + 1
            if botnet.may_stop(bot, unlearned):
                self.stopping[botnet.index] = self.stopping.get(botnet.index, 0) + 1

    def before_choice(self, botnet: Botnet, now: float) -> None:
        """What a botnet's choice at ``now`` reads: which bots are active. Every decided
        session that ended by then is learnt from; if an undecided one could have stopped
        its bot, every session due is decided first."""
        if self.stopping.get(botnet.index) or (self.retries and self.retries[0][0] <= now):
            self._decide(now)
        self.learn(now)

    def before_session(self, botnet: Botnet, bot: int, now: float) -> bool:
        """Make ``bot``'s strategy exact at ``now``: if a session of its own not yet learnt
        from could move it, decide every session due (True: choose again)."""
        key = (botnet.index, bot)
        if self._due(*key, now) and botnet.may_change(bot, self.unlearned.get(key, 0)):
            self.decide(now)
            return True
        return False

    def before_learning(self, botnet: Botnet, bot: int, now: float) -> None:
        """A session of ``bot`` that had nowhere to go failed now: what its decided
        sessions taught comes first."""
        if self._due(botnet.index, bot, now):
            self._decide(now)
        self.learn(now)

    def learn(self, now: float) -> None:
        """Apply, in time order, what the decided sessions that ended by ``now`` taught
        their bots (a bot with a session still undecided has it decided first: it may have
        ended earlier)."""
        heap = self.learning
        while heap and heap[0][0] <= now:
            entry = heap[0][2]
            botnet = entry.botnet
            assert botnet is not None
            if self._due(botnet.index, entry.bot, now):
                self._decide(now)
                continue
            heapq.heappop(heap)
            self._learnt(entry)
            botnet.learn(entry.bot, entry.accepted)

    def _learnt(self, entry: Handed) -> None:
        assert entry.botnet is not None
        key = (entry.botnet.index, entry.bot)
        left = self.unlearned[key] - 1
        if left:
            self.unlearned[key] = left
        else:
            del self.unlearned[key]

    def _due(self, botnet: int, bot: int, now: float) -> bool:
        """Whether a session of the bot, or any retry, is due by ``now`` and undecided."""
        return bool(self.undecided_of.get((botnet, bot))
                    or (self.retries and self.retries[0][0] <= now))

    # -- deciding ----------------------------------------------------------------------------
    def decide(self, now: float) -> None:
        """Every session handed over, and every retry due, by ``now``; then what they
        taught by ``now``."""
        self._decide(now)
        self.learn(now)

    def _decide(self, now: float) -> None:
        work, self.undecided = self.undecided, []
        self.undecided_of = {}
        self.stopping = {}
        # the owners' sessions of the accounts spammers log in to, in the same dialogue
        owners = self.flow.owners_due(now)
        while True:   # a retry due within the same span is tried in it too
            while self.retries and self.retries[0][0] <= now:
                work.append(heapq.heappop(self.retries)[2])
            if not work:
                if owners is not None:
                    decide_parts(self.arrays, self.ledger, [owners])
                break
            work.sort(key=lambda e: e.t)
            for entry in work:
                entry.waits = False
            self._open_rows([e for e in work if e.rows < 0])
            self._attempt(work, owners)
            work, owners = [], None

    def held_rows(self) -> list[np.ndarray]:
        """Rows of retries not yet due (a session handed over opens its rows when it is
        decided)."""
        return [entry.pending for _, _, entry in self.retries]

    def _open_rows(self, new: list[Handed]) -> None:
        """The new sessions' rows, as the engines open them at the session's start."""
        if not new:
            return
        counts = np.array([len(e.drawn.users) for e in new])
        each = np.repeat(np.arange(len(new)), counts)
        first = np.cumsum(counts) - counts
        # each session's sender as the ledger codes it: its type, origin ISP and network,
        # path and first port (a few kinds of sender send all of a run's sessions)
        coded = self._coded
        words = []
        for e in new:
            s = e.sender
            kind = (s.sender, s.origin, s.network, s.strategy)
            known = coded.get(kind)
            if known is None:
                code = self.ledger.code
                known = coded[kind] = (code("sender", s.sender.value),
                                       code("origin_isp", s.origin),
                                       code("origin_network", s.network),
                                       code("path", s.strategy), first_hop_port(s.strategy))
            words.append(known)
        sender, origin_isp, origin_network, path, port = np.array(words).T[:, each]
        target = np.array([e.drawn.target for e in new])
        row0 = self.ledger.add_rows(
            Kind.SPAM, message_id=np.array([e.mid for e in new])[each],
            rcpt_index=np.arange(len(each)) - first[each], sender=sender,
            origin_isp=origin_isp, origin_network=origin_network, path=path,
            first_hop_port=port,
            rcpt_domain=self.queues.domain_code[target][each],
            created=np.array([e.t for e in new])[each])
        for entry, a, n in zip(new, first.tolist(), counts.tolist(), strict=True):
            entry.rows = row0 + a
            entry.pending = np.arange(row0 + a, row0 + a + n)

    def _attempt(self, work: list[Handed], owners: Part | None) -> None:
        """One try of each session (``SpamSessions.run``'s loop body), in time order; their
        SMTP sessions in one dialogue with ``owners``' (``LegitFlow.owners_due``)."""
        custody, end = self.custody, self.end
        n = len(work)
        t = np.array([e.t for e in work])
        dst = np.array([e.dst for e in work])
        target = np.array([e.drawn.target for e in work])
        server = np.where(dst >= 0, dst, target)
        counts = np.array([len(e.pending) for e in work])
        per_row = np.repeat(np.arange(n), counts)
        rows = np.concatenate([e.pending for e in work])
        place = np.arange(len(rows)) - (np.cumsum(counts) - counts)[per_row]
        ready = t.copy()            # when the connection is attempted
        done = np.full(n, np.nan)   # when the sender is done with the session (NaN: not yet)
        lost = np.zeros(n, dtype=bool)
        mx = np.flatnonzero(dst < 0)
        if len(mx):   # the route to the recipients' domain
            picked = [work[i] for i in mx.tolist()]
            ready[mx], rcode = self.lookups.route(
                np.array([e.sender.isp for e in picked]), target[mx], np.zeros(len(mx), int),
                t[mx], (np.array([e.drawn.key for e in picked]),
                        np.array([e.round + 1 for e in picked])), end)
            lost[mx[rcode != ROUTED]] = True
            # a failed lookup: every recipient expires when its answer comes
            custody.finish(rows[lost[per_row]], Outcome.EXPIRED, ready[per_row][lost[per_row]],
                           cause=self.dns_failure)
            heard = lost & (ready < end)
            done[heard] = ready[heard]
        go = ~lost & (ready < end)
        custody.hold(rows[(~lost & ~go)[per_row]])
        src = np.array([e.sender.address for e in work])
        subnet = np.array([e.sender.subnet for e in work])
        ask = np.flatnonzero(go)
        # the accounts sessions with stolen passwords log in to (None: no such session),
        # and each session's port: 587 to log in, else 25
        logins = [e.account for e in work]
        account = np.array(logins) if max(logins) >= 0 else None
        port = np.full(n, 25) if account is None else np.where(account >= 0, 587, 25)
        is_open, delay, one_way, cause = self.connections.connect(
            subnet[ask], src[ask], server[ask], port[ask], ready[ask])
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
            parts.append(self._sessions(work, live, server, opened, lanes, rows, per_row,
                                        place, done, port, account))
        decide_parts(self.arrays, self.ledger, parts)
        for entry, at in zip(work, done.tolist(), strict=True):
            if entry.botnet is None:
                continue
            if at == at:
                self._seq += 1
                heapq.heappush(self.learning, (at, self._seq, entry))
            elif not entry.waits:   # never heard within the run: never learnt from
                self._learnt(entry)

    def _sessions(self, work: list[Handed], live: np.ndarray, server: np.ndarray,
                  opened: np.ndarray, one_way: np.ndarray, rows: np.ndarray,
                  per_row: np.ndarray, place: np.ndarray, done: np.ndarray,
                  port: np.ndarray, account: np.ndarray | None) -> Part:
        """The SMTP sessions of the tries that connected, for their dialogue; what each
        recipient came to is taken in by ``_sessions_decided``."""
        ledger = self.ledger
        pick = np.flatnonzero(live)
        index = np.full(len(work), -1)
        index[pick] = np.arange(len(pick))
        mine = index[per_row] >= 0
        r_rows, r_session, r_place = rows[mine], index[per_row[mine]], place[mine]
        senders = [work[i] for i in pick.tolist()]
        srv = server[pick]
        origin = np.array([self.queues.origin(e.sender.origin) for e in senders])
        src = np.array([e.sender.address for e in senders])
        # carried out of the sender's networks, and seen by a blocklist, once open
        server_origin = self.queues.owner_origin   # an ISP's server's: its ISP's index
        ledger.sent_out_rows(r_rows[(server_origin[srv] != origin)[r_session]])
        if self.world.listing is not None:
            self.world.listing.seen(src, opened[pick], np.ones(len(pick), dtype=bool))
        users, typos = [], []
        for e in senders:
            at = e.pending - e.rows   # the recipients' places in the message
            users.append(e.drawn.users[at])
            typos.append(e.drawn.typos[at])
        n = len(pick)
        login = np.full(n, -1)
        from_srv = np.array([e.drawn.forged_server for e in senders])
        from_user = np.array([e.drawn.forged_user for e in senders])
        if account is not None:
            # a stolen password's session logs in to its account and sends as its owner
            login = account[pick]
            stolen = np.flatnonzero(login >= 0)
            from_srv[stolen], from_user[stolen] = srv[stolen], login[stolen]
        sessions = Columns({
            "server": srv, "opened": opened[pick], "one_way": one_way[pick], "client": src,
            "subnet": np.array([e.sender.subnet for e in senders]),
            "port": port[pick], "user": login, "from_srv": from_srv, "from_user": from_user,
            "size": np.array([e.drawn.size for e in senders]),
            "key": np.array([e.drawn.key for e in senders]),
            "kind": np.full(n, SPAM), "mid": np.array([e.mid for e in senders]),
            "pop_at": self.arrays.last_logins(srv, src, opened[pick], one_way[pick],
                                              np.ones(n, dtype=bool))})
        recipients = Columns({
            "session": r_session, "place": r_place,
            "rcpt_isp": np.array([e.drawn.target for e in senders])[r_session],
            "rcpt_user": np.concatenate(users), "typo": np.concatenate(typos),
            "row": r_rows})
        return Part(sessions, recipients, lambda k: helo_of(int(src[k])),
                    lambda d: self._sessions_decided(d, senders, pick, sessions, recipients,
                                                     origin, done))

    def _sessions_decided(self, d: Decided, senders: list[Handed], pick: np.ndarray,
                          sessions: Columns, recipients: Columns, origin: np.ndarray,
                          done: np.ndarray) -> None:
        """What each recipient of the sessions ``senders`` came to (``d``), and each
        session's end and retry."""
        custody, end, ledger = self.custody, self.end, self.ledger
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
        accepted_any = np.bincount(r_session[accepted], minlength=len(pick)) > 0
        heard = ends < end   # what the sender hears at the session's end
        row_end = ends[r_session]
        refused = ~accepted
        permanent = refused & (code >= 500)
        custody.finish(r_rows[permanent], Outcome.REJECTED, row_end[permanent],
                       code=code[permanent], cause=cause[permanent])
        temporary = refused & ~permanent
        # each session's recipients refused with a 4xx (rows are grouped by session)
        held = np.flatnonzero(temporary)
        bounds = np.searchsorted(r_session[held], np.arange(len(pick) + 1)).tolist()
        again = np.zeros(len(pick), dtype=bool)
        for j, entry in enumerate(senders):
            entry.accepted |= bool(accepted_any[j])
            if not heard[j]:
                continue
            done[pick[j]] = ends[j]
            left = r_rows[held[bounds[j]:bounds[j + 1]]]
            if not len(left) or entry.round or not self.sessions.retries(entry.sender,
                                                                         entry.drawn.key):
                continue
            # the one retry after a 4xx, a delay later
            again[j] = True
            done[pick[j]] = np.nan
            entry.round, entry.pending = 1, left
            entry.t = float(ends[j]) + entry.sender.retry_delay_s
            entry.waits = entry.t < end
            if entry.waits:
                self._seq += 1
                heapq.heappush(self.retries, (entry.t, self._seq, entry))
            else:
                custody.hold(left)
        last = temporary & ~again[r_session]
        custody.finish(r_rows[last], Outcome.REJECTED, row_end[last], code=code[last],
                       cause=cause[last])
