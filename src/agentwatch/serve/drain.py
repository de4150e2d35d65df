"""Graceful drain on SIGTERM, as an orchestrator sends it before it kills a replica.

At once: ``/readyz`` turns 503 and new runs get 503 with ``Retry-After`` (the port stays open, so a load
balancer sees the answer instead of a refused connection). In-flight runs get ``drain_timeout_s`` to finish;
the rest are cancelled (``stop_reason=cancelled``, spans and ``run_end`` closed). Only then does the server's
own SIGTERM handler run: uvicorn closes the connections and runs the lifespan shutdown (telemetry flush).

The handler is installed from the app's lifespan, inside uvicorn's signal capture, so it works however
uvicorn is started (``agentwatch serve``, ``uvicorn --factory``, several workers). A second SIGTERM stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from agentwatch.serve.runs import RunRegistry
from agentwatch.telemetry import names as n
from agentwatch.telemetry.logs import emit, logger


class Drain:
    """Owns the SIGTERM handler of one serving process while its app is up."""

    def __init__(self, registry: RunRegistry, timeout_s: float) -> None:
        self.registry, self.timeout_s = registry, timeout_s
        self._previous: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> None:
        """Take over SIGTERM (main thread only: an app served from a thread is drained by its lifespan)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def uninstall(self) -> None:
        if self._loop is not None and signal.getsignal(signal.SIGTERM) == self._on_signal:
            signal.signal(signal.SIGTERM, self._previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._task is not None or self._loop is None:  # a second SIGTERM: no more waiting
            self._forward(signum, frame)
            return
        self.registry.draining = True
        self._loop.call_soon_threadsafe(self._begin, signum, frame)

    def _begin(self, signum: int, frame: FrameType | None) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain(signum, frame))

    async def _drain(self, signum: int, frame: FrameType | None) -> None:
        in_flight = [run.task for run in self.registry.in_flight() if run.task is not None]
        _log(n.LOG_SERVE_DRAIN_START, "draining: no new runs", in_flight=len(in_flight), timeout_s=self.timeout_s)
        started = time.monotonic()
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.timeout_s)
        stragglers = len(self.registry.in_flight())
        await self.registry.cancel_all(f"the server shut down and the drain timeout of {self.timeout_s:g} s passed")
        _log(
            n.LOG_SERVE_DRAIN_END,
            "drained",
            finished=len(in_flight) - stragglers,
            cancelled=stragglers,
            duration_s=round(time.monotonic() - started, 3),
        )
        self._forward(signum, frame)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        """Hand the signal to whoever had it before (uvicorn's handler), as if we had not been there."""
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise SystemExit(0)


def _log(event: str, message: str, **fields: Any) -> None:
    if logger.isEnabledFor(logging.INFO):
        emit(logging.INFO, message, {"event": event, **fields})
