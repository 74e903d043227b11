"""Stolen credentials: accounts compromised from the start, and logins captured on shared
networks. The pool feeds the ``stolen_587`` strategy.

Capture opportunities are every plaintext login a roaming user makes on a visited network
with an eavesdropper: mail checks (POP3 USER/PASS or IMAP LOGIN, every few minutes, mail or
not) and SMTP AUTH on submission. Check logins are an aggregated Poisson process per ISP,
thinned by the capture probability, so only captures cost events; SMTP AUTH is captured in
the submissions that the simulation runs anyway.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

import numpy as np
import simpy

from netsim.scenario import Scenario
from netsim.world.streams import Streams
from netsim.world.workload import Workload


class CredentialWorld(Protocol):
    """What seeding and capturing credentials read of the world."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def streams(self) -> Streams: ...
    @property
    def credentials(self) -> CredentialPool: ...
    @property
    def env(self) -> simpy.Environment: ...
    @property
    def workloads(self) -> list[Workload]: ...


def auth_captured(draw: Any, probability: Any, plaintext: Any) -> Any:
    """Whether an eavesdropper on the client's network captures its SMTP AUTH: only in
    plain text, when the message's capture draw falls below the network's eavesdropping
    probability (0 off shared networks). For one submission or arrays of them."""
    return plaintext & (draw < probability)


HELD, USED = 1, 2   # what spammers have of an account


class CredentialPool:
    """Accounts (isp index, user index) whose passwords spammers hold. ``subscribers`` are
    the accounts of each ISP (a flag an account says whether spammers used it)."""

    def __init__(self, subscribers: list[int]) -> None:
        self.accounts: list[tuple[int, int]] = []
        self._known: set[tuple[int, int]] = set()
        self._first = np.r_[0, np.cumsum(subscribers)].astype(np.int64)
        # per account: 0 spammers do not hold it, HELD they do, USED they have used it
        self._state = np.zeros(int(self._first[-1]), dtype=np.int8)
        self.compromised = 0
        self.captured_pop3 = 0
        self.captured_imap = 0
        self.captured_smtp = 0
        self.used_sessions = 0

    def add(self, account: tuple[int, int], how: str) -> None:
        if account in self._known:
            return
        self._known.add(account)
        self.accounts.append(account)
        self._state[self._first[account[0]] + account[1]] = HELD
        if how == "compromised":
            self.compromised += 1
        elif how == "pop3":
            self.captured_pop3 += 1
        elif how == "imap":
            self.captured_imap += 1
        else:
            self.captured_smtp += 1

    def held(self, isp: np.ndarray, user: np.ndarray) -> np.ndarray:
        """Whether spammers hold each account's password (as of now): they may use it at
        any instant from now on."""
        return self._state[self._first[isp] + user] >= HELD

    def draw(self, rng: np.random.Generator) -> tuple[int, int] | None:
        """A credential for one session, or None while the pool is empty."""
        if not self.accounts:
            return None
        account = self.accounts[int(rng.integers(len(self.accounts)))]
        self.used_sessions += 1
        self._state[self._first[account[0]] + account[1]] = USED
        return account

    def summary(self) -> dict[str, int]:
        return {"compromised": self.compromised, "captured_pop3": self.captured_pop3,
                "captured_imap": self.captured_imap, "captured_smtp_auth": self.captured_smtp,
                "pool": len(self.accounts),
                "used_sessions": self.used_sessions,
                "accounts_used": int((self._state == USED).sum())}


def seed_compromised(world: CredentialWorld) -> None:
    """Put ``spam.compromised_share`` of each ISP's accounts into the pool at time 0."""
    share = world.scenario.spam.compromised_share
    if share <= 0:
        return
    rng = world.streams["spam.compromised"]
    for isp, cfg in enumerate(world.scenario.isps):
        count = round(share * cfg.subscribers)
        for user in np.sort(rng.choice(cfg.subscribers, size=count, replace=False)):
            world.credentials.add((isp, int(user)), "compromised")


def check_capture_process(world: CredentialWorld, isp: int,
                          ) -> Generator[simpy.Event, Any, None] | None:
    """Captures of roaming users' plaintext check logins (POP3 USER/PASS, IMAP LOGIN), or
    None when none can happen."""
    s = world.scenario
    server = s.isps[isp].mail_server
    imap = world.workloads[isp].imap
    if imap is None:
        imap = np.zeros(s.isps[isp].subscribers, dtype=bool)
    plaintext = np.where(imap, server.imap_security == "plaintext",
                         server.pop3_security == "plaintext")
    if not plaintext.any() or not s.visited_networks:
        return None
    probabilities = np.array([v.eavesdrop_probability for v in s.visited_networks])
    if probabilities.sum() == 0 or s.users.roaming_share == 0:
        return None
    # every user logs in in the clear, or only some: their indices (a country's users are
    # drawn as before when every login is plaintext)
    exposed = None if plaintext.all() else np.flatnonzero(plaintext)
    users = len(plaintext) if exposed is None else len(exposed)
    # Logins by roaming users per second; each lands on a visited network chosen uniformly
    # and is captured with that network's probability.
    logins = users * s.users.roaming_share / s.users.pop3_check_interval_s
    rate = logins * probabilities.mean()
    rng = world.streams[f"credentials.pop3.{s.isps[isp].name}"]

    def process() -> Generator[simpy.Event, Any, None]:
        while True:
            yield world.env.timeout(rng.exponential(1 / rate))
            k = int(rng.integers(users))
            user = k if exposed is None else int(exposed[k])
            world.credentials.add((isp, user), "imap" if imap[user] else "pop3")

    return process()
