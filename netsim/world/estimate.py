"""What a run will cost before it runs: its expected volume, peak memory and wall time.

The volume is the scenario's expectation: users' messages (subscribers × sends a day ×
days) and their recipients (the mean of ``recipients_pmf``), bots' spam recipients (each
botnet's share of the infected hosts × its mean rate, the log-normal's
median × exp(σ²/2), as stratified rates give it) and spammer servers'. Bounces and
retries are left out (a few per cent).

Memory and time are linear in subscribers and recipients, with coefficients fitted to
this project's benchmark worlds from 10,000 to 30 million subscribers (``BENCHMARKS.md``,
"Knowing the size before the run"): a fixed part (Python, numpy, the world's networks),
bytes a subscriber (the populations' arrays), and bytes a recipient of one simulated hour
(users' mail is drawn ten minutes at a time, a delivery waits for its check about half an
hour, and the ledger's window holds the rows in flight: ``netsim run`` counts every row
and frees it once at rest, at ``full`` after writing it to recipients.parquet), plus what
the records level keeps (``sample``: one message in a hundred; ``full``: the row groups
being written). An
estimate is meant to be high rather than low: a run refused for want of memory should not
have fitted.
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from netsim.scenario import Scenario

# measured (BENCHMARKS.md): the process before the world, and what the world adds
BASE_BYTES = 300e6
BYTES_PER_SUBSCRIBER = 40.0
BYTES_PER_HOURLY_RECIPIENT = 250.0
STREAMING_WINDOW_BYTES = 100e6   # the ledger's window of a million rows and its cut
BYTES_PER_RECIPIENT = {"summary": 0.0, "sample": 1.5, "full": 0.0}   # a sample's rows
RECORDS_BYTES = {"summary": 0.0, "sample": 0.0, "full": 150e6}   # row groups being written
# wall seconds a recipient, by fidelity, and a flow run's fixed cost a simulated minute
SECONDS_PER_RECIPIENT = {"flow": 3.0e-6, "session": 2.0e-4, "command": 2.0e-4}
SECONDS_PER_STEP = 1.5e-3


@dataclass(frozen=True)
class Estimate:
    """A run's expected volume and cost."""

    subscribers: int
    messages: float          # users' messages
    recipients: float        # users' and spam recipients
    peak_bytes: float
    wall_s: float
    records: str

    def describe(self) -> str:
        return (f"about {self.recipients:,.0f} recipients (of users' {self.messages:,.0f} "
                f"messages and of spam) for {self.subscribers:,} subscribers: peak memory about "
                f"{_size(self.peak_bytes)} at --records {self.records}, about "
                f"{_duration(self.wall_s)} on one core")


def estimate(scenario: Scenario, records: str = "full") -> Estimate:
    """The expected volume of ``scenario`` and what running it costs at ``records``."""
    days = scenario.duration_s / 86_400
    users = scenario.users
    subscribers = sum(isp.subscribers for isp in scenario.isps)
    mean_rcpts = sum((k + 1) * p for k, p in enumerate(users.recipients_pmf))
    messages = subscribers * users.sends_per_day * days
    bots = sum(round(isp.bot_fraction * isp.subscribers) for isp in scenario.isps)
    spam = scenario.spam
    bot_recipients = sum(bots * b.share * b.rate_median_per_day * math.exp(b.rate_sigma ** 2 / 2)
                         for b in spam.botnets) * days
    server_recipients = sum(s.count * s.rate_per_day for s in spam.spammer_servers) * days
    recipients = messages * mean_rcpts + bot_recipients + server_recipients
    hourly = recipients * min(1.0, 3600 / scenario.duration_s)
    peak = (BASE_BYTES + STREAMING_WINDOW_BYTES + RECORDS_BYTES[records]
            + BYTES_PER_SUBSCRIBER * subscribers + BYTES_PER_HOURLY_RECIPIENT * hourly
            + BYTES_PER_RECIPIENT[records] * recipients)
    wall = SECONDS_PER_RECIPIENT[scenario.fidelity] * recipients
    if scenario.fidelity == "flow":
        wall += SECONDS_PER_STEP * scenario.duration_s / 60
    return Estimate(subscribers, messages, recipients, peak, wall, records)


def memory_limit() -> tuple[float, str]:
    """The memory a run may use on this machine, and what sets it: the smallest of the
    machine's memory, the cgroup's limit and the process's address-space limit."""
    found: list[tuple[float, str]] = []
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        found.append((float(pages), "the machine's memory"))
    except (ValueError, OSError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            found.append((float(text), "the cgroup's memory limit"))
        break
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        found.append((float(soft), "the process's address-space limit (ulimit -v)"))
    return min(found) if found else (math.inf, "no limit found")


def advice(e: Estimate) -> str:
    """What to change so that a run fits."""
    return ("fewer subscribers, or fewer messages a user (memory grows with subscribers and "
            "with the recipients of an hour, which a run holds in flight)")


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
