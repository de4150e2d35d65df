"""Canary: route a share of runs to a candidate version, watch it, roll back on its own when it misbehaves.

Assignment is sticky by key (a user or session id): ``hashlib`` places each key in [0, 1) and keys
below ``share`` get the candidate, so a key keeps its version across calls, processes and machines.
Guards — error rate, mean cost per run, p95 latency, eval pass rate — are evaluated over a sliding
window of candidate runs (a count, a time span, or both) once it holds ``min_runs``. Crossing one
rolls back: all traffic to stable, a ``agentwatch.rollout.rollback`` span event, a ``canary_rollback``
log record and ``agentwatch.canary.rollbacks``. Promotion is explicit (``promote()``). State is
guarded by a lock: share one ``Canary`` across threads and tasks.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opentelemetry import trace

from agentwatch.evals.protocols import RolloutAgent
from agentwatch.evals.report import percentile
from agentwatch.result import RunResult, StopReason
from agentwatch.rollout.hashing import in_share
from agentwatch.rollout.telemetry import instruments
from agentwatch.telemetry import names as n
from agentwatch.telemetry.logs import logger
from agentwatch.telemetry.recorder import tracer

Evaluator = Callable[[str, RunResult], bool | Awaitable[bool]]


@dataclass(frozen=True)
class CanaryGuards:
    """Thresholds over the window of candidate runs; ``None`` disables a guard.

    - ``max_error_rate``: share of runs that raised or stopped with one of ``error_stop_reasons``.
    - ``max_cost_per_run_usd``: mean cost of the runs with a known cost.
    - ``max_p95_latency_s``: 95th percentile (nearest rank) of run duration.
    - ``min_eval_pass_rate``: share of evaluated runs that passed (``evaluator`` or ``record_eval``).
    """

    max_error_rate: float | None = None
    max_cost_per_run_usd: float | None = None
    max_p95_latency_s: float | None = None
    min_eval_pass_rate: float | None = None
    error_stop_reasons: frozenset[StopReason] = field(default_factory=lambda: frozenset({StopReason.ERROR}))

    def __post_init__(self) -> None:
        for name in ("max_error_rate", "min_eval_pass_rate"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"CanaryGuards.{name} is a rate between 0 and 1; got {value!r}.")
        for name in ("max_cost_per_run_usd", "max_p95_latency_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"CanaryGuards.{name} must be 0 or more; got {value!r}.")


@dataclass(frozen=True)
class SlidingWindow:
    """The last ``size`` candidate runs and/or those of the last ``seconds``; at least one is required."""

    size: int | None = 100
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.size is None and self.seconds is None:
            raise ValueError("SlidingWindow needs a size (runs), seconds, or both.")
        if self.size is not None and self.size < 1:
            raise ValueError(f"SlidingWindow.size must be at least 1; got {self.size!r}.")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"SlidingWindow.seconds must be positive; got {self.seconds!r}.")


class CanaryState(StrEnum):
    ACTIVE = "active"  # ``share`` of keys go to the candidate
    ROLLED_BACK = "rolled_back"  # everything goes to stable
    PROMOTED = "promoted"  # everything goes to the candidate


@dataclass(frozen=True)
class Rollback:
    """Why the canary rolled back: the guard, what was observed, the threshold, over how many runs."""

    guard: str
    observed: float
    threshold: float
    runs: int
    at: float

    @property
    def reason(self) -> str:
        return f"{self.guard} {self.observed:.4g} crossed {self.threshold:.4g} over {self.runs} candidate runs"


@dataclass(frozen=True)
class WindowStats:
    """The guards' inputs over the current window (``None`` where there is nothing to measure)."""

    runs: int
    error_rate: float | None
    mean_cost_usd: float | None
    p95_latency_s: float | None
    evaluated: int
    eval_pass_rate: float | None


@dataclass(frozen=True)
class _Sample:
    at: float
    error: bool
    cost_usd: float | None
    duration_s: float


