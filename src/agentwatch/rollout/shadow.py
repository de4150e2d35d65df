"""Shadow mode: run a candidate agent on the same input as the primary, never returning its output.

The caller gets the primary's result exactly as if there were no shadow: the candidate starts
alongside it (async: a background task; sync: a worker thread) and the primary returns without
waiting for it. The candidate's spend is counted separately (``agentwatch.shadow.spend.usd``) and
bounded by its own limits. When both are done, their divergence (answer similarity, tool sequence,
stop reason, cost and latency deltas) is recorded as metrics, an ``agentwatch.shadow.*``-attributed
``shadow {agent}`` span (the parent of the candidate's run, in a trace of its own, linked to the
primary run's trace), and a ``shadow_result`` log record. A candidate that raises, hangs or overspends
is contained: counted, logged, never raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import difflib
import logging
import random
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind

from agentwatch.evals.protocols import RolloutAgent
from agentwatch.limits import Limits
from agentwatch.result import RunResult
from agentwatch.rollout.hashing import in_share
from agentwatch.rollout.telemetry import instruments
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import mark_span_error, redact
from agentwatch.telemetry.logs import logger
from agentwatch.telemetry.recorder import tracer

MAX_SIMILARITY_TOKENS = 2000


@dataclass(frozen=True)
class Divergence:
    """How the candidate's run differed from the primary's. Deltas are ``candidate - primary``."""

    answer_similarity: float
    tools_match: bool
    primary_tools: tuple[str, ...]
    candidate_tools: tuple[str, ...]
    stop_reason_match: bool
    cost_delta_usd: float | None
    latency_delta_s: float


def answer_similarity(a: str, b: str) -> float:
    """Word-level similarity in [0, 1] (difflib ratio over lower-cased words, capped in length)."""
    words_a = re.findall(r"\w+", a.lower())[:MAX_SIMILARITY_TOKENS]
    words_b = re.findall(r"\w+", b.lower())[:MAX_SIMILARITY_TOKENS]
    if not words_a and not words_b:
        return 1.0
    return difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).ratio()


def compare_runs(primary: RunResult, candidate: RunResult) -> Divergence:
    """The divergence of ``candidate`` from ``primary``."""
    primary_tools = tuple(c.name for c in primary.tool_calls)
    candidate_tools = tuple(c.name for c in candidate.tool_calls)
    cost_delta = (
        None
        if primary.cost_usd is None or candidate.cost_usd is None
        else round(candidate.cost_usd - primary.cost_usd, 10)
    )
    return Divergence(
        answer_similarity=answer_similarity(primary.answer, candidate.answer),
        tools_match=primary_tools == candidate_tools,
        primary_tools=primary_tools,
        candidate_tools=candidate_tools,
        stop_reason_match=primary.stop_reason == candidate.stop_reason,
        cost_delta_usd=cost_delta,
        latency_delta_s=candidate.duration_s - primary.duration_s,
    )


@dataclass(frozen=True)
class ShadowOutcome:
    """One shadow run: the candidate's result (or ``error``) and, when the primary finished, the divergence."""

    task_chars: int
    candidate: RunResult | None
    primary: RunResult | None
    divergence: Divergence | None
    error: str | None = None
    error_type: str | None = None


