"""Handing freed memory back to the operating system.

A long run allocates and frees arrays of every size; glibc's allocator keeps freed pages in
its heap for reuse, so a process's resident memory creeps up with the day even when what it
holds does not. ``malloc_trim`` returns the free pages; a streaming ledger calls it after
each cut (a few milliseconds, some dozens of times a day). Elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):   # not glibc (musl has no malloc_trim)
        return None


_TRIM = _malloc_trim()


def give_back() -> None:
    """Return the allocator's free pages to the operating system, where it can."""
    if _TRIM is not None:
        _TRIM(0)
