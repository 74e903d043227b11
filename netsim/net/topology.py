"""The ISP graph and its latencies: shortest paths by latency, computed once per world."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import networkx as nx
import numpy as np

from netsim.net.addresses import Subnet


class Topology:
    """ISPs as nodes of a networkx graph whose edges carry a one-way ``latency`` [s].

    ``path_latency[i, j]`` is the shortest-path one-way latency between ISPs i and j;
    the diagonal holds each ISP's core latency (traffic that stays inside the ISP).
    """

    def __init__(self, graph: nx.Graph, isps: Sequence[str], core_latency_s: Sequence[float]):
        if not nx.is_connected(graph):
            raise ValueError("the ISP graph is not connected")
        self.graph = graph
        self.isps = tuple(isps)
        self.index = {name: i for i, name in enumerate(self.isps)}
        n = len(self.isps)
        self.path_latency = np.zeros((n, n))
        for src, lengths in nx.all_pairs_dijkstra_path_length(graph, weight="latency"):
            for dst, latency in lengths.items():
                self.path_latency[self.index[src], self.index[dst]] = latency
        np.fill_diagonal(self.path_latency, core_latency_s)
        self._paths = self.path_latency.tolist()   # plain floats: faster to index in Python

    def one_way(self, src: Subnet, dst: Subnet) -> float:
        """One-way latency between hosts of two networks: both access links and the path."""
        return src.access_latency_s + self._paths[src.isp][dst.isp] + dst.access_latency_s


def graph_from_links(isps: Sequence[str], links: Sequence[tuple[str, str, float]]) -> nx.Graph:
    """A graph given edge by edge."""
    graph = nx.Graph()
    graph.add_nodes_from(isps)
    for a, b, latency in links:
        graph.add_edge(a, b, latency=latency)
    return graph


def generated_graph(isps: Sequence[str], generator: str, attach: int, latency_min_s: float,
                    latency_max_s: float, rng: np.random.Generator) -> nx.Graph:
    """A seeded networkx graph over the ISPs with uniform random link latencies."""
    n = len(isps)
    seed = int(rng.integers(2**31))
    if generator == "complete" or n <= attach:
        base = nx.complete_graph(n)
    elif generator == "waxman":
        base = nx.waxman_graph(n, seed=seed)
        # Waxman graphs can come out disconnected: join the parts in a chain.
        parts = [min(c) for c in nx.connected_components(base)]
        base.add_edges_from(itertools.pairwise(parts))
    else:
        base = nx.barabasi_albert_graph(n, attach, seed=seed)
    graph = nx.relabel_nodes(base, dict(enumerate(isps)))
    for a, b in sorted(graph.edges()):
        graph.edges[a, b]["latency"] = float(rng.uniform(latency_min_s, latency_max_s))
    return graph
