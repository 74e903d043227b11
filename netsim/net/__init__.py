"""The network layer: addresses, ISP topology and latency, ACL filters, connections, DNS."""

from netsim.net.acl import ACL, Action, Filter, Rule, TopTalkers, op25b_rule, top_talkers_rule
from netsim.net.addresses import AddressPlan, NetKind, Subnet, text
from netsim.net.dns import MX, Answer, RCode, Resolver, Zones
from netsim.net.network import Connection, Network, Verdict
from netsim.net.topology import Topology, generated_graph, graph_from_links

__all__ = [
    "ACL", "MX", "Action", "AddressPlan", "Answer", "Connection", "Filter", "NetKind", "Network",
    "RCode", "Resolver", "Rule", "Subnet", "TopTalkers", "Topology", "Verdict", "Zones",
    "generated_graph", "graph_from_links", "op25b_rule", "text", "top_talkers_rule",
]
