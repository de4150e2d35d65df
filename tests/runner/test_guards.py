"""Each guard trips on its own, returns the work done so far, a stop_reason, and one sentence saying why."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from agentwatch import Agent, BudgetWarning, Limits, Pricing, StopReason, TierRouter, tool
from agentwatch.sim import Fault, FaultPlan
from agentwatch.tools import calculator

from .support import (
    CAPABLE,
    MODEL,
    assert_stopped,
    async_client,
    consume,
    demo_agent,
    fast_limits,
    sync_client,
    unique,
)

LOOP_TASK = "[[loop]] Keep adding numbers."


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so that hung tool threads finish instead of lingering."""
    event = threading.Event()
    yield event
    event.set()


def hanging_tools(release: threading.Event) -> tuple[object, object]:
    @tool(name="hang")
    def hang_sync() -> str:
        """A tool that never answers (until the test ends)."""
        release.wait(60)
        return "too late"

    @tool(name="hang")
    async def hang_async() -> str:
        """An async tool that never answers."""
        await asyncio.sleep(60)
        return "too late"

    return hang_sync, hang_async


def test_max_iterations_stops_a_looping_model(client) -> None:
    agent = demo_agent("iters", limits=fast_limits(max_iterations=3))
    result = agent.run(LOOP_TASK, client=client)

    assert_stopped(result, StopReason.MAX_ITERATIONS)
    assert result.iterations == 3
    assert len(result.tool_calls) == 3  # the work done before the limit is kept
    assert "limit of 3 LLM calls" in result.stop_detail
    assert result.answer.startswith("Work so far:")
    assert "Tool results so far:" in result.answer


def test_token_budget_stops_before_the_call_that_could_cross_it(client) -> None:
    agent = demo_agent("tokens", limits=fast_limits(token_budget=2_000, max_tokens=300))
    result = agent.run(LOOP_TASK, client=client)

    assert_stopped(result, StopReason.TOKEN_BUDGET)
    assert 0 < result.usage.total_tokens <= 2_000
    assert result.iterations >= 2 and result.tool_calls
    assert "2,000-token budget" in result.stop_detail or "within the budget" in result.stop_detail


def test_token_budget_cuts_a_long_reply_to_fit(client) -> None:
    agent = demo_agent("cut", tools=[], limits=fast_limits(token_budget=800))
    result = agent.run("[[long:5000]] Write at length.", client=client)

    assert_stopped(result, StopReason.TOKEN_BUDGET)
    assert result.usage.total_tokens <= 800
    assert "cut at" in result.stop_detail
    assert "keeps writing" in result.answer  # the partial text is returned


def test_cost_budget_stops_a_looping_model(client) -> None:
    agent = demo_agent("cost", limits=fast_limits(cost_budget_usd=0.003, max_tokens=256))
    result = agent.run(LOOP_TASK, client=client)

    assert_stopped(result, StopReason.COST_BUDGET)
    assert result.cost_usd is not None and 0 < result.cost_usd <= 0.003
    assert result.iterations >= 2
    assert "$0.003 budget" in result.stop_detail


def test_cost_budget_on_a_model_without_a_price_fails_at_construction(fresh_sim) -> None:
    with pytest.raises(ValueError, match=r"no known price.*override"):
        Agent(name=unique("unpriced"), model="claude-imaginary-9", limits=Limits(cost_budget_usd=1.0))
    router = TierRouter(fast=MODEL, capable="claude-imaginary-9")
    with pytest.raises(ValueError, match="claude-imaginary-9"):
        Agent(name=unique("unpriced"), model=MODEL, router=router, limits=Limits(cost_budget_usd=1.0))
    assert fresh_sim.requests == []  # refused before any call
    # With an override the same agent is accepted; without a budget, an unknown model costs None, not $0.
    priced = Pricing(overrides={"claude-imaginary-9": {"input": 1.0, "output": 2.0}})
    Agent(name=unique("priced"), model="claude-imaginary-9", pricing=priced, limits=Limits(cost_budget_usd=1.0))
    unpriced = Agent(name=unique("unpriced"), model="claude-imaginary-9")
    result = unpriced.run("Say hi.", client=sync_client(fresh_sim))
    assert result.stop_reason is StopReason.END_TURN and result.cost_usd is None


def test_timeout_stops_a_run_whose_sync_tool_hangs(client, release) -> None:
    hang_sync, _ = hanging_tools(release)
    agent = demo_agent("hang-sync", tools=[hang_sync], limits=fast_limits(timeout_s=0.5, tool_timeout_s=None))
    started = time.perf_counter()
    result = agent.run("[[tool:hang:{}]] Call the tool.", client=client)

    elapsed = time.perf_counter() - started
    assert_stopped(result, StopReason.TIMEOUT)
    assert 0.45 <= elapsed < 0.5 + 5  # a hung tool holds the run for 60 s; the bound leaves room for a busy machine
    assert result.tool_calls[0].outcome == "timeout" and result.tool_calls[0].is_error
    assert "0.5s timeout" in result.stop_detail


