"""The runs a service holds: each runs as its own asyncio task, independent of the request that started it.

A run's events go into a bounded buffer with ids 1, 2, 3...; any number of readers follow it from a
``Last-Event-ID`` (a reconnecting client replays what it missed, then continues live). Finished runs are
kept for ``retention_s`` so a client can come back for the result. Admission enforces the server-wide and
per-tenant concurrency limits, and refuses new runs while draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anthropic
from opentelemetry import trace

from agentwatch.agent import Agent
from agentwatch.result import RunResult, StopReason, Usage
from agentwatch.runner.drivers import RunHandle
from agentwatch.runner.events import RunFinished
from agentwatch.serve.wire import dumps, event_payload
from agentwatch.telemetry.logs import logger as agentwatch_logger

_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("agentwatch_serve_run", default=None)


class Refused(Exception):
    """A run not admitted: ``status`` 429 (a limit) or 503 (draining), with a sentence saying why."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type = status, error_type


class EventsGone(Exception):
    """The client asked to resume before the oldest event still kept."""


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    data: str


@dataclass
class Run:
    """One run: its events so far, its result when done, and the task driving it."""

    id: str
    tenant: str
    trace_id: str
    buffer_size: int
    events: deque[Event] = field(init=False)
    last_id: int = 0
    result: RunResult | None = None
    finished_at: float | None = None
    task: asyncio.Task[None] | None = None
    handle: RunHandle | None = None  # the runner's handle: its result is there also when we cancel the run
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.events = deque(maxlen=self.buffer_size)

    @property
    def done(self) -> bool:
        return self.result is not None

    def publish(self, name: str, data: str) -> None:
        self.last_id += 1
        self.events.append(Event(self.last_id, name, data))
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def since(self, after: int) -> list[Event]:
        """Events with id > ``after``; ``EventsGone`` when some of them were already dropped."""
        if not self.events:
            return []
        first = self.events[0].id
        if after < first - 1:
            raise EventsGone(f"events {after + 1}..{first - 1} of run {self.id} are no longer kept")
        return list(itertools.islice(self.events, max(0, after - first + 1), None))

    async def follow(self, after: int) -> AsyncIterator[Event]:
        """Replay events after ``after``, then yield new ones live until ``run_finished``."""
        while True:
            wake = self._wake
            batch = self.since(after)
            for event in batch:
                yield event
                after = event.id
            if self.done and after >= self.last_id:
                return
            if not batch:
                await wake.wait()

    async def wait(self) -> RunResult:
        while self.result is None:
            await self._wake.wait()
        return self.result

    def cancel(self, reason: str) -> None:
        """Cancel the run's task; ``reason`` becomes the cancelled run's stop detail."""
        if self.task is not None and not self.task.done():
            if self.handle is not None:
                self.handle.cancel_detail = reason
            self.task.cancel()

    def _finish(self, result: RunResult) -> None:
        self.finished_at = time.monotonic()
        self.result = result
        name, data = event_payload(RunFinished(result), self.id)
        self.publish(name, dumps(data))

    def unstarted_result(self) -> RunResult:
        """The result of a run cancelled before its task began: nothing ran, nothing was billed."""
        detail = (self.handle.cancel_detail if self.handle else None) or "the run was cancelled"
        return RunResult(
            answer=f"The run stopped early: {detail}.",
            stop_reason=StopReason.CANCELLED,
            usage=Usage(),
            cost_usd=0.0,
            iterations=0,
            tool_calls=[],
            trace_id=self.trace_id,
            duration_s=0.0,
            stop_detail=detail,
        )


class _RunLogFields(logging.Filter):
    """Adds ``tenant`` and ``run_id`` to every agentwatch log record of a served run."""

    def filter(self, record: logging.LogRecord) -> bool:
        run = _current_run.get()
        if run is not None:
            record.tenant = run.tenant
            record.run_id = run.id
        return True


_LOG_FIELDS = _RunLogFields()


