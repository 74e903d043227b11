"""From a scenario to a world: topology, address plan, filters, DNS, servers and populations."""

from __future__ import annotations

import networkx as nx
import numpy as np
import simpy

from netsim.mail import Ledger, MailServer, RetryPolicy, ServerSettings, Tracer
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
from netsim.world.streams import Streams
from netsim.world.users import UserPopulation

SERVER_ACCESS_LATENCY_S = 0.0005   # one-way latency inside an ISP's server network; assumed


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


class World:
    """Everything one run simulates. Built from a validated scenario; run with ``env.run``."""

    def __init__(self, scenario: Scenario, *, replication: int = 0,
                 tracer: Tracer | None = None):
        self.scenario = scenario
        self.env = CountingEnvironment()
        self.streams = Streams(scenario.seed, replication)
        self.ledger = Ledger()
        self.tracer = tracer
        self.messages_created = 0
        self.topology = Topology(self._graph(), [i.name for i in scenario.isps],
                                 [i.core_latency_s for i in scenario.isps])
        self.plan = AddressPlan(self._subnets())
        self.network = Network(self.plan, self.topology,
                               connect_timeout_s=scenario.smtp.connect_timeout_s)
        self.zones = Zones()
        self.servers = [self._server(i) for i in range(len(scenario.isps))]
        self.recipient_choice = [self._recipient_choice(i) for i in range(len(scenario.isps))]
        self.populations = [UserPopulation(self, i) for i in range(len(scenario.isps))]

    def next_id(self) -> int:
        """A new message id; ids count messages from 1 in creation order."""
        self.messages_created += 1
        return self.messages_created

    def dynamic_pool(self, isp: int) -> Subnet:
        return self.plan.by_name[f"{self.scenario.isps[isp].name}.dynamic"]

    def held_rows(self) -> set[int]:
        """Every recipient some queue or MUA outbox still holds."""
        held: set[int] = set()
        for server in self.servers:
            held |= server.held_rows()
        for population in self.populations:
            held |= population.held_rows()
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
                               isp.server_network, i, SERVER_ACCESS_LATENCY_S,
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
        d = s.dns
        resolver = Resolver(self.zones, self.streams[f"dns.{isp.name}"], ttl_s=d.ttl_s,
                            negative_ttl_s=d.negative_ttl_s, lookup_mean_s=d.lookup_mean_s,
                            lookup_p90_s=d.lookup_p90_s, cached_lookup_s=d.cached_lookup_s,
                            servfail_rate=d.servfail_rate)
        m = isp.mail_server
        settings = ServerSettings(m.session_slots, m.processing_s, m.submission_port,
                                  m.relay_for_own_networks, m.max_recipients,
                                  m.message_size_limit, s.smtp.server_bandwidth_bps)
        retry = RetryPolicy(s.smtp.backoff_min_s, s.smtp.backoff_max_s, s.smtp.queue_lifetime_s)
        return MailServer(self.env, isp=isp.name, domain=isp.domain, address=address,
                          users=isp.subscribers,
                          own_subnets=frozenset({dynamic.index, static.index}),
                          settings=settings, network=self.network, resolver=resolver,
                          ledger=self.ledger, retry=retry, ids=self.next_id, tracer=self.tracer)
