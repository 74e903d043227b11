"""Row-aligned arrays for the flow path: one entry a recipient, split and joined together."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Columns:
    """Arrays aligned row by row (one entry a recipient) that are split and joined together.

    A part taken out of another keeps the row index and reads a column only when asked for
    it: a step carries some twenty columns and reads a few of each part it makes.
    """

    # a column read is kept as an attribute: later reads of it are plain attribute reads,
    # not a call of ``__getattr__`` (a step reads its columns some hundreds of times)
    __slots__ = ("__dict__", "_base", "_index")

    def __init__(self, data: dict[str, np.ndarray],
                 index: np.ndarray | slice | None = None):
        self._base = data
        self._index = index

    def __getattr__(self, name: str) -> np.ndarray:
        # called only for a column not read yet (one read is in ``__dict__``)
        try:
            found = self._base[name]
        except KeyError:
            raise AttributeError(name) from None
        if self._index is not None:
            found = found[self._index]
        self.__dict__[name] = found
        return found

    def _column(self, name: str) -> np.ndarray:
        found = self.__dict__.get(name)
        return self.__getattr__(name) if found is None else found

    @property
    def data(self) -> dict[str, np.ndarray]:
        """Every column, read."""
        return {name: self._column(name) for name in self._base}

    def __contains__(self, name: str) -> bool:
        return name in self._base

    def __len__(self) -> int:
        if isinstance(self._index, np.ndarray):   # a part's length, no column read for it
            return len(self._index)
        return len(self._column(next(iter(self._base))))

    def take(self, index: np.ndarray | slice) -> Columns:
        if isinstance(index, np.ndarray) and index.dtype == bool:
            index = index.nonzero()[0]   # a mask is scanned once, not once a column
        mine = self._index
        if mine is None:
            return Columns(self._base, index)
        if isinstance(mine, slice):
            if mine.step not in (None, 1):
                raise ValueError("a part is a contiguous slice or an index array")
            mine = np.arange(len(self)) + (mine.start or 0)
        return Columns(self._base, mine[index])

    def but(self, **changed: np.ndarray) -> Columns:
        """These columns with some changed (those are not read)."""
        return Columns({name: changed[name] if name in changed else self._column(name)
                        for name in {**self._base, **changed}})

    @staticmethod
    def join(parts: Iterable[Columns]) -> Columns:
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        return Columns({k: np.concatenate([p._column(k) for p in parts])
                        for k in parts[0]._base})


def repeated(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Where a key repeats one earlier in its group (the first occurrence is not repeated):
    a stable sort puts each one's first occurrence first."""
    order = lexical_order(group, key)
    key, group = key[order], group[order]
    again = np.zeros(len(key), dtype=bool)
    again[order[1:]] = (key[1:] == key[:-1]) & (group[1:] == group[:-1])
    return again


def group_rows(count: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The rows of ``groups`` (indices into ``count``), in their order, where group ``k``
    is ``count[k]`` consecutive rows after those of the groups before it."""
    first = np.cumsum(count) - count
    n = count[groups]
    return np.repeat(first[groups] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))


def lexical_order(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """``np.lexsort((then, first))``: the stable order by ``first``, then ``then``. Two
    keys of non-negative integers that fit in one are sorted as one: numpy's lexsort
    compares through the index, while one key already in runs (a message's recipients,
    say) sorts some ten times as fast."""
    if len(first) and first.dtype.kind in "iu" and then.dtype.kind in "iu":
        span = int(then.max()) + 1
        if min(int(first.min()), int(then.min())) >= 0 and (int(first.max()) + 1) * span < 2**63:
            return np.argsort(first.astype(np.int64) * span + then.astype(np.int64),
                              kind="stable")
    return np.lexsort((then, first))
