"""Named random streams spawned from one seed (numpy SeedSequence).

A stream's generator depends only on (seed, replication, name): adding a component with a new
stream never shifts the draws of another, and replication r of every policy arm draws the same
numbers (common random numbers). The global ``random`` module is never used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import numpy as np


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


class Streams:
    """Generators by name: ``streams["users.send.isp-a"]`` is the same on every call."""

    def __init__(self, seed: int, replication: int = 0):
        self.seed = seed
        self.replication = replication
        self._generators: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        generator = self._generators.get(name)
        if generator is None:
            sequence = np.random.SeedSequence(self.seed,
                                              spawn_key=(self.replication, _name_key(name)))
            generator = self._generators[name] = np.random.Generator(np.random.PCG64(sequence))
        return generator

    @property
    def names(self) -> list[str]:
        return sorted(self._generators)


T = TypeVar("T")


class Ahead(Generic[T]):
    """Draws made a block at a time (``block()``: at least one item) and read one at a
    time, in order: numpy's cost a call is paid once a block. What the n-th read returns
    depends only on the stream, never on when it is read, so drawing ahead changes the
    cost alone."""

    __slots__ = ("_block", "_items")

    def __init__(self, block: Callable[[], Iterable[T]]):
        self._block = block
        self._items: Iterator[T] = iter(())

    def next(self) -> T:
        for item in self._items:
            return item
        self._items = iter(self._block())
        return next(self._items)