class _Window:
    def __init__(self, spec: SlidingWindow) -> None:
        self.spec = spec
        self.items: deque[Any] = deque(maxlen=spec.size)

    def add(self, item: Any) -> None:
        self.items.append(item)

    def prune(self, now: float) -> None:
        if self.spec.seconds is not None:
            while self.items and self.items[0][0] < now - self.spec.seconds:
                self.items.popleft()


class Canary:
    """Route between ``stable`` and ``candidate``; guard the candidate; roll back automatically.

    ``share`` of keys get the candidate while the canary is active. ``salt`` (default: the candidate's
    version) picks which keys those are: a new candidate version samples different users. ``evaluator``
    (``(task, result) -> bool``, sync or async) scores candidate runs for the eval pass-rate guard;
    ``on_rollback`` is called once with the ``Rollback``.
    """

    def __init__(
        self,
        stable: RolloutAgent,
        candidate: RolloutAgent,
        share: float = 0.05,
        guards: CanaryGuards | None = None,
        window: SlidingWindow | None = None,
        min_runs: int = 20,
        *,
        salt: str | None = None,
        evaluator: Evaluator | None = None,
        on_rollback: Callable[[Rollback], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= share <= 1:
            raise ValueError(f"Canary share is between 0 and 1 (e.g. 0.05 for 5%); got {share!r}.")
        if min_runs < 1:
            raise ValueError(f"Canary min_runs must be at least 1; got {min_runs!r}.")
        self.stable = stable
        self.candidate = candidate
        self.share = share
        self.guards = guards or CanaryGuards()
        self.window = window or SlidingWindow()
        self.min_runs = min_runs
        self.salt = salt if salt is not None else f"canary:{candidate.name}:{candidate.version}"
        self.evaluator = evaluator
        self.on_rollback = on_rollback
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CanaryState.ACTIVE
        self._rollback: Rollback | None = None
        self._runs = _Window(self.window)
        self._evals = _Window(self.window)

    # --- routing ------------------------------------------------------------------------------------
    @property
    def state(self) -> CanaryState:
        return self._state

    @property
    def rollback_info(self) -> Rollback | None:
        """Why the canary rolled back, once it has."""
        return self._rollback

    def is_candidate(self, key: str | None) -> bool:
        """Whether a run for ``key`` goes to the candidate now. Without a key: a fresh random draw."""
        state = self._state
        if state is CanaryState.PROMOTED:
            return True
        if state is CanaryState.ROLLED_BACK:
            return False
        if key is None:
            return random.random() < self.share
        return in_share(key, self.share, self.salt)

    def choose(self, key: str | None) -> RolloutAgent:
        """The agent that serves ``key`` now."""
        return self.candidate if self.is_candidate(key) else self.stable

    def _route(self, key: str | None) -> tuple[RolloutAgent, bool]:
        """The agent for ``key``, and whether its run feeds the guards (a candidate run while active)."""
        agent = self.choose(key)
        return agent, agent is self.candidate and self._state is CanaryState.ACTIVE

    # Each entry point only performs I/O (the run, and awaiting an async evaluator); what a run
    # feeds the guards is decided once, in ``_watching``.
    async def arun(self, task: str, *, key: str | None = None, client: Any = None) -> RunResult:
        """Run ``task`` on the version ``key`` is assigned; candidate runs feed the guards."""
        agent, watched = self._route(key)
        with self._watching(task, watched) as watch:
            watch.result = await agent.arun(task, client=client)
        if watch.pending is not None:
            self._record_verdict(await _await_evaluation(watch.pending))
        return watch.result

    def run(self, task: str, *, key: str | None = None, client: Any = None) -> RunResult:
        """Sync ``arun`` (an async ``evaluator`` is not awaited here: use ``arun`` or ``record_eval``)."""
        agent, watched = self._route(key)
        with self._watching(task, watched) as watch:
            watch.result = agent.run(task, client=client)
        if watch.pending is not None:
            _drop(watch.pending)
            logger.warning("Canary.run cannot await an async evaluator; use arun() or record_eval().")
        return watch.result

    @contextlib.contextmanager
    def _watching(self, task: str, watched: bool) -> Iterator[_Watch]:
        """Around one run: when ``watched``, a raised run is recorded as an error (and re-raised), a
        finished one is recorded and evaluated; an async verdict is left in ``pending`` for the caller."""
        watch = _Watch()
        try:
            yield watch
        except Exception:
            if watched:
                self.record(None)
            raise
        if not watched:
            return
        result = watch.result
        self.record(result)
        verdict = self._evaluate(task, result) if self.evaluator is not None and result is not None else None
        if inspect.isawaitable(verdict):
            watch.pending = verdict
        else:
            self._record_verdict(verdict)

    def _record_verdict(self, verdict: bool | None) -> None:
        if verdict is not None:
            self.record_eval(bool(verdict))

    def _evaluate(self, task: str, result: RunResult) -> bool | Awaitable[bool] | None:
        assert self.evaluator is not None
        try:
            return self.evaluator(task, result)
        except Exception:
            logger.warning("Canary evaluator raised; the run is not counted for the eval guard", exc_info=True)
            return None

    # --- feeding the guards -------------------------------------------------------------------------
    def record(self, result: RunResult | None) -> Rollback | None:
        """Count one candidate run (``None``: it raised) and evaluate the guards; the ``Rollback`` if
        this run tripped one. For callers that run the candidate themselves."""
        now = self._clock()
        error = result is None or result.stop_reason in self.guards.error_stop_reasons
        sample = _Sample(now, error, None if result is None else result.cost_usd, result.duration_s if result else 0.0)
        with self._lock:
            if self._state is not CanaryState.ACTIVE:
                return None
            self._runs.add((now, sample))
            rollback = self._check(now)
        return self._announce(rollback)

    def record_eval(self, passed: bool) -> Rollback | None:
        """Count one eval verdict on a candidate run (online scoring, a human label, a nightly eval)."""
        now = self._clock()
        with self._lock:
            if self._state is not CanaryState.ACTIVE:
                return None
            self._evals.add((now, passed))
            rollback = self._check(now)
        return self._announce(rollback)

    def stats(self) -> WindowStats:
        """The window as the guards see it now."""
        with self._lock:
            return self._stats(self._clock())

    # --- decisions ----------------------------------------------------------------------------------
    def promote(self) -> None:
        """Send all traffic to the candidate, for good. Explicit: a canary never promotes itself."""
        with self._lock:
            self._state = CanaryState.PROMOTED
        logger.info(
            "canary %s promoted %s",
            self.candidate.name,
            self.candidate.version,
            extra={"event": n.LOG_CANARY_PROMOTE, "agent": self.candidate.name, "version": self.candidate.version},
        )

    def rollback(self, reason: str = "manual") -> None:
        """Send all traffic to stable now (an operator's call), with the same event, log and metric."""
        with self._lock:
            if self._state is CanaryState.ROLLED_BACK:
                return
            runs = len(self._runs.items)
            self._state = CanaryState.ROLLED_BACK
            self._rollback = Rollback(reason, 0.0, 0.0, runs, time.time())
            rollback = self._rollback
        self._emit(rollback)

    def _stats(self, now: float) -> WindowStats:
        self._runs.prune(now)
        self._evals.prune(now)
        samples: list[_Sample] = [s for _, s in self._runs.items]
        verdicts: list[bool] = [v for _, v in self._evals.items]
        costs = [s.cost_usd for s in samples if s.cost_usd is not None]
        durations = sorted(s.duration_s for s in samples if not (s.error and s.duration_s == 0.0))
        return WindowStats(
            runs=len(samples),
            error_rate=sum(s.error for s in samples) / len(samples) if samples else None,
            mean_cost_usd=sum(costs) / len(costs) if costs else None,
            p95_latency_s=percentile(durations, 0.95) if durations else None,
            evaluated=len(verdicts),
            eval_pass_rate=sum(verdicts) / len(verdicts) if verdicts else None,
        )

    def _check(self, now: float) -> Rollback | None:
        """Under the lock: the first guard the window crosses, after switching to ROLLED_BACK."""
        stats = self._stats(now)
        g = self.guards
        crossed: tuple[str, float, float, int] | None = None
        if stats.runs >= self.min_runs:
            maxima = (
                ("error_rate", stats.error_rate, g.max_error_rate),
                ("cost_per_run_usd", stats.mean_cost_usd, g.max_cost_per_run_usd),
                ("p95_latency_s", stats.p95_latency_s, g.max_p95_latency_s),
            )
            for name, observed, limit in maxima:
                if observed is not None and limit is not None and observed > limit:
                    crossed = (name, observed, limit, stats.runs)
                    break
        if crossed is None and g.min_eval_pass_rate is not None and stats.evaluated >= self.min_runs:
            assert stats.eval_pass_rate is not None
            if stats.eval_pass_rate < g.min_eval_pass_rate:
                crossed = ("eval_pass_rate", stats.eval_pass_rate, g.min_eval_pass_rate, stats.evaluated)
        if crossed is None:
            return None
        self._state = CanaryState.ROLLED_BACK
        self._rollback = Rollback(*crossed, at=time.time())
        return self._rollback

    def _announce(self, rollback: Rollback | None) -> Rollback | None:
        if rollback is not None:
            self._emit(rollback)
        return rollback

    def _emit(self, rollback: Rollback) -> None:
        """Span event, log record, metric and callback for a rollback. Never raises."""
        attributes: dict[str, Any] = {
            n.GEN_AI_AGENT_NAME: self.candidate.name,
            n.AW_ROLLOUT_GUARD: rollback.guard,
        }
        if self.stable.version:
            attributes[n.AW_ROLLOUT_STABLE_VERSION] = self.stable.version
        if self.candidate.version:
            attributes[n.AW_ROLLOUT_CANDIDATE_VERSION] = self.candidate.version
        try:
            current = trace.get_current_span()
            if current.is_recording():  # the request that tripped the guard
                current.add_event(n.EVENT_ROLLBACK, attributes)
                self._log(rollback)
            else:
                with tracer().start_as_current_span(n.EVENT_ROLLBACK, attributes=attributes) as span:
                    span.add_event(n.EVENT_ROLLBACK, attributes)
                    self._log(rollback)
            instruments().canary_rollbacks.add(1, attributes)
        except Exception:
            logger.debug("could not record a canary rollback", exc_info=True)
        if self.on_rollback is not None:
            try:
                self.on_rollback(rollback)
            except Exception:
                logger.warning("Canary on_rollback callback raised", exc_info=True)

    def _log(self, rollback: Rollback) -> None:
        logger.log(
            logging.WARNING,
            "canary_rollback %s %s -> %s: %s; all traffic back to stable",
            self.candidate.name,
            self.candidate.version,
            self.stable.version,
            rollback.reason,
            extra={
                "event": n.LOG_CANARY_ROLLBACK,
                "agent": self.candidate.name,
                "version": self.candidate.version,
                "stable_version": self.stable.version,
                "guard": rollback.guard,
                "observed": rollback.observed,
                "threshold": rollback.threshold,
                "runs": rollback.runs,
            },
        )


@dataclass
class _Watch:
    result: RunResult | None = None
    pending: Awaitable[bool] | None = None


def _drop(pending: Awaitable[bool]) -> None:
    if inspect.iscoroutine(pending):
        pending.close()


async def _await_evaluation(pending: Awaitable[bool]) -> bool | None:
    try:
        return await pending
    except Exception:
        logger.warning("Canary evaluator raised; the run is not counted for the eval guard", exc_info=True)
        return None
