"""Property: whatever the usage, max_tokens and budgets, a run never spends more than its budgets allow.

Two levels: the guards alone over random call sequences (fast, many examples, including long-context
price tiers and prompt caching), and whole runs over real HTTP against the simulator (fewer examples).
"""

from __future__ import annotations

import anthropic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwatch import Agent, Limits
from agentwatch.cost import Pricing
from agentwatch.result import StopReason, Usage
from agentwatch.runner.guards import Guards, Stop
from agentwatch.tools import calculator, web_search

from .support import CAPABLE, DEMO_TASK, MODEL, unique

PRICING = Pricing()
# Sonnet 4.5 has a dearer price tier above 200k input tokens; the guards must use it.
GUARD_MODELS = [MODEL, "claude-sonnet-4-5", "claude-opus-4-5"]
MODELS = [MODEL, CAPABLE, "claude-opus-4-5"]
# Short prompts and long-context ones (above the 200k-token price tier).
input_sizes = st.one_of(st.integers(1, 20_000), st.integers(150_000, 400_000))
# Budgets are drawn relative to the first call's worst case, so runs often end right at the limit, where a
# guard bug would show; None is unlimited.
shares = st.one_of(st.floats(0.2, 2.5), st.floats(0.01, 10.0), st.none())


def near_top(low: int, high: int) -> st.SearchStrategy[int]:
    """Anything in [low, high], but often the top of the range, where budgets are tested hardest."""
    return st.one_of(st.just(high), st.integers(max(low, high - high // 10), high), st.integers(low, high))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_guards_never_let_a_call_cross_a_budget(data) -> None:
    model = data.draw(st.sampled_from(GUARD_MODELS), "model")
    max_tokens = data.draw(st.integers(1, 64_000), "max_tokens")
    first_input = data.draw(input_sizes, "first input")
    token_share, cost_share = data.draw(shares, "token budget share"), data.draw(shares, "cost budget share")
    rates = PRICING.prices_for(model, input_tokens=first_input)
    assert rates is not None
    worst_cost = (first_input * rates.dearest_input + max_tokens * rates.output) / 1e6
    limits = Limits(
        token_budget=None if token_share is None else max(1, int(token_share * (first_input + max_tokens))),
        cost_budget_usd=None if cost_share is None else cost_share * worst_cost,
        max_tokens=max_tokens,
        max_iterations=None,
        timeout_s=None,
    )
    cached = data.draw(st.booleans(), "cached")
    guards = Guards(limits, PRICING)
    for iteration in range(1, 20):
        counted = first_input if iteration == 1 else data.draw(input_sizes, "input counted before the call")
        decision = guards.before_call(iteration=iteration, model=model, input_tokens=counted, cached=cached)
        if isinstance(decision, Stop):
            assert decision.reason in (StopReason.TOKEN_BUDGET, StopReason.COST_BUDGET)
            break
        assert 1 <= decision.max_tokens <= limits.max_tokens
        # The count is exact or an overestimate: billed input is at most what was counted.
        total_input = data.draw(near_top(1, counted), "input billed")
        read = write = write_1h = 0
        if cached:
            read = data.draw(st.integers(0, total_input), "cache read")
            write = data.draw(st.integers(0, total_input - read), "cache write")
            write_1h = data.draw(st.integers(0, write), "of which 1h")
        output = data.draw(near_top(0, decision.max_tokens), "output")  # the API never exceeds max_tokens
        usage = Usage(total_input - read - write, output, read, write, write_1h)
        guards.ledger.add(model, usage)
        if limits.token_budget is not None:
            assert guards.tokens_used <= limits.token_budget
        if limits.cost_budget_usd is not None:
            assert guards.cost_used <= limits.cost_budget_usd


def test_cost_guard_prices_long_prompts_at_their_tier() -> None:
    """Sonnet 4.5 input above 200k tokens costs $6/M, not $3/M: a $1 budget cannot afford 300k of it."""
    guards = Guards(Limits(cost_budget_usd=1.0, max_iterations=None, timeout_s=None), PRICING)
    decision = guards.before_call(iteration=1, model="claude-sonnet-4-5", input_tokens=300_000, cached=False)
    assert isinstance(decision, Stop) and decision.reason is StopReason.COST_BUDGET


TASKS = st.sampled_from(
    [
        "[[loop]] Keep calculating.",
        "[[long:{n}]] Write a long essay.",
        "[[parallel]] What is 2 + 2 and 3 * 3?",
        DEMO_TASK,
        "[[loop]] [[long:{n}]] Keep going.",
    ]
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    model=st.sampled_from(MODELS),
    token_budget=st.one_of(st.none(), st.integers(200, 8_000)),
    cost_budget=st.one_of(st.none(), st.floats(0.0003, 0.03)),
    max_tokens=st.integers(16, 3_000),
    task=TASKS,
    long_n=st.integers(10, 6_000),
    system_chars=st.integers(0, 3_000),
    cache_prompt=st.booleans(),
    count_near_budget=st.booleans(),
)
def test_whole_runs_never_exceed_their_budgets(
    sim, model, token_budget, cost_budget, max_tokens, task, long_n, system_chars, cache_prompt, count_near_budget
) -> None:
    agent = Agent(
        name=unique("prop"),
        model=model,
        system=("You are a careful assistant. " * 200)[:system_chars] or None,
        tools=[calculator, web_search],
        limits=Limits(token_budget=token_budget, cost_budget_usd=cost_budget, max_tokens=max_tokens, max_iterations=12),
        cache_prompt=cache_prompt,
        count_tokens_near_budget=count_near_budget,
    )
    client = anthropic.Anthropic(api_key="test-key", base_url=sim.base_url)
    result = agent.run(task.format(n=long_n), client=client)

    assert result.stop_reason is not StopReason.ERROR, result.answer
    if token_budget is not None:
        assert result.usage.total_tokens <= token_budget
    if cost_budget is not None:
        assert result.cost_usd is not None and result.cost_usd <= cost_budget
