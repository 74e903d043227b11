"""Every server's outbound queue at fidelity ``flow``: ``netsim.mail.queue`` as arrays.

The flow path's users' mail and everything the engines hand over (spam relayed by an ISP's
server or an open relay, and the bounces either causes) wait here as rows, one a recipient,
grouped into entries of one message's recipients for one domain as ``OutboundQueue`` groups
them. Each minute every entry due in it makes one attempt, in time order: the MX and A
lookups through the queue owner's caching resolver, the connection, the SMTP session at the
recipient's server (``netsim.world.dialogue.Dialogue``), then a retry after the queue's
backoff, expiry after its lifetime, and a bounce to the sender for every permanent failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from netsim.draws import bounce_keys
from netsim.mail import Kind, Mail, Outcome, SenderType
from netsim.mail.accounts import TYPO_DOMAIN, TYPO_NONE, in_domain, mistyped, parse_local
from netsim.mail.defences import Listing
from netsim.mail.ledger import KINDS, Ledger
from netsim.mail.outbox import leaves_origin
from netsim.mail.queue import EXPIRED, NXDOMAIN, RetryPolicy
from netsim.mail.server import BOUNCE_SIZE, MailServer
from netsim.net import AddressPlan, Resolver
from netsim.runs import changes, runs
from netsim.world.columns import Columns
from netsim.world.connections import Connections
from netsim.world.custody import Custody
from netsim.world.dialogue import Dialogue, ServerArrays
from netsim.world.lookups import NO_ANSWER, NO_DOMAIN, ROUTED, Lookups

SPAM = KINDS.index(Kind.SPAM)


class FlowQueues:
    """The outbound queues of every server the dialogues decide at (the ISPs', the open
    relays) and of ``others`` (providers), as rows; a queue's owner is numbered as in
    ``servers``, the others after them."""

    def __init__(self, servers: ServerArrays, others: Sequence[MailServer],
                 resolvers: list[Resolver], retry: RetryPolicy, plan: AddressPlan,
                 ledger: Ledger, custody: Custody, connections: Connections,
                 ids: Callable[[int], np.ndarray], listing: Listing | None = None):
        self.servers = servers
        self.listing = listing   # a blocklist that sees the sessions the queues open
        self.custody = custody
        self.connections = connections
        self.ledger = ledger
        self.ids = ids
        self.end = custody.end
        self.retry = retry
        isps = servers.servers[:servers.isps]
        self.owners = owners = [*servers.servers, *others]
        code = self.ledger.code
        self.domain_code = np.array([code("rcpt_domain", s.domain) for s in isps])
        self.address = np.array([s.address for s in owners], dtype=np.int64)
        self.own_net = np.array([plan.subnet_of(s.address).index for s in owners])
        self.resolvers = resolvers
        self.resolver_of = np.array([next(i for i, r in enumerate(resolvers)
                                          if r is s.queue.resolver) for s in owners])
        self.isp_code = np.array([code("origin_isp", s.isp) for s in owners])
        self.network_code = np.array([code("origin_network", s.isp) for s in owners])
        self._origins = {s.isp: i for i, s in enumerate(isps)}
        self.owner_origin = np.array([self.origin(s.isp) for s in owners])
        self.domains = {s.domain: i for i, s in enumerate(isps)}
        self.mistyped = {mistyped(s.domain): i for i, s in enumerate(isps)}
        self.lookups = Lookups(resolvers, isps)
        self.due: dict[int, list[Columns]] = {}
        # from the engines, one entry a message: its fields, the instant, then its recipients'
        self.handed: list[tuple[tuple[int, ...], float, tuple[list[int], ...]]] = []
        self.entries = 0
        self.stepped = -1   # the last minute whose attempts were made
        for i, owner in enumerate(owners):
            owner.queue = HandOff(self, i, owner.queue.resolver)

    def origin(self, name: str) -> int:
        """A number for an origin (an ISP's, or a hosting network's, name)."""
        return self._origins.setdefault(name, len(self._origins))

    def held_rows(self) -> list[np.ndarray]:
        return [*(c.row for parts in self.due.values() for c in parts),
                np.array([row for h in self.handed for row in h[2][0]], dtype=np.int64)]

    # -- entering the queue ------------------------------------------------------------------
    def enqueue(self, work: Columns, at: np.ndarray, earliest: int) -> None:
        """Queue recipients at ``at`` (one a row), grouped into entries of one message for
        one domain, each tried first in the minute ``at`` falls in (not before
        ``earliest``)."""
        domain = work.rcpt_isp * 2 + (work.typo == TYPO_DOMAIN)
        order = np.lexsort((work.row, domain, work.mid))
        work, at, domain = work.take(order), at[order], domain[order]
        new = changes(work.mid) | changes(domain)
        entry = self.entries + np.cumsum(new) - 1
        self.entries += int(new.sum())
        rows = Columns({**work.data, "entry": entry, "queued": at, "t": at,
                        "attempt": np.zeros(len(work), dtype=np.int64)})
        self.custody.later(self.due, rows, at, earliest)

    def accept(self, work: Columns, at: np.ndarray, junk: np.ndarray, earliest: int) -> None:
        """Recipients a server (``work.qsrv``, an ISP's) took at ``at``: its own domain's
        into maildrops (or the junk folder), the rest into its queue (``enqueue``)."""
        local = in_domain(work.rcpt_isp, work.typo, work.qsrv)
        self.custody.deliver(work.take(local), at[local], junk[local])
        remote = work.take(~local)
        if len(remote):
            self.enqueue(remote, at[~local], earliest)

    def step(self, k: int) -> None:
        """Minute ``k``'s attempts, with what the engines handed over in it."""
        self.stepped = k
        self.take_handed(k)
        due = self.due.pop(k, [])
        if due:
            self._attempt(Columns.join(due))

    # -- one attempt ---------------------------------------------------------------------
    def _attempt(self, work: Columns) -> None:
        """One delivery attempt of every entry in ``work`` (``OutboundQueue._deliver``)."""
        custody = self.custody
        work = work.take(np.lexsort((work.row, work.entry, work.t)))
        starts, per_row, _ = runs(work.entry)
        e = work.take(starts)                               # one entry a queue entry
        resolver = self.resolver_of[e.qsrv]
        nxdomain = e.typo == TYPO_DOMAIN
        ended = np.full(len(e), np.nan)                    # NaN: under way at the run's end
        ready, rcode = self.lookups.route(resolver, e.rcpt_isp, nxdomain, e.t,
                                          (e.key, e.attempt + 1), self.end)
        answered = ready < self.end
        bad = (rcode == NO_DOMAIN) & answered             # NXDOMAIN: fail at once
        self._fail(work, per_row, bad[per_row], ready, Outcome.REJECTED, *NXDOMAIN)
        ended[bad] = np.inf                                # done
        temporary = (rcode == NO_ANSWER) & answered       # SERVFAIL: try again later
        ended[temporary] = ready[temporary]
        go = (rcode == ROUTED) & answered
        if go.any():
            ended[go] = self._session(work, per_row, e, go, ready)
        # what is still pending after an attempt: expire it, or try again later
        pending = self.ledger.pending(work.row)
        still = np.isfinite(ended)[per_row] & pending
        custody.hold(work.row[np.isnan(ended)[per_row] & pending])
        old = self.retry.expired(e.queued, ended)
        self._fail(work, per_row, still & old[per_row], ended, Outcome.EXPIRED, *EXPIRED)
        again = still & ~old[per_row]
        retry = work.take(again)
        attempt = retry.attempt + 1
        delay = self.retry.delays(attempt)
        t = ended[per_row][again] + delay if len(retry) else np.zeros(0)
        custody.later(self.due, retry.but(t=t, attempt=attempt), t, self.stepped + 1)

    def _session(self, work: Columns, per_row: np.ndarray, e: Columns, go: np.ndarray,
                 ready: np.ndarray) -> np.ndarray:
        """SMTP from each entry's queue owner to the recipients' MX from ``ready``; returns
        when each attempt ended (NaN: under way at the run's end)."""
        custody = self.custody
        picked = np.flatnonzero(go)
        n = len(picked)
        sub = e.take(picked)
        t = ready[picked]
        is_open, delay, one_way, _ = self.connections.connect(
            self.own_net[sub.qsrv], self.address[sub.qsrv], sub.rcpt_isp, np.full(n, 25), t)
        opened = t + delay
        result = np.where(opened < self.end, opened, np.nan)  # no connection: try later
        live = is_open & (opened < self.end)
        if not live.any():
            return result
        index = np.full(len(e), -1)
        index[picked[live]] = np.arange(int(live.sum()))
        mine = (index[per_row] >= 0) & self.ledger.pending(work.row)
        rows = work.take(mine)
        row_session = index[per_row[mine]]
        _, _, row_place = runs(row_session)
        s = sub.take(live)
        self.ledger.sent_out_rows(rows.row[leaves_origin(self.owner_origin[rows.qsrv],
                                                         rows.rcpt_isp, rows.origin)])
        if self.listing is not None:   # seen when they open, before any is judged
            self.listing.seen(self.address[s.qsrv], opened[live], s.kind == SPAM)
        sessions = Columns({
            "server": s.rcpt_isp, "opened": opened[live], "one_way": one_way[live],
            "client": self.address[s.qsrv], "subnet": self.own_net[s.qsrv],
            "port": np.full(len(s), 25), "user": np.full(len(s), -1),
            "from_srv": s.from_srv, "from_user": s.from_user, "size": s.size,
            "key": s.key, "kind": s.kind, "mid": s.mid})
        recipients = Columns({"session": row_session, "place": row_place,
                              "rcpt_isp": rows.rcpt_isp, "rcpt_user": rows.rcpt_user,
                              "typo": rows.typo, "row": rows.row})
        owners = self.owners
        d = Dialogue(self.servers, self.ledger, sessions, recipients,
                     helo=lambda j: owners[int(s.qsrv[j])].hostname).decide()
        code, cause, end = d.code, d.cause, d.end
        accepted = code == 0
        taken = rows.take(accepted)
        # taken over by a server outside the message's origin
        self.ledger.taken_outside_rows(taken.row[taken.origin != taken.rcpt_isp])
        custody.deliver(taken, d.dot[row_session][accepted], d.junk[accepted])
        # permanent refusals fail at the session's end, one bounce per distinct reply
        ends = end[row_session]
        permanent = code >= 500
        custody.finish(rows.row[permanent], Outcome.REJECTED, ends[permanent],
                       code=code[permanent], cause=cause[permanent])
        told = permanent & (ends < self.end)
        if told.any():
            pairs = np.unique(np.c_[row_session[told], code[told], cause[told]], axis=0)
            first = np.searchsorted(row_session, pairs[:, 0])
            self.bounce(rows.take(first), end[pairs[:, 0]])
        result[np.flatnonzero(live)] = np.where(end < self.end, end, np.nan)
        return result

    def _fail(self, work: Columns, per_row: np.ndarray, chosen: np.ndarray, at: np.ndarray,
              outcome: Outcome, code: int, cause: str) -> None:
        """Fail the chosen recipients still pending at their entry's instant ``at`` and
        bounce each entry to its sender (``OutboundQueue._fail``)."""
        mask = chosen & self.ledger.pending(work.row)
        if not mask.any():
            return
        self.ledger.finish_rows(work.row[mask], outcome, at[per_row][mask], code=code,
                                stopped_by=self.ledger.code("stopped_by", cause))
        entries = np.unique(per_row[mask])
        self.bounce(work.take(np.searchsorted(per_row, entries)), at[entries])

    # -- bounces ---------------------------------------------------------------------------
    def bounce(self, failed: Columns, at: np.ndarray) -> None:
        """A delivery status notification from the queue owner's MAILER-DAEMON to the
        sender of each failed row's message (``MailServer.bounce``): delivered at once when
        the sender is the owner's own user, queued otherwise; never for a bounce."""
        keep = failed.from_user >= 0
        failed, at = failed.take(keep), at[keep]
        n = len(at)
        if not n:
            return
        ledger, code = self.ledger, self.ledger.code
        ids = self.ids(n)
        owner = failed.qsrv
        row0 = ledger.add_rows(
            Kind.BOUNCE, message_id=ids, rcpt_index=np.zeros(n),
            sender=np.full(n, code("sender", SenderType.MAILER_DAEMON.value)),
            origin_isp=self.isp_code[owner], origin_network=self.network_code[owner],
            path=np.full(n, code("path", "bounce")), first_hop_port=np.zeros(n),
            rcpt_domain=self.domain_code[failed.from_srv], created=at)
        key = bounce_keys(failed.key)
        dsn = Columns({
            "row": row0 + np.arange(n), "mid": ids, "qsrv": owner,
            "from_srv": np.full(n, -1), "from_user": np.full(n, -1),
            "size": np.full(n, BOUNCE_SIZE), "key": key,
            "kind": np.full(n, KINDS.index(Kind.BOUNCE)), "origin": self.owner_origin[owner],
            "rcpt_isp": failed.from_srv, "rcpt_user": failed.from_user,
            "typo": np.full(n, TYPO_NONE)})
        local = failed.from_srv == owner
        self.custody.deliver(dsn.take(local), at[local],
                             np.zeros(int(local.sum()), dtype=bool))
        if (~local).any():
            self.enqueue(dsn.take(~local), at[~local], self.stepped + 1)

    # -- from the engines -------------------------------------------------------------------
    def hand_off(self, owner: int, mail: Mail, recipients: list[str], at: float) -> None:
        """Recipients a server's engine accepted for other domains (``MailServer.accept``),
        kept until the next minute's step files them in one batch."""
        from_srv, from_user = -1, -1
        if mail.mail_from:
            local, _, domain = mail.mail_from.rpartition("@")
            from_srv = self.domains[domain.lower()]
            from_user, typo = parse_local(local)
            assert typo == TYPO_NONE, "senders are accounts of the world"
        fields = (mail.id, owner, from_srv, from_user, mail.size, mail.key,
                  KINDS.index(mail.kind), self.origin(mail.origin))
        rows, rcpt_isps, rcpt_users, typos = [], [], [], []
        for address in recipients:
            local, _, domain = address.rpartition("@")
            domain = domain.lower()   # domain_of, inline: once per recipient
            # the address as the flow path carries it (``netsim.mail.accounts``)
            rcpt_user, typo = parse_local(local)
            if domain in self.domains:
                rcpt_isp = self.domains[domain]
            elif domain in self.mistyped:
                rcpt_isp, typo = self.mistyped[domain], TYPO_DOMAIN
            else:
                raise ValueError(f"fidelity flow cannot queue mail for {address}: "
                                 "no such domain in the world")
            if rcpt_user < 0:
                raise ValueError(f"fidelity flow cannot queue mail for {address}: not an "
                                 "address netsim writes")
            rows.append(mail.rows[address])
            rcpt_isps.append(rcpt_isp)
            rcpt_users.append(rcpt_user)
            typos.append(typo)
        self.handed.append((fields, at, (rows, rcpt_isps, rcpt_users, typos)))

    def take_handed(self, step: int) -> None:
        """File what the engines handed over since the last step."""
        if not self.handed:
            return
        handed, self.handed = self.handed, []
        count = [len(h[2][0]) for h in handed]
        fields = np.array([h[0] for h in handed], dtype=np.int64)
        work = Columns({
            **{name: np.repeat(fields[:, i], count) for i, name in enumerate(
                ("mid", "qsrv", "from_srv", "from_user", "size", "key", "kind", "origin"))},
            **{name: np.fromiter((v for h in handed for v in h[2][k]), dtype=np.int64,
                                 count=sum(count))
               for k, name in enumerate(("row", "rcpt_isp", "rcpt_user", "typo"))}})
        self.enqueue(work, np.repeat([h[1] for h in handed], count), step)


class HandOff:
    """Stands in for a server's ``OutboundQueue`` at fidelity flow: what its engine accepts
    for other domains joins the flow path's queues."""

    def __init__(self, queues: FlowQueues, owner: int, resolver: Resolver):
        self.queues = queues
        self.owner = owner
        self.resolver = resolver

    def enqueue(self, mail: Mail, recipients: list[str], at: float) -> None:
        self.queues.hand_off(self.owner, mail, recipients, at)

    def held_rows(self) -> set[int]:
        return set()   # the flow path holds them (``LegitFlow.held_rows``)

