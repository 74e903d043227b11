"""Row-aligned arrays for the flow path: one entry a recipient, split and joined together."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Columns:
    """Arrays aligned row by row (one entry a recipient) that are split and joined together."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, np.ndarray]):
        self.data = data

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __len__(self) -> int:
        return len(next(iter(self.data.values())))

    def take(self, index: np.ndarray | slice) -> Columns:
        if isinstance(index, np.ndarray) and index.dtype == bool:
            index = np.flatnonzero(index)   # a mask is scanned once, not once a column
        return Columns({k: v[index] for k, v in self.data.items()})

    def but(self, **changed: np.ndarray) -> Columns:
        return Columns({**self.data, **changed})

    @staticmethod
    def join(parts: Iterable[Columns]) -> Columns:
        parts = list(parts)
        return Columns({k: np.concatenate([p.data[k] for p in parts]) for k in parts[0].data})


def runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted keys: where each run of equal keys starts, the run of each entry, and each
    entry's place within its run."""
    n = len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n else np.zeros(0, int)
    run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    return starts, run, np.arange(n) - starts[run]
