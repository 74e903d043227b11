"""DNS: authoritative zone data and a caching resolver per ISP.

The resolver answers MX and A queries with the RFC 1035 response codes the mail layer acts on:
NXDOMAIN (the domain does not exist: a permanent failure), SERVFAIL (temporary: queue and
retry), NOERROR with no records (no MX: fall back to the domain's A record, RFC 5321 §5.1).
It returns each answer with its latency; the SimPy layer waits.

A lookup the cache cannot answer draws its latency and whether it fails from a keyed hash
(``netsim.draws``) of what it concerns (the message and the attempt that asks, the name and
type) and the resolver's salt: the same lookup draws the same numbers on every path and in
any order.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np

from netsim.draws import derived, keyed_uniform_one, salt
from netsim.net.addresses import text


class RCode(StrEnum):
    NOERROR = "NOERROR"
    NXDOMAIN = "NXDOMAIN"
    SERVFAIL = "SERVFAIL"


@dataclass(frozen=True, slots=True)
class MX:
    preference: int
    exchange: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One response: ``records`` are MX records for an MX query, addresses for an A query.
    Answers compare by content (``cached`` says how this one was obtained)."""

    name: str
    rtype: str
    rcode: RCode
    records: tuple[MX, ...] | tuple[int, ...] = ()
    cached: bool = field(default=False, compare=False)

    def describe(self) -> str:
        """Dig-like one-liner for traces."""
        if self.rcode is not RCode.NOERROR:
            body = self.rcode.value
        elif not self.records:
            body = "NOERROR (no records)"
        elif self.rtype == "MX":
            body = ", ".join(f"{r.preference} {r.exchange}" for r in self.records  # type: ignore[union-attr]
                             )
        else:
            body = ", ".join(text(a) for a in self.records)  # type: ignore[arg-type]
        return f"{self.name} {self.rtype} → {body}{' (cached)' if self.cached else ''}"


class Zones:
    """Authoritative data for every domain of the world."""

    def __init__(self) -> None:
        self.mx: dict[str, tuple[MX, ...]] = {}
        self.a: dict[str, tuple[int, ...]] = {}

    def add_mx(self, domain: str, preference: int, exchange: str) -> None:
        self.mx[domain] = tuple(sorted((*self.mx.get(domain, ()), MX(preference, exchange)),
                                       key=lambda r: r.preference))

    def add_a(self, host: str, address: int) -> None:
        self.a[host] = (*self.a.get(host, ()), address)

    def lookup(self, name: str, rtype: str) -> tuple[RCode, tuple[MX, ...] | tuple[int, ...]]:
        if name not in self.mx and name not in self.a:
            return RCode.NXDOMAIN, ()
        if rtype == "MX":
            return RCode.NOERROR, self.mx.get(name, ())
        return RCode.NOERROR, self.a.get(name, ())


def lognormal_params(mean: float, p90: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with this mean and 90th percentile (sigma=0 if equal).

    From mean = exp(mu + s²/2) and p90 = exp(mu + z s): s² - 2 z s + 2 ln(p90/mean) = 0.
    """
    z = 1.2815515655446004
    gap = math.log(p90 / mean)
    disc = z * z - 2 * gap
    if gap <= 0:
        return math.log(mean), 0.0
    if disc < 0:
        raise ValueError(f"no log-normal has mean {mean} and 90th percentile {p90}")
    sigma = z - math.sqrt(disc)
    return math.log(mean) - sigma * sigma / 2, sigma


class Resolver:
    """A caching recursive resolver (one per ISP) with lookup latency and rare SERVFAIL."""

    def __init__(self, zones: Zones, rng: np.random.Generator, *, ttl_s: float,
                 negative_ttl_s: float, lookup_mean_s: float, lookup_p90_s: float,
                 cached_lookup_s: float, servfail_rate: float, address: int = 0):
        self.zones = zones
        self.address = address   # where its queries go (a packet capture shows it)
        self.salt = salt(rng)
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.cached_lookup_s = cached_lookup_s
        self.servfail_rate = servfail_rate
        self._mu, self._sigma = lognormal_params(lookup_mean_s, lookup_p90_s)
        # (name, type) -> when the answer was cached, until when it is, the answer
        self._cache: dict[tuple[str, str], tuple[float, float, Answer]] = {}
        self.queries = 0
        self.cache_hits = 0
        self.out_of_order = 0   # queries earlier than the answer cached for them
        self._asked: dict[tuple[str, str], float] = {}   # the latest query that missed

    def cached(self, name: str, rtype: str) -> tuple[float, float, RCode]:
        """When the cache took this query's answer, until when it gives it (inf, -inf:
        not cached), and the answer's rcode: a query in between is a hit."""
        hit = self._cache.get((name, rtype))
        return (hit[0], hit[1], hit[2].rcode) if hit is not None else \
            (math.inf, -math.inf, RCode.NOERROR)

    def count_hits(self, n: int) -> None:
        """Count ``n`` queries answered from the cache without asking (the flow path's)."""
        self.queries += n
        self.cache_hits += n

    def query(self, name: str, rtype: str, now: float, *, key: int) -> tuple[Answer, float]:
        """Answer a query at time ``now``; returns the answer and its latency [s]. ``key``
        names what the query concerns (``netsim.draws.derived`` of a message's key and its
        attempt): a lookup the cache cannot answer draws from it."""
        self.queries += 1
        entry = (name, rtype)
        hit = self._cache.get(entry)
        if hit is not None and hit[0] <= now < hit[1]:
            self.cache_hits += 1
            answer = hit[2]
            return Answer(answer.name, answer.rtype, answer.rcode, answer.records, True), \
                self.cached_lookup_s
        # a query earlier than the answer cached for it, or than a query already answered
        # (asked out of time order, at fidelity flow): answered as the miss it was, and its
        # answer cached from then on, as it would have been had it come first; a later
        # query that missed might have been a hit
        last = self._asked.get(entry, -math.inf)
        self.out_of_order += (hit is not None and now < hit[0]) or now < last
        self._asked[entry] = max(last, now)
        draw = derived(key, _name_key(name, rtype))
        latency = math.exp(self._mu)
        if self._sigma > 0:   # a normal deviate by Box and Muller from two keyed uniforms
            u = max(keyed_uniform_one(draw, self.salt), 2.0**-54)   # kept off 0 for the log
            z = math.sqrt(-2.0 * math.log(u)) * math.cos(
                math.tau * keyed_uniform_one(derived(draw, 2), self.salt))
            latency = math.exp(self._mu + self._sigma * z)
        if (self.servfail_rate > 0
                and keyed_uniform_one(derived(draw, 1), self.salt) < self.servfail_rate):
            return Answer(name, rtype, RCode.SERVFAIL), latency   # failures are not cached
        rcode, records = self.zones.lookup(name, rtype)
        answer = Answer(name, rtype, rcode, records)
        ttl = self.ttl_s if rcode is RCode.NOERROR else self.negative_ttl_s
        self._cache[entry] = (now, now + latency + ttl, answer)
        return answer, latency


@lru_cache(maxsize=4096)
def _name_key(name: str, rtype: str) -> int:
    """A stable number for a query's name and type (CRC-32: the same in every process)."""
    return zlib.crc32(f"{rtype} {name.lower()}".encode())
