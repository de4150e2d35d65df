"""Canary: route a share of runs to a candidate version, watch it, roll back on its own when it misbehaves.

Assignment is sticky by key (a user or session id): ``hashlib`` places each key in [0, 1) and keys
below the share get the candidate, so a key keeps its version across calls, processes and machines.
Guards — error rate, mean cost per run, p95 latency, eval pass rate — are evaluated over a sliding
window of candidate runs (a count, a time span, or both) once it holds ``min_runs``. Crossing one
rolls back: all traffic to stable, a ``agentwatch.rollout.rollback`` span event, a ``canary_rollback``
log record and ``agentwatch.canary.rollbacks``. A ``Ramp`` raises the share step by step (each step
held until its guards pass for a number of runs and a time; ``agentwatch.rollout.step`` event,
``canary_step`` log, ``agentwatch.canary.step``); without one, promotion is explicit (``promote()``).

The state (and the window) lives in a ``CanaryStore``: this process by default, or Redis
(``RedisCanaryStore``) so every replica routes the same share and rolls back within one poll interval.
When the shared store is unreachable the canary follows ``on_store_down`` (see ``StoreDownPolicy``),
counts ``agentwatch.canary.store.errors`` and logs ``canary_store_unavailable``; it never raises.
Share one ``Canary`` across threads and tasks.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from opentelemetry import trace

from agentwatch.evals.protocols import RolloutAgent
from agentwatch.evals.report import percentile
from agentwatch.result import RunResult, StopReason
from agentwatch.rollout.hashing import in_share
from agentwatch.rollout.state import (
    CanaryState,
    CanaryStore,
    InProcessCanaryStore,
    Rollback,
    Sample,
    SlidingWindow,
    Snapshot,
    StoreUnavailable,
    Verdict,
    Window,
)
from agentwatch.rollout.telemetry import instruments
from agentwatch.telemetry import names as n
from agentwatch.telemetry.logs import logger
from agentwatch.telemetry.recorder import tracer

Evaluator = Callable[[str, RunResult], bool | Awaitable[bool]]
_T = TypeVar("_T")

__all__ = [
    "Canary",
    "CanaryGuards",
    "CanaryState",
    "Ramp",
    "Rollback",
    "SlidingWindow",
    "StoreDownPolicy",
    "WindowStats",
]


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
class WindowStats:
    """The guards' inputs over the current window (``None`` where there is nothing to measure)."""

    runs: int
    error_rate: float | None
    mean_cost_usd: float | None
    p95_latency_s: float | None
    evaluated: int
    eval_pass_rate: float | None


@dataclass(frozen=True)
class Ramp:
    """Raise the candidate's share step by step: each step is held until the guards have passed over
    at least ``min_runs`` candidate runs at that step and ``min_seconds`` have gone by, then the next
    step starts. After the last step is held, the canary is PROMOTED (all traffic to the candidate).
    A guard that trips rolls back at any step."""

    steps: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 1.0)
    min_runs: int = 50
    min_seconds: float = 300.0

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if not steps or any(not 0 < s <= 1 for s in steps) or list(steps) != sorted(set(steps)):
            raise ValueError(
                f"Ramp steps are increasing shares in (0, 1], e.g. (0.01, 0.05, 0.25, 1.0); got {steps!r}."
            )
        if self.min_runs < 1:
            raise ValueError(f"Ramp min_runs must be at least 1; got {self.min_runs!r}.")
        if self.min_seconds < 0:
            raise ValueError(f"Ramp min_seconds must be 0 or more; got {self.min_seconds!r}.")
        object.__setattr__(self, "steps", steps)


class StoreDownPolicy(StrEnum):
    """What a canary does while its shared store (Redis) is unreachable.

    - ``STABLE`` (fail closed, the default): no new run goes to the candidate; runs already on it are
      counted locally. The candidate's traffic comes back when the store answers again.
    - ``LOCAL`` (fail open): keep routing the last share this replica saw, with the guards over a
      window of this replica's own runs (a local rollback is written to the store when it is back);
      the ramp does not advance until the store is back.
    """

    STABLE = "stable"
    LOCAL = "local"


