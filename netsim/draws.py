"""Random draws keyed by a message: the same for a message whoever draws them, in any order.

A content filter's verdict and a server's scan time depend on the message and the server,
not on how many messages the simulator happened to evaluate before it. Each is a keyed hash
of the message's ``key`` (drawn by its sender from the sender's own stream) and a salt drawn
once by the judging component, so the engine path, message by message, and the flow path,
in arrays, draw the same numbers (counter-based random numbers, as in Random123).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def salt(rng: np.random.Generator) -> int:
    """A component's salt, drawn once from its own stream."""
    return int(rng.integers(0, 2**63, dtype=np.int64))


# splitmix64's constants: the golden-ratio increment and the finaliser's two multipliers
_GAMMA, _M1, _M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def keyed_uniform(keys: Any, salts: Any) -> Any:
    """Uniform numbers in [0, 1), one a key (splitmix64's finaliser of key XOR salt: every
    bit of either reaches every bit of the result): a float for one key and salt (Python
    integers, :func:`keyed_uniform_one`), an array for arrays."""
    if isinstance(keys, int) and isinstance(salts, int):
        return keyed_uniform_one(keys, salts)
    z = np.asarray(keys).astype(np.uint64) ^ np.asarray(salts).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def keyed_uniform_one(key: int, salt: int) -> float:
    """:func:`keyed_uniform` of one key, in Python integers (no array for one number: the
    engine path judges one message at a time)."""
    return (_mix(key ^ salt) >> 11) * 2.0**-53


def _mix(z: int) -> int:
    """splitmix64's step of a 64-bit Python integer: the increment, then the finaliser."""
    z = (z + _GAMMA) & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def derived(key: int, *parts: int) -> int:
    """A key for a draw that concerns ``key`` and ``parts`` (an attempt's number, a name's
    hash): splitmix64 of each in turn, a 63-bit Python integer."""
    z = key & _MASK
    for part in parts:
        z = _mix(z ^ (part & _MASK))
    return z >> 1


def attempt_key(message_key: int, attempt: int) -> int:
    """The key of the draws one delivery attempt of a message makes (its DNS lookups):
    attempts count from 1, on every path."""
    return derived(message_key, attempt)


def bounce_keys(parent_keys: np.ndarray) -> np.ndarray:
    """The keys of bounces, derived from their parents' (a bounce is judged apart from
    the message it reports on)."""
    with np.errstate(over="ignore"):
        z = np.asarray(parent_keys).astype(np.uint64) * np.uint64(_GAMMA) + np.uint64(1)
    return (z & np.uint64(2**63 - 1)).astype(np.int64)


def keyed_exponential(keys: np.ndarray, salts: np.ndarray | int,
                      mean: np.ndarray | float) -> np.ndarray:
    """Exponential numbers with ``mean``, one a key (inverse transform of ``keyed_uniform``)."""
    return -np.asarray(mean) * np.log1p(-keyed_uniform(keys, salts))


def keyed_exponential_one(key: int, salt: int, mean: float) -> float:
    return -mean * math.log1p(-keyed_uniform_one(key, salt))
