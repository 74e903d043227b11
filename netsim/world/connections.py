"""The flow path's connection verdicts: ``Network.connect`` asked once for each source,
server, port and epoch, and remembered.

A source is a network, or, where a rule covers an address block of a network (OP25B on a
share of a pool), the stretch of addresses between two of the rules' cuts. A verdict a
stateful rule decides (OP25B on top talkers) depends on the host's past: it is never
remembered, but asked of ``Network.connect`` attempt by attempt, in time order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netsim.mail.ledger import Ledger
from netsim.net import Connection, Network

# the ports the flow path connects to: SMTP, submission, POP3 (a login before sending)
PORTS = (25, 587, 110, 995)
_PORT_INDEX = np.full(max(PORTS) + 1, -1, dtype=np.int64)
_PORT_INDEX[list(PORTS)] = np.arange(len(PORTS))


class Connections:
    """Verdicts of connections from the world's networks to ``addresses`` (the ISPs' mail
    servers) on the flow path's ``PORTS``: open?, the client's cost, the one-way latency
    and, for one that never opened, what stopped it (a ``stopped_by`` code)."""

    def __init__(self, network: Network, addresses: Sequence[int], ledger: Ledger):
        self.network = network
        self.addresses = list(addresses)
        self.ledger = ledger
        # instants at which a verdict can change: rules and ports coming in force
        self.epochs = sorted(network.changes())
        cuts = network.source_cuts()
        # without address blocks in any rule a source is its network (no lookup needed)
        self._starts = np.array(sorted({n.first for n in network.plan.subnets} | set(cuts)),
                                dtype=np.int64) if cuts else None
        sources = len(network.plan.subnets) if self._starts is None else len(self._starts)
        self._stateful = any(rule.per_host for acl in (*network.egress, *network.ingress)
                             for rule in acl.rules)
        # by (source, server, port, epoch): an index into ``_verdicts`` (-1: not asked yet)
        self._verdict = np.full(sources * len(self.addresses) * len(PORTS)
                                * (len(self.epochs) + 1), -1, dtype=np.int64)
        # open?, delay, one-way latency, stopped_by code, decided host by host?: one entry a
        # verdict
        self._verdicts: tuple[np.ndarray, ...] = (
            np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=bool))

    def connect(self, src_net: np.ndarray, src: np.ndarray, server: np.ndarray,
                port: np.ndarray, t: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per attempt: open?, what it costs the client, the one-way latency and what
        stopped it — ``Network.connect`` as it answers at ``t``."""
        epoch = np.searchsorted(self.epochs, t, side="right")
        source = src_net if self._starts is None else \
            np.searchsorted(self._starts, src, side="right") - 1
        key = ((source * len(self.addresses) + server) * len(PORTS)
               + _PORT_INDEX[port]) * (len(self.epochs) + 1) + epoch
        known = self._verdict[key]
        if (known < 0).any():
            new = np.flatnonzero(known < 0)
            _, first = np.unique(key[new], return_index=True)
            found: list[tuple[bool, float, float, int, bool]] = []
            for i in new[first].tolist():
                attempt = (int(src[i]), self.addresses[int(server[i])], int(port[i]),
                           float(t[i]))
                self._verdict[key[i]] = len(self._verdicts[0]) + len(found)
                if self._stateful and self.network.per_host(*attempt):
                    found.append((False, 0.0, 0.0, 0, True))   # asked attempt by attempt
                else:
                    found.append((*self._entry(self.network.connect(*attempt)), False))
            added = zip(*found, strict=True)
            self._verdicts = tuple(np.concatenate([old, np.array(values, dtype=old.dtype)])
                                   for old, values in zip(self._verdicts, added, strict=True))
            known = self._verdict[key]
        is_open, delay, one_way, cause = (column[known] for column in self._verdicts[:4])
        if self._stateful:
            each = np.flatnonzero(self._verdicts[4][known])
            for i in each[np.argsort(t[each], kind="stable")].tolist():
                conn = self.network.connect(int(src[i]), self.addresses[int(server[i])],
                                            int(port[i]), float(t[i]))
                is_open[i], delay[i], one_way[i], cause[i] = self._entry(conn)
        return is_open, delay, one_way, cause

    def _entry(self, conn: Connection) -> tuple[bool, float, float, int]:
        return (conn.is_open, conn.delay_s, conn.one_way_s,
                0 if conn.is_open else self.ledger.code("stopped_by", conn.stopped_by))
