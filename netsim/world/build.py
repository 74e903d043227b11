"""From a scenario to a world: topology, address plan, filters, DNS, servers and populations."""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
import simpy

from netsim.mail import Ledger, MailServer, OutboundQueue, RetryPolicy, ServerSettings, Tracer
from netsim.mail.accounts import recipient_address
from netsim.mail.outbox import Outbox
from netsim.net import (
    AddressPlan,
    NetKind,
    Network,
    Resolver,
    Subnet,
    Topology,
    Zones,
    generated_graph,
    graph_from_links,
)
from netsim.scenario import Scenario
from netsim.scenario.schema import MailServerConfig
from netsim.world.credentials import CredentialPool, check_capture_process, seed_compromised
from netsim.world.flow import LegitFlow
from netsim.world.heap import give_back
from netsim.world.helper import Helper
from netsim.world.policies import apply_policies
from netsim.world.retrieval import Held, Retrievals
from netsim.world.spam import SpammerServers, SpamSessions, build_botnets
from netsim.world.spam_flow import SpamFlow
from netsim.world.streams import Streams
from netsim.world.users import UserPopulation, mua_helo
from netsim.world.workload import GROUP_HOME_MTA, Workload, next_check


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes, and lets a streaming ledger
    hand its rows at rest on between two events (when no process is midway through a
    step)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0
        self.ledger: Ledger | None = None

    def step(self) -> None:
        self.events_processed += 1
        ledger = self.ledger
        if ledger is not None and ledger.due:
            ledger.retire()
            give_back()   # what the cut freed, to the operating system
        super().step()


