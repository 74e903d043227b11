"""What one ISP's users send: messages drawn in vectorised batches, the same at every fidelity.

The users of an ISP are one Poisson process at the sum of their (log-normal) rates; a batch
holds the messages created in one interval of simulated time as numpy arrays, one entry a
message, with the recipients as flat arrays. The engine path replays a batch message by
message through SimPy and the protocol engines; the flow path (``netsim.world.flow``) decides
it in bulk. Both read the same draws, which is what lets a test compare them recipient by
recipient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from netsim.mail.accounts import TYPO_DOMAIN, TYPO_NONE, TYPO_USER
from netsim.scenario import Scenario
from netsim.world.columns import repeated
from netsim.world.streams import Streams

BATCH_S = 600.0    # simulated seconds of sending drawn at once (held as arrays until sent)
HOME = -1           # ``where`` of a user at home; otherwise the index of a visited network

# Who handles a user's mail: their access ISP's server, a provider's, or their own MTA
GROUP_ISP, GROUP_PROVIDER, GROUP_HOME_MTA = 0, 1, 2
# How a user's mail client submits on port 25 (before its ISP offers 587, or always)
MUA_25_PLAIN, MUA_25_AUTH, MUA_25_POP = 0, 1, 2

# How a message is submitted, one code a path (the ledger's ``path``); the first three are
# the codes of the settings on 25 above. What each path means: its port, whether it
# authenticates, whether a POP3 login comes first, and which server it submits to.
PATHS = ("mua:25", "mua:25+auth", "mua:25+pop", "mua:587", "provider:25", "provider:587",
         "mta:direct", "mta:isp_25", "mta:isp_587")
ISP_SERVER, PROVIDER, HOME_MTA = 0, 1, 2   # the target of a path
PORT = np.array([25, 25, 25, 587, 25, 587, 25, 25, 587])
AUTH = np.array([False, True, False, True, True, True, False, False, True])
POP_FIRST = np.array([False, False, True, False, False, False, False, False, False])
TARGET = np.array([ISP_SERVER] * 4 + [PROVIDER] * 2 + [HOME_MTA, ISP_SERVER, ISP_SERVER])
# whether a path's AUTH logs in to an ISP account: what an eavesdropper may capture into the
# spammers' pool, which holds ISPs' accounts
EXPOSES = AUTH & (TARGET == ISP_SERVER)
HOME_MTA_PATHS = {"none": 6, "isp_25": 7, "isp_587": 8}   # by ``home_mta_smarthost``


def submission_path(group: Any, on_587: Any, mode: Any, at: Any, isp_587_from: Any,
                    provider_587_from: Any, home_mta_path: int) -> Any:
    """How a message written at ``at`` is submitted (a code of ``PATHS``): a mail client set
    for 587 submits there where and once its server (the ISP's, or the provider's) offers
    587 (users move to 587 when it opens; an ISP without 587 has none of its users on it),
    else on 25 as set; a home MTA as configured. For one message or arrays of them."""
    isp = np.where(on_587 & (at >= isp_587_from), 3, mode)
    provider = np.where(on_587 & (at >= provider_587_from), 5, 4)
    return np.where(group == GROUP_PROVIDER, provider,
                    np.where(group == GROUP_HOME_MTA, home_mta_path, isp))


def categories(draws: np.ndarray, shares: tuple[float, ...],
               codes: tuple[int, ...]) -> np.ndarray:
    """The category of each uniform draw: ``codes[k]`` where it falls in the k-th of
    consecutive ``shares`` of [0, 1), the last code beyond them."""
    return np.asarray(codes, dtype=np.int8)[np.searchsorted(np.cumsum(shares), draws,
                                                            side="right")]


@dataclass(slots=True)
class Batch:
    """Messages created in ``[start, end)`` by one ISP's users, in creation order.

    Per message: ``created`` [s], ``user``, ``where`` (``HOME`` or a visited network's index),
    ``host`` (host number within that network), ``size`` [bytes], ``key`` (the content
    filter's handle), ``capture`` (a uniform draw: an eavesdropper on the visited network
    captures plaintext AUTH if it is below the network's probability) and ``first`` (offset
    of its recipients). Per recipient: ``rcpt_isp``, ``rcpt_user`` and ``typo``.
    """

    created: np.ndarray
    user: np.ndarray
    where: np.ndarray
    host: np.ndarray
    size: np.ndarray
    key: np.ndarray
    capture: np.ndarray
    first: np.ndarray      # n + 1 offsets into the recipient arrays
    rcpt_isp: np.ndarray
    rcpt_user: np.ndarray
    typo: np.ndarray

    def __len__(self) -> int:
        return len(self.created)

    def recipients(self, i: int) -> range:
        return range(int(self.first[i]), int(self.first[i + 1]))


class Workload:
    """The behaviour of one ISP's users: send rates, MUA configuration, POP3 check times,
    recipients."""

    def __init__(self, scenario: Scenario, streams: Streams, isp: int,
                 recipient_choice: tuple[np.ndarray, np.ndarray] | None):
        s = scenario
        cfg = self.cfg = s.users
        self.isp = isp
        self.name = s.isps[isp].name
        self.size = n = s.isps[isp].subscribers
        mean = cfg.sends_per_day / 86_400
        sigma = cfg.rate_sigma
        rates = mean * np.exp(sigma * streams[f"users.rate.{self.name}"].standard_normal(n)
                              - sigma * sigma / 2)
        self.cumulative_rate = np.cumsum(rates)
        self.total_rate = float(self.cumulative_rate[-1]) if n else 0.0
        self.mua_587 = streams[f"users.mua.{self.name}"].random(n) < cfg.mua_587_share
        # each MUA's setting on 25, whose server handles each user's mail, and which
        # provider's: own streams (the draws above stay as they were), and arrays only where
        # a share asks for them (a country's memory grows with its subscribers)
        self.mua_25: np.ndarray | None = None
        if cfg.mua_25_auth_share + cfg.mua_25_pop_share > 0:
            self.mua_25 = categories(streams[f"users.mua25.{self.name}"].random(n),
                                     (cfg.mua_25_auth_share, cfg.mua_25_pop_share),
                                     (MUA_25_AUTH, MUA_25_POP, MUA_25_PLAIN))
        submission = s.isps[isp].policies.submission
        self.offers_587_from = math.inf if submission is None else submission.start_s
        self.group: np.ndarray | None = None
        if cfg.provider_share + cfg.home_mta_share > 0:
            self.group = categories(streams[f"users.group.{self.name}"].random(n),
                                    (cfg.provider_share, cfg.home_mta_share),
                                    (GROUP_PROVIDER, GROUP_HOME_MTA, GROUP_ISP))
        self.provider: np.ndarray | None = None
        if cfg.provider_share > 0:
            self.provider = streams[f"users.provider.{self.name}"].integers(
                len(s.providers), size=n, dtype=np.int32)
        self.provider_587_from = np.array(
            [math.inf if p.submission is None else p.submission.start_s for p in s.providers]
            or [math.inf])
        self.home_mta_path = HOME_MTA_PATHS[cfg.home_mta_smarthost]
        # each user's MUA checks mail every interval, from its own phase
        self.check_phase = streams[f"users.pop3.{self.name}"].random(n) * cfg.pop3_check_interval_s
        # whose client retrieves by IMAP (and leaves mail on the server): drawn where some do
        share = s.isps[isp].imap_share
        self.imap: np.ndarray | None = (
            streams[f"users.imap.{self.name}"].random(n) < share if share > 0 else None)
        self.rcpt_cdf = np.cumsum(cfg.recipients_pmf)
        self.server_users = np.array([i.subscribers for i in s.isps], dtype=np.int64)
        self.others = recipient_choice
        self.visited_hosts = np.array([v.prefix.num_addresses - 2 for v in s.visited_networks],
                                      dtype=np.int64)
        self.rng = streams[f"users.send.{self.name}"]

    def path(self, user: Any, at: Any) -> Any:
        """How ``user``'s message written at ``at`` is submitted (``submission_path``)."""
        return submission_path(
            GROUP_ISP if self.group is None else self.group[user], self.mua_587[user],
            MUA_25_PLAIN if self.mua_25 is None else self.mua_25[user], at,
            self.offers_587_from,
            self.provider_587_from[0 if self.provider is None else self.provider[user]],
            self.home_mta_path)

    def batch(self, start: float, end: float) -> Batch:
        """The messages created in ``[start, end)``: a Poisson count, uniform times."""
        rng, cfg = self.rng, self.cfg
        n = int(rng.poisson(self.total_rate * (end - start))) if self.total_rate > 0 else 0
        created = np.sort(start + rng.random(n) * (end - start))
        # users in proportion to their rates: the draws searched in sorted order, since
        # numpy's search then walks a large table in cache (the same answer, 3–5× faster)
        draws = rng.random(n) * self.total_rate
        order = np.argsort(draws)
        user = np.empty(n, dtype=np.int64)
        user[order] = np.searchsorted(self.cumulative_rate, draws[order], side="right")
        np.minimum(user, self.size - 1, out=user)
        where = np.full(n, HOME, dtype=np.int64)
        host = user.copy()
        if len(self.visited_hosts):
            roaming = np.flatnonzero(rng.random(n) < cfg.roaming_share)
            # a home MTA sends from home wherever its user is
            if self.group is not None:
                roaming = roaming[self.group[user[roaming]] != GROUP_HOME_MTA]
            where[roaming] = rng.integers(len(self.visited_hosts), size=len(roaming))
            host[roaming] = rng.integers(self.visited_hosts[where[roaming]])
        size = np.maximum(300, rng.lognormal(math.log(cfg.size_median_bytes), cfg.size_sigma,
                                             n)).astype(np.int64)
        key = rng.integers(0, 2**63, size=n, dtype=np.int64)
        capture = rng.random(n)
        count = 1 + np.searchsorted(self.rcpt_cdf, rng.random(n), side="right")
        sender = np.repeat(user, count)
        m = len(sender)
        rcpt_isp = np.full(m, self.isp, dtype=np.int64)
        if self.others is not None:
            away = np.flatnonzero(rng.random(m) < cfg.other_isp_share)
            rcpt_isp[away] = self.others[0][np.searchsorted(self.others[1], rng.random(len(away)),
                                                            side="right")]
        users = self.server_users[rcpt_isp]
        rcpt_user = (rng.random(m) * users).astype(np.int64)
        # nobody writes to themselves: the next account instead
        own = (rcpt_isp == self.isp) & (rcpt_user == sender) & (users > 1)
        rcpt_user[own] = (rcpt_user[own] + 1) % users[own]
        roll = rng.random(m)
        typo = categories(roll, (cfg.mistyped_user_share, cfg.mistyped_domain_share),
                          (TYPO_USER, TYPO_DOMAIN, TYPO_NONE))
        first = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(count, out=first[1:])
        batch = Batch(created, user, where, host, size, key, capture, first, rcpt_isp,
                      rcpt_user, typo)
        return _without_repeats(batch)


def _without_repeats(batch: Batch) -> Batch:
    """Drop a recipient drawn twice for one message (its first occurrence stays)."""
    count = np.diff(batch.first)
    owner = np.repeat(np.arange(len(batch)), count)
    # only messages with several recipients can repeat one; an address is (ISP, user,
    # typo) as one number, and a stable sort puts each one's first occurrence first
    rows = np.flatnonzero(count[owner] > 1)
    address = ((batch.rcpt_isp[rows] << 32) + batch.rcpt_user[rows]) * 3 + batch.typo[rows]
    again = repeated(owner[rows], address)
    if not again.any():
        return batch
    keep = np.ones(len(batch.rcpt_isp), dtype=bool)
    keep[rows[again]] = False
    count = np.bincount(owner[keep], minlength=len(batch))
    first = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(count, out=first[1:])
    return Batch(batch.created, batch.user, batch.where, batch.host, batch.size, batch.key,
                 batch.capture, first, batch.rcpt_isp[keep], batch.rcpt_user[keep],
                 batch.typo[keep])


def next_check(phase: Any, interval: float, after: Any) -> Any:
    """A mail client's first check strictly after ``after``: it checks every ``interval``
    from its ``phase``. For one client or arrays of them."""
    return phase + check_number(phase, interval, after) * interval


def check_number(phase: Any, interval: float, after: Any) -> Any:
    """Which of its checks (whole intervals from its ``phase``, as a float) is a mail
    client's first strictly after ``after`` (``next_check``)."""
    return np.floor((after - phase) / interval) + 1
