"""Budget guards: decide, before each LLM call, whether its worst case still fits every budget.

A call's worst case is its input (estimated or counted) plus its full ``max_tokens`` of output. The
guard does not start a call that could cross the token or dollar budget; it first lowers
``max_tokens`` to what still fits, and stops the run only when too little is left to be useful. So a
budget is never exceeded, not merely detected afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agentwatch.cost import ModelPrice, Pricing
from agentwatch.limits import Limits
from agentwatch.result import StopReason, Usage

# Below this many output tokens a call is not worth making: the budget stop is the better answer.
MIN_USEFUL_OUTPUT_TOKENS = 64


@dataclass(frozen=True)
class Stop:
    """The run must stop now for ``reason``; ``detail`` is one sentence a person can act on."""

    reason: StopReason
    detail: str
    kind: str | None = None  # the budget that stopped it, for the budget-stop metric
    error_type: str | None = None  # an ERROR stop caused by an exception: its class name (``error.type``)
    retry_after_s: float | None = None  # a fleet guard's stop: seconds until trying again could succeed


@dataclass(frozen=True)
class Allowance:
    """A call may go ahead with at most ``max_tokens`` of output."""

    max_tokens: int


@dataclass(frozen=True)
class BudgetWarning:
    """``kind`` budget has reached ``used`` of ``limit`` (past the warning fraction)."""

    kind: str
    used: float
    limit: float


@dataclass
class Ledger:
    """A run's usage and cost: the one account that its result, its budgets and its telemetry read."""

    pricing: Pricing
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0  # None once a call had no known price (never a silent $0)
    spent_usd: float = 0.0  # the priced part: what the cost budget counts
    models: list[str] = field(default_factory=list)

    def add(self, model: str, usage: Usage) -> float | None:
        """Add one response's (or one cut-short stream's) usage; return its cost. Never raises."""
        cost = self.pricing.cost(model, usage)
        self.usage = self.usage + usage
        self.cost_usd = None if cost is None or self.cost_usd is None else round(self.cost_usd + cost, 10)
        self.spent_usd += cost or 0.0
        if model not in self.models:
            self.models.append(model)
        return cost


@dataclass
class Guards:
    """Weighs one run's ``Ledger`` against its ``Limits``. Not thread-safe: one per run."""

    limits: Limits
    pricing: Pricing
    clock: Callable[[], float] = time.monotonic
    ledger: Ledger = field(init=False)
    started: float = field(init=False)
    _warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.pricing)
        self.started = self.clock()

    @property
    def tokens_used(self) -> int:
        return self.ledger.usage.total_tokens

    @property
    def cost_used(self) -> float:
        return self.ledger.spent_usd

    def elapsed(self) -> float:
        return self.clock() - self.started

    def time_left(self) -> float | None:
        """Seconds left on the run's wall clock, or ``None`` without a timeout."""
        if self.limits.timeout_s is None:
            return None
        return self.limits.timeout_s - self.elapsed()

    def timed_out(self) -> Stop | None:
        left = self.time_left()
        if left is not None and left <= 0:
            return Stop(StopReason.TIMEOUT, f"the run hit its {self.limits.timeout_s:g}s timeout", "timeout")
        return None

    def tokens_left(self) -> int | None:
        budget = self.limits.token_budget
        return None if budget is None else budget - self.tokens_used

    def cost_left(self) -> float | None:
        budget = self.limits.cost_budget_usd
        return None if budget is None else budget - self.cost_used

    def before_call(self, *, iteration: int, model: str, input_tokens: int, cached: bool) -> Allowance | Stop:
        """May call number ``iteration`` (1-based) go ahead with ``input_tokens`` of input? Never raises."""
        limits = self.limits
        if limits.max_iterations is not None and iteration > limits.max_iterations:
            return Stop(
                StopReason.MAX_ITERATIONS,
                f"the run reached its limit of {limits.max_iterations} LLM calls (Limits.max_iterations)",
                "iterations",
            )
        timed_out = self.timed_out()
        if timed_out is not None:
            return timed_out
        max_tokens = limits.max_tokens
        tokens_left = self.tokens_left()
        if tokens_left is not None:
            max_tokens = min(max_tokens, tokens_left - input_tokens)
            if max_tokens < min(MIN_USEFUL_OUTPUT_TOKENS, limits.max_tokens):
                return Stop(
                    StopReason.TOKEN_BUDGET,
                    f"the next call needs about {input_tokens:,} input tokens plus room to answer, but only "
                    f"{max(tokens_left, 0):,} of the {limits.token_budget:,}-token budget remain",
                    "tokens",
                )
        cost_left = self.cost_left()
        if cost_left is not None:
            rates = self.pricing.prices_for(model, input_tokens=input_tokens)  # long-context tiers cost more
            if rates is None:  # Agent construction refuses this; kept as a hard stop, never unlimited.
                return Stop(StopReason.ERROR, f"model {model!r} has no known price for the cost budget", "cost")
            input_cost = input_tokens * _input_rate(rates, cached) / 1e6
            affordable = (cost_left - input_cost) * 1e6 / rates.output if rates.output > 0 else math.inf
            max_tokens = min(max_tokens, math.floor(affordable) if affordable < math.inf else max_tokens)
            if max_tokens < min(MIN_USEFUL_OUTPUT_TOKENS, limits.max_tokens):
                return Stop(
                    StopReason.COST_BUDGET,
                    f"the next call could cost more than the ${max(cost_left, 0):.6f} left of the "
                    f"${limits.cost_budget_usd:g} budget",
                    "cost",
                )
        return Allowance(max_tokens=max_tokens)

    def worst_case_usd(self, model: str, input_tokens: int, max_tokens: int, cached: bool) -> float | None:
        """What a call could cost at most (None without a known price): the gate reserves this much."""
        rates = self.pricing.prices_for(model, input_tokens=input_tokens)
        if rates is None:
            return None
        return (input_tokens * _input_rate(rates, cached) + max_tokens * rates.output) / 1e6

    def warnings(self) -> list[BudgetWarning]:
        """The token and cost budget warnings newly crossed by what the ledger holds. Never raises."""
        warnings: list[BudgetWarning] = []
        fraction = self.limits.budget_warning_fraction
        for kind, used, limit in (
            ("tokens", float(self.tokens_used), self.limits.token_budget),
            ("cost", self.cost_used, self.limits.cost_budget_usd),
        ):
            if limit is not None and kind not in self._warned and used >= fraction * limit:
                self._warned.add(kind)
                warnings.append(BudgetWarning(kind, used, float(limit)))
        return warnings

    def iteration_warning(self, iteration: int) -> BudgetWarning | None:
        """The warning for the iteration budget, once, when call ``iteration`` crosses the fraction."""
        limit = self.limits.max_iterations
        if limit is None or "iterations" in self._warned:
            return None
        if iteration >= self.limits.budget_warning_fraction * limit:
            self._warned.add("iterations")
            return BudgetWarning("iterations", float(iteration), float(limit))
        return None


def _input_rate(rates: ModelPrice, cached: bool) -> float:
    """USD per million input tokens at worst: with prompt caching on, a token may be billed as a cache write."""
    return rates.dearest_input if cached else rates.input