class RunRegistry:
    """Admits, starts, finds, cancels and forgets runs. One per app; all on the app's event loop."""

    def __init__(
        self,
        agent: Agent,
        client: anthropic.AsyncAnthropic,
        *,
        max_runs: int,
        max_runs_per_tenant: int,
        event_buffer: int,
        retention_s: float,
    ) -> None:
        self.agent, self.client = agent, client
        self.max_runs, self.max_runs_per_tenant = max_runs, max_runs_per_tenant
        self.event_buffer, self.retention_s = event_buffer, retention_s
        self.draining = False
        self._runs: dict[str, Run] = {}
        self._finished: deque[Run] = deque()  # in the order they finished, for expiry
        self._active: dict[str, int] = {}
        self.active = 0
        if _LOG_FIELDS not in agentwatch_logger.filters:
            agentwatch_logger.addFilter(_LOG_FIELDS)

    def get(self, run_id: str, tenant: str) -> Run | None:
        """The run, if it exists and belongs to ``tenant`` (another tenant's run is not found)."""
        self._forget_expired()
        run = self._runs.get(run_id)
        return run if run is not None and run.tenant == tenant else None

    def start(self, task: str, tenant: str, conversation_id: str | None, *, stream: bool) -> Run:
        """Admit and start a run in the current context (so its trace is the request's), or raise ``Refused``.

        ``stream`` runs it with ``astream`` (the model streams; every event is published); otherwise with
        ``arun`` (plain model calls, cheaper), whose only event is ``run_finished``.
        """
        if self.draining:
            raise Refused(503, "draining", "the server is shutting down; retry on another replica.")
        if self.active >= self.max_runs:
            raise Refused(429, "overloaded", f"the server is running its limit of {self.max_runs} runs; retry later.")
        if self._active.get(tenant, 0) >= self.max_runs_per_tenant:
            raise Refused(
                429,
                "tenant_limit",
                f"tenant {tenant!r} already has {self.max_runs_per_tenant} runs in flight; retry when one ends.",
            )
        self._forget_expired()
        context = trace.get_current_span().get_span_context()
        run = Run(uuid.uuid4().hex, tenant, format(context.trace_id, "032x"), self.event_buffer)
        self._runs[run.id] = run
        self._active[tenant] = self._active.get(tenant, 0) + 1
        self.active += 1
        run.handle = self.agent.astart(
            task, client=self.client, conversation_id=conversation_id, tenant=tenant, stream=stream
        )
        run.task = asyncio.get_running_loop().create_task(self._drive(run, run.handle, stream))
        run.task.add_done_callback(lambda _: self._settle(run))
        return run

    async def _drive(self, run: Run, handle: RunHandle, stream: bool) -> None:
        """Publish the run's events (a JSON run: only ``run_finished``) until it ends or we cancel it."""
        _current_run.set(run)  # the task has its own copy of the context
        try:
            async for event in handle:
                if isinstance(event, RunFinished):
                    run._finish(event.result)
                elif stream:
                    name, data = event_payload(event, run.id)
                    run.publish(name, dumps(data))
        except asyncio.CancelledError:
            pass  # we cancelled it: the runner has ended its spans and set handle.result; _settle records it
        finally:
            with contextlib.suppress(Exception):
                await handle.aclose()

    def _settle(self, run: Run) -> None:
        """When a run's task is done (even one cancelled before it began): its result, and its slot back."""
        if run.result is None:
            handle_result = run.handle.result if run.handle is not None else None
            run._finish(handle_result or run.unstarted_result())
        self._finished.append(run)
        self.active -= 1
        self._active[run.tenant] -= 1
        if not self._active[run.tenant]:
            del self._active[run.tenant]

    def in_flight(self) -> list[Run]:
        return [run for run in self._runs.values() if not run.done]

    async def cancel_all(self, reason: str) -> None:
        """Cancel every run still going and wait until each has recorded its result."""
        runs = self.in_flight()
        for run in runs:
            run.cancel(reason)
        await asyncio.gather(*(run.task for run in runs if run.task is not None), return_exceptions=True)

    def _forget_expired(self) -> None:
        horizon = time.monotonic() - self.retention_s
        while self._finished and (self._finished[0].finished_at or 0.0) < horizon:
            self._runs.pop(self._finished.popleft().id, None)
