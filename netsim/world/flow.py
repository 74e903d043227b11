"""The flow path (fidelity ``flow``): legitimate users' mail decided in bulk.

Users' messages are most of a country's mail, and on the engine path each costs three SMTP
and POP3 dialogues. Here the workload (``netsim.world.workload``) is decided a minute of
simulated time at a time, as arrays over every ISP at once: the connection verdicts of the
network's ACLs and listeners, the servers' policies recipient by recipient, the instants the
session adapter computes (``netsim.mail.session``: the server's processing time, then one
round trip plus processing an exchange, the data's transfer time and the scan after the
final dot) and the MUA's retries. Every server's outbound queue is the flow path's too
(``netsim.world.flow_queue``), and first POP3 retrievals are computed at the end
(``netsim.world.retrieval``). Bots and spammer servers still run as SimPy processes, their
sessions decided by the servers' hooks (``netsim.mail.session.direct_smtp_session``);
``netsim trace`` runs through the engines.

Each step is taken in the minute in which it starts, and within a minute in time order, so
stateful components see the order the engine path shows them. Stateless policies (relay
control, unknown users, the content filter's keyed verdict) are decided as arrays; stateful
ones (rate limits, greylisting, blocklists) are asked through their own hooks, recipient by
recipient in time order, with the server's clock set to the instant the engine would ask.
As at session fidelity, a session's effects are recorded when it starts; a step that would
start after the run's end leaves its recipients pending. ``tests/test_fidelity.py`` checks
that both paths give every recipient the same outcome.

What differs from the engine path, by design: no session at this fidelity waits for one of
the server's session slots (a spam sender's hooks-only session neither), and within a minute
the flow path's DNS lookups come before those of the engine path's senders.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from netsim.mail import Kind, Mail, Outcome, SenderType
from netsim.mail.accounts import TYPO_DOMAIN, in_domain, mistyped, recipient_address
from netsim.mail.consult import Consultation, classic
from netsim.mail.ledger import KINDS
from netsim.mail.policy import STEPS
from netsim.net import NetKind
from netsim.world.columns import Columns, changes, runs
from netsim.world.credentials import auth_captured
from netsim.world.dialogue import Dialogue, FlowError
from netsim.world.flow_queue import FlowQueues
from netsim.world.users import MailClients, mua_helo
from netsim.world.workload import BATCH_S, HOME, Batch

if TYPE_CHECKING:
    from netsim.world.build import World
    from netsim.world.retrieval import Retrievals

STEP_S = 60.0   # the flow path decides a minute of simulated time at a time
LEGIT = KINDS.index(Kind.LEGIT)


class LegitFlow:
    """Decides every ISP's users' mail and runs every outbound queue (``FlowQueues``), a
    minute at a time (one SimPy event a minute)."""

    def __init__(self, world: World, retrievals: Retrievals):
        self.world = world
        self.env = world.env
        self.ledger = world.ledger
        self.retrievals = retrievals
        self.end = world.scenario.duration_s
        self.cfg = world.scenario.users
        servers = self.servers = world.servers
        plan = world.plan
        self.visited = [plan.by_name[v.name] for v in world.scenario.visited_networks]
        self.eavesdrop = np.array([v.eavesdrop_probability
                                   for v in world.scenario.visited_networks] + [0.0])
        # per server (indexed like the ISPs)
        self.proc = np.array([s.processing_s for s in servers])
        self.max_rcpt = np.array([s.settings.max_recipients for s in servers])
        self.size_limit = np.array([s.settings.message_size_limit for s in servers])
        self.bandwidth = np.array([s.settings.server_bandwidth_bps for s in servers])
        self.scan_mean = np.array([s.settings.scan_mean_s for s in servers])
        self.scan_salt = np.array([s.scan_salt for s in servers], dtype=np.uint64)
        self.tls_auth = np.array([i.mail_server.submission_security == "tls"
                                  for i in world.scenario.isps])
        self.users = np.array([s.users for s in servers])
        self.subnet_bps = np.array([n.bandwidth_bps for n in plan.subnets])
        # whether a client network is one of the server's own ("mynetworks"), by server
        self.own = np.zeros((len(servers), len(plan.subnets)), dtype=bool)
        for i, server in enumerate(servers):
            self.own[i, list(server.own_subnets)] = True
        # instants at which a connection's verdict can change: rules and ports coming in force
        self.epochs = sorted(world.network.changes())
        # connection verdicts by (source network, server, port, epoch): an index into
        # ``_verdicts`` (-1: not asked yet)
        self._verdict = np.full(len(plan.subnets) * len(servers) * 2 * (len(self.epochs) + 1),
                                -1, dtype=np.int64)
        # open?, delay, one-way latency, stopped_by code: one entry a verdict
        self._verdicts: tuple[np.ndarray, ...] = (
            np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))
        code = self.ledger.code
        self.domain_code = np.array([code("rcpt_domain", s.domain) for s in servers])
        self.typo_code = np.array([code("rcpt_domain", mistyped(s.domain)) for s in servers])
        self.isp_code = np.array([code("origin_isp", s.isp) for s in servers])
        self.due_mua: dict[int, list[Columns]] = {}
        self.held: list[np.ndarray] = []      # rows a step after the run's end holds
        self.step_index = 0
        self._hour: Columns | None = None
        self.clients = [MailClients(world, i, w) for i, w in enumerate(world.workloads)]
        self.shared = np.zeros(len(servers), dtype=bool)   # (set when the run starts)
        self.consultation = Consultation(servers)
        self.sessions = np.zeros(len(servers), dtype=np.int64)   # SMTP sessions, by server
        self.queues = FlowQueues(self)
        self.env.process(self._run())

    # -- the minute loop ---------------------------------------------------------------------
    def _run(self) -> Generator[simpy.Event, Any, None]:
        self._refuse_order_bound_hooks()
        self.consultation = Consultation(self.servers)   # the policies are final now
        # servers where a stateful policy may see both users' and spammers' sessions of
        # one account: stolen credentials can be used, and the server keeps state
        stolen = any("stolen_587" in b.strategies for b in self.world.scenario.spam.botnets)
        self.shared = np.array([stolen and any(getattr(p, "stateful", False)
                                               for p in server.policies)
                                for server in self.servers])
        k = 0
        while k * STEP_S < self.end:
            self._submissions(k)
            k += 1
            yield self.env.timeout(k * STEP_S - self.env.now)
            # the minute's queues once every engine event in it has happened: what the
            # engines handed over in it joins them, and all are taken in time order
            self.queues.step(k - 1)

    def _refuse_order_bound_hooks(self) -> None:
        """Before anything runs (once the world's policies are final): refuse a classic
        hook whose answers may depend on the order it is asked in (``netsim.mail.policy``,
        module rule 3)."""
        for server in self.servers:
            for policy in server.policies:
                for step in STEPS:
                    if classic(policy, step) and not getattr(policy, "order_free", False):
                        raise FlowError(
                            f"fidelity flow cannot ask {type(policy).__name__}.check_{step} "
                            f"at {server.hostname} in the engines' order; declare "
                            "order_free = True if its answers do not depend on what it was "
                            "asked before, or run at fidelity session")

    def _submissions(self, k: int) -> None:
        """The users' submissions of minute ``k``: new messages and the MUAs' retries."""
        self.step_index = k
        start = k * STEP_S
        created = self._created(start, start + STEP_S) if start < self.end else []
        work = [*created, *self.due_mua.pop(k, [])]
        if work:
            self._submit(Columns.join(work))

    def flush(self) -> None:
        """After the run: the last minute's queues (their turn falls on the run's end), and
        what they, a MUA's last retry or an engine's hand-over filed for after it with
        instants inside the run, as the engine path takes it within the run; then the
        counts kept in arrays (policies' asks, servers' sessions) join their owners'."""
        k = self.queues.stepped + 1
        queues = self.queues
        while k <= self.step_index or self.due_mua or queues.due or queues.handed:
            if k > self.step_index:
                self._submissions(k)
            queues.step(k)
            k += 1
        self.consultation.count()
        for server, n in zip(self.servers, self.sessions.tolist(), strict=True):
            server.stats_sessions += n
            server.stats_smtp_sessions += n

    def held_rows(self) -> set[int]:
        rows = [*self.held, *(c.row for parts in self.due_mua.values() for c in parts),
                *self.queues.held_rows()]
        return set(np.concatenate(rows).tolist()) if rows else set()

    def later(self, due: dict[int, list[Columns]], work: Columns, t: np.ndarray,
              earliest: int) -> None:
        """File work to be taken in the minute each row's ``t`` falls in (not before
        ``earliest``); what starts after the run's end stays pending."""
        late = t >= self.end
        self.hold(work.row[late])
        work, t = work.take(~late), t[~late]
        step = np.maximum((t // STEP_S).astype(np.int64), earliest)
        for k in np.unique(step).tolist():
            due.setdefault(k, []).append(work.take(step == k))

    def hold(self, rows: np.ndarray) -> None:
        if len(rows):
            self.held.append(rows)

    def finish(self, rows: np.ndarray, outcome: Outcome, at: np.ndarray, *,
               code: np.ndarray | int = 0, cause: np.ndarray | int = 0) -> None:
        """Final outcomes of steps that end before the run does; the rest stay pending."""
        done = at < self.end
        self.ledger.finish_rows(rows[done], outcome, at[done],
                                code=code[done] if isinstance(code, np.ndarray) else code,
                                stopped_by=cause[done] if isinstance(cause, np.ndarray)
                                else cause)
        self.hold(rows[~done])

    # -- new messages ----------------------------------------------------------------------
    def _created(self, start: float, end: float) -> list[Columns]:
        """The recipients of the messages created in ``[start, end)``, ledger rows opened."""
        hour = math.floor(start / BATCH_S)
        if start == hour * BATCH_S:
            parts = [self._recipients(isp, workload.batch(start, start + BATCH_S))
                     for isp, workload in enumerate(self.world.workloads)]
            parts = [p for p in parts if len(p)]
            self._hour = Columns.join(parts) if parts else None
            if self._hour is not None:
                self._hour = self._hour.take(np.lexsort((self._hour.order,
                                                         self._hour.t)))
        if self._hour is None:
            return []
        t = self._hour.t
        now = self._hour.take(slice(int(np.searchsorted(t, start)),
                                    int(np.searchsorted(t, min(end, self.end)))))
        if not len(now):
            return []
        ledger, world = self.ledger, self.world
        first = changes(now.message)
        ids = world.next_ids(int(first.sum()))[np.cumsum(first) - 1]
        row0 = ledger.add_rows(
            Kind.LEGIT, message_id=ids, rcpt_index=now.rcpt_index, sender=now.sender,
            origin_isp=self.isp_code[now.isp], origin_network=now.network, path=now.path,
            first_hop_port=now.port, rcpt_domain=now.domain, created=now.t)
        d = {k: v for k, v in now.data.items()
             if k not in ("rcpt_index", "sender", "network", "path", "domain", "order",
                         "message")}   # the ledger has them; "mid" names the message now
        return [Columns({**d, "row": row0 + np.arange(len(now)), "mid": ids})]

    def _recipients(self, isp: int, batch: Batch) -> Columns:
        """A batch of one ISP's workload as one row a recipient, with what every step needs."""
        world, code = self.world, self.ledger.code
        n = len(batch)
        m = int(batch.first[n])
        msg = np.repeat(np.arange(n), np.diff(batch.first))
        nets = [world.dynamic_pool(isp), *self.visited]
        net_of = batch.where + 1             # index into ``nets``
        src_net = np.array([net.index for net in nets])[net_of]
        port = np.where(world.workloads[isp].mua_587[batch.user], 587, 25)
        sender = np.where(batch.where == HOME, code("sender", SenderType.USER.value),
                          code("sender", SenderType.ROAMING.value))
        # HOME (-1) reads the last entry of ``eavesdrop``: 0
        capture = auth_captured(batch.capture, self.eavesdrop[batch.where],
                                ~self.tls_auth[isp]) & (port == 587)
        draw = batch.capture
        typo = batch.typo
        per_message = {
            "t": batch.created, "isp": np.full(n, isp), "user": batch.user,
            "src_net": src_net,
            "src": np.array([net.first + 1 for net in nets])[net_of] + batch.host,
            "port": port,
            "size": batch.size, "key": batch.key, "capture": capture, "draw": draw,
            "sender": sender,
            "network": np.array([code("origin_network", net.name) for net in nets])[net_of],
            "path": np.where(port == 587, code("path", "mua:587"), code("path", "mua:25")),
            # a message's place in the merged hour: ISP, then creation order
            "message": isp * 2**40 + np.arange(n)}
        data = {k: v[msg] for k, v in per_message.items()}
        data.update(rcpt_isp=batch.rcpt_isp, rcpt_user=batch.rcpt_user, typo=typo,
                    rcpt_index=np.arange(m) - batch.first[msg],
                    domain=np.where(typo == TYPO_DOMAIN, self.typo_code[batch.rcpt_isp],
                                    self.domain_code[batch.rcpt_isp]),
                    order=np.arange(m) + isp * 2**40, attempt=np.zeros(m, dtype=np.int64))
        return Columns(data)

    # -- connections -------------------------------------------------------------------------
    def connect(self, src_net: np.ndarray, src: np.ndarray, server: np.ndarray,
                port: np.ndarray, t: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per attempt: open?, what it costs the client, the one-way latency and, for one
        that never opened, what stopped it — ``Network.connect`` as it answers at ``t``.
        Verdicts are remembered by source network, server, port and epoch."""
        epoch = np.searchsorted(self.epochs, t, side="right")
        # the flow path connects to 25 and 587 only
        key = ((src_net * len(self.servers) + server) * 2
               + (port == 587)) * (len(self.epochs) + 1) + epoch
        known = self._verdict[key]
        if (known < 0).any():
            new = np.flatnonzero(known < 0)
            _, first = np.unique(key[new], return_index=True)
            found: list[tuple[bool, float, float, int]] = []
            for i in new[first].tolist():
                conn = self.world.network.connect(int(src[i]), self.servers[int(server[i])].address,
                                                  int(port[i]), float(t[i]))
                self._verdict[key[i]] = len(self._verdicts[0]) + len(found)
                found.append((conn.is_open, conn.delay_s, conn.one_way_s, 0 if conn.is_open
                              else self.ledger.code("stopped_by", conn.stopped_by)))
            added = zip(*found, strict=True)
            self._verdicts = tuple(np.r_[old, np.array(values, dtype=old.dtype)]
                                   for old, values in zip(self._verdicts, added, strict=True))
            known = self._verdict[key]
        is_open, delay, one_way, cause = (column[known] for column in self._verdicts)
        return is_open, delay, one_way, cause

    # -- the MUA's submission ------------------------------------------------------------------
    def _submit(self, work: Columns) -> None:
        """One submission attempt of every message in ``work`` (first tries and retries).
        A message from an account whose password spammers have used goes through the
        engines instead, as the spammers' sessions do, where the server keeps state over
        accounts (a rate limit): it then sees all of the account's sessions in time
        order."""
        held = self.shared[work.isp] & (work.attempt == 0)
        if held.any():
            held &= self.world.credentials.used(work.isp, work.user)
        if held.any():
            self._to_engines(work.take(held))
            work = work.take(~held)
            if not len(work):
                return
        work = work.take(np.lexsort((work.row, work.mid, work.t)))
        starts, per_row, place = runs(work.mid)
        s = work.take(starts)                               # one entry a session
        is_open, delay, one_way, cause = self.connect(s.src_net, s.src, s.isp, s.port, s.t)
        opened = s.t + delay
        # a connection that never opened: its recipients are blocked, by the rule or refused
        shut = ~is_open[per_row]
        self.finish(work.row[shut], Outcome.BLOCKED, opened[per_row][shut],
                    cause=cause[per_row][shut])
        live = is_open & (opened < self.end)
        self.hold(work.row[is_open[per_row] & ~live[per_row]])
        if not live.any():
            return
        keep = live[per_row]
        work, place = work.take(keep), place[keep]
        index = np.cumsum(live) - 1
        per_row = index[per_row[keep]]
        s, opened, one_way = s.take(live), opened[live], one_way[live]
        n = len(s)
        sessions = Columns({
            "server": s.isp, "opened": opened, "one_way": one_way, "client": s.src,
            "subnet": s.src_net, "port": s.port, "user": np.where(s.port == 587, s.user, -1),
            "from_srv": s.isp, "from_user": s.user, "size": s.size, "key": s.key,
            "kind": np.full(n, LEGIT),
            "mid": s.mid})
        recipients = Columns({"session": per_row, "place": place, "rcpt_isp": work.rcpt_isp,
                              "rcpt_user": work.rcpt_user, "typo": work.typo, "row": work.row})
        subnets = self.world.plan.subnets
        d = Dialogue(self, sessions, recipients, helo=lambda k: mua_helo(
            int(s.src[k]), subnets[int(s.src_net[k])].name)).decide()
        code, cause, end = d.code, d.cause, d.end
        accepted = code == 0
        self._accepted(work.take(accepted), d.dot[per_row][accepted], d.junk[accepted])
        # plaintext AUTH across a shared network: the eavesdropper's capture
        for k in np.flatnonzero(s.capture & (end < self.end)).tolist():
            self._captured(int(s.isp[k]), int(s.user[k]), float(end[k]))
        # the MUA hears every refusal at the session's end; a 4xx is retried
        ends = end[per_row]
        last = work.attempt >= self.cfg.mua_retries
        final = ~accepted & ((code >= 500) | last)
        self.finish(work.row[final], Outcome.REJECTED, ends[final], code=code[final],
                    cause=cause[final])
        again = ~accepted & ~final
        self.hold(work.row[again & (ends >= self.end)])
        again &= ends < self.end
        retry = work.take(again)
        t = ends[again] + self.cfg.mua_retry_s
        self.later(self.due_mua, retry.but(t=t, attempt=retry.attempt + 1), t,
                    self.step_index + 1)

    def _to_engines(self, work: Columns) -> None:
        """Messages submitted by their users' mail clients on the engine path, each from the
        instant it is created (``netsim.world.users.MailClients``)."""
        work = work.take(np.lexsort((work.row, work.mid)))
        starts = np.flatnonzero(changes(work.mid))
        subnets, servers = self.world.plan.subnets, self.servers
        for first, last in zip(starts.tolist(), [*starts[1:].tolist(), len(work)], strict=True):
            isp, user = int(work.isp[first]), int(work.user[first])
            net = subnets[int(work.src_net[first])]
            rows = {recipient_address(servers[int(work.rcpt_isp[i])].domain,
                                      int(work.rcpt_user[i]), int(work.typo[i])):
                    int(work.row[i]) for i in range(first, last)}
            sender = SenderType.USER if net.kind is NetKind.DYNAMIC else SenderType.ROAMING
            mail = Mail(int(work.mid[first]), Kind.LEGIT, sender, servers[isp].address_of(user),
                        int(work.size[first]), float(work.t[first]), origin=servers[isp].isp,
                        rows=rows, key=int(work.key[first]))
            submit = self.clients[isp].submit(user, mail, (int(work.src[first]), net),
                                              float(work.draw[first]))
            self.env.process(self._at(float(work.t[first]), submit))

    def _at(self, t: float, process: Generator[simpy.Event, Any, None],
            ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(t - self.env.now)
        yield from process

    def _captured(self, isp: int, user: int, at: float) -> None:
        credentials = self.world.credentials
        if at <= self.env.now:   # (after the run, by ``flush``)
            credentials.add((isp, user), "smtp")
            return
        event = self.env.timeout(at - self.env.now)
        event.callbacks.append(lambda _: credentials.add((isp, user), "smtp"))

    def _accepted(self, work: Columns, at: np.ndarray, junk: np.ndarray) -> None:
        """The submission server took these recipients at ``at``: its own domain's into
        maildrops (or the junk folder), the rest into its outbound queue."""
        local = in_domain(work.rcpt_isp, work.typo, work.isp)
        self.deliver(work.take(local), at[local], junk[local])
        remote = work.take(~local)
        if len(remote):
            n = len(remote)
            self.queues.enqueue(Columns({
                **{k: remote.data[k] for k in ("row", "mid", "size", "key", "rcpt_isp",
                                               "rcpt_user", "typo")},
                "qsrv": remote.isp, "from_srv": remote.isp, "from_user": remote.user,
                "kind": np.full(n, LEGIT), "origin": remote.isp}), at[~local],
                self.step_index)

    def deliver(self, work: Columns, at: np.ndarray, junk: np.ndarray) -> None:
        """Delivery at the recipient's server: the maildrop, or the junk folder."""
        self.ledger.finish_rows(work.row[junk], Outcome.JUNKED, at[junk])
        inbox = ~junk
        self.ledger.finish_rows(work.row[inbox], Outcome.DELIVERED, at[inbox])
        self.retrievals.add_many(work.rcpt_isp[inbox], work.rcpt_user[inbox], work.row[inbox],
                                 at[inbox], work.size[inbox])
