"""ISP policies and receiver defences, turned into ACL rules, listeners and server policies.

Where is OP25B decided? Here: one ACL rule at the ISP's egress (``netsim.net.acl.op25b_rule``)
whose source is the ISP's dynamic pool, or an address block of it, and the visited networks
behind it; and, on the ISP's top talkers, a stateful rule after it
(``netsim.net.acl.top_talkers_rule``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from netsim.draws import salt
from netsim.mail import MailServer
from netsim.mail.defences import (
    Blocklist,
    ContentFilter,
    Greylisting,
    Listing,
    MailboxQuota,
    RateLimit,
    coverage_by_subnet,
)
from netsim.mail.mailbox import MailboxUsage
from netsim.mail.policy import LocalRecipients, RelayControl, SenderLoginMatch
from netsim.net import (
    Action,
    AddressPlan,
    NetKind,
    Network,
    Rule,
    Subnet,
    op25b_rule,
    top_talkers_rule,
)
from netsim.scenario import Scenario
from netsim.world.streams import Streams


class PolicyWorld(Protocol):
    """What installing policies reads of the world."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def plan(self) -> AddressPlan: ...
    @property
    def servers(self) -> list[MailServer]: ...
    @property
    def network(self) -> Network: ...
    @property
    def streams(self) -> Streams: ...

    def dynamic_pool(self, isp: int) -> Subnet: ...

    def drained(self, isp: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """When mail delivered to the ISP's accounts leaves their mailboxes."""


def apply_policies(world: PolicyWorld) -> Listing | None:
    """Install every ISP's policies and the scenario's receiver defences; returns the
    blocklist the consulting servers share, if the scenario has one."""
    s = world.scenario
    plan = world.plan
    listing = _listing(world)
    consults = _consulting(world)
    for i, isp in enumerate(s.isps):
        p = isp.policies
        server = world.servers[i]
        server.pop3_security = isp.mail_server.pop3_security
        server.imap_security = isp.mail_server.imap_security
        server.listen(25)
        server.listen(server.pop3_port)
        server.listen(server.imap_port)
        if p.submission is not None:
            server.listen(587, from_s=p.submission.start_s)
        pool = world.dynamic_pool(i)
        if p.op25b is not None:
            visited = [n for n in plan.subnets if n.kind is NetKind.VISITED and n.isp == i]
            world.network.egress[i].append(op25b_rule(
                isp.name, [pool.index, *(n.index for n in visited)], [server.address],
                action=Action(p.op25b.action), active_from=p.op25b.start_s,
                src_ranges=_covered(pool, isp.subscribers, p.op25b.pool_share, visited)))
        if p.op25b_top_talkers is not None:
            t = p.op25b_top_talkers
            world.network.egress[i].append(top_talkers_rule(
                pool.index, [server.address], max_connections=t.max_connections,
                window_s=t.window_s, action=Action(t.action), active_from=t.start_s))
        if p.inbound_25_block is not None:
            outside = frozenset(n.index for n in plan.subnets if not (
                n.isp == i and n.kind in (NetKind.DYNAMIC, NetKind.STATIC)))
            world.network.ingress[i].append(Rule(
                "inbound_25_block", Action.DROP, frozenset({25}), src_subnets=outside,
                dst_subnets=frozenset({world.dynamic_pool(i).index}),
                active_from=p.inbound_25_block.start_s))
        auth_from = p.auth_on_25.start_s if p.auth_on_25 is not None else math.inf
        pop = p.pop_before_smtp
        server.policies = [
            RelayControl(auth_from, pop.start_s if pop is not None else math.inf,
                         pop.window_s if pop is not None else 0.0),
            LocalRecipients()]
        if p.sender_login_match is not None:
            server.policies.append(SenderLoginMatch(server.domain, server.users,
                                                    p.sender_login_match.start_s))
        if p.rate_limit is not None:
            server.policies.append(RateLimit(p.rate_limit.recipients_per_hour,
                                             p.rate_limit.start_s))
        quota = isp.mail_server.mailbox_quota_bytes
        if quota is not None:
            server.usage = MailboxUsage(world.drained(i))
            server.policies.append(MailboxQuota(quota, server.usage))
        _defences(world, server, listing if consults[i] else None)
    return listing


def _covered(pool: Subnet, subscribers: int, share: float,
             visited: list[Subnet]) -> list[tuple[int, int]] | None:
    """The source addresses OP25B on ``share`` of a pool covers: the block of the pool's
    first round(share × subscribers) hosts (subscribers hold the pool's first hosts), and
    the visited networks whole; None (no narrowing) for the whole pool."""
    if share >= 1:
        return None
    hosts = round(share * subscribers)
    block = [(pool.host(0), pool.host(hosts - 1))] if hosts else []
    return block + [(n.first, n.last) for n in visited]


def _listing(world: PolicyWorld) -> Listing | None:
    """The scenario's blocklist: which ranges it lists is a keyed draw of each range, salted
    from its own stream."""
    b = world.scenario.defences.blocklist
    if b is None:
        return None
    coverage = coverage_by_subnet(world.plan, {NetKind(k): c for k, c in b.listed.items()})
    return Listing(coverage, b.range_prefix, salt(world.streams["defences.blocklist.ranges"]),
                   b.list_seen_after_s)


def _consulting(world: PolicyWorld) -> list[bool]:
    """Whether each ISP's server consults the blocklist: the ISPs named, or each with
    probability ``consulted_by`` (one draw an ISP, in the scenario's order, from its own
    stream: a larger share adds servers and keeps the others)."""
    s = world.scenario
    b = s.defences.blocklist
    if b is None:
        return [False] * len(s.isps)
    if isinstance(b.consulted_by, list):
        return [isp.name in b.consulted_by for isp in s.isps]
    draws = world.streams["defences.blocklist.consulted_by"].random(len(s.isps))
    return (draws < b.consulted_by).tolist()


def _defences(world: PolicyWorld, server: MailServer, listing: Listing | None) -> None:
    d = world.scenario.defences
    if listing is not None:
        server.policies.insert(0, Blocklist(listing))
    if d.greylisting is not None:
        server.policies.append(Greylisting(d.greylisting.delay_s, d.greylisting.retry_window_s))
    if d.content_filter is not None:
        c = d.content_filter
        server.policies.append(ContentFilter(c.detection_rate, c.false_positive_rate, c.action,
                                             world.streams[f"defences.content.{server.isp}"]))
