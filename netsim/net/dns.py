"""DNS: authoritative zone data and a caching resolver per ISP.

The resolver answers MX and A queries with the RFC 1035 response codes the mail layer acts on:
NXDOMAIN (the domain does not exist: a permanent failure), SERVFAIL (temporary: queue and
retry), NOERROR with no records (no MX: fall back to the domain's A record, RFC 5321 §5.1).
It returns each answer with its latency; the SimPy layer waits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

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
    """One response: ``records`` are MX records for an MX query, addresses for an A query."""

    name: str
    rtype: str
    rcode: RCode
    records: tuple[MX, ...] | tuple[int, ...] = ()
    cached: bool = False

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
                 cached_lookup_s: float, servfail_rate: float):
        self.zones = zones
        self.rng = rng
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.cached_lookup_s = cached_lookup_s
        self.servfail_rate = servfail_rate
        self._mu, self._sigma = lognormal_params(lookup_mean_s, lookup_p90_s)
        self._cache: dict[tuple[str, str], tuple[float, Answer]] = {}
        self.queries = 0
        self.cache_hits = 0

    def cached_until(self, name: str, rtype: str) -> float:
        """Until when the cache answers this query (-inf: not cached)."""
        hit = self._cache.get((name, rtype))
        return hit[0] if hit is not None else -math.inf

    def count_hits(self, n: int) -> None:
        """Count ``n`` queries answered from the cache without asking (the flow path's)."""
        self.queries += n
        self.cache_hits += n

    def query(self, name: str, rtype: str, now: float) -> tuple[Answer, float]:
        """Answer a query at time ``now``; returns the answer and its latency [s]."""
        self.queries += 1
        key = (name, rtype)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self.cache_hits += 1
            answer = hit[1]
            return Answer(answer.name, answer.rtype, answer.rcode, answer.records, True), \
                self.cached_lookup_s
        latency = float(math.exp(self._mu + self._sigma * self.rng.standard_normal())) \
            if self._sigma > 0 else math.exp(self._mu)
        if self.servfail_rate > 0 and self.rng.random() < self.servfail_rate:
            return Answer(name, rtype, RCode.SERVFAIL), latency   # failures are not cached
        rcode, records = self.zones.lookup(name, rtype)
        answer = Answer(name, rtype, rcode, records)
        ttl = self.ttl_s if rcode is RCode.NOERROR else self.negative_ttl_s
        self._cache[key] = (now + latency + ttl, answer)
        return answer, latency
