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
from typing import Any

import anthropic
from opentelemetry import trace

from agentwatch.agent import Agent
from agentwatch.result import RunResult, StopReason, ToolCall, Usage
from agentwatch.runner.events import RunFinished, TextDelta, ToolFinished
from agentwatch.serve.wire import dumps, event_payload
from agentwatch.telemetry import names as n
from agentwatch.telemetry.logs import logger as agentwatch_logger
from agentwatch.telemetry.logs import record_fields

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
    cancel_reason: str = ""
    run_end: dict[str, Any] | None = None  # the runner's run_end log fields (usage of a cancelled run)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _text: list[str] = field(default_factory=list)
    _tool_calls: list[ToolCall] = field(default_factory=list)
    _iterations: int = 0

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
        if self.task is not None and not self.task.done():
            self.cancel_reason = reason
            self.task.cancel()

    def _observe(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
            self._iterations = max(self._iterations, event.iteration)
        elif isinstance(event, ToolFinished):
            self._tool_calls.append(event.call)

    def _finish(self, result: RunResult) -> None:
        self.finished_at = time.monotonic()
        self.result = result
        name, data = event_payload(RunFinished(result), self.id)
        self.publish(name, dumps(data))

    def cancelled_result(self) -> RunResult:
        """The result of a run we cancelled: what it streamed, and the usage the runner billed and logged."""
        end = self.run_end or {}
        reason = self.cancel_reason or "the run was cancelled"
        cache_read, cache_write = int(end.get("cache_read_tokens") or 0), int(end.get("cache_write_tokens") or 0)
        usage = Usage(
            input_tokens=max(0, int(end.get("input_tokens") or 0) - cache_read - cache_write),
            output_tokens=int(end.get("output_tokens") or 0),
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        so_far = "".join(self._text).strip()
        return RunResult(
            answer=(so_far + "\n\n" if so_far else "") + f"The run stopped early: {reason}.",
            stop_reason=StopReason.CANCELLED,
            usage=usage,
            cost_usd=end.get("cost_usd"),
            iterations=int(end.get("iterations") or self._iterations),
            tool_calls=list(self._tool_calls),
            trace_id=self.trace_id,
            duration_s=float(end.get("duration_s") or 0.0),
            stop_detail=reason,
            models=list(end.get("models") or []),
            agent_version=end.get("version"),
        )


class _RunLogFields(logging.Filter):
    """Adds ``tenant`` and ``run_id`` to every agentwatch log record of a served run; keeps its run_end fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        run = _current_run.get()
        if run is not None:
            record.tenant = run.tenant
            record.run_id = run.id
            if getattr(record, "event", None) == n.LOG_RUN_END:
                run.run_end = record_fields(record)
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
        if agentwatch_logger.level == logging.NOTSET or agentwatch_logger.level > logging.INFO:
            agentwatch_logger.setLevel(logging.INFO)  # run_end carries a cancelled run's usage

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
        drive = self._stream if stream else self._run
        run.task = asyncio.get_running_loop().create_task(drive(run, task, conversation_id))
        run.task.add_done_callback(lambda _: self._settle(run))
        return run

    async def _run(self, run: Run, task: str, conversation_id: str | None) -> None:
        _current_run.set(run)  # the task has its own copy of the context
        with contextlib.suppress(asyncio.CancelledError):  # cancelled by us: _settle records the result
            result = await self.agent.arun(task, client=self.client, conversation_id=conversation_id, tenant=run.tenant)
            run._finish(result)

    async def _stream(self, run: Run, task: str, conversation_id: str | None) -> None:
        _current_run.set(run)
        events = self.agent.astream(task, client=self.client, conversation_id=conversation_id, tenant=run.tenant)
        try:
            async for event in events:
                run._observe(event)
                if isinstance(event, RunFinished):
                    run._finish(event.result)
                else:
                    name, data = event_payload(event, run.id)
                    run.publish(name, dumps(data))
        except asyncio.CancelledError:
            pass  # we cancelled it: the runner has ended its spans and logged run_end; _settle records the result
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]

    def _settle(self, run: Run) -> None:
        """When a run's task is done (even one cancelled before it began): its result, and its slot back."""
        if run.result is None:
            run._finish(run.cancelled_result())
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
