"""A typed column that grows at its end and is cut at its front, in memory it keeps.

A streaming ledger's window takes a country's new recipients every minute and hands its
oldest on every few minutes. An array that gave its memory back at each cut would take it
again in the minutes after, and the kernel zeroes every page of memory first touched: at a
country's scale, minutes of a day's run. A buffer keeps its capacity instead: once it has
grown to the largest window, rows are written into memory touched before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from netsim.mail.recipients import NUMPY_TYPES

GROWTH = 1 / 4      # capacity added beyond what a push needs, as a share of the capacity
FIRST = 1024        # the smallest capacity
FEW = 8             # rows appended one at a time, not by numpy


class ColumnBuffer:
    """Rows of one typed column: ``len`` of them, read in place by :meth:`view` (numpy) or
    one at a time through :attr:`items` (a memoryview: a Python int or float a row).

    A view or ``items`` taken before a :meth:`push` or :meth:`cut` may no longer be the
    column's: take them again after either.
    """

    __slots__ = ("_data", "_n", "dtype", "items", "typecode")

    def __init__(self, typecode: str):
        self.typecode = typecode
        self.dtype = np.dtype(NUMPY_TYPES[typecode])
        self._data = np.zeros(0, dtype=self.dtype)
        self._n = 0
        # typed Any: a memoryview's items are ints or floats by its format, not by its type
        self.items: Any = self._data.data

    def __len__(self) -> int:
        return self._n

    def view(self) -> np.ndarray:
        """The rows, in place (writing to it writes the column)."""
        return self._data[:self._n]

    def tolist(self) -> list[Any]:
        return self.view().tolist()

    def push(self, values: np.ndarray | Iterable[float]) -> None:
        """Append rows (converted to the column's type)."""
        if not isinstance(values, np.ndarray):
            values = list(values)
            if len(values) <= FEW:
                start = self._reserve(len(values))
                items = self.items
                for i, value in enumerate(values, start):
                    items[i] = value
                return
        values = np.asarray(values, dtype=self.dtype)
        start = self._reserve(len(values))
        self._data[start:self._n] = values

    def fill(self, value: float, n: int) -> None:
        """Append ``n`` rows of one value."""
        start = self._reserve(n)
        if n <= FEW:   # an engine's message: a few rows, cheaper one at a time than by numpy
            items = self.items
            for i in range(start, start + n):
                items[i] = value
        else:
            self._data[start:self._n] = value

    def cut(self, n: int) -> None:
        """Drop the first ``n`` rows (the rest move to the front; the memory is kept)."""
        keep = self._n - n
        self._data[:keep] = self._data[n:self._n]
        self._n = keep

    def clear(self) -> None:
        """Drop every row (the memory is kept)."""
        self._n = 0

    def _reserve(self, n: int) -> int:
        """Make room for ``n`` more rows and count them in; returns where they start."""
        start = self._n
        self._n = need = start + n
        if need > len(self._data):
            data = np.empty(max(need, len(self._data) + int(len(self._data) * GROWTH), FIRST),
                            dtype=self.dtype)
            data[:start] = self._data[:start]
            self._data = data
            self.items = data.data
        return start
