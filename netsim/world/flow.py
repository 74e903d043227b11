"""The flow path (fidelity ``flow``): legitimate users' mail decided in bulk.

Users' messages are most of a country's mail, and on the engine path each costs three SMTP
and POP3 dialogues. Here the workload (``netsim.world.workload``) is decided a minute of
simulated time at a time, as arrays over every ISP at once: the connection verdicts of the
network's ACLs and listeners (``netsim.world.connections``), each session through
``netsim.world.dialogue`` (the servers' policies, asked as the engines ask them, and the
adapter's instants) and the MUA's retries. Every server's outbound queue is the flow path's
too (``netsim.world.flow_queue``), and first retrievals are computed check by check
(``netsim.world.retrieval``). Bots' and spammer servers' sessions are handed over as they
start and decided at the minute's end (``netsim.world.spam_flow``), in one dialogue with
the submissions of users whose password spammers hold. The sessions of providers'
customers and of home MTAs are decided by the servers' hooks
(``netsim.mail.session.direct_smtp_session``); ``netsim trace`` runs through the engines.

Each step is taken in the minute in which it starts, and within a minute in time order; a
minute's queue attempts are made at its end, after what the engines handed over in it. As
at session fidelity, a session's effects are recorded when it starts; a step that would
start after the run's end leaves its recipients pending (``netsim.world.custody``).
docs/fidelity.md says what differs from the engine path, and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import simpy

from netsim.mail import Kind, Mail, MailServer, Outcome, RetryPolicy, SenderType
from netsim.mail.accounts import TYPO_DOMAIN, mistyped, recipient_address
from netsim.mail.consult import classic
from netsim.mail.defences import Listing
from netsim.mail.ledger import KINDS
from netsim.mail.policy import STEPS
from netsim.mail.session import COMMANDS_BEFORE_LOGIN, pop3_login
from netsim.net import Resolver
from netsim.runs import changes, runs
from netsim.world.columns import Columns, group_rows
from netsim.world.connections import Connections
from netsim.world.credentials import auth_captured
from netsim.world.custody import STEP_S, Custody, Deliveries
from netsim.world.dialogue import Decided, FlowError, Part, ServerArrays, decide_parts
from netsim.world.flow_queue import FlowQueues
from netsim.world.helper import Helper
from netsim.world.users import MailClients, UsersWorld, mua_helo
from netsim.world.workload import (
    AUTH,
    BATCH_S,
    EXPOSES,
    HOME,
    ISP_SERVER,
    PATHS,
    POP_FIRST,
    PORT,
    TARGET,
    Batch,
    Workload,
)

if TYPE_CHECKING:
    from netsim.world.spam_flow import SpamFlow

LEGIT = KINDS.index(Kind.LEGIT)
CHECKS_EVERY = 10   # minutes between computing the retrievals of settled checks
# a batch of users' new messages, in creation order: their columns and their recipients'
# (``LegitFlow._drawn``)
Batched = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


class FlowWorld(UsersWorld, Protocol):
    """What the flow path reads of the world, besides what users' mail clients read."""

    @property
    def relays(self) -> list[MailServer]: ...
    @property
    def workloads(self) -> list[Workload]: ...
    @property
    def resolvers(self) -> list[Resolver]: ...
    @property
    def retry_policy(self) -> RetryPolicy: ...
    @property
    def listing(self) -> Listing | None: ...
    @property
    def helper(self) -> Helper: ...

    def next_ids(self, n: int) -> np.ndarray: ...


