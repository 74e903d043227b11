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
          trace: Tracer | None, who: str, key: int, client: int = 0,
          ) -> Generator[simpy.Event, Any, Answer]:
    """One DNS query of the host ``client`` (labelled ``who``) through ``resolver``,
    waiting its latency."""
    asked = env.now
    answer, latency = resolver.query(name, rtype, asked, key=key)
    yield env.timeout(latency)
    if trace is not None:
        trace.looked_up(asked, env.now, who, client, resolver.address, answer)
    return answer


def resolve_mx(env: simpy.Environment, resolver: Resolver, domain: str,
               rng: np.random.Generator, trace: Tracer | None, who: str, key: int,
               client: int = 0) -> Generator[simpy.Event, Any, Route]:
    """The addresses to try for ``domain``, in order; ``key`` names the attempt that asks
    (``Resolver.query``), ``client`` the asking host."""
    mx = yield from query(env, resolver, domain, "MX", trace, who, key, client)
    if mx.rcode is RCode.NXDOMAIN:
        return Route(RouteStatus.NXDOMAIN)
    if mx.rcode is RCode.SERVFAIL:
        return Route(RouteStatus.SERVFAIL)
    records: tuple[MX, ...] = mx.records  # type: ignore[assignment]
    hosts = _ordered(records, rng) if records else [domain]
    addresses: list[int] = []
    for host in hosts:
        a = yield from query(env, resolver, host, "A", trace, who, key, client)
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
