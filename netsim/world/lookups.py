"""DNS lookups as arrays: the flow path's queries through caching resolvers.

The flow path's outbound queues ask the servers' resolvers, its spam senders the
subscribers' resolvers (``netsim.world.spam_flow``); nothing else asks either at fidelity
``flow``, so what each cache answers is known exactly and kept as arrays. Queries the cache
cannot answer go through ``Resolver.query`` one at a time, in time order, with draws keyed
by what they concern (``netsim.draws.attempt_key``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from netsim.draws import attempt_key
from netsim.mail.accounts import mistyped
from netsim.mail.server import MailServer
from netsim.net import RCode, Resolver
from netsim.runs import changes

# how a query, or a route, ended, as the arrays code it
ROUTED, NO_DOMAIN, NO_ANSWER = 0, 1, 2
RCODES = {RCode.NOERROR: ROUTED, RCode.NXDOMAIN: NO_DOMAIN, RCode.SERVFAIL: NO_ANSWER}


class Lookups:
    """DNS lookups of the ISPs' domains (MX; x2: right, mistyped) and mail hosts (A) through
    a set of caching resolvers, as arrays. What each resolver's cache answers, from when
    until when, is kept by name: at fidelity flow only these arrays ask these resolvers,
    so the cache is known exactly."""

    def __init__(self, resolvers: list[Resolver], isps: Sequence[MailServer]):
        self.resolvers = resolvers
        n = len(isps)
        self.cached_lookup = np.array([r.cached_lookup_s for r in resolvers])
        self.mx_cached = (np.full((len(resolvers), 2 * n), np.inf),
                          np.full((len(resolvers), 2 * n), -np.inf))
        self.a_cached = (np.full((len(resolvers), n), np.inf),
                         np.full((len(resolvers), n), -np.inf))
        # the names queried, by the same index
        self.mx_names = [name for s in isps for name in (s.domain, mistyped(s.domain))]
        self.a_names = [s.hostname for s in isps]

    def route(self, resolver: np.ndarray, isp: np.ndarray, mistyped: np.ndarray,
              t: np.ndarray, keys: tuple[np.ndarray, np.ndarray], end: float,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Where mail for a domain goes (``netsim.mail.routing.resolve_mx``): the MX lookup
        of the domain of ISP ``isp`` (``mistyped``: its mistyped twin) at ``t``, then, once
        answered within the run (before ``end``), the A lookup of its mail host. Per query:
        when the route is known or the failing answer came, and :data:`ROUTED`,
        :data:`NO_DOMAIN` (the MX lookup's NXDOMAIN) or :data:`NO_ANSWER` (a SERVFAIL, or
        an A lookup without an address)."""
        at, rcode = self.lookup(resolver, isp * 2 + mistyped, t, "MX", keys)
        go = (rcode == ROUTED) & (at < end)
        a, a_rcode = self.lookup(resolver[go], isp[go], at[go], "A",
                                 (keys[0][go], keys[1][go]))
        at[go] = a
        rcode[go] = np.where(a_rcode == ROUTED, ROUTED, NO_ANSWER)
        return at, rcode

    def lookup(self, resolver: np.ndarray, name: np.ndarray, t: np.ndarray, rtype: str,
               keys: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """DNS queries: when each answer arrives and its rcode (0 NOERROR, 1 NXDOMAIN,
        2 SERVFAIL). Queries the cache answers are counted as hits; the rest go through the
        resolver, each name's in time order, but those an answer it cached in between
        answers, which are hits as the resolver would count them."""
        since, until = self.mx_cached if rtype == "MX" else self.a_cached
        done = np.empty(len(t))
        rcode = np.zeros(len(t), dtype=np.int64)
        hit = (since[resolver, name] <= t) & (t < until[resolver, name])
        hits = np.bincount(resolver[hit], minlength=len(self.resolvers))
        for r in np.flatnonzero(hits).tolist():
            self.resolvers[r].count_hits(int(hits[r]))
        done[hit] = t[hit] + self.cached_lookup[resolver[hit]]
        if rtype == "MX":
            rcode[hit] = name[hit] % 2            # a mistyped domain is NXDOMAIN (cached)
        names = self.mx_names if rtype == "MX" else self.a_names
        ask = np.flatnonzero(~hit)
        if not len(ask):   # the usual in a small world: every answer cached
            return done, rcode
        # by name, each name's queries in time order: the first goes to the resolver; those
        # its answer, once cached, answers are hits, the next one after them goes, and so on
        pair = resolver[ask] * len(names) + name[ask]
        order = np.lexsort((t[ask], pair))
        ask, pair = ask[order], pair[order]
        bounds = [*np.flatnonzero(changes(pair)).tolist(), len(ask)]
        # the queries the cache did not answer are asked one at a time: their entries read
        # as Python numbers (a numpy array's single entries cost more to read and write)
        at_all = t[ask]
        at_list, key0, key1 = at_all.tolist(), keys[0][ask].tolist(), keys[1][ask].tolist()
        asked = ask.tolist()
        for start, stop in itertools.pairwise(bounds):
            r, k = int(resolver[asked[start]]), int(name[asked[start]])
            res, query = self.resolvers[r], names[k]
            j = start
            while j < stop:
                i = asked[j]
                answer, latency = res.query(query, rtype, at_list[j],
                                            key=attempt_key(key0[j], key1[j]))
                done[i], rcode[i] = at_list[j] + latency, RCODES[answer.rcode]
                begins, ends, cached = res.cached(query, rtype)
                j += 1
                if j < stop and begins <= at_list[j] < ends:
                    # the queries in time order up to the entry's expiry are hits
                    n = int(np.searchsorted(at_all[j:stop], ends, side="left"))
                    hits_at = ask[j:j + n]
                    done[hits_at] = at_all[j:j + n] + res.cached_lookup_s
                    rcode[hits_at] = RCODES[cached]
                    res.count_hits(n)
                    j += n
            since[r, k], until[r, k] = begins, ends
        return done, rcode
