"""Fault injection for the simulator: what can go wrong with a request, and when it does.

A ``Fault`` is one failure mode of the real API or the network (429 with ``retry-after``, 529, 5xx,
a hang, a dropped connection, a malformed body, an error in the middle of a stream). A ``FaultPlan``
says which requests get which fault: a fixed schedule for the first N eligible requests, then seeded
random rates, optionally only for some models (to fail a "candidate" model and not the baseline), and a
schedule of its own for ``count_tokens`` requests.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

FaultKind = Literal[
    "rate_limit",
    "overloaded",
    "server_error",
    "unavailable",
    "slow",
    "hang",
    "drop",
    "malformed",
    "midstream_error",
    "auth_error",
    "bad_request",
    "not_found",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build with the classmethods (``Fault.rate_limit(retry_after_s=2)``)."""

    kind: FaultKind
    retry_after_s: float | str | None = None
    retry_after_ms: int | str | None = None
    delay_s: float = 0.0

    @classmethod
    def rate_limit(cls, retry_after_s: float | str | None = None, retry_after_ms: int | str | None = None) -> Fault:
        """429 ``rate_limit_error`` with ``retry-after`` and/or ``retry-after-ms`` when given.

        A string is sent verbatim (an HTTP date, ``"nan"``, garbage), to test clients against hostile headers.
        """
        return cls("rate_limit", retry_after_s=retry_after_s, retry_after_ms=retry_after_ms)

    @classmethod
    def overloaded(cls) -> Fault:
        """529 ``overloaded_error``."""
        return cls("overloaded")

    @classmethod
    def server_error(cls) -> Fault:
        """500 ``api_error``."""
        return cls("server_error")

    @classmethod
    def unavailable(cls) -> Fault:
        """503 service unavailable."""
        return cls("unavailable")

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """A normal response, sent after ``delay_s`` seconds."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def hang(cls) -> Fault:
        """No response at all; the connection stays open until the client gives up or the server stops."""
        return cls("hang")

    @classmethod
    def drop(cls) -> Fault:
        """The TCP connection is closed without any response."""
        return cls("drop")

    @classmethod
    def malformed(cls) -> Fault:
        """200 whose body does not parse (JSON, or the first SSE event for streams)."""
        return cls("malformed")

    @classmethod
    def midstream_error(cls) -> Fault:
        """Streams: a few events, then ``event: error`` (overloaded). Non-stream: like ``overloaded()``."""
        return cls("midstream_error")

    @classmethod
    def auth_error(cls) -> Fault:
        """401 ``authentication_error``."""
        return cls("auth_error")

    @classmethod
    def bad_request(cls) -> Fault:
        """400 ``invalid_request_error``."""
        return cls("bad_request")

    @classmethod
    def not_found(cls) -> Fault:
        """404 ``not_found_error`` (as from a gateway that does not serve the endpoint)."""
        return cls("not_found")

    @classmethod
    def from_spec(cls, spec: str) -> Fault:
        """Parse ``"kind"`` or ``"kind:arg"`` (``"slow:2.5"``, ``"rate_limit:3"`` = retry-after 3 s).

        Raises ValueError with the list of kinds when ``spec`` names none of them.
        """
        kind, _, arg = spec.strip().partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of: {', '.join(FAULT_KINDS)}")
        if kind == "slow":
            return cls.slow(float(arg) if arg else 1.0)
        if kind == "rate_limit":
            return cls.rate_limit(retry_after_s=float(arg) if arg else 1.0)
        return cls(kind)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FaultPlan:
    """Which requests fail: ``schedule[i]`` for the i-th eligible request, then random ``rates``.

    Eligible requests are ``POST /v1/messages`` calls that passed authentication and, when
    ``only_models`` is set, ask for one of those models. ``rates`` maps a fault to its probability;
    probabilities must sum to at most 1. Draws are seeded, so the same plan and request sequence give
    the same faults. ``count_tokens[i]`` is the fault for the i-th eligible
    ``POST /v1/messages/count_tokens`` (after the schedule, those are answered normally). Raises
    ValueError for a rate outside [0, 1] or rates summing above 1.
    """

    schedule: Sequence[Fault | None] = ()
    rates: Mapping[Fault, float] = field(default_factory=dict)
    seed: int = 0
    only_models: Collection[str] | None = None
    count_tokens: Sequence[Fault | None] = ()

    def __post_init__(self) -> None:
        rates: dict[Fault, float] = {}
        for fault, p in self.rates.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault rate for {fault.kind} must be between 0 and 1, got {p}")
            rates[fault] = rates.get(fault, 0.0) + p
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to {sum(rates.values()):.3f}; they must sum to at most 1")
        object.__setattr__(self, "schedule", tuple(self.schedule))
        object.__setattr__(self, "count_tokens", tuple(self.count_tokens))
        object.__setattr__(self, "rates", rates)
        if self.only_models is not None:
            object.__setattr__(self, "only_models", frozenset(self.only_models))


class FaultPicker:
    """The running state of a plan: schedule position and random generator. Thread-safe; never raises."""

    def __init__(self, plan: FaultPlan | None) -> None:
        self.plan = plan
        self._lock = threading.Lock()
        self._position = 0
        self._count_position = 0
        self._rng = random.Random(plan.seed if plan else 0)

    def _eligible(self, model: str | None) -> FaultPlan | None:
        plan = self.plan
        if plan is None or (plan.only_models is not None and model not in plan.only_models):
            return None
        return plan

    def next_count(self, model: str | None) -> Fault | None:
        """The fault for the next ``count_tokens`` request asking for ``model`` (None = answer normally)."""
        plan = self._eligible(model)
        if plan is None:
            return None
        with self._lock:
            position = self._count_position
            self._count_position += 1
        return plan.count_tokens[position] if position < len(plan.count_tokens) else None

    def next(self, model: str | None) -> Fault | None:
        """The fault for the next request asking for ``model`` (None = answer normally)."""
        plan = self._eligible(model)
        if plan is None:
            return None
        with self._lock:
            position = self._position
            self._position += 1
            if position < len(plan.schedule):
                return plan.schedule[position]
            if not plan.rates:
                return None
            draw = self._rng.random()
        cumulative = 0.0
        for fault, probability in plan.rates.items():
            cumulative += probability
            if draw < cumulative:
                return fault
        return None


@dataclass(frozen=True)
class ErrorReply:
    """The HTTP error a fault turns into."""

    status: int
    error_type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def _seconds(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def error_reply(fault: Fault) -> ErrorReply | None:
    """The status/error a fault answers with, or None for faults that are not a plain HTTP error."""
    kind = fault.kind
    if kind == "rate_limit":
        headers: dict[str, str] = {}
        if fault.retry_after_s is not None:
            headers["retry-after"] = _seconds(fault.retry_after_s)
        if fault.retry_after_ms is not None:
            ms = fault.retry_after_ms
            headers["retry-after-ms"] = ms if isinstance(ms, str) else str(int(ms))
        message = "This request would exceed your organization's rate limit. Please try again later."
        return ErrorReply(429, "rate_limit_error", message, headers)
    if kind in ("overloaded", "midstream_error"):
        return ErrorReply(529, "overloaded_error", "Overloaded")
    if kind == "server_error":
        return ErrorReply(500, "api_error", "Internal server error")
    if kind == "unavailable":
        return ErrorReply(503, "api_error", "Service temporarily unavailable")
    if kind == "auth_error":
        return ErrorReply(401, "authentication_error", "invalid x-api-key")
    if kind == "bad_request":
        return ErrorReply(400, "invalid_request_error", "Simulated invalid request (injected fault).")
    if kind == "not_found":
        return ErrorReply(404, "not_found_error", "Not found (injected fault).")
    return None
