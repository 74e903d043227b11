"""A run's helper thread: work whose answer the run needs only later, done meanwhile.

numpy releases the GIL in its loops, so on a machine with a second core a thread can draw
the next batch of users' messages (``LegitFlow``), time the first retrievals of settled
checks (``Retrievals``) and count the rows at rest into the summary (``Sinks``) while the
run goes on. What is handed over is computed from state the run does not touch until it
takes the answer (a workload's own stream and arrays, the deliveries filed, the servers'
settings, rows already handed on), the run takes each answer at a fixed point of its own,
and the helper runs its work in the order it was handed: the run's results are the same
with the helper as without it (``tests/test_helper.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Helper:
    """One background thread (started at the first work handed to it), or none: with
    ``threaded=False`` work is done at once, where it is handed over."""

    def __init__(self, threaded: bool = True):
        self.threaded = threaded
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, work: Callable[..., T], /, *args: Any) -> Future[T]:
        """Do ``work(*args)`` after the work handed over before it; its answer (or its
        error) is the future's."""
        if not self.threaded:
            done: Future[T] = Future()
            try:
                done.set_result(work(*args))
            except BaseException as error:   # raised where the answer is taken, as threaded
                done.set_exception(error)
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="netsim-helper")
        return self._pool.submit(work, *args)

    def close(self) -> None:
        """Stop the thread, once the work handed over is done (work not started is
        dropped: its answer is no longer wanted)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
