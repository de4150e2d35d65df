"""Regression tests for the runner findings of issue 11 (§2, §3, §4, §9, §10), each over real HTTP against
the simulator and in every run form it concerns. Each failed on the code before its fix."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import anthropic
import httpx2
import pytest

from agentwatch import Agent, RunResult, StopReason
from agentwatch.runner import retry
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import names as n
from agentwatch.tools import calculator, tool
from conftest import metric_points

from .billing import Meter
from .support import (
    DEMO_TASK,
    DIRECT_TASK,
    MODEL,
    aconsume,
    assert_stopped,
    async_client,
    consume,
    demo_agent,
    fast_limits,
    of_trace,
    root_of,
    sync_client,
)

MODES = ["run", "arun", "stream", "astream"]


async def run_metered(mode: str, agent: Agent, task: str, meter: Meter, sim: Simulator) -> RunResult:
    """Run ``task`` in ``mode`` through ``meter``'s real HTTP transport (so what was billed can be read)."""
    if mode == "run":
        return agent.run(task, client=meter.client(sim))
    if mode == "arun":
        return await asyncio.wait_for(agent.arun(task, client=meter.async_client(sim)), 60)
    if mode == "stream":
        return consume(agent.stream(task, client=meter.client(sim)))[1]
    return (await asyncio.wait_for(aconsume(agent.astream(task, client=meter.async_client(sim))), 60))[1]


def one_run_end(logs: Any, result: RunResult) -> None:
    (end,) = logs.events("run_end")
    assert end["trace_id"] == result.trace_id and end["stop_reason"] == result.stop_reason.value


# --- §2: budgets hold across stream retries ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize(
    ("budget", "stop"),
    [({"token_budget": 700}, StopReason.TOKEN_BUDGET), ({"cost_budget_usd": 0.0009}, StopReason.COST_BUDGET)],
    ids=["tokens", "cost"],
)
async def test_cut_streams_are_billed_so_retries_stop_on_the_budget(fresh_sim, logs, mode, budget, stop) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.midstream_error()] * 4)
    agent = demo_agent("rt-budget", limits=fast_limits(max_tokens=256, **budget))  # calculator + web_search
    meter = Meter()
    result = await run_metered(mode, agent, DEMO_TASK, meter, fresh_sim)

    billed = meter.usage()
    assert billed.total_tokens > 0
    if "token_budget" in budget:
        assert billed.total_tokens <= budget["token_budget"], billed
    else:
        assert meter.cost(MODEL) <= budget["cost_budget_usd"], meter.cost(MODEL)
    assert_stopped(result, stop)  # partial work and the reason, not end_turn past the budget
    assert result.usage == billed  # the run's accounting is what the simulator reported
    retried = [r.body["max_tokens"] for r in fresh_sim.requests if r.path == "/v1/messages"]
    assert retried == sorted(retried, reverse=True)  # each retry asked for no more than still fitted
    one_run_end(logs, result)


# --- §3: count_tokens failing near a budget -------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", [Fault.not_found(), Fault.drop(), Fault.server_error(), Fault.malformed()])
async def test_a_failing_count_falls_back_to_the_estimate_and_is_recorded(fresh_sim, logs, mode, fault) -> None:
    fresh_sim.faults = FaultPlan(count_tokens=[fault] * 20)  # every count fails, as behind a gateway without it
    agent = demo_agent("rt-count", limits=fast_limits(token_budget=700, max_tokens=256))
    meter = Meter()
    result = await run_metered(mode, agent, DEMO_TASK, meter, fresh_sim)

    counts = [r for r in fresh_sim.requests if r.path == "/v1/messages/count_tokens"]
    assert counts and all(r.fault == fault.kind for r in counts)
    assert "failed internally" not in result.answer, result.answer
    assert result.stop_reason in (StopReason.END_TURN, StopReason.TOKEN_BUDGET), result.answer
    assert meter.usage().total_tokens <= 700
    (fallback,) = logs.events(n.LOG_COUNT_TOKENS_FALLBACK)  # logged once per run, however many counts failed
    assert fallback["trace_id"] == result.trace_id and fallback["error_type"]
    points = metric_points(n.M_COUNT_TOKENS_FALLBACKS[0], **{n.GEN_AI_AGENT_NAME: agent.name})
    assert sum(p.value for p in points) == len(counts)
    one_run_end(logs, result)