class World:
    """Everything one run simulates. Built from a validated scenario; run with ``env.run``."""

    def __init__(self, scenario: Scenario, *, replication: int = 0,
                 tracer: Tracer | None = None, env: CountingEnvironment | None = None,
                 helper: Helper | None = None):
        self.scenario = scenario
        # work done meanwhile on a second core (``netsim.world.helper``: ``simulate`` gives
        # a large world one, and closes it); by default done in place
        self.helper = helper if helper is not None else Helper(threaded=False)
        self.env = env if env is not None else CountingEnvironment()
        self.streams = Streams(scenario.seed, replication)
        self.ledger = Ledger()
        self.env.ledger = self.ledger
        self.tracer = tracer
        self.messages_created = 0
        self.topology = Topology(self._graph(), [i.name for i in scenario.isps],
                                 [i.core_latency_s for i in scenario.isps])
        self.plan = AddressPlan(self._subnets())
        self.network = Network(self.plan, self.topology,
                               connect_timeout_s=scenario.smtp.connect_timeout_s)
        self.zones = Zones()
        self.resolvers: list[Resolver] = []
        self.outbox = Outbox()
        self.credentials = CredentialPool([i.subscribers for i in scenario.isps])
        isps = range(len(scenario.isps))
        smtp = scenario.smtp
        self.retry_policy = RetryPolicy(smtp.backoff_min_s, smtp.backoff_max_s,
                                        smtp.queue_lifetime_s)
        self.servers = [self._server(i) for i in isps]
        # each ISP's recursive resolver for its subscribers' hosts; its mail server keeps a
        # caching resolver of its own (``resolvers``), as MTAs do
        self.subscriber_resolvers = [self._resolver(f"dns.{i.name}.subscribers", i.name)
                                     for i in scenario.isps]
        self.listing = apply_policies(self)
        self.relays = self._open_relays()
        self.providers = self._providers()
        # provider accounts: customer ``offset[isp] + user``
        self._offset = np.concatenate([[0], np.cumsum([i.subscribers for i in scenario.isps])])
        self.server_index = {server.address: i for i, server in enumerate(self.servers)}
        self.recipient_choice = [self._recipient_choice(i) for i in isps]
        self.workloads = [Workload(scenario, self.streams, i, self.recipient_choice[i])
                          for i in isps]
        self.home_mtas, self._home_mta = self._home_mtas()
        # every server that is not an ISP's: they queue and relay like the ISPs' servers
        self.other_servers = [*self.relays, *self.providers, *self.home_mtas]
        for server in [*self.servers, *self.other_servers]:   # what their queues send is seen
            if isinstance(server.queue, OutboundQueue):
                server.queue.listing = self.listing
        self.retrievals: Retrievals | None = None
        self.flow: LegitFlow | None = None
        self.populations: list[UserPopulation] = []
        if scenario.fidelity == "flow":
            self.retrievals = Retrievals(self)
            for server in self.servers:
                server.retrievals = self.retrievals
            self.flow = LegitFlow(self, self.retrievals)
        else:
            self.populations = [UserPopulation(self, i, self.workloads[i]) for i in isps]
            for population in self.populations:
                if population.workload.total_rate > 0:
                    self.env.process(population.send_loop())
        seed_compromised(self)
        for i in isps:
            capture = check_capture_process(self, i)
            if capture is not None:
                self.env.process(capture)
        sessions = SpamSessions(self)
        if self.flow is not None and tracer is None:   # a trace follows the engines
            sessions.flow = SpamFlow(self, self.flow, sessions, self.subscriber_resolvers)
        self.botnets = build_botnets(self, sessions)
        self.spammers = [SpammerServers(self, cfg, k, sessions)
                         for k, cfg in enumerate(scenario.spam.spammer_servers)]
        if self.listing is not None:   # the spam sources the list's operators see
            self.listing.watch([*(r.address for r in self.relays),
                                *(a for s in self.spammers for a in s.addresses)])

    def next_id(self) -> int:
        """A new message id; ids count messages from 1 in creation order."""
        self.messages_created += 1
        return self.messages_created

    def next_ids(self, n: int) -> np.ndarray:
        """``n`` new message ids at once (the flow path's batches)."""
        first = self.messages_created + 1
        self.messages_created += n
        return np.arange(first, first + n, dtype=np.int64)

    def address(self, isp: int, user: int, typo: int) -> str:
        """The address a user of any ISP writes for ``user`` of ``isp`` (maybe mistyped)."""
        return recipient_address(self.servers[isp].domain, user, typo)

    def customer(self, isp: int, user: int) -> int:
        """The account a user of ``isp`` has at a mail provider."""
        return int(self._offset[isp]) + user

    def home_mta(self, isp: int, user: int) -> MailServer:
        """The MTA a user runs at home."""
        return self.home_mtas[self._home_mta[isp, user]]

    def dynamic_pool(self, isp: int) -> Subnet:
        return self.plan.by_name[f"{self.scenario.isps[isp].name}.dynamic"]

    def finish(self) -> None:
        """After the run: what the flow path filed for after its last minute, then first
        retrievals (fidelity flow)."""
        if self.flow is not None:
            self.flow.flush()
        if self.retrievals is not None:
            self.retrievals.finish()

    def drained(self, isp: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """When mail delivered at ``at`` to the ISP's accounts ``users`` leaves their
        mailboxes: at a POP3 client's next scheduled check, never for an IMAP client's."""
        interval = self.scenario.users.pop3_check_interval_s

        def drained(users: np.ndarray, at: np.ndarray) -> np.ndarray:
            workload = self.workloads[isp]   # read when mail arrives: built after the policies
            gone = next_check(workload.check_phase[users], interval, at)
            return gone if workload.imap is None else np.where(workload.imap[users], np.inf,
                                                               gone)
        return drained

    def mailboxes(self) -> dict[str, dict[str, int]]:
        """What the ISPs' maildrops hold at the end, by the protocol their users retrieve
        with: POP3 deletes what it retrieved, IMAP leaves it on the server."""
        if self.retrievals is not None:
            return {k: held.summary() for k, held in self.retrievals.held.items()}
        held = {"pop3": Held(), "imap": Held()}
        for server, workload in zip(self.servers, self.workloads, strict=True):
            drops = server.maildrops
            for user in drops.users():
                imap = workload.imap is not None and bool(workload.imap[user])
                held["imap" if imap else "pop3"].add(np.array(drops.sizes(user)))
        return {k: h.summary() for k, h in held.items()}

    def out_of_order(self) -> dict[str, int]:
        """Asks that came earlier in time than one a stateful policy, a stateful ACL rule or
        a resolver's cache had already answered for the same key, by policy or rule
        (``dns`` for the caches): none on the engine path; at fidelity flow, each may have
        been answered otherwise than the engines would (docs/fidelity.md)."""
        counts: dict[str, int] = {}
        for server in [*self.servers, *self.other_servers]:
            for policy in server.policies:
                n = getattr(policy, "out_of_order", 0)
                if n:
                    name = type(policy).__name__
                    counts[name] = counts.get(name, 0) + n
        for acl in (*self.network.egress, *self.network.ingress):
            for rule in acl.rules:
                n = getattr(rule, "out_of_order", 0)   # a stateful rule's (TopTalkers)
                if n:
                    counts[rule.name] = counts.get(rule.name, 0) + n
        if self.listing is not None and self.listing.out_of_order:
            counts["Listing"] = self.listing.out_of_order
        dns = sum(r.out_of_order for r in [*self.resolvers, *self.subscriber_resolvers])
        if dns:
            counts["dns"] = dns
        if self.retrievals is not None and self.retrievals.late:
            counts["retrieval"] = self.retrievals.late
        return counts

    def held_rows(self) -> set[int]:
        """Every recipient some queue or MUA outbox still holds."""
        held = self.outbox.held_rows()
        for server in [*self.servers, *self.other_servers]:
            held |= server.held_rows()
        if self.flow is not None:
            held |= self.flow.held_rows()
        return held

    def _recipient_choice(self, isp: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Other ISPs with subscribers and their cumulative shares of all their subscribers."""
        others = [j for j, o in enumerate(self.scenario.isps) if j != isp and o.subscribers]
        if not others:
            return None
        weights = np.array([self.scenario.isps[j].subscribers for j in others], dtype=float)
        return np.array(others), np.cumsum(weights) / weights.sum()

    def _graph(self) -> nx.Graph:
        s = self.scenario
        names = [i.name for i in s.isps]
        if s.links is not None:
            return graph_from_links(names, [(k.a, k.b, k.latency_s) for k in s.links])
        if s.topology is not None:
            t = s.topology
            return generated_graph(names, t.generator, t.attach, t.latency_min_s,
                                   t.latency_max_s, self.streams["topology"])
        return graph_from_links(names, [])   # a single ISP

    def _subnets(self) -> list[Subnet]:
        s = self.scenario
        index = {isp.name: i for i, isp in enumerate(s.isps)}
        nets: list[Subnet] = []
        for i, isp in enumerate(s.isps):
            nets.append(Subnet(len(nets), f"{isp.name}.dynamic", NetKind.DYNAMIC,
                               isp.dynamic_pool, i, isp.access_latency_s,
                               isp.access_bandwidth_bps))
            nets.append(Subnet(len(nets), f"{isp.name}.static", NetKind.STATIC,
                               isp.server_network, i, isp.server_latency_s,
                               s.smtp.server_bandwidth_bps))
        for v in s.visited_networks:
            nets.append(Subnet(len(nets), v.name, NetKind.VISITED, v.prefix, index[v.upstream],
                               v.access_latency_s, s.isps[index[v.upstream]].access_bandwidth_bps))
        for h in s.hosting_networks:
            nets.append(Subnet(len(nets), h.name, NetKind.HOSTING, h.prefix, index[h.upstream],
                               h.access_latency_s, s.smtp.server_bandwidth_bps))
        return nets

    def _server(self, i: int) -> MailServer:
        s = self.scenario
        isp = s.isps[i]
        static = self.plan.by_name[f"{isp.name}.static"]
        dynamic = self.plan.by_name[f"{isp.name}.dynamic"]
        address = static.host(0)
        self.zones.add_mx(isp.domain, 10, f"mail.{isp.domain}")
        self.zones.add_a(f"mail.{isp.domain}", address)
        resolver = self._resolver(f"dns.{isp.name}", isp.name)
        settings = self._settings(isp.mail_server)
        self.resolvers.append(resolver)
        return MailServer(self.env, isp=isp.name, domain=isp.domain, address=address,
                          users=isp.subscribers,
                          own_subnets=frozenset({dynamic.index, static.index}),
                          settings=settings, network=self.network, resolver=resolver,
                          ledger=self.ledger, retry=self.retry_policy,
                          rng=self.streams[f"mx.{isp.name}"], ids=self.next_id,
                          tracer=self.tracer, scan_rng=self.streams[f"scan.{isp.name}"])

    def _resolver(self, stream: str, isp: str) -> Resolver:
        """A resolver of the ISP ``isp``, at the last address of its server network."""
        d = self.scenario.dns
        static = self.plan.by_name[f"{isp}.static"]
        return Resolver(self.zones, self.streams[stream], ttl_s=d.ttl_s,
                        negative_ttl_s=d.negative_ttl_s, lookup_mean_s=d.lookup_mean_s,
                        lookup_p90_s=d.lookup_p90_s, cached_lookup_s=d.cached_lookup_s,
                        servfail_rate=d.servfail_rate, address=static.host(static.hosts - 1))

    def _settings(self, m: MailServerConfig) -> ServerSettings:
        """A server's settings from its scenario's, at the scenario's fidelity."""
        s = self.scenario
        return ServerSettings(m.session_slots, m.processing_s, m.max_recipients,
                              m.message_size_limit, s.smtp.server_bandwidth_bps, m.scan_mean_s,
                              m.auth_failure_limit, m.auth_failure_window_s,
                              per_command=s.fidelity == "command", direct=s.fidelity == "flow")

    def _providers(self) -> list[MailServer]:
        """Mail providers' servers, in the middle of their hosting networks (clear of the
        spammer servers at the bottom and the open relays at the top): they relay for their
        authenticated customers only."""
        providers: list[MailServer] = []
        customers = sum(i.subscribers for i in self.scenario.isps)
        for k, cfg in enumerate(self.scenario.providers):
            net = self.plan.by_name[cfg.network]
            hostname = f"mail.{cfg.domain}"
            address = net.host((net.prefix.num_addresses - 2) // 2 + k)
            self.zones.add_mx(cfg.domain, 10, hostname)
            self.zones.add_a(hostname, address)
            server = self._outside_server(cfg.name, cfg.domain, address, customers, net.isp,
                                          hostname, cfg.name)
            server.listen(25)
            if cfg.submission is not None:
                server.listen(587, from_s=cfg.submission.start_s)
            providers.append(server)
        return providers

    def _home_mtas(self) -> tuple[list[MailServer], dict[tuple[int, int], int]]:
        """The MTAs users run on their hosts at home: each queues its user's mail and
        delivers it from the host's address (through the ISP's resolver)."""
        mtas: list[MailServer] = []
        index: dict[tuple[int, int], int] = {}
        for i, workload in enumerate(self.workloads):
            if workload.group is None:
                continue
            pool = self.dynamic_pool(i)
            for user in np.flatnonzero(workload.group == GROUP_HOME_MTA).tolist():
                address = pool.host(user)
                name = mua_helo(address, pool.name)
                index[i, user] = len(mtas)
                mtas.append(self._outside_server(self.scenario.isps[i].name, name, address, 0,
                                                 i, name, name))
        return mtas, index

    def _outside_server(self, origin: str, domain: str, address: int, users: int,
                        upstream: int, hostname: str, stream: str) -> MailServer:
        """A mail server that is not an ISP's (an open relay, a provider's, a home MTA):
        none of its networks is its own; the settings and resolver of the ISP ``upstream``
        of its network; draws from the stream ``mx.<stream>``."""
        return MailServer(
            self.env, isp=origin, domain=domain, address=address, users=users,
            own_subnets=frozenset(), settings=self._settings(
                self.scenario.isps[upstream].mail_server),
            network=self.network, resolver=self.resolvers[upstream], ledger=self.ledger,
            retry=self.retry_policy, rng=self.streams[f"mx.{stream}"], ids=self.next_id,
            tracer=self.tracer, hostname=hostname)

    def _open_relays(self) -> list[MailServer]:
        """Misconfigured servers that relay for anyone: no policies at all."""
        relays: list[MailServer] = []
        rng = self.streams["spam.open_relays"]
        for cfg in self.scenario.spam.open_relays:
            net = self.plan.by_name[cfg.network]
            size = net.prefix.num_addresses - 2
            # at home: a random subscriber's host; in hosting: the top of the range, clear of
            # the spammer servers, which take the bottom
            hosts = (rng.choice(size, size=cfg.count, replace=False)
                     if net.kind is NetKind.DYNAMIC else range(size - 1, size - 1 - cfg.count, -1))
            for host in hosts:
                name = f"relay{len(relays) + 1}.{cfg.network.replace('.', '-')}.example"
                origin = self.scenario.isps[net.isp].name if net.kind is NetKind.DYNAMIC \
                    else net.name
                relay = self._outside_server(origin, name, net.host(int(host)), 0, net.isp,
                                             name, name)
                relay.policies = []
                relay.listen(25)
                relays.append(relay)
        return relays
