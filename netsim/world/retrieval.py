"""First POP3 retrievals, computed at the end of a flow-fidelity run.

At fidelity ``flow`` no POP3 session is simulated: every delivery into a maildrop (by the
flow path or by the engines) is recorded here, and at the end of the run each gets its
first retrieval as the POP3 session adapter would time it: the recipient's next periodic
check strictly after the delivery, the TCP handshake, the greeting, the login (USER/PASS, or
APOP; STLS first where offered), STAT, LIST and UIDL, then RETR and DELE of each waiting
message in delivery order, each RETR answered after its transfer time. The check is made
from home (a roaming user's check from a visited network differs by its latency only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netsim.mail.server import MailServer

if TYPE_CHECKING:
    from netsim.world.build import World


class Retrievals:
    """Deliveries into maildrops, per ISP: user, ledger row, instant, size."""

    def __init__(self, world: World):
        self.world = world
        cfg = world.scenario.users
        self.interval = cfg.pop3_check_interval_s
        # the same check times the engine path gives each user (``UserPopulation``)
        self.phase = [world.streams[f"users.pop3.{isp.name}"].random(isp.subscribers)
                      * self.interval for isp in world.scenario.isps]
        self._parts: list[list[tuple[np.ndarray, ...]]] = [[] for _ in world.scenario.isps]
        self._single: list[list[tuple[int, int, float, int]]] = [[] for _ in world.scenario.isps]
        self._many: list[tuple[np.ndarray, ...]] = []   # with the ISP of each delivery

    def add(self, server: MailServer, users: np.ndarray, rows: np.ndarray, at: np.ndarray,
            size: np.ndarray) -> None:
        if len(rows):
            self._parts[self.world.server_index[server.address]].append(
                (np.asarray(users), np.asarray(rows), np.asarray(at), np.asarray(size)))

    def add_many(self, isp: np.ndarray, users: np.ndarray, rows: np.ndarray, at: np.ndarray,
                 size: np.ndarray) -> None:
        """Deliveries at many ISPs' servers (``isp`` per delivery)."""
        if len(rows):
            self._many.append((isp, users, rows, at, size))

    def add_one(self, server: MailServer, user: int, row: int, at: float, size: int) -> None:
        self._single[self.world.server_index[server.address]].append((user, row, at, size))

    def finish(self) -> None:
        """Record every first retrieval that starts before the run's end."""
        if self._many:
            where, *columns = (np.concatenate(c) for c in zip(*self._many, strict=True))
            order = np.argsort(where, kind="stable")
            starts = np.searchsorted(where[order], np.arange(len(self._parts) + 1))
            for i, part in enumerate(self._parts):
                pick = order[starts[i]:starts[i + 1]]
                if len(pick):
                    part.append(tuple(c[pick] for c in columns))
            self._many = []
        for isp, server in enumerate(self.world.servers):
            parts = self._parts[isp]
            if self._single[isp]:
                single = np.array(self._single[isp])
                parts.append((single[:, 0].astype(np.int64), single[:, 1].astype(np.int64),
                              single[:, 2], single[:, 3]))
            if parts:
                self._retrieve(isp, server, *(np.concatenate(c) for c in zip(*parts,
                                                                             strict=True)))
            self._parts[isp], self._single[isp] = [], []

    def _retrieve(self, isp: int, server: MailServer, users: np.ndarray, rows: np.ndarray,
                  at: np.ndarray, size: np.ndarray) -> None:
        world = self.world
        end = world.scenario.duration_s
        interval = self.interval
        phase = self.phase[isp][users]
        check = phase + (np.floor((at - phase) / interval) + 1) * interval
        pool = world.dynamic_pool(isp)
        one_way = world.network.one_way(pool.host(0), server.address)
        opened = check + 2 * one_way
        keep = opened < end
        users, rows, at, size, opened = (users[keep], rows[keep], at[keep], size[keep],
                                         opened[keep])
        order = np.lexsort((at, opened, users))
        users, rows, size, opened = users[order], rows[order], size[order], opened[order]
        same = np.r_[False, (users[1:] == users[:-1]) & (opened[1:] == opened[:-1])]
        starts = np.flatnonzero(~same)
        run = np.repeat(starts, np.diff(np.r_[starts, len(users)]))
        rank = np.arange(len(users)) - run
        transfer = size * 8 / min(server.settings.server_bandwidth_bps, pool.bandwidth_bps)
        sent = np.cumsum(transfer)
        before = sent - transfer - (sent[run] - transfer[run])   # earlier RETRs of the check
        proc = server.processing_s
        step = 2 * one_way + proc
        security = server.pop3_security
        login = (1 if security == "apop" else 2) + (1 if security == "stls" else 0)
        retrieved = (opened + one_way + proc + (login + 3 + 2 * rank) * step + before
                     + 2 * one_way + proc + transfer)
        world.ledger.retrieved_rows(rows, retrieved)
        server.stats_sessions += len(starts)