# --- §4: hostile retry-after ------------------------------------------------------------------------
def _rate_limited(headers: dict[str, str]) -> anthropic.RateLimitError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    response = httpx2.Response(429, headers=headers, request=request)
    return anthropic.RateLimitError("rate limited", response=response, body=None)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "inf"}, float("inf")),
        ({"retry-after": "1e12"}, 1e12),
        ({"retry-after": "1e999"}, float("inf")),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}, 20.0),  # 30 s after the epoch; "now" is 10 s
        ({"retry-after": "Thu, 01 Jan 1970 00:00:30 -0000"}, 20.0),  # no zone: HTTP dates are UTC
        ({"retry-after": "Thu, 01 Jan 1970 00:00:05 GMT"}, 0.0),  # already passed
        ({"retry-after": "Thu, 99 Foo 1970 99:99:99 GMT"}, None),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "nan", "retry-after": "9"}, 9.0),  # a bad ms header falls back to retry-after
        ({"retry-after-ms": "-1"}, None),
    ],
)
def test_retry_after_is_parsed_defensively(headers, expected) -> None:
    assert retry.retry_after_s(_rate_limited(headers), now=10.0) == expected


@pytest.mark.parametrize("value", ["nan", "inf", "1e12", "-5", "1e999", "soon", "http-date"])
def test_every_wait_is_capped_at_the_configured_maximum(value) -> None:
    header = email.utils.formatdate(time.time() + 3600, usegmt=True) if value == "http-date" else value
    decision = retry.decide(
        _rate_limited({"retry-after": header}), attempt=0, max_retries=3, base_s=0.5, max_s=2.0, time_left_s=None
    )
    assert decision.retry and 0 <= decision.wait_s <= 2.0  # finite and in range: no nan, no overflow


HOSTILE = {
    "nan": Fault.rate_limit(retry_after_s="nan"),
    "inf": Fault.rate_limit(retry_after_s="inf"),
    "1e12": Fault.rate_limit(retry_after_s=1e12),
    "negative": Fault.rate_limit(retry_after_s=-5),
    "http-date": Fault.rate_limit(retry_after_s="Fri, 31 Dec 9999 23:59:59 GMT"),
    "ms-nan": Fault.rate_limit(retry_after_ms="nan"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hostile", list(HOSTILE))
async def test_a_hostile_retry_after_neither_crashes_nor_hangs_a_run_without_timeout(
    fresh_sim, logs, mode, hostile
) -> None:
    fresh_sim.faults = FaultPlan(schedule=[HOSTILE[hostile]])
    agent = demo_agent("rt-retry-after", tools=[], limits=fast_limits(timeout_s=None))  # waits capped at 0.02 s
    result = await run_metered(mode, agent, DIRECT_TASK, Meter(), fresh_sim)  # wait_for: a hang fails the test

    assert result.stop_reason is StopReason.END_TURN, result.answer
    (retried,) = logs.events("retry")
    assert 0 <= retried["wait_s"] <= 0.02
    one_run_end(logs, result)


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_a_huge_retry_after_stops_on_the_deadline_at_once(fresh_sim, logs, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_s=1e12)])
    agent = demo_agent("rt-deadline", tools=[], limits=fast_limits(timeout_s=2.0, retry_max_delay_s=600.0))
    started = time.perf_counter()
    result = await run_metered(mode, agent, DIRECT_TASK, Meter(), fresh_sim)

    assert_stopped(result, StopReason.TIMEOUT)
    assert time.perf_counter() - started < 1.9  # it did not sleep until the deadline, let alone 1e12 s
    assert len(fresh_sim.requests) == 1


# --- §9: BaseException from a tool, in every run form ---------------------------------------------
def raising_tool(exc_type: type[BaseException]) -> Any:
    @tool(name="boom")
    def boom() -> str:
        """Raise the exception under test."""
        raise exc_type

    return boom


def run_form(mode: str, agent: Agent, task: str, sim: Simulator) -> RunResult:
    """Run in ``mode`` from a plain thread of control: the async forms under ``asyncio.run``, so an
    interpreter-exit signal that ends the event loop ends only this run's loop, not the test runner's."""
    if mode == "run":
        return agent.run(task, client=sync_client(sim))
    if mode == "stream":
        return consume(agent.stream(task, client=sync_client(sim)))[1]
    if mode == "arun":
        return asyncio.run(agent.arun(task, client=async_client(sim)))
    return asyncio.run(aconsume(agent.astream(task, client=async_client(sim))))[1]


