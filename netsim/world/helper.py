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

# A world's expected recipients a simulated minute from which its run uses the helper
# thread (and freezes its world for the collector). Measured (BENCHMARKS.md, "A second
# thread" and "Users' messages joined once a batch"): the benchmark world's day with and
# without it at 1,200 a minute (medium) +13 to +18 % wall, 3,100 +0 to +6 %, 6,100 −7 to
# +5 %, 12,200 (national) −15 to +8 % (median −6.5 %); japan's a third; the studies'
# worlds, tens a minute, 10–30 % slower (each hand-over waits for the GIL).
PAYS_FROM = 5_000


def helper_pays(recipients: float, duration_s: float) -> bool:
    """Whether a run of ``recipients`` expected in ``duration_s`` gains by the helper."""
    return duration_s > 0 and recipients / (duration_s / 60) >= PAYS_FROM


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
