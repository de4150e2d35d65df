"""``Limits``: the hard budgets and timeouts a run may not cross, validated when constructed."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

# The longest wait or timeout a run accepts (one week): longer is a mistake, and past about 9.2e9 s the
# platform's sleeps and waits overflow. A run with no wall-clock limit says so with ``timeout_s=None``.
MAX_SECONDS = 7 * 24 * 3600.0


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
    - ``retry_base_delay_s`` / ``retry_max_delay_s``: the backoff's first step and the cap on every wait,
      a server's ``retry-after`` included.
    - ``budget_warning_fraction``: emit a ``budget_warning`` once this share of a budget is used.
    - ``max_tokens``: the ``max_tokens`` sent with each call.
    - ``max_tool_output_chars``: tool output is cut to this size before it goes back to the model.

    Every field is checked here: a wrong type or a value out of range raises ``ValueError`` naming the
    field and what it accepts. Integer fields take integers only (not ``True``, ``1.5`` or ``"100"``);
    number fields take finite ints or floats (not ``nan`` or ``inf``).
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
        seconds = f"a number of seconds in (0, {MAX_SECONDS:,.0f}]"
        self._integer("max_iterations", 1, "an integer >= 1, or None (unlimited)", optional=True)
        self._integer("token_budget", 1, "an integer >= 1, or None (unlimited)", optional=True)
        self._integer("max_retries", 0, "an integer >= 0 (0 disables retries)")
        self._integer("max_tokens", 1, "an integer >= 1")
        self._integer("max_tool_output_chars", 1, "an integer >= 1")
        self._number("cost_budget_usd", math.inf, "a finite number of dollars > 0, or None (unlimited)", optional=True)
        self._number("timeout_s", MAX_SECONDS, f"{seconds}, or None (no limit)", optional=True)
        self._number("tool_timeout_s", MAX_SECONDS, f"{seconds}, or None (no limit)", optional=True)
        self._number("budget_warning_fraction", 1.0, "a number in (0, 1]: the share of a budget")
        self._number("retry_base_delay_s", MAX_SECONDS, f"0 or {seconds}", zero=True)
        self._number("retry_max_delay_s", MAX_SECONDS, f"0 or {seconds}", zero=True)
        if self.retry_max_delay_s < self.retry_base_delay_s:
            raise ValueError(
                f"Limits.retry_max_delay_s must be at least retry_base_delay_s ({self.retry_base_delay_s!r}); "
                f"got {self.retry_max_delay_s!r}."
            )

    def _reject(self, name: str, accepts: str) -> None:
        value = getattr(self, name)
        raise ValueError(f"Limits.{name} must be {accepts}; got {value!r} ({type(value).__name__}).")

    def _integer(self, name: str, low: int, accepts: str, *, optional: bool = False) -> None:
        """An integer >= ``low`` (bools refused); numpy and other integral types become a plain int."""
        value = getattr(self, name)
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            self._reject(name, accepts)
        object.__setattr__(self, name, int(value))

    def _number(self, name: str, high: float, accepts: str, *, optional: bool = False, zero: bool = False) -> None:
        """A finite real in (0, ``high``] ([0, ``high``] with ``zero``), stored as a float; bools refused."""
        value = getattr(self, name)
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            self._reject(name, accepts)
        number = float(value)
        if not (math.isfinite(number) and (number >= 0 if zero else number > 0) and number <= high):
            self._reject(name, accepts)
        object.__setattr__(self, name, number)