TOOL_TASK = "[[tool:boom:{}]] Call the tool."


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("exc_type", [asyncio.CancelledError, GeneratorExit])
def test_a_tool_raising_cancellation_or_generator_exit_is_a_tool_error(sim, spans, tracker, logs, mode, exc_type):
    agent = demo_agent("rt-base", tools=[raising_tool(exc_type)])
    result = run_form(mode, agent, TOOL_TASK, sim)

    assert result.stop_reason is StopReason.END_TURN, result.answer
    (call,) = result.tool_calls
    assert call.is_error and call.output == f"ToolError: {exc_type.__name__}"
    finished = of_trace(spans.get_finished_spans(), result.trace_id)
    root_of(finished)  # exactly one root span
    (tool_span,) = [s for s in finished if s.name == "execute_tool boom"]
    assert tool_span.attributes[n.ERROR_TYPE] == exc_type.__name__
    assert tracker.open_in(result.trace_id) == []
    one_run_end(logs, result)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_an_interpreter_exit_signal_propagates_after_every_span_and_run_end(
    sim, spans, tracker, logs, mode, exc_type
) -> None:
    agent = demo_agent("rt-exit", tools=[raising_tool(exc_type)])
    with pytest.raises(exc_type):
        run_form(mode, agent, TOOL_TASK, sim)

    roots = [s for s in spans.get_finished_spans() if s.name == f"invoke_agent {agent.name}"]
    assert len(roots) == 1
    trace_id = format(roots[0].context.trace_id, "032x")
    assert tracker.open_in(trace_id) == []  # the tool's span and the chat spans ended too
    (tool_span,) = [s for s in of_trace(spans.get_finished_spans(), trace_id) if s.name == "execute_tool boom"]
    assert tool_span.attributes[n.AW_TOOL_OUTCOME] == "cancelled"
    (end,) = logs.events("run_end")
    assert end["trace_id"] == trace_id and end["stop_reason"] == StopReason.CANCELLED.value


# --- §10: an async tool that blocks the event loop --------------------------------------------------
@tool(name="blocker")
async def blocker() -> str:
    """Block the event loop (the bug under test), then answer."""
    time.sleep(0.6)  # blocking the loop is what this tool does wrong
    return "done"


@pytest.mark.parametrize("mode", ["arun", "astream"])
async def test_an_async_tool_blocking_the_loop_past_its_timeout_is_reported(sim, spans, logs, mode) -> None:
    agent = demo_agent("rt-blocker", tools=[blocker, calculator], limits=fast_limits(tool_timeout_s=0.2))
    result = await run_metered(mode, agent, "[[tool:blocker:{}]] Call the tool.", Meter(), sim)

    (overrun,) = logs.events(n.LOG_TOOL_OVERRUN)
    assert overrun["level"] == "warning" and overrun["trace_id"] == result.trace_id
    assert overrun["tool"] == "blocker" and overrun["timeout_s"] == 0.2 and overrun["duration_s"] >= 0.6
    assert "blocker" in overrun["message"] and "block the event loop" in overrun["message"]
    (tool_span,) = [
        s for s in of_trace(spans.get_finished_spans(), result.trace_id) if s.name == "execute_tool blocker"
    ]
    (event,) = [e for e in tool_span.events if e.name == n.EVENT_TOOL_OVERRUN]
    assert event.attributes[n.AW_TOOL_TIMEOUT_S] == 0.2 and event.attributes[n.AW_TOOL_DURATION_S] >= 0.6


def test_the_same_tool_under_run_times_out_on_schedule(sim, logs) -> None:
    """Under ``run`` an async tool runs on a worker thread's loop, so its timeout holds: nothing to report."""
    agent = demo_agent("rt-blocker-sync", tools=[blocker], limits=fast_limits(tool_timeout_s=0.2))
    result = agent.run("[[tool:blocker:{}]] Call the tool.", client=sync_client(sim))

    assert result.tool_calls[0].outcome == n.TOOL_TIMEOUT
    assert logs.events(n.LOG_TOOL_OVERRUN) == []
