"""Confidence intervals for replicated runs: Student's t on means and on paired differences,
on a scale on which no interval leaves its metric's range.

A metric of a study is a count, a time or a rate (never below 0) or a share (``*_ratio``, in
[0, 1]). Its interval is Student's t computed on a scale that maps that range onto the whole
line (the logarithm for [0, ∞), the logit for [0, 1]) by the delta method and mapped back:
the same mean, nearly the t interval where the mean is far from a bound, and always inside
the range near one. A difference of shares lies in [−1, 1] and is treated likewise; a
difference of counts can be anything: plain t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class Interval:
    """A mean and its two-sided confidence interval (NaN bounds with fewer than two runs)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def format(self, digits: int = 3) -> str:
        def number(x: float) -> str:   # counts as counts: 167,602, not 1.68e+05
            if abs(x) >= 10**digits:
                return f"{x:,.0f}"
            text = f"{x:.{digits}g}"
            # a share just below 1 keeps the digits that tell it from 1 (0.9996, not 1)
            return f"{x:.4f}" if text in ("1", "-1") and abs(x) != 1 else text

        if math.isnan(self.low):
            return number(self.mean)
        return f"{number(self.mean)} [{number(self.low)}, {number(self.high)}]"


Bounds = tuple[float, float]
UNBOUNDED: Bounds = (-math.inf, math.inf)
METHOD = ("Student's t intervals on a log scale for counts, times and rates, on a logit "
          "scale for shares and their differences (delta method), so that none leaves its "
          "metric's range; differences of counts on the plain scale")


def metric_range(name: str) -> Bounds:
    """The range of a study metric's values: a share (``*_ratio``) or a count, time or
    rate."""
    return (0.0, 1.0) if name.endswith("_ratio") else (0.0, math.inf)


def difference_range(name: str) -> Bounds:
    """The range of a paired difference of a study metric."""
    low, high = metric_range(name)
    width = high - low
    return (-width, width)


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
                  bounds: Bounds = UNBOUNDED) -> Interval:
    """Mean with a t interval: mean ± t(1-α/2, n-1) · s/√n, on the scale ``bounds`` call
    for (see the module's note): always inside them."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    # Student's t quantile: what scipy.stats.t.ppf computes, without loading scipy.stats
    half = float(special.stdtrit(n - 1, (1 + confidence) / 2) * x.std(ddof=1) / math.sqrt(n))
    low, high = bounds
    if math.isinf(low) and math.isinf(high):
        return Interval(mean, mean - half, mean + half, n)
    if half == 0 or not low < mean < high:   # every value on a bound: no spread to show
        return Interval(mean, mean, mean, n)
    if math.isinf(high):   # [low, ∞): the log of the distance from the bound
        d = mean - low
        spread = math.exp(half / d)
        return Interval(mean, low + d / spread, low + d * spread, n)
    # [low, high]: the logit of the position inside
    p = (mean - low) / (high - low)
    g, dg = math.log(p / (1 - p)), half / ((high - low) * p * (1 - p))

    def back(z: float) -> float:
        return low + (high - low) / (1 + math.exp(-z))

    return Interval(mean, back(g - dg), back(g + dg), n)


def paired_difference(treatment: Sequence[float] | np.ndarray,
                      baseline: Sequence[float] | np.ndarray,
                      confidence: float = 0.95, bounds: Bounds = UNBOUNDED) -> Interval:
    """Interval of the mean of treatment − baseline over replications paired by index
    (common random numbers make this far narrower than the difference of two intervals);
    ``bounds``: the difference's range (``difference_range``)."""
    a, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in size: {a.shape} and {b.shape}")
    return mean_interval(a - b, confidence, bounds)
