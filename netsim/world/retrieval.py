"""First retrievals (POP3 or IMAP) of a flow-fidelity run, computed check by check.

At fidelity ``flow`` no retrieval session is simulated: every delivery into a maildrop (by
the flow path or by the engines) is recorded here, and once its check has begun (at the
latest at the end of the run) each gets its first retrieval as the session adapters would
time it: the recipient's next periodic check strictly after the delivery, the TCP
handshake, the greeting, then

- POP3: the login (USER/PASS, or APOP; STLS first where offered), STAT, LIST and UIDL,
  then RETR and DELE of each waiting message in delivery order, each RETR answered after
  its transfer time;
- IMAP: the login (LOGIN; STARTTLS first where offered), SELECT INBOX, UID SEARCH UNSEEN,
  then one UID FETCH whose answer carries the unseen messages in delivery order, each
  retrieved once its octets have arrived.

The check is made from home (a roaming user's check from a visited network differs by its
latency only). A delivery is recorded at most a few minutes after its instant (the engines
record theirs a dialogue ahead; the flow path's queues a minute behind, a bounce a minute
more), so the checks that began more than :data:`SETTLED_S` ago have all their deliveries:
their retrievals are computed whole, as at the end of the run, and their deliveries let go
(timed on the run's helper thread where it has one, ``netsim.world.helper``, and recorded
a minute later).
A delivery that came later than that for a check already computed would be computed apart;
``late`` counts them (none is expected).
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from netsim.mail.column_buffer import ColumnBuffer
from netsim.mail.ledger import Ledger
from netsim.mail.server import MailServer
from netsim.mail.session import (
    COMMANDS_BEFORE_LOGIN,
    IMAP_COMMANDS_BEFORE_FETCH,
    POP3_COMMANDS_BEFORE_RETR,
    exchange,
    exchanges,
    greeting,
    retrieval,
    transfer,
)
from netsim.net import Network, Subnet
from netsim.scenario import Scenario
from netsim.world.columns import Columns
from netsim.world.helper import Helper
from netsim.world.workload import Workload, check_number, next_check

SETTLED_S = 1800.0   # a check's deliveries are all in this long after it began
FILED_S = 600.0      # waiting deliveries are filed by the ten minutes their check begins in


class RetrievalWorld(Protocol):
    """What timing first retrievals reads of the world."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def server_index(self) -> dict[int, int]: ...
    @property
    def servers(self) -> list[MailServer]: ...
    @property
    def workloads(self) -> list[Workload]: ...
    @property
    def network(self) -> Network: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def helper(self) -> Helper: ...

    def dynamic_pool(self, isp: int) -> Subnet: ...


