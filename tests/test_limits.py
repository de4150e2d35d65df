"""``Limits`` refuses at construction what would fail later (issue 11 §8), and a fuzz target for it.

The oracle below is written apart from ``Limits``: what each field accepts, from its documentation. A
value it accepts must construct and work in the guards and the retry policy; anything else must raise a
``ValueError`` that names an offending field and says what it accepts.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch import Limits
from agentwatch.cost import Pricing
from agentwatch.limits import MAX_SECONDS
from agentwatch.runner import retry
from agentwatch.runner.guards import Guards

INTEGERS = {"max_iterations": 1, "token_budget": 1, "max_retries": 0, "max_tokens": 1, "max_tool_output_chars": 1}
OPTIONAL = {"max_iterations", "token_budget", "cost_budget_usd", "timeout_s", "tool_timeout_s"}
NUMBERS = {  # name: (low, low included, high)
    "cost_budget_usd": (0.0, False, math.inf),
    "timeout_s": (0.0, False, MAX_SECONDS),
    "tool_timeout_s": (0.0, False, MAX_SECONDS),
    "budget_warning_fraction": (0.0, False, 1.0),
    "retry_base_delay_s": (0.0, True, MAX_SECONDS),
    "retry_max_delay_s": (0.0, True, MAX_SECONDS),
}


def acceptable(name: str, value: Any) -> bool:
    if value is None:
        return name in OPTIONAL
    if isinstance(value, bool):
        return False
    if name in INTEGERS:
        return isinstance(value, int) and value >= INTEGERS[name]
    if not isinstance(value, int | float | Fraction):
        return False
    low, included, high = NUMBERS[name]
    number = float(value)
    return math.isfinite(number) and (number >= low if included else number > low) and number <= high


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2.0, 2.0),
    st.sampled_from([1.5, 0.0, -0.0, 1e12, 1e308, MAX_SECONDS, MAX_SECONDS + 1, Fraction(1, 3)]),
    st.text(max_size=5),
    st.sampled_from(["100", "1.5", "nan", "inf", b"1", [1], {"a": 1}, object()]),
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", math.inf),
        ("max_tokens", 1.5),
        ("max_tokens", 0),
        ("max_retries", math.nan),
        ("max_retries", -1),
        ("max_iterations", True),
        ("token_budget", "100"),
        ("token_budget", 100.0),
        ("cost_budget_usd", math.nan),
        ("cost_budget_usd", math.inf),
        ("cost_budget_usd", 0),
        ("timeout_s", -1),
        ("timeout_s", math.inf),
        ("timeout_s", 1e12),
        ("tool_timeout_s", "30"),
        ("budget_warning_fraction", 1.5),
        ("budget_warning_fraction", False),
        ("retry_base_delay_s", -0.1),
        ("retry_max_delay_s", math.inf),
        ("max_tool_output_chars", None),
        ("max_retries", None),
    ],
)
def test_each_bad_value_is_refused_with_the_field_and_its_range(field, value) -> None:
    with pytest.raises(ValueError, match=rf"^Limits\.{field} must be .+; got ") as caught:
        Limits(**{field: value})
    assert repr(value) in str(caught.value)


def test_the_backoff_cap_may_not_be_below_its_base() -> None:
    with pytest.raises(ValueError, match=r"retry_max_delay_s must be at least retry_base_delay_s"):
        Limits(retry_base_delay_s=5, retry_max_delay_s=1)


def test_accepted_values_are_normalised() -> None:
    limits = Limits(timeout_s=120, cost_budget_usd=Fraction(1, 4))
    assert (limits.timeout_s, limits.cost_budget_usd) == (120.0, 0.25)
    assert type(limits.timeout_s) is float


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_fuzz_limits(data) -> None:
    names = list(INTEGERS) + list(NUMBERS)
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=4), "fields")
    values = {name: data.draw(HOSTILE, name) for name in chosen}
    bad = [name for name, value in values.items() if not acceptable(name, value)]
    merged = {"retry_base_delay_s": 0.5, "retry_max_delay_s": 20.0}
    merged.update({k: v for k, v in values.items() if acceptable(k, v)})
    order_broken = float(merged["retry_max_delay_s"]) < float(merged["retry_base_delay_s"])
    try:
        limits = Limits(**values)
    except ValueError as exc:
        message = str(exc)
        assert bad or order_broken, f"refused acceptable values {values!r}: {message}"
        if bad:
            assert any(message.startswith(f"Limits.{name} must be ") for name in bad), message
        return
    assert not bad and not order_broken, f"accepted {values!r}"
    for name, value in values.items():
        stored = getattr(limits, name)
        assert stored == (float(value) if name in NUMBERS and value is not None else value)
    # What a run does with them never raises.
    guards = Guards(limits, Pricing())
    guards.before_call(iteration=1, model="claude-haiku-4-5-20251001", input_tokens=100, cached=False)
    for attempt in (0, 1, limits.max_retries, 10_000):
        wait = retry.backoff_s(attempt, limits.retry_base_delay_s, limits.retry_max_delay_s, random.Random(0))
        assert 0 <= wait <= limits.retry_max_delay_s