class LegitFlow:
    """Decides every ISP's users' mail and runs every outbound queue (``FlowQueues``), a
    minute at a time (one SimPy event a minute)."""

    def __init__(self, world: FlowWorld, retrievals: Deliveries):
        self.world = world
        self.retrievals = retrievals
        self.env = world.env
        self.ledger = world.ledger
        self.end = world.scenario.duration_s
        self.cfg = world.scenario.users
        servers = self.servers = world.servers
        plan = world.plan
        self.visited = [plan.by_name[v.name] for v in world.scenario.visited_networks]
        self.eavesdrop = np.array([v.eavesdrop_probability
                                   for v in world.scenario.visited_networks] + [0.0])
        self.tls_auth = np.array([i.mail_server.submission_security == "tls"
                                  for i in world.scenario.isps])
        self.pop3_port = np.array([s.pop3_port for s in servers])
        self.before_login = np.array([COMMANDS_BEFORE_LOGIN[s.pop3_security]
                                      for s in servers])
        # the servers sessions are decided at: the ISPs', then the open relays (spam's)
        self.arrays = ServerArrays([*servers, *world.relays], plan, len(servers))
        self.custody = Custody(self.ledger, retrievals, self.end)
        self.connections = Connections(world.network,
                                       [s.address for s in self.arrays.servers], self.ledger)
        code = self.ledger.code
        self.domain_code = np.array([code("rcpt_domain", s.domain) for s in servers])
        self.typo_code = np.array([code("rcpt_domain", mistyped(s.domain)) for s in servers])
        self.isp_code = np.array([code("origin_isp", s.isp) for s in servers])
        self.path_code = np.array([code("path", path) for path in PATHS])
        self.due_mua: dict[int, list[Columns]] = {}
        # submissions to accounts whose password spammers hold, for spam's dialogue
        self.owners: list[Columns] = []
        self.step_index = 0
        self._batch: Batched | None = None
        self._ahead: Future[list[Batch]] | None = None   # the next batch, on the helper
        self.clients = [MailClients(world, i, w) for i, w in enumerate(world.workloads)]
        # the queues of open relays and providers are the flow path's; home MTAs keep
        # theirs on the engine path
        self.queues = FlowQueues(self.arrays, world.providers,
                                 world.resolvers, world.retry_policy, plan, self.ledger,
                                 self.custody, self.connections, world.next_ids,
                                 world.listing)
        self.spam: SpamFlow | None = None   # spam's sessions decided as arrays
        self.env.process(self._run())

    # -- the minute loop ---------------------------------------------------------------------
    def _run(self) -> Generator[simpy.Event, Any, None]:
        self._refuse_order_bound_hooks()
        self.arrays.ready()   # the policies are final now
        self.shared = self._shared_accounts()
        k = 0
        while k * STEP_S < self.end:
            self._submissions(k)
            k += 1
            yield self.env.timeout(k * STEP_S - self.env.now)
            # the minute's spam sessions, then its queues, once every engine event in it
            # has happened: what spam and the engines handed over in it joins the queues,
            # and all are taken in time order
            if self.spam is not None:
                self.spam.decide(self.env.now)
            self.queues.step(k - 1)
            if k % CHECKS_EVERY == 0:   # retrievals whose deliveries are all in
                self.retrievals.due(self.env.now)
            elif k % CHECKS_EVERY == 1:   # ... timed meanwhile on the helper thread
                self.retrievals.collect()

    def _shared_accounts(self) -> np.ndarray:
        """Per server: whether a stateful policy may see both users' and spammers' sessions
        of one account (stolen credentials can be used, and the server keeps state)."""
        stolen = any("stolen_587" in b.strategies for b in self.world.scenario.spam.botnets)
        return np.array([stolen and any(getattr(p, "stateful", False) for p in s.policies)
                         for s in self.servers])

    def _refuse_order_bound_hooks(self) -> None:
        """Before anything runs (once the world's policies are final): refuse a classic
        hook whose answers may depend on the order it is asked in (``netsim.mail.policy``,
        module rule 3)."""
        for server in self.arrays.servers:
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
        if self.spam is not None:
            self.spam.decide(math.inf)
        k = self.queues.stepped + 1
        queues = self.queues
        while k <= self.step_index or self.due_mua or queues.due or queues.handed:
            if k > self.step_index:
                self._submissions(k)
                if self.spam is not None:
                    self.spam.decide(math.inf)
            queues.step(k)
            k += 1
        self.arrays.count()

    def held_rows(self) -> set[int]:
        rows = [*self.custody.held_rows(),
                *(c.row for parts in self.due_mua.values() for c in parts),
                *(c.row for c in self.owners),
                *self.queues.held_rows(), *(self.spam.held_rows() if self.spam else [])]
        return set(np.concatenate(rows).tolist()) if rows else set()

    # -- new messages ----------------------------------------------------------------------
    def _created(self, start: float, end: float) -> list[Columns]:
        """The recipients of the messages created in ``[start, end)``, ledger rows opened."""
        if start == math.floor(start / BATCH_S) * BATCH_S:
            self._batch = None   # (not held while the next is made)
            self._batch = self._drawn(start)
        assert self._batch is not None, "a batch is drawn at its first minute"
        messages, recipients = self._batch
        a, b = np.searchsorted(messages["t"], [start, min(end, self.end)]).tolist()
        if end >= self.end:   # the run's last minute: the batch is not held to its end
            self._batch = None
        if a == b:
            return []
        first = messages["first"]
        count = messages["count"][a:b]
        msg = np.repeat(np.arange(b - a), count)
        now = {name: values[a:b][msg] for name, values in messages.items()
               if name not in ("first", "count")}
        lo, hi = int(first[a]), int(first[b])
        # (copies: what a minute hands on may be held for hours, the batch not with it)
        now.update({name: values[lo:hi].copy() for name, values in recipients.items()})
        ledger = self.ledger
        ids = self.world.next_ids(b - a)[msg]
        row0 = ledger.add_rows(
            Kind.LEGIT, message_id=ids, rcpt_index=now["rcpt_index"], sender=now["sender"],
            origin_isp=self.isp_code[now["isp"]], origin_network=now["network"],
            path=now["path"], first_hop_port=now["port"], rcpt_domain=now["domain"],
            created=now["t"])
        for name in ("rcpt_index", "sender", "network", "path", "domain"):
            del now[name]   # the ledger has them; "mid" names the message now
        return [Columns({**now, "row": row0 + np.arange(len(msg)), "mid": ids})]

    def _drawn(self, start: float) -> Batched:
        """Every ISP's messages of the batch from ``start``, one row a message in creation
        order (ties: by ISP, then as drawn), and their recipients' columns, each message's
        ``count`` of them in its order from row ``first`` (``n + 1`` offsets). The next
        batch is drawn meanwhile by the helper thread (each workload draws from a stream of
        its own, which nothing else reads)."""
        # (batches are drawn in turn: the one handed over last is the one from ``start``)
        batches = (self._ahead.result() if self._ahead is not None
                   else _batches(self.world.workloads, start))
        following = start + BATCH_S
        self._ahead = (None if following >= self.end else
                       self.world.helper.submit(_batches, self.world.workloads, following))
        parts = [self._recipients(isp, batch) for isp, batch in enumerate(batches)]
        del batches
        return _in_creation_order(parts)

    def _recipients(self, isp: int, batch: Batch,
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """A batch of one ISP's workload: one row a message with what every step needs (its
        ``count`` of recipients), and one a recipient, a message's in a run."""
        world, code = self.world, self.ledger.code
        n = len(batch)
        nets = [world.dynamic_pool(isp), *self.visited]
        net_of = batch.where + 1             # index into ``nets``
        src_net = np.array([net.index for net in nets])[net_of]
        path = world.workloads[isp].path(batch.user, batch.created)
        port = PORT[path]
        sender = np.where(batch.where == HOME, code("sender", SenderType.USER.value),
                          code("sender", SenderType.ROAMING.value))
        # HOME (-1) reads the last entry of ``eavesdrop``: 0
        capture = auth_captured(batch.capture, self.eavesdrop[batch.where],
                                ~self.tls_auth[isp]) & EXPOSES[path]
        count = np.diff(batch.first)
        messages = {
            "t": batch.created, "isp": np.full(n, isp), "user": batch.user,
            "src_net": src_net,
            "src": np.array([net.first + 1 for net in nets])[net_of] + batch.host,
            "port": port, "auth": AUTH[path], "pop_first": POP_FIRST[path],
            "target": TARGET[path],
            "size": batch.size, "key": batch.key, "capture": capture, "draw": batch.capture,
            "sender": sender,
            "network": np.array([code("origin_network", net.name) for net in nets])[net_of],
            "path": self.path_code[path], "count": count}
        m = int(batch.first[n])
        typo = batch.typo
        recipients = {
            "rcpt_isp": batch.rcpt_isp, "rcpt_user": batch.rcpt_user, "typo": typo,
            "rcpt_index": np.arange(m) - np.repeat(batch.first[:n], count),
            "domain": np.where(typo == TYPO_DOMAIN, self.typo_code[batch.rcpt_isp],
                               self.domain_code[batch.rcpt_isp]),
            "attempt": np.zeros(m, dtype=np.int64)}
        return messages, recipients

    # -- the MUA's submission ------------------------------------------------------------------
    def _submit(self, work: Columns) -> None:
        """One submission attempt of every message in ``work`` (first tries and retries).
        A message that logs in to an account whose password spammers hold, where the server
        keeps state over accounts (a rate limit), waits for the spam of the minute
        (``owners``): both are decided in one dialogue, so that the server sees all of the
        account's sessions in time order."""
        # a provider's customers submit to the provider's server, and home MTAs queue their
        # users' mail, on the engine path (their servers and queues are the engines')
        engines = (work.attempt == 0) & (work.target != ISP_SERVER)
        # first tries and retries alike, of sessions that log in to the account
        held = self.shared[work.isp] & work.auth
        if held.any():   # spammers may use the password at any instant of the minute
            held &= self.world.credentials.held(work.isp, work.user) & ~engines
            if self.spam is None:   # (a trace: spam's sessions are the engines')
                engines |= held
            elif held.any():
                self.owners.append(work.take(held))
                work, engines = work.take(~held), engines[~held]
        if engines.any():
            self._to_engines(work.take(engines))
            work = work.take(~engines)
        part = self._sessions_of(work)
        if part is not None:
            decide_parts(self.arrays, self.ledger, [part])

    def owners_due(self, now: float) -> Part | None:
        """The sessions of accounts whose password spammers hold that start by ``now``
        (``_submit``), ready for the dialogue of spam's sessions."""
        if not self.owners:
            return None
        work = Columns.join(self.owners)
        due = work.t <= now
        self.owners = [work.take(~due)] if not due.all() else []
        return self._sessions_of(work.take(due))

    def _sessions_of(self, work: Columns) -> Part | None:
        """The SMTP sessions of ``work`` up to their dialogue: the POP3 logins before them
        and their connections; what the dialogue decides is taken in by ``_submitted``."""
        if not len(work):
            return None
        work = work.take(np.lexsort((work.row, work.mid, work.t)))
        starts, per_row, place = runs(work.mid)
        s = work.take(starts)                               # one entry a session
        smtp_at = self._pop_logins(s)
        is_open, delay, one_way, cause = self.connections.connect(s.src_net, s.src, s.isp,
                                                                  s.port, smtp_at)
        opened = smtp_at + delay
        # a connection that never opened: its recipients are blocked, by the rule or refused
        shut = ~is_open[per_row]
        self.custody.finish(work.row[shut], Outcome.BLOCKED, opened[per_row][shut],
                            cause=cause[per_row][shut])
        live = is_open & (opened < self.end)
        self.custody.hold(work.row[is_open[per_row] & ~live[per_row]])
        if not live.any():
            return None
        keep = live[per_row]
        work, place = work.take(keep), place[keep]
        index = np.cumsum(live) - 1
        per_row = index[per_row[keep]]
        s, opened, one_way = s.take(live), opened[live], one_way[live]
        n = len(s)
        sessions = Columns({
            "server": s.isp, "opened": opened, "one_way": one_way, "client": s.src,
            "subnet": s.src_net, "port": s.port, "user": np.where(s.auth, s.user, -1),
            # only port-25 sessions can be relayed after a POP3 login
            "pop_at": self.arrays.last_logins(s.isp, s.src, opened, one_way, s.port == 25),
            "from_srv": s.isp, "from_user": s.user, "size": s.size, "key": s.key,
            "kind": np.full(n, LEGIT),
            "mid": s.mid})
        recipients = Columns({"session": per_row, "place": place, "rcpt_isp": work.rcpt_isp,
                              "rcpt_user": work.rcpt_user, "typo": work.typo, "row": work.row})
        subnets = self.world.plan.subnets
        return Part(sessions, recipients,
                    lambda k: mua_helo(int(s.src[k]), subnets[int(s.src_net[k])].name),
                    lambda d: self._submitted(work, s, per_row, d))

    def _submitted(self, work: Columns, s: Columns, per_row: np.ndarray, d: Decided) -> None:
        """What the submission sessions ``s`` of ``work`` decided (``d``): the recipients
        taken, the captures of plaintext AUTH, the refusals and the MUAs' retries."""
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
        self.custody.finish(work.row[final], Outcome.REJECTED, ends[final], code=code[final],
                            cause=cause[final])
        again = ~accepted & ~final
        self.custody.hold(work.row[again & (ends >= self.end)])
        again &= ends < self.end
        retry = work.take(again)
        t = ends[again] + self.cfg.mua_retry_s
        self.custody.later(self.due_mua, retry.but(t=t, attempt=retry.attempt + 1), t,
                           self.step_index + 1)

    def _pop_logins(self, s: Columns) -> np.ndarray:
        """The POP3 logins of the sessions whose MUA logs in before sending (a login and
        QUIT, ``netsim.mail.session.pop3_login``), recorded at their servers; returns when
        each session's SMTP connection is attempted: after its login, or at once."""
        first = s.pop_first
        if not first.any():
            return s.t
        k = np.flatnonzero(first)
        p = s.take(k)
        is_open, delay, one_way, _ = self.connections.connect(
            p.src_net, p.src, p.isp, self.pop3_port[p.isp], p.t)
        opened = p.t + delay
        login, done = pop3_login(opened, one_way, self.arrays.proc[p.isp],
                                 self.before_login[p.isp])
        servers = self.servers
        for i in np.flatnonzero(is_open).tolist():
            servers[int(p.isp[i])].record_pop_login(int(p.src[i]), float(login[i]))
        t = s.t.copy()
        t[k] = np.where(is_open, done, opened)
        return t

    def _to_engines(self, work: Columns) -> None:
        """Messages submitted by their users' mail clients (or taken by their home MTAs) on
        the engine path, each from the instant of its attempt, first or a retry
        (``netsim.world.users.MailClients``)."""
        work = work.take(np.lexsort((work.row, work.mid)))
        starts = np.flatnonzero(changes(work.mid))
        subnets, servers = self.world.plan.subnets, self.servers
        for first, last in zip(starts.tolist(), [*starts[1:].tolist(), len(work)], strict=True):
            isp, user = int(work.isp[first]), int(work.user[first])
            net = subnets[int(work.src_net[first])]
            rows = {recipient_address(servers[int(work.rcpt_isp[i])].domain,
                                      int(work.rcpt_user[i]), int(work.typo[i])):
                    int(work.row[i]) for i in range(first, last)}
            sender = SenderType(self.ledger.word("sender", int(work.row[first])))
            created = float(self.ledger.value("created_s", int(work.row[first])))
            mail = Mail(int(work.mid[first]), Kind.LEGIT, sender, servers[isp].address_of(user),
                        int(work.size[first]), created, origin=servers[isp].isp,
                        rows=rows, key=int(work.key[first]))
            submit = self.clients[isp].submit(user, mail, (int(work.src[first]), net),
                                              float(work.draw[first]),
                                              first_round=int(work.attempt[first]))
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
        """The submission server took these recipients at ``at``."""
        self.queues.accept(Columns({
            **{k: getattr(work, k) for k in ("row", "mid", "size", "key", "rcpt_isp",
                                             "rcpt_user", "typo")},
            "qsrv": work.isp, "from_srv": work.isp, "from_user": work.user,
            "kind": np.full(len(work), LEGIT), "origin": work.isp}), at, junk,
            self.step_index)


def _batches(workloads: list[Workload], start: float) -> list[Batch]:
    """Every workload's batch of messages from ``start``."""
    return [workload.batch(start, start + BATCH_S) for workload in workloads]


def _in_creation_order(parts: list[Batched]) -> Batched:
    """The ISPs' batches (each in creation order) as one, in creation order: ties by ISP,
    then as drawn (a stable sort of the batches joined in ISP order); each message's
    recipients in its order, from row ``first``. Joined once a batch, so that a minute
    is one slice of it; each column of the parts is let go once joined (a country's batch
    is not held twice)."""

    def joined(name: str, side: int) -> np.ndarray:
        return np.concatenate([part[side].pop(name) for part in parts])

    t = joined("t", 0)
    order = np.argsort(t, kind="stable")
    whole = joined("count", 0)
    rows = group_rows(whole, order)
    messages = {"t": t[order], "count": whole[order]}
    del t
    messages.update({name: joined(name, 0)[order] for name in list(parts[0][0])})
    first = messages["first"] = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(messages["count"], out=first[1:])
    recipients = {name: joined(name, 1)[rows] for name in list(parts[0][1])}
    return messages, recipients
