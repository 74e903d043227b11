"""Runs of equal keys in sorted arrays: where each run starts, and each entry's place in
its run (the flow path's groups, a panel's asks by server, a rate limit's asks by account)."""

from __future__ import annotations

import numpy as np


def changes(keys: np.ndarray) -> np.ndarray:
    """For sorted keys: where a key differs from the one before (the first always)
    (``np.r_`` costs some ten microseconds a call: this runs for every step)."""
    out = np.empty(len(keys), dtype=bool)
    out[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=out[1:])
    return out


def runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted keys: where each run of equal keys starts, the run of each entry, and each
    entry's place within its run."""
    new = changes(keys)
    starts = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    return starts, run, np.arange(len(keys)) - starts[run]