class Shadow:
    """Run ``candidate`` in the shadow of ``primary`` for a ``sample_rate`` share of calls.

    ``candidate_limits`` replaces the candidate's limits (its budget). ``timeout_s`` is the shadow's
    own hard stop for a candidate that ignores its limits (default: the candidate's ``timeout_s`` plus
    5 s). At most ``max_in_flight`` candidates run at once; beyond that, calls are not shadowed
    (counted as ``error.type=shadow_capacity``). ``on_outcome`` is called with each ``ShadowOutcome``.
    """

    def __init__(
        self,
        primary: RolloutAgent,
        candidate: RolloutAgent,
        sample_rate: float = 1.0,
        candidate_limits: Limits | None = None,
        *,
        timeout_s: float | None = None,
        max_in_flight: int = 16,
        on_outcome: Callable[[ShadowOutcome], None] | None = None,
    ) -> None:
        if not 0 <= sample_rate <= 1:
            raise ValueError(f"Shadow sample_rate is a share between 0 and 1; got {sample_rate!r}.")
        if max_in_flight < 1:
            raise ValueError(f"Shadow max_in_flight must be at least 1; got {max_in_flight!r}.")
        self.primary = primary
        self.candidate = candidate.replace(limits=candidate_limits) if candidate_limits else candidate
        self.sample_rate = sample_rate
        limits = getattr(self.candidate, "limits", None)
        limit_timeout = getattr(limits, "timeout_s", None)
        self.timeout_s = timeout_s if timeout_s is not None else (limit_timeout or 300.0) + 5.0
        self.max_in_flight = max_in_flight
        self.on_outcome = on_outcome
        self.outcomes: deque[ShadowOutcome] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._futures: set[concurrent.futures.Future[None]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # --- the caller's path: primary only ------------------------------------------------------------
    # Each entry point only performs I/O: which way the candidate is started (a task or a thread) and
    # how the primary is run. Sampling, capacity, span, recording and cleanup live in ``_ShadowJob``.
    async def arun(
        self, task: str, *, client: Any = None, candidate_client: Any = None, key: str | None = None
    ) -> RunResult:
        """The primary's result, unchanged; the candidate runs in a background task (``drain`` awaits it)."""
        with self._around_primary(key, lambda link: self._spawn_task(task, candidate_client or client, link)) as box:
            box.result = await self.primary.arun(task, client=client)
        return box.result

    def run(self, task: str, *, client: Any = None, candidate_client: Any = None, key: str | None = None) -> RunResult:
        """Sync ``arun``: the candidate runs in a worker thread (``drain_sync`` waits for it)."""
        with self._around_primary(key, lambda link: self._spawn_thread(task, candidate_client or client, link)) as box:
            box.result = self.primary.run(task, client=client)
        return box.result

    # --- waiting and shutdown -----------------------------------------------------------------------
    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every started shadow run is recorded (or ``timeout`` passes); True when all are."""
        with self._lock:
            futures = [asyncio.wrap_future(f) for f in self._futures]
        pending: list[asyncio.Future[Any]] = [*self._tasks, *futures]
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still

    def drain_sync(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads' shadow runs (sync ``run``); True when all are recorded."""
        with self._lock:
            futures = list(self._futures)
        _, still = concurrent.futures.wait(futures, timeout=timeout)
        return not still

    def close(self) -> None:
        """Abandon shadow work: cancel running async candidates, drop queued sync ones (a sync run
        already in a thread ends at its own limits). Never raises."""
        for shadow_task in list(self._tasks):
            shadow_task.cancel()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        """Candidate runs started and not yet recorded."""
        return self._in_flight

    # --- internals ----------------------------------------------------------------------------------
    def _start(self, key: str | None) -> bool:
        """Whether to shadow this call: sampled (stably by ``key`` when given) and under capacity."""
        sampled = (
            in_share(key, self.sample_rate, salt=f"shadow:{self.candidate.name}:{self.candidate.version}")
            if key is not None
            else random.random() < self.sample_rate
        )
        if not sampled:
            return False
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                full = True
            else:
                self._in_flight += 1
                full = False
        if full:
            self._count("shadow_capacity", None, None)
        return not full

    def _finish(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _forget_future(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.max_in_flight, thread_name_prefix="agentwatch-shadow"
                )
            return self._executor

    def _start_span(self, link: SpanContext | None) -> Span:
        """The ``shadow {agent}`` span: a root of its own trace, so a slow candidate never holds the
        caller's trace open; linked to the caller's span (the primary's parent) when there is one."""
        attributes: dict[str, Any] = {
            n.GEN_AI_AGENT_NAME: self.candidate.name,
            n.AW_ROLLOUT_ROLE: n.ROLE_SHADOW,
        }
        if self.primary.version:
            attributes[n.AW_ROLLOUT_STABLE_VERSION] = self.primary.version
        if self.candidate.version:
            attributes[n.AW_ROLLOUT_CANDIDATE_VERSION] = self.candidate.version
            attributes[n.AW_AGENT_VERSION] = self.candidate.version
        links = [Link(link, {n.AW_ROLLOUT_ROLE: n.ROLE_PRIMARY})] if link is not None else None
        return tracer().start_span(
            n.shadow_span_name(self.primary.name),
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
        )

    @contextlib.contextmanager
    def _around_primary(
        self, key: str | None, spawn: Callable[[SpanContext | None], Callable[[RunResult | None], None] | None]
    ) -> Iterator[_Box]:
        """Start the candidate (``spawn`` returns how to hand it the primary's result, or None when it
        could not start) if this call is shadowed; hand over the primary's result, or None, at the end."""
        box = _Box()
        deliver = spawn(_current_span_context()) if self._start(key) else None
        try:
            yield box
        finally:
            if deliver is not None:
                deliver(box.result)

    def _spawn_task(
        self, task: str, client: Any, link: SpanContext | None
    ) -> Callable[[RunResult | None], None] | None:
        primary_done: asyncio.Future[RunResult | None] = asyncio.get_running_loop().create_future()
        shadow_task = asyncio.create_task(
            self._shadow_async(task, client, primary_done, link), name=f"agentwatch-shadow-{self.candidate.name}"
        )
        self._tasks.add(shadow_task)
        shadow_task.add_done_callback(self._tasks.discard)
        return lambda result: None if primary_done.done() else primary_done.set_result(result)

    def _spawn_thread(
        self, task: str, client: Any, link: SpanContext | None
    ) -> Callable[[RunResult | None], None] | None:
        primary_done: concurrent.futures.Future[RunResult | None] = concurrent.futures.Future()
        try:
            future = self._pool().submit(self._shadow_sync, task, client, primary_done, link)
        except RuntimeError:  # the pool is shut down
            self._finish()
            return None
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)
        return primary_done.set_result

    # The candidate's side: two drivers that only perform its I/O; ``_ShadowJob`` does the rest.
    async def _shadow_async(
        self,
        task: str,
        client: Any,
        primary_done: asyncio.Future[RunResult | None],
        caller: SpanContext | None,
    ) -> None:
        with _ShadowJob(self, task, caller) as job:
            with job.candidate_turn():
                job.candidate = await asyncio.wait_for(self.candidate.arun(task, client=client), self.timeout_s)
            with contextlib.suppress(Exception):
                job.primary = await asyncio.wait_for(asyncio.shield(primary_done), self.timeout_s)

    def _shadow_sync(
        self,
        task: str,
        client: Any,
        primary_done: concurrent.futures.Future[RunResult | None],
        caller: SpanContext | None,
    ) -> None:
        with _ShadowJob(self, task, caller) as job:
            with job.candidate_turn():
                job.candidate = self.candidate.run(task, client=client)
            with contextlib.suppress(Exception):
                job.primary = primary_done.result(timeout=self.timeout_s)

    def _record(
        self,
        span: Span,
        task: str,
        primary: RunResult | None,
        candidate: RunResult | None,
        error: BaseException | None,
    ) -> None:
        """Divergence on the span, in the metrics and in a log record; then ``on_outcome``."""
        divergence = compare_runs(primary, candidate) if primary and candidate else None
        error_type = None if error is None else ("timeout" if isinstance(error, TimeoutError) else type(error).__name__)
        message = None if error is None else redact(f"{error_type}: {error}")[:512]
        try:
            link = _primary_link(primary)
            if link is not None:
                span.add_link(link, {n.AW_ROLLOUT_ROLE: n.ROLE_PRIMARY})
            attributes: dict[str, Any] = {}
            if candidate is not None:
                attributes[n.AW_RUN_STOP_REASON] = candidate.stop_reason.value
                if candidate.cost_usd is not None:
                    attributes[n.AW_RUN_COST_USD] = candidate.cost_usd
            if divergence is not None:
                attributes.update(_divergence_attributes(divergence))
            span.set_attributes(attributes)
            if error is not None:
                mark_span_error(span, error_type or "error", message or "", error)
        finally:
            span.end()
        self._count(error_type, candidate, divergence)
        outcome = ShadowOutcome(len(task), candidate, primary, divergence, message, error_type)
        self._log(outcome, span)
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:
                logger.warning("Shadow on_outcome callback raised", exc_info=True)

    def _metric_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {n.GEN_AI_AGENT_NAME: self.primary.name}
        if self.primary.version:
            attributes[n.AW_ROLLOUT_STABLE_VERSION] = self.primary.version
        if self.candidate.version:
            attributes[n.AW_ROLLOUT_CANDIDATE_VERSION] = self.candidate.version
        return attributes

    def _count(self, error_type: str | None, candidate: RunResult | None, divergence: Divergence | None) -> None:
        """``agentwatch.shadow.runs`` (+ similarity, spend). Never raises."""
        try:
            m = instruments()
            attributes = self._metric_attributes()
            if error_type is not None or candidate is None:
                attributes[n.ERROR_TYPE] = error_type or "error"
            else:
                attributes[n.AW_RUN_STOP_REASON] = candidate.stop_reason.value
            if divergence is not None:
                attributes[n.AW_SHADOW_TOOLS_MATCH] = divergence.tools_match
                attributes[n.AW_SHADOW_STOP_REASON_MATCH] = divergence.stop_reason_match
                m.shadow_similarity.record(divergence.answer_similarity, self._metric_attributes())
            m.shadow_runs.add(1, attributes)
            if candidate is not None and candidate.cost_usd:
                m.shadow_spend.add(candidate.cost_usd, self._metric_attributes())
        except Exception:
            logger.debug("could not record shadow metrics", exc_info=True)

    def _log(self, outcome: ShadowOutcome, span: Span) -> None:
        try:
            level = logging.WARNING if outcome.error else logging.INFO
            if not logger.isEnabledFor(level):
                return
            d = outcome.divergence
            candidate = outcome.candidate
            if outcome.error:
                summary = outcome.error
            elif d is not None:
                summary = f"similarity {d.answer_similarity:.2f}, tools match {d.tools_match}"
            else:
                summary = "primary result unavailable"
            with trace.use_span(span, end_on_exit=False):
                logger.log(
                    level,
                    "shadow_result %s %s -> %s: %s",
                    self.primary.name,
                    self.primary.version,
                    self.candidate.version,
                    summary,
                    extra={
                        "event": n.LOG_SHADOW_RESULT,
                        "agent": self.primary.name,
                        "version": self.primary.version,
                        "candidate_version": self.candidate.version,
                        "primary_trace_id": outcome.primary.trace_id if outcome.primary else None,
                        "candidate_trace_id": candidate.trace_id if candidate else None,
                        "candidate_stop_reason": candidate.stop_reason.value if candidate else None,
                        "candidate_cost_usd": candidate.cost_usd if candidate else None,
                        "error": outcome.error,
                        "answer_similarity": round(d.answer_similarity, 4) if d else None,
                        "tools_match": d.tools_match if d else None,
                        "primary_tools": list(d.primary_tools) if d else None,
                        "candidate_tools": list(d.candidate_tools) if d else None,
                        "stop_reason_match": d.stop_reason_match if d else None,
                        "cost_delta_usd": d.cost_delta_usd if d else None,
                        "latency_delta_s": round(d.latency_delta_s, 4) if d else None,
                    },
                )
        except Exception:
            logger.debug("could not log a shadow result", exc_info=True)


@dataclass
class _Box:
    result: RunResult | None = None


class _ShadowJob:
    """One candidate run's bookkeeping, the same whichever driver performs it: the ``shadow`` span,
    the candidate's outcome, the recording, the in-flight count. Nothing here raises into the driver
    except a cancellation (recorded first)."""

    def __init__(self, shadow: Shadow, task: str, caller: SpanContext | None) -> None:
        self.shadow = shadow
        self.task = task
        self.caller = caller
        self.span: Span | None = None
        self.candidate: RunResult | None = None
        self.primary: RunResult | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> _ShadowJob:
        return self

    @contextlib.contextmanager
    def candidate_turn(self) -> Iterator[None]:
        """Run the candidate in the ``shadow`` span; an exception becomes its outcome, a cancellation
        (``close()`` or loop shutdown) is recorded and then let through."""
        span = self.span = self.shadow._start_span(self.caller)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                yield
        except asyncio.CancelledError as exc:
            self.shadow._record(span, self.task, None, None, exc)
            self.span = None
            raise
        except Exception as exc:  # includes TimeoutError
            self.error = exc

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        try:
            if exc is None and self.span is not None:
                self.shadow._record(self.span, self.task, self.primary, self.candidate, self.error)
            elif isinstance(exc, Exception):
                logger.warning("agentwatch shadow run could not be recorded", exc_info=exc)
        except Exception:
            logger.warning("agentwatch shadow run could not be recorded", exc_info=True)
        finally:
            self.shadow._finish()
        return isinstance(exc, Exception)


def _divergence_attributes(d: Divergence) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        n.AW_SHADOW_ANSWER_SIMILARITY: round(d.answer_similarity, 4),
        n.AW_SHADOW_TOOLS_MATCH: d.tools_match,
        n.AW_SHADOW_STOP_REASON_MATCH: d.stop_reason_match,
        n.AW_SHADOW_LATENCY_DELTA_S: round(d.latency_delta_s, 4),
    }
    if d.cost_delta_usd is not None:
        attributes[n.AW_SHADOW_COST_DELTA_USD] = d.cost_delta_usd
    return attributes


def _current_span_context() -> SpanContext | None:
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def _primary_link(primary: RunResult | None) -> SpanContext | None:
    """The primary run's root span, to link to; nothing when it has none (no tracer provider)."""
    if primary is None or not primary.span_context.is_valid:
        return None
    return primary.span_context
