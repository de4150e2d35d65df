"""The seam for guards shared beyond one process: fleet budgets, rate limits, circuit breakers.

A ``CallGate`` is consulted around every LLM call attempt of a run, after the run's own guards have
planned it. The run core calls it; implementations (``agentwatch.fleet``) keep their state elsewhere
(Redis), so many replicas share one budget, one rate limit and one circuit per model. Without a gate
(``Agent(gate=None)``, the default) a run behaves exactly as before.

Order per call: ``route`` (may move the call to a fallback model while a circuit is open), then per
attempt ``admit`` (reserve the worst case, wait for rate-limit capacity) and ``settle`` (the real
usage, the response headers, or the failure). ``settle`` runs exactly once per admitted attempt,
whatever happened, so no reservation is left behind by a live process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from agentwatch.result import Usage
from agentwatch.runner.guards import Stop
from agentwatch.runner.routing import Route


@dataclass(frozen=True)
class CallRequest:
    """One planned attempt, as the gate sees it."""

    agent: str
    tenant: str | None
    model: str
    base_url: str
    input_tokens: int  # the planned input (estimated or counted)
    max_tokens: int  # the output ceiling the run's own guards allowed
    worst_case_usd: float | None  # its cost at input_tokens + max_tokens; None without a known price
    time_left_s: float | None  # the run's remaining wall clock: any wait must fit in it


@dataclass(frozen=True)
class Admission:
    """The attempt may go ahead with at most ``max_tokens`` (never more than requested)."""

    max_tokens: int
    waited_s: float = 0.0  # time spent waiting for shared rate-limit capacity (recorded as a span event)
    handle: object = None  # the gate's own reference for ``settle`` (a reservation id)


@dataclass(frozen=True)
class Settlement:
    """How an admitted attempt ended: its usage and cost, or the failure; the response's headers."""

    admission: Admission
    request: CallRequest
    usage: Usage | None = None
    cost_usd: float | None = None
    error: BaseException | None = None
    headers: Mapping[str, str] | None = None  # e.g. anthropic-ratelimit-*; None when there was no response


class CallGate(Protocol):
    """Fleet-wide guards around each LLM call; sync and async forms of the same decisions.

    ``route`` and ``admit`` return a ``Stop`` to end the run with a clear reason (a tenant's budget is
    spent, a circuit is open with no fallback, no rate-limit capacity within the deadline). None of
    the methods raises: an unreachable store follows the gate's configured fail-open/closed policy.
    """

    def route(self, route: Route, request: CallRequest) -> Route | Stop: ...

    def admit(self, request: CallRequest) -> Admission | Stop: ...

    def settle(self, settlement: Settlement) -> None: ...

    async def aroute(self, route: Route, request: CallRequest) -> Route | Stop: ...

    async def aadmit(self, request: CallRequest) -> Admission | Stop: ...

    async def asettle(self, settlement: Settlement) -> None: ...
