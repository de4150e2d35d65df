"""Where a canary keeps its state: the seam between its decisions (``canary.py``) and their storage.

A ``CanaryStore`` holds what every replica must agree on: the state (active, rolled back, promoted),
the ramp step and when it started, the candidate runs counted at that step, why it rolled back, and the
sliding window of candidate runs and eval verdicts the guards read. Every operation is atomic in the
store, so replicas never double-count, never both roll back, never both advance the ramp.

``InProcessCanaryStore`` (the default) keeps it in this process: each process guards itself.
``agentwatch.rollout.redis_state.RedisCanaryStore`` keeps it in Redis: the fleet shares it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol


class CanaryState(StrEnum):
    ACTIVE = "active"  # ``share`` of keys go to the candidate
    ROLLED_BACK = "rolled_back"  # everything goes to stable
    PROMOTED = "promoted"  # everything goes to the candidate


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
class Sample:
    """One candidate run as the guards see it."""

    at: float
    error: bool
    cost_usd: float | None
    duration_s: float


@dataclass(frozen=True)
class Verdict:
    """One eval verdict on a candidate run."""

    at: float
    passed: bool


@dataclass(frozen=True)
class Snapshot:
    """The shared state: ``step`` indexes the ramp (0 without one); ``step_runs`` counts candidate runs
    recorded since that step started at ``step_started`` (the canary's clock)."""

    state: CanaryState = CanaryState.ACTIVE
    step: int = 0
    step_started: float = 0.0
    step_runs: int = 0
    rollback: Rollback | None = None


@dataclass(frozen=True)
class Window:
    """The sliding window of candidate runs and eval verdicts, oldest first."""

    runs: tuple[Sample, ...] = ()
    verdicts: tuple[Verdict, ...] = ()


class StoreUnavailable(Exception):
    """The store could not be reached or answered an error; the canary applies its store-down policy."""


class CanaryStore(Protocol):
    """What a canary needs from its store. Every method is atomic; ``now`` is the canary's clock."""

    #: How long a replica may serve from its cached snapshot before reading the store again.
    poll_interval_s: float
    #: The clock a canary uses with this store when given none (must agree across replicas).
    clock: Callable[[], float]

    def attach(self, name: str, window: SlidingWindow) -> None:
        """Bind the store to one canary (``name`` is its salt) and its window; called once by ``Canary``."""

    def read(self, now: float) -> Snapshot:
        """The state now (created ACTIVE at step 0 on first use)."""

    def add(self, item: Sample | Verdict, now: float) -> tuple[Snapshot, Window]:
        """Append ``item`` to its window if the canary is ACTIVE (a ``Sample`` also counts toward the
        step), prune both windows, and return the state and the windows as they are now."""

    def window(self, now: float) -> Window:
        """Prune and return the windows."""

    def roll_back(self, rollback: Rollback, *, from_promoted: bool) -> bool:
        """Switch to ROLLED_BACK (from ACTIVE, or also from PROMOTED when ``from_promoted``); True
        only for the one call that made the switch."""

    def advance(self, from_step: int, now: float, *, promote: bool) -> bool:
        """Move an ACTIVE canary at ``from_step`` to the next step (or to PROMOTED when ``promote``),
        resetting the step's run count and start time; True only for the one call that did it."""

    def promote(self) -> None:
        """Switch to PROMOTED."""


class InProcessCanaryStore:
    """The default store: this process's memory under a lock (each process guards itself)."""

    poll_interval_s = 0.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._spec = SlidingWindow()
        self._runs: deque[Sample] = deque()
        self._verdicts: deque[Verdict] = deque()

    def attach(self, name: str, window: SlidingWindow) -> None:
        self._spec = window
        self._runs = deque(maxlen=window.size)
        self._verdicts = deque(maxlen=window.size)

    def seed(self, snapshot: Snapshot) -> None:
        """Start from ``snapshot`` with empty windows (a replica that lost its shared store)."""
        with self._lock:
            self._snapshot = snapshot
            self._runs.clear()
            self._verdicts.clear()

    def _current(self, now: float) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = Snapshot(step_started=now)
        return self._snapshot

    def read(self, now: float) -> Snapshot:
        with self._lock:
            return self._current(now)

    def add(self, item: Sample | Verdict, now: float) -> tuple[Snapshot, Window]:
        with self._lock:
            snapshot = self._current(now)
            if snapshot.state is CanaryState.ACTIVE:
                if isinstance(item, Sample):
                    self._runs.append(item)
                    snapshot = self._snapshot = replace(snapshot, step_runs=snapshot.step_runs + 1)
                else:
                    self._verdicts.append(item)
            return snapshot, self._pruned(now)

    def window(self, now: float) -> Window:
        with self._lock:
            return self._pruned(now)

    def _pruned(self, now: float) -> Window:
        if self._spec.seconds is not None:
            oldest = now - self._spec.seconds
            for items in (self._runs, self._verdicts):
                while items and items[0].at < oldest:
                    items.popleft()
        return Window(tuple(self._runs), tuple(self._verdicts))

    def roll_back(self, rollback: Rollback, *, from_promoted: bool) -> bool:
        with self._lock:
            snapshot = self._current(rollback.at)
            allowed = {CanaryState.ACTIVE, CanaryState.PROMOTED} if from_promoted else {CanaryState.ACTIVE}
            if snapshot.state not in allowed:
                return False
            self._snapshot = replace(snapshot, state=CanaryState.ROLLED_BACK, rollback=rollback)
            return True

    def advance(self, from_step: int, now: float, *, promote: bool) -> bool:
        with self._lock:
            snapshot = self._current(now)
            if snapshot.state is not CanaryState.ACTIVE or snapshot.step != from_step:
                return False
            if promote:
                self._snapshot = replace(snapshot, state=CanaryState.PROMOTED)
            else:
                self._snapshot = replace(snapshot, step=from_step + 1, step_started=now, step_runs=0)
            return True

    def promote(self) -> None:
        with self._lock:
            self._snapshot = replace(self._current(self.clock()), state=CanaryState.PROMOTED)
