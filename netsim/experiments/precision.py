"""Sequential replication: each arm (and grid point) is replicated until every headline
metric's 95 % interval is within a relative half-width of its mean, or a cap is reached.

After each round the replications a cell still needs are estimated from its intervals (a
half-width shrinks as 1/√n: n·(width/target)², at most doubling a round), so a precise cell
stops and an imprecise one grows. Replication r of every arm draws the same random numbers,
so the replications two arms both have stay paired.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from netsim.experiments.stats import mean_interval, metric_range
from netsim.experiments.study import Plan, RunSpec

Cell = tuple[str, int]   # arm, grid point


@dataclass(frozen=True)
class CellPrecision:
    """Where one arm and grid point stopped."""

    arm: str
    grid_index: int
    replications: int
    precise: bool
    widest: str         # the metric whose interval is widest relative to its mean
    relative: float     # its half-width / |mean| (0 when every run agrees)

    def as_dict(self) -> dict[str, object]:
        return {"arm": self.arm, "grid_index": self.grid_index,
                "replications": self.replications, "precise": self.precise,
                "widest": self.widest, "relative_half_width": self.relative}


def relative_half_width(values: np.ndarray, metric: str) -> float:
    """Half-width of the metric's 95 % interval over |mean| (inf with fewer than two runs,
    NaN when no run defines the metric)."""
    ci = mean_interval(values, bounds=metric_range(metric))
    if ci.n == 0:
        return math.nan
    if ci.n < 2:
        return math.inf
    if ci.mean == 0:
        return 0.0 if ci.half_width == 0 else math.inf
    return ci.half_width / abs(ci.mean)


def next_count(n: int, relative: float, target: float, cap: int) -> int:
    """Replications a cell runs next: n when precise or capped, else the estimate from a
    half-width that shrinks as 1/√n, between n + 1 and 2n."""
    if relative <= target or n >= cap:
        return n
    want = math.inf if math.isinf(relative) else math.ceil(n * (relative / target) ** 2)
    return int(min(cap, max(n + 1, min(want, 2 * n))))


def assess(runs: pd.DataFrame, metrics: list[str], target: float,
           cap: int) -> dict[Cell, CellPrecision]:
    """Each cell's widest relative half-width over ``metrics`` (those its runs define)."""
    out: dict[Cell, CellPrecision] = {}
    for (arm, g), part in runs.groupby(["arm", "grid_index"], sort=False):
        widest, relative = "", 0.0
        for metric in metrics:
            if metric not in part:
                continue
            r = relative_half_width(part[metric].to_numpy(dtype=float), metric)
            if not math.isnan(r) and r >= relative:
                widest, relative = metric, r
        cell = (str(arm), int(str(g)))
        out[cell] = CellPrecision(*cell, len(part), relative <= target, widest, relative)
    return out


def with_counts(plan: Plan, counts: dict[Cell, int]) -> Plan:
    """The plan with each cell's replications 0 … counts[cell] − 1."""
    first: dict[Cell, RunSpec] = {}
    for spec in plan.runs:
        first.setdefault((spec.arm, spec.grid_index), spec)
    runs = [replace(spec, replication=r) for cell, spec in first.items()
            for r in range(counts[cell])]
    return Plan(plan.study, plan.source, runs)


def replicate(plan: Plan, run: Callable[[Plan], pd.DataFrame], metrics: list[str],
              target: float, cap: int) -> tuple[Plan, dict[Cell, CellPrecision]]:
    """Run ``plan`` (``run`` simulates what is missing and returns runs.parquet's rows with
    a ``grid_index`` column), then replicate the imprecise cells until every cell is precise
    or at ``cap``."""
    counts: dict[Cell, int] = {}
    for spec in plan.runs:
        cell = (spec.arm, spec.grid_index)
        counts[cell] = min(cap, max(2, counts.get(cell, 0), spec.replication + 1))
    while True:
        current = with_counts(plan, counts)
        status = assess(run(current), metrics, target, cap)
        wanted = {cell: next_count(counts[cell], status[cell].relative, target, cap)
                  for cell in counts}
        if wanted == counts:
            return current, status
        counts = wanted