ENV_STORE_DOWN = "AGENTWATCH_CANARY_REDIS_DOWN"


class Canary:
    """Route between ``stable`` and ``candidate``; guard the candidate; roll back automatically.

    ``share`` of keys get the candidate while the canary is active (with a ``ramp``, the share of the
    current step). ``salt`` (default: the candidate's version) picks which keys those are, and names
    the canary in a shared store: a new candidate version samples different users. ``evaluator``
    (``(task, result) -> bool``, sync or async) scores candidate runs for the eval pass-rate guard;
    ``on_rollback`` is called once with the ``Rollback`` (by the replica whose run tripped it).
    ``store`` keeps the state (default: this process; ``RedisCanaryStore`` for the fleet);
    ``on_store_down`` (default ``AGENTWATCH_CANARY_REDIS_DOWN`` or ``stable``) is what happens while it
    is unreachable. ``clock`` defaults to the store's (wall-clock time for Redis, so replicas agree).
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
        clock: Callable[[], float] | None = None,
        ramp: Ramp | None = None,
        store: CanaryStore | None = None,
        on_store_down: StoreDownPolicy | str | None = None,
    ) -> None:
        if not 0 <= share <= 1:
            raise ValueError(f"Canary share is between 0 and 1 (e.g. 0.05 for 5%); got {share!r}.")
        if min_runs < 1:
            raise ValueError(f"Canary min_runs must be at least 1; got {min_runs!r}.")
        policy = on_store_down or os.environ.get(ENV_STORE_DOWN) or StoreDownPolicy.STABLE
        try:
            self.on_store_down = StoreDownPolicy(policy)
        except ValueError:
            raise ValueError(
                f"Canary on_store_down (or {ENV_STORE_DOWN}) is 'stable' or 'local'; got {policy!r}."
            ) from None
        self.stable = stable
        self.candidate = candidate
        self.ramp = ramp
        self._shares = ramp.steps if ramp is not None else (share,)
        self.guards = guards or CanaryGuards()
        self.window = window or SlidingWindow()
        self.min_runs = min_runs
        self.salt = salt if salt is not None else f"canary:{candidate.name}:{candidate.version}"
        self.evaluator = evaluator
        self.on_rollback = on_rollback
        self.store: CanaryStore = store if store is not None else InProcessCanaryStore()
        self.store.attach(self.salt, self.window)
        self._clock = clock or self.store.clock
        self._local = InProcessCanaryStore(self._clock)  # while the shared store is unreachable
        self._local.attach(self.salt, self.window)
        self._lock = threading.Lock()
        self._snapshot = Snapshot(step_started=self._clock())
        self._read_at = -math.inf
        self._down_at: float | None = None  # when the shared store last failed, while it is down

    # --- routing ------------------------------------------------------------------------------------
    @property
    def state(self) -> CanaryState:
        return self._current().state

    @property
    def rollback_info(self) -> Rollback | None:
        """Why the canary rolled back, once it has."""
        return self._current().rollback

    @property
    def share(self) -> float:
        """The share of keys the candidate gets at the current step (while ACTIVE)."""
        return self._shares[min(self._current().step, len(self._shares) - 1)]

    @share.setter
    def share(self, value: float) -> None:
        """Change the share of a canary without a ramp (this process only)."""
        if self.ramp is not None:
            raise ValueError("This canary follows its ramp; its share is the current step's.")
        if not 0 <= value <= 1:
            raise ValueError(f"Canary share is between 0 and 1 (e.g. 0.05 for 5%); got {value!r}.")
        self._shares = (value,)

    @property
    def step(self) -> int:
        """The current ramp step (0 without a ramp)."""
        return self._current().step

    @property
    def store_down(self) -> bool:
        """Whether the shared store failed on its last use (the ``on_store_down`` policy applies)."""
        return self._down_at is not None

    def is_candidate(self, key: str | None) -> bool:
        """Whether a run for ``key`` goes to the candidate now. Without a key: a fresh random draw."""
        snapshot = self._current()
        if snapshot.state is CanaryState.PROMOTED:
            return True
        if snapshot.state is CanaryState.ROLLED_BACK:
            return False
        if self._down_at is not None and self.on_store_down is StoreDownPolicy.STABLE:
            return False
        share = self._shares[min(snapshot.step, len(self._shares) - 1)]
        if key is None:
            return random.random() < share
        return in_share(key, share, self.salt)

    def choose(self, key: str | None) -> RolloutAgent:
        """The agent that serves ``key`` now."""
        return self.candidate if self.is_candidate(key) else self.stable

    def _route(self, key: str | None) -> tuple[RolloutAgent, bool]:
        """The agent for ``key``, and whether its run feeds the guards (a candidate run while active)."""
        agent = self.choose(key)
        return agent, agent is self.candidate and self._snapshot.state is CanaryState.ACTIVE

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
        sample = Sample(now, error, None if result is None else result.cost_usd, result.duration_s if result else 0.0)
        return self._add(sample, now)

    def record_eval(self, passed: bool) -> Rollback | None:
        """Count one eval verdict on a candidate run (online scoring, a human label, a nightly eval)."""
        now = self._clock()
        return self._add(Verdict(now, passed), now)

    def stats(self) -> WindowStats:
        """The window as the guards see it now."""
        now = self._clock()
        return _window_stats(self._use(lambda store: store.window(now)))

    def refresh(self) -> CanaryState:
        """Read the shared state now (routing does so at most once per ``poll_interval_s``)."""
        self._read_at = -math.inf
        return self._current().state

    # --- decisions ----------------------------------------------------------------------------------
    def promote(self) -> None:
        """Send all traffic to the candidate, for good. Explicit without a ramp: a canary never
        promotes itself unless its ramp's last step has passed."""
        self._use(lambda store: store.promote())
        self.refresh()
        self._log_promote()

    def rollback(self, reason: str = "manual") -> None:
        """Send all traffic to stable now (an operator's call), with the same event, log and metric."""
        runs = self.stats().runs
        rollback = Rollback(reason, 0.0, 0.0, runs, time.time())
        if self._use(lambda store: store.roll_back(rollback, from_promoted=True)):
            self.refresh()
            self._emit(rollback)

    def _add(self, item: Sample | Verdict, now: float) -> Rollback | None:
        """Append to the window, then decide: roll back, take the next ramp step, or nothing."""
        snapshot, window = self._use(lambda store: store.add(item, now))
        snapshot = self._remember(snapshot, now)
        if snapshot.state is not CanaryState.ACTIVE:
            return None
        stats = _window_stats(window)
        crossed = self._crossed(stats)
        if crossed is not None:
            rollback = Rollback(*crossed, at=time.time())
            if not self._use(lambda store: store.roll_back(rollback, from_promoted=False)):
                return None  # another thread or replica rolled back first: it announced it
            self.refresh()
            self._emit(rollback)
            return rollback
        if isinstance(item, Sample) and self._passed(stats) and self._held(snapshot, now):
            self._step_up(snapshot, now)
        return None

    def _crossed(self, stats: WindowStats) -> tuple[str, float, float, int] | None:
        """The first guard the window crosses: (guard, observed, threshold, runs)."""
        g = self.guards
        if stats.runs >= self.min_runs:
            maxima = (
                ("error_rate", stats.error_rate, g.max_error_rate),
                ("cost_per_run_usd", stats.mean_cost_usd, g.max_cost_per_run_usd),
                ("p95_latency_s", stats.p95_latency_s, g.max_p95_latency_s),
            )
            for name, observed, limit in maxima:
                if observed is not None and limit is not None and observed > limit:
                    return (name, observed, limit, stats.runs)
        if g.min_eval_pass_rate is not None and stats.evaluated >= self.min_runs:
            assert stats.eval_pass_rate is not None
            if stats.eval_pass_rate < g.min_eval_pass_rate:
                return ("eval_pass_rate", stats.eval_pass_rate, g.min_eval_pass_rate, stats.evaluated)
        return None

    def _passed(self, stats: WindowStats) -> bool:
        """Every guard was evaluated over a full window (``min_runs``) and none crossed."""
        if stats.runs < self.min_runs:
            return False
        if self.guards.min_eval_pass_rate is not None and stats.evaluated < self.min_runs:
            return False
        return self._crossed(stats) is None

    def _held(self, snapshot: Snapshot, now: float) -> bool:
        """The current ramp step has had its runs and its time (never while the shared store is down)."""
        ramp = self.ramp
        return (
            ramp is not None
            and self._down_at is None
            and snapshot.step_runs >= ramp.min_runs
            and now - snapshot.step_started >= ramp.min_seconds
        )

    def _step_up(self, snapshot: Snapshot, now: float) -> None:
        """Take the next ramp step (or promote after the last one); announced by the one winner."""
        last = snapshot.step >= len(self._shares) - 1
        if not self._use(lambda store: store.advance(snapshot.step, now, promote=last)):
            return
        self.refresh()
        if last:
            self._log_promote()
            return
        share = self._shares[snapshot.step + 1]
        attributes = {**self._attributes(), n.AW_CANARY_STEP: snapshot.step + 1, n.AW_CANARY_SHARE: share}
        try:
            self._event(n.EVENT_CANARY_STEP, attributes, lambda: self._log_step(snapshot, share))
            instruments().canary_steps.add(1, attributes)
        except Exception:
            logger.debug("could not record a canary step", exc_info=True)

    # --- the store and its outages ------------------------------------------------------------------
    def _current(self) -> Snapshot:
        """The state to route by: cached for ``poll_interval_s``, then read from the store again."""
        now = self._clock()
        if self._down_at is None and now - self._read_at < self.store.poll_interval_s:
            return self._snapshot
        return self._remember(self._use(lambda store: store.read(now)), now)

    def _remember(self, snapshot: Snapshot, now: float) -> Snapshot:
        """Cache ``snapshot``. A rollback this replica has seen holds: if the store says ACTIVE again
        without one (a Redis restarted without persistence, a ``reset()``), it is written back."""
        seen = self._snapshot.rollback
        if self._snapshot.state is CanaryState.ROLLED_BACK and snapshot.state is CanaryState.ACTIVE and seen:
            with contextlib.suppress(StoreUnavailable):
                self.store.roll_back(seen, from_promoted=False)
            snapshot = replace(snapshot, state=CanaryState.ROLLED_BACK, rollback=seen)
        self._snapshot, self._read_at = snapshot, now
        return snapshot

    def _use(self, operation: Callable[[CanaryStore], _T]) -> _T:
        """``operation`` on the shared store; while it is down, on this process's own store (trying the
        shared one again once per poll interval). Store errors never reach the caller."""
        down_at = self._down_at
        now = self._clock()
        if down_at is None or now - down_at >= max(self.store.poll_interval_s, 0.1):
            try:
                value = operation(self.store)
            except StoreUnavailable as exc:
                self._store_failed(exc, now)
            else:
                if down_at is not None:
                    self._store_recovered()
                return value
        return operation(self._local)

    def _store_failed(self, exc: StoreUnavailable, now: float) -> None:
        with self._lock:
            first = self._down_at is None
            self._down_at = now
            if first:
                self._local.seed(self._snapshot)
        try:
            attributes = {
                **self._attributes(),
                n.ERROR_TYPE: type(exc.__cause__ or exc).__name__,
                n.AW_CANARY_STORE_POLICY: self.on_store_down.value,
            }
            instruments().canary_store_errors.add(1, attributes)
            if first:
                logger.warning(
                    "canary_store_unavailable %s %s: %s; policy %s (%s)",
                    self.candidate.name,
                    self.candidate.version,
                    exc,
                    self.on_store_down.value,
                    "all traffic to stable until it is back"
                    if self.on_store_down is StoreDownPolicy.STABLE
                    else "last share kept, guarded by this process alone",
                    extra={
                        "event": n.LOG_CANARY_STORE_DOWN,
                        "agent": self.candidate.name,
                        "version": self.candidate.version,
                        "policy": self.on_store_down.value,
                        "error": str(exc),
                    },
                )
        except Exception:
            logger.debug("could not record a canary store error", exc_info=True)

    def _store_recovered(self) -> None:
        with self._lock:
            if self._down_at is None:
                return
            self._down_at = None
        local = self._local.read(self._clock())
        pushed = False
        if local.rollback is not None:  # a rollback decided here while the store was down holds fleet-wide
            try:
                pushed = self.store.roll_back(local.rollback, from_promoted=False)
            except StoreUnavailable:
                logger.debug("could not write a local canary rollback to the store", exc_info=True)
        self._read_at = -math.inf
        logger.info(
            "canary_store_recovered %s %s",
            self.candidate.name,
            self.candidate.version,
            extra={
                "event": n.LOG_CANARY_STORE_UP,
                "agent": self.candidate.name,
                "version": self.candidate.version,
                "local_rollback_written": pushed,
            },
        )

    # --- telemetry ----------------------------------------------------------------------------------
    def _attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {n.GEN_AI_AGENT_NAME: self.candidate.name}
        if self.stable.version:
            attributes[n.AW_ROLLOUT_STABLE_VERSION] = self.stable.version
        if self.candidate.version:
            attributes[n.AW_ROLLOUT_CANDIDATE_VERSION] = self.candidate.version
        return attributes

    def _event(self, name: str, attributes: dict[str, Any], log: Callable[[], None]) -> None:
        """A span event on the current span (the request that decided), else on a span of its own;
        ``log`` writes the log record inside it."""
        current = trace.get_current_span()
        if current.is_recording():
            current.add_event(name, attributes)
            log()
        else:
            with tracer().start_as_current_span(name, attributes=attributes) as span:
                span.add_event(name, attributes)
                log()

    def _emit(self, rollback: Rollback) -> None:
        """Span event, log record, metric and callback for a rollback. Never raises."""
        attributes = {**self._attributes(), n.AW_ROLLOUT_GUARD: rollback.guard}
        try:
            self._event(n.EVENT_ROLLBACK, attributes, lambda: self._log(rollback))
            instruments().canary_rollbacks.add(1, attributes)
        except Exception:
            logger.debug("could not record a canary rollback", exc_info=True)
        if self.on_rollback is not None:
            try:
                self.on_rollback(rollback)
            except Exception:
                logger.warning("Canary on_rollback callback raised", exc_info=True)

    def _log_step(self, snapshot: Snapshot, share: float) -> None:
        logger.info(
            "canary_step %s %s: step %d, share %.4g (guards passed over %d runs at the last step)",
            self.candidate.name,
            self.candidate.version,
            snapshot.step + 1,
            share,
            snapshot.step_runs,
            extra={
                "event": n.LOG_CANARY_STEP,
                "agent": self.candidate.name,
                "version": self.candidate.version,
                "step": snapshot.step + 1,
                "share": share,
                "runs": snapshot.step_runs,
            },
        )

    def _log_promote(self) -> None:
        logger.info(
            "canary %s promoted %s",
            self.candidate.name,
            self.candidate.version,
            extra={"event": n.LOG_CANARY_PROMOTE, "agent": self.candidate.name, "version": self.candidate.version},
        )

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


def _window_stats(window: Window) -> WindowStats:
    samples = window.runs
    verdicts = [v.passed for v in window.verdicts]
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