class Held:
    """Messages and octets a server's maildrops hold."""

    __slots__ = ("bytes", "messages")

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def add(self, sizes: np.ndarray) -> None:
        self.messages += len(sizes)
        self.bytes += int(sizes.sum())

    def summary(self) -> dict[str, int]:
        return {"messages": self.messages, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class Timed:
    """The first retrievals of one server's deliveries, to be recorded: the ledger rows and
    their instants, the octets left in maildrops (IMAP's, and POP3's not retrieved by the
    end) and the sessions."""

    isp: int
    rows: np.ndarray
    retrieved: np.ndarray
    imap_sizes: np.ndarray
    pop3_sizes: np.ndarray
    sessions: int


class Retrievals:
    """Deliveries into maildrops waiting for their check: the ISP, user, ledger row, instant
    and size of each, in typed columns (26 bytes a delivery). New ones are appended as they
    come, and filed with the instant their check begins (8 bytes more) at the next ``due``,
    which then reads only the files its checks can be in (not every waiting delivery: a
    country has millions)."""

    def __init__(self, world: RetrievalWorld):
        self.world = world
        cfg = world.scenario.users
        self.interval = cfg.pop3_check_interval_s
        # each account's check phase, all ISPs' in one array (read when the first check is
        # due: the workloads are built after the servers)
        self._phase: np.ndarray | None = None
        self._first: np.ndarray | None = None
        self._computed = -math.inf   # the checks that began before this are computed
        self.late = 0
        self._columns = {name: ColumnBuffer(typecode) for name, typecode in (
            ("isp", "h"), ("user", "i"), ("row", "q"), ("at", "d"), ("size", "i"))}
        # by FILED_S window of their check: parts of the deliveries filed, in filing order
        self._filed: dict[int, list[dict[str, np.ndarray]]] = {}
        self._timing: list[Future[list[Timed]]] = []   # on the helper, since ``due``
        # what the maildrops hold at the end, by the protocol of their users' clients
        self.held = {"pop3": Held(), "imap": Held()}
        # the servers whose quota reads their mailboxes (none in most worlds: no work then)
        self._usage = {k: s.usage for k, s in enumerate(world.servers) if s.usage is not None}

    def add_many(self, isp: np.ndarray, users: np.ndarray, rows: np.ndarray, at: np.ndarray,
                 size: np.ndarray) -> None:
        """Deliveries at many ISPs' servers (``isp``: each delivery's, an ISP index)."""
        for name, values in (("isp", isp), ("user", users), ("row", rows), ("at", at),
                             ("size", size)):
            self._columns[name].push(values)
        for k, usage in self._usage.items():   # what a quota reads (the engines add theirs)
            mine = isp == k
            if mine.any():
                usage.add(users[mine], at[mine], size[mine])

    def add_engines(self, server: MailServer, users: list[int], rows: list[int], at: float,
                    size: int) -> None:
        """Deliveries of one message by an engine, at one instant."""
        n = len(users)
        c = self._columns
        c["isp"].fill(self.world.server_index[server.address], n)
        c["user"].push(users)
        c["row"].push(rows)
        c["at"].fill(at, n)
        c["size"].fill(size, n)

    def due(self, now: float) -> None:
        """Record the first retrievals of every check that began :data:`SETTLED_S` before
        ``now``, and let their deliveries go."""
        self._file()
        cutoff = now - SETTLED_S
        if not self._filed or cutoff <= self._computed:
            return
        windows = sorted(w for w in self._filed if w * FILED_S < cutoff)
        if not windows:
            self._computed = cutoff
            return
        c = Columns.join(Columns(part) for w in windows for part in self._filed.pop(w)).data
        check = c["check"]
        self.late += int((check < self._computed).sum())
        self._computed = cutoff
        begun = check < cutoff
        # timed on the helper thread; recorded at the next minute's end (``collect``)
        self._timing.append(self.world.helper.submit(
            self._time_all, {name: values[begun] for name, values in c.items()
                             if name != "check"}))
        if not begun.all():   # the window the cutoff falls in: the rest waits
            self._filed[windows[-1]] = [{name: values[~begun] for name, values in c.items()}]

    def collect(self) -> None:
        """Record the first retrievals timed since the last ``due``: in the ledger, the
        maildrops and the servers' counts. Called at a fixed point of the run (the minute
        after ``due``), so that the rows come to rest at the same instant however long
        the helper took."""
        for timing in self._timing:
            for timed in timing.result():
                self._record(timed)
        self._timing = []

    def finish(self) -> None:
        """Record every first retrieval that starts before the run's end."""
        self._file()
        parts = [part for w in sorted(self._filed) for part in self._filed[w]]
        if parts:   # after those ``due`` timed before (``collect`` records them in turn)
            self._timing.append(self.world.helper.submit(
                self._time_all, Columns.join(Columns(part) for part in parts).data))
        self._filed = {}
        self.collect()

    def _file(self) -> None:
        """File the deliveries appended since the last filing by their check's window, each
        with its check's instant (``check``)."""
        c = {name: column.view() for name, column in self._columns.items()}
        if len(c["isp"]):
            c["check"] = self._checks(c)
            window = np.floor(c["check"] / FILED_S).astype(np.int64)
            for w in np.unique(window).tolist():
                mine = window == w   # each file a copy: the buffers are written again
                self._filed.setdefault(w, []).append({name: values[mine]
                                                      for name, values in c.items()})
        for column in self._columns.values():
            column.clear()

    def _checks(self, c: dict[str, np.ndarray]) -> np.ndarray:
        """The first check after each delivery (the one that sees it may be the one before,
        if that one opens the maildrop after the delivery: it began earlier still)."""
        if self._phase is None:   # the workloads are built after the servers
            workloads = self.world.workloads
            self._phase = np.concatenate([w.check_phase for w in workloads])
            self._first = np.r_[0, np.cumsum([w.size for w in workloads])][:-1]
        assert self._first is not None
        return next_check(self._phase[self._first[c["isp"]] + c["user"]], self.interval,
                          c["at"])

    def _time_all(self, c: dict[str, np.ndarray]) -> list[Timed]:
        """The first retrievals of these deliveries, server by server. Reads only what a run
        does not change (the servers' settings, the users' check phases, the latencies)
        and writes nothing: it runs on the helper thread."""
        order = np.argsort(c["isp"], kind="stable")
        starts = np.searchsorted(c["isp"][order], np.arange(len(self.world.servers) + 1))
        timed = []
        for isp, server in enumerate(self.world.servers):
            pick = order[starts[isp]:starts[isp + 1]]
            if len(pick):
                timed.append(self._time(isp, server, c["user"][pick].astype(np.int64),
                                        c["row"][pick], c["at"][pick],
                                        c["size"][pick].astype(np.float64)))
        return timed

    def _record(self, timed: Timed) -> None:
        self.world.ledger.retrieved_rows(timed.rows, timed.retrieved)
        self.held["imap"].add(timed.imap_sizes)
        self.held["pop3"].add(timed.pop3_sizes)
        self.world.servers[timed.isp].stats_sessions += timed.sessions

    def _time(self, isp: int, server: MailServer, users: np.ndarray, rows: np.ndarray,
              at: np.ndarray, size: np.ndarray) -> Timed:
        world = self.world
        end = world.scenario.duration_s
        interval = self.interval
        phase = world.workloads[isp].check_phase[users]
        pool = world.dynamic_pool(isp)
        one_way = world.network.one_way(pool.host(0), server.address)
        proc = server.processing_s
        imap = world.workloads[isp].imap
        by_imap = imap[users] if imap is not None else np.zeros(len(users), dtype=bool)
        # a check sees what was delivered by the instant the server opens the maildrop
        # (POP3: the login; IMAP: SELECT), some round trips after the check began: the
        # first check whose opening comes after the delivery
        sent = greeting(2 * one_way, one_way, proc)[1]
        opens = np.where(
            by_imap,
            exchange(exchanges(sent, IMAP_COMMANDS_BEFORE_FETCH[server.imap_security] - 2,
                               one_way, proc), one_way, proc)[0],
            exchange(exchanges(sent, COMMANDS_BEFORE_LOGIN[server.pop3_security], one_way,
                               proc), one_way, proc)[0])
        check = next_check(phase, interval, at - opens)
        number = check_number(phase, interval, at - opens)   # which of the client's checks
        opened = check + 2 * one_way
        keep = opened < end
        # POP3 deletes what it retrieves; IMAP leaves it on the server
        imap_sizes, pop3_sizes = size[by_imap], size[~by_imap & ~keep]
        users, rows, at, size, opened, by_imap, number = (
            users[keep], rows[keep], at[keep], size[keep], opened[keep], by_imap[keep],
            number[keep].astype(np.int64))
        # (client, check number) as one key orders as (client, instant) does: one sort key
        # fewer
        number -= number.min(initial=0)
        order = np.lexsort((at, users * (int(number.max(initial=0)) + 1) + number))
        users, rows, size, opened, by_imap = (users[order], rows[order], size[order],
                                              opened[order], by_imap[order])
        same = np.r_[False, (users[1:] == users[:-1]) & (opened[1:] == opened[:-1])]
        starts = np.flatnonzero(~same)
        run = np.repeat(starts, np.diff(np.r_[starts, len(users)]))
        rank = np.arange(len(users)) - run
        data = transfer(size, server.settings.server_bandwidth_bps, pool.bandwidth_bps)
        sent = np.cumsum(data)
        before = sent - data - (sent[run] - data[run])   # earlier messages of the check
        first = greeting(opened, one_way, proc)[1]
        # the adapters' instants (``netsim.mail.session``). POP3: the greeting, the
        # commands before the first RETR, then RETR and DELE of each message before this
        # one; IMAP: the commands before the FETCH, whose answer carries this message
        # after those before it
        retr = exchanges(first, POP3_COMMANDS_BEFORE_RETR[server.pop3_security] + 2 * rank,
                         one_way, proc) + before
        fetch = exchanges(first, IMAP_COMMANDS_BEFORE_FETCH[server.imap_security], one_way,
                          proc)
        retrieved = np.where(by_imap, retrieval(fetch, one_way, proc, before + data),
                             retrieval(retr, one_way, proc, data))
        return Timed(isp, rows, retrieved, imap_sizes, pop3_sizes, len(starts))

