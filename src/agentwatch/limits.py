"""``Limits``: the hard budgets and timeouts a run may not cross, validated when constructed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Budgets for one run. ``None`` means unlimited for that dimension.

    - ``max_iterations``: LLM calls per run.
    - ``token_budget``: input (cached or not) + output tokens across the run; checked BEFORE each call
      against the worst case, so it is never exceeded.
    - ``cost_budget_usd``: the same in dollars (needs a known price for every model used).
    - ``timeout_s``: wall clock for the whole run, retries and tools included.
    - ``tool_timeout_s``: per tool call (a tool's own ``timeout_s`` wins when smaller).
    - ``max_retries``: retries per LLM call for transient API errors (0 disables).
    - ``budget_warning_fraction``: emit a ``budget_warning`` once this share of a budget is used.
    - ``max_tokens``: the ``max_tokens`` sent with each call.
    - ``max_tool_output_chars``: tool output is cut to this size before it goes back to the model.
    """

    max_iterations: int | None = 10
    token_budget: int | None = None
    cost_budget_usd: float | None = None
    timeout_s: float | None = 300.0
    tool_timeout_s: float | None = 30.0
    max_retries: int = 4
    retry_base_delay_s: float = 0.5
    retry_max_delay_s: float = 20.0
    budget_warning_fraction: float = 0.8
    max_tokens: int = 4096
    max_tool_output_chars: int = 16_000

    def __post_init__(self) -> None:
        def positive(name: str, value: float | None) -> None:
            if value is not None and not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number or None (unlimited); got {value!r}.")

        positive("max_iterations", self.max_iterations)
        positive("token_budget", self.token_budget)
        positive("cost_budget_usd", self.cost_budget_usd)
        positive("timeout_s", self.timeout_s)
        positive("tool_timeout_s", self.tool_timeout_s)
        positive("max_tokens", self.max_tokens)
        positive("max_tool_output_chars", self.max_tool_output_chars)
        if self.max_retries < 0:
            raise ValueError(f"Limits.max_retries must be 0 or more; got {self.max_retries!r}.")
        if not 0 < self.budget_warning_fraction <= 1:
            raise ValueError(f"Limits.budget_warning_fraction must be in (0, 1]; got {self.budget_warning_fraction!r}.")
        if self.retry_base_delay_s < 0 or self.retry_max_delay_s < self.retry_base_delay_s:
            raise ValueError("Limits.retry_base_delay_s must be >= 0 and <= retry_max_delay_s.")