@pytest.mark.parametrize("kind", ["async tool", "sync tool"])
async def test_timeout_stops_an_async_run_whose_tool_hangs(aclient, release, kind) -> None:
    hang_sync, hang_async = hanging_tools(release)
    hang = hang_async if kind == "async tool" else hang_sync
    agent = demo_agent("hang-async", tools=[hang], limits=fast_limits(timeout_s=0.5, tool_timeout_s=None))
    started = time.perf_counter()
    result = await agent.arun("[[tool:hang:{}]] Call the tool.", client=aclient)

    assert_stopped(result, StopReason.TIMEOUT)
    assert 0.45 <= time.perf_counter() - started < 0.5 + 5  # not the 60 s hang
    assert result.tool_calls[0].outcome == "timeout"


@pytest.mark.parametrize("mode", ["run", "arun", "stream"])
async def test_timeout_stops_a_hung_http_call(fresh_sim, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.hang()])
    agent = demo_agent("hang-http", limits=fast_limits(timeout_s=0.5))
    started = time.perf_counter()
    if mode == "run":
        result = agent.run("Say hi.", client=sync_client(fresh_sim))
    elif mode == "stream":
        _, result = consume(agent.stream("Say hi.", client=sync_client(fresh_sim)))
    else:
        result = await agent.arun("Say hi.", client=async_client(fresh_sim))

    assert_stopped(result, StopReason.TIMEOUT)
    assert 0.45 <= time.perf_counter() - started < 0.5 + 5  # the call hangs until the client gives up
    assert len(fresh_sim.requests) == 1
    assert "0.5s timeout" in result.stop_detail
    assert "asked to wait" not in result.stop_detail  # the API asked for nothing: the run ran out of time


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_retry_after_longer_than_the_time_left_stops_without_sleeping(fresh_sim, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_s=30)])
    agent = demo_agent("retry-after", limits=fast_limits(timeout_s=10, retry_max_delay_s=60.0))
    started = time.perf_counter()
    if mode == "run":
        result = agent.run("Say hi.", client=sync_client(fresh_sim))
    else:
        result = await agent.arun("Say hi.", client=async_client(fresh_sim))

    assert_stopped(result, StopReason.TIMEOUT)
    assert time.perf_counter() - started < 5  # it did not sleep 30 s, nor until the deadline 10 s away
    assert len(fresh_sim.requests) == 1
    assert "asked to wait 30.00s" in result.stop_detail


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_tool_timeout_turns_a_hung_tool_into_an_error_result_and_the_run_goes_on(sim, release, mode) -> None:
    hang_sync, hang_async = hanging_tools(release)
    hang = hang_sync if mode == "run" else hang_async
    agent = demo_agent("tool-timeout", tools=[hang], limits=fast_limits(tool_timeout_s=0.2, timeout_s=10))
    started = time.perf_counter()
    task = "[[tool:hang:{}]] Call the tool."
    if mode == "run":
        result = agent.run(task, client=sync_client(sim))
    else:
        result = await agent.arun(task, client=async_client(sim))

    assert result.stop_reason is StopReason.END_TURN
    assert time.perf_counter() - started < 5  # the tool's 0.2 s, not the run's 10 s
    (call,) = result.tool_calls
    assert call.outcome == "timeout" and call.is_error
    assert "did not finish within 0.2 s" in call.output
    assert "The hang tool failed" in result.answer  # the model saw the error and reported it


def test_budget_warnings_are_events_and_log_records_at_the_fraction(client, logs) -> None:
    limits = fast_limits(token_budget=1_500, max_iterations=4, budget_warning_fraction=0.5, max_tokens=128)
    agent = demo_agent("warn", limits=limits)
    events, result = consume(agent.stream(LOOP_TASK, client=client))

    warnings = [e for e in events if isinstance(e, BudgetWarning)]
    by_kind = {w.kind: w for w in warnings}
    assert set(by_kind) == {"tokens", "iterations"}
    assert len(warnings) == 2  # each once, however many calls follow
    assert by_kind["iterations"] == BudgetWarning("iterations", 2.0, 4.0)
    assert 750 <= by_kind["tokens"].used <= 1_500 and by_kind["tokens"].limit == 1_500
    records = logs.events("budget_warning")
    assert sorted(r["kind"] for r in records) == ["iterations", "tokens"]
    assert all(r["level"] == "warning" and r["trace_id"] == result.trace_id for r in records)
    assert result.stop_reason in (StopReason.MAX_ITERATIONS, StopReason.TOKEN_BUDGET)


def test_cost_budget_warning(client, logs) -> None:
    limits = fast_limits(cost_budget_usd=0.004, budget_warning_fraction=0.5, max_tokens=256, max_iterations=30)
    agent = demo_agent("warn-cost", limits=limits)
    events, result = consume(agent.stream(LOOP_TASK, client=client))

    (warning,) = [e for e in events if isinstance(e, BudgetWarning)]
    assert warning.kind == "cost" and 0.002 <= warning.used < 0.004
    assert [r["kind"] for r in logs.events("budget_warning")] == ["cost"]
    assert [r["kind"] for r in logs.events("budget_exceeded")] == ["cost"]
    assert_stopped(result, StopReason.COST_BUDGET)


def test_router_models_need_prices_too() -> None:
    with pytest.raises(ValueError, match="no known price"):
        Agent(
            name=unique("router"),
            model=MODEL,
            tools=[calculator],
            router=TierRouter(fast="claude-nope-1", capable=CAPABLE),
            limits=Limits(cost_budget_usd=0.1),
        )
