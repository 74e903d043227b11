"""A lab in a background thread, for tests and notebooks that use blocking clients.

::

    with BackgroundLab(load_scenario(overrides=["policy=op25b+587"])) as lab:
        host, port = lab.endpoint("isp-a", "submission")
        ...  # smtplib, poplib, imaplib
        lab.call(lambda: lab.mailbox("isp-b", 1))   # read the lab's state in its own thread
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from netsim.lab.server import Lab, LabSettings
from netsim.scenario import Scenario

__all__ = ["BackgroundLab"]

T = TypeVar("T")


class BackgroundLab:
    """Runs a :class:`Lab` on its own event loop in a daemon thread; a context manager.

    Args:
        scenario: The scenario to serve.
        settings: Ports, timeouts and limits.
        start_timeout_s: How long to wait for the lab to listen.
    """

    def __init__(self, scenario: Scenario, settings: LabSettings | None = None, *,
                 start_timeout_s: float = 10.0) -> None:
        self.lab = Lab(scenario, settings)
        self._timeout = start_timeout_s
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.lost = 0  # relay groups still queued when the lab stopped
        self._thread = threading.Thread(target=self._run, name="netsim-lab", daemon=True)

    def __enter__(self) -> Lab:
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError("the lab did not start in time")
        if self._error is not None:
            raise self._error
        return self.lab

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the lab and wait for its thread."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self._timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the lab's thread (state is only touched there) and return its value."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(self._timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.lab.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        self.lost = await self.lab.stop()
