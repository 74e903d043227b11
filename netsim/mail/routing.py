"""Finding where to send mail for a domain: MX lookup, preference order, the MX hosts' addresses.

RFC 5321 §5.1: MX records in preference order, equal preferences in random order, no MX
records → the domain itself is the implicit MX; a temporary DNS failure defers delivery,
a non-existent domain fails it. Addresses are capped at MX_ADDRESSES_TRIED (at least two).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import simpy

from netsim.mail.trace import Tracer
from netsim.net import MX, Answer, RCode, Resolver

MX_ADDRESSES_TRIED = 2


class RouteStatus(StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"      # permanent: the domain does not exist
    SERVFAIL = "servfail"      # temporary: try again later


@dataclass(frozen=True, slots=True)
class Route:
    status: RouteStatus
    addresses: tuple[int, ...] = ()


def query(env: simpy.Environment, resolver: Resolver, name: str, rtype: str,
          trace: Tracer | None, who: str, key: int) -> Generator[simpy.Event, Any, Answer]:
    """One DNS query through ``resolver``, waiting its latency."""
    answer, latency = resolver.query(name, rtype, env.now, key=key)
    yield env.timeout(latency)
    if trace is not None:
        trace.log(env.now, "dns", f"{who} resolver: {answer.describe()}", who, "DNS")
    return answer


def resolve_mx(env: simpy.Environment, resolver: Resolver, domain: str,
               rng: np.random.Generator, trace: Tracer | None, who: str, key: int,
               ) -> Generator[simpy.Event, Any, Route]:
    """The addresses to try for ``domain``, in order; ``key`` names the attempt that asks
    (``Resolver.query``)."""
    mx = yield from query(env, resolver, domain, "MX", trace, who, key)
    if mx.rcode is RCode.NXDOMAIN:
        return Route(RouteStatus.NXDOMAIN)
    if mx.rcode is RCode.SERVFAIL:
        return Route(RouteStatus.SERVFAIL)
    records: tuple[MX, ...] = mx.records  # type: ignore[assignment]
    hosts = _ordered(records, rng) if records else [domain]
    addresses: list[int] = []
    for host in hosts:
        a = yield from query(env, resolver, host, "A", trace, who, key)
        if a.rcode is RCode.SERVFAIL and not addresses:
            return Route(RouteStatus.SERVFAIL)
        addresses += [x for x in a.records if isinstance(x, int)]
        if len(addresses) >= MX_ADDRESSES_TRIED:
            break
    return Route(RouteStatus.OK, tuple(addresses[:MX_ADDRESSES_TRIED]))


def _ordered(records: tuple[MX, ...], rng: np.random.Generator) -> list[str]:
    """Lowest preference first; ties shuffled (draws only when there are ties)."""
    out: list[str] = []
    i = 0
    while i < len(records):
        j = i
        while j < len(records) and records[j].preference == records[i].preference:
            j += 1
        tier = [r.exchange for r in records[i:j]]
        if len(tier) > 1:
            tier = [tier[k] for k in rng.permutation(len(tier))]
        out += tier
        i = j
    return out
