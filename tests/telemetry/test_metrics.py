"""Metrics: names, units, attributes, values and bucket boundaries for the same runs as the span tests."""

from __future__ import annotations

import pytest

from agentwatch import StopReason, TierRouter, tool
from agentwatch.sim import Fault, FaultPlan
from agentwatch.telemetry import names as n
from conftest import metric_points, metric_unit
from runner.support import (
    CAPABLE,
    DEMO_TASK,
    DIRECT_TASK,
    MODEL,
    async_client,
    consume,
    demo_agent,
    fast_limits,
    sync_client,
)

AGENT = n.GEN_AI_AGENT_NAME
CHAT = {n.GEN_AI_OPERATION_NAME: "chat", n.GEN_AI_PROVIDER_NAME: "anthropic"}


def points(metric: tuple[str, str], agent: str, **attributes) -> list:
    return metric_points(metric[0], **{AGENT: agent, **attributes})


def one(metric: tuple[str, str], agent: str, **attributes):
    found = points(metric, agent, **attributes)
    assert len(found) == 1, (metric[0], attributes, [dict(p.attributes) for p in found])
    return found[0]


def test_a_direct_answer_records_the_convention_metrics(sim) -> None:
    agent = demo_agent("m-direct", tools=[])
    result = agent.run(DIRECT_TASK, client=sync_client(sim))
    models = {n.GEN_AI_REQUEST_MODEL: MODEL, n.GEN_AI_RESPONSE_MODEL: MODEL}

    tokens_in = one(n.M_TOKEN_USAGE, agent.name, **{n.GEN_AI_TOKEN_TYPE: "input"})
    tokens_out = one(n.M_TOKEN_USAGE, agent.name, **{n.GEN_AI_TOKEN_TYPE: "output"})
    assert dict(tokens_in.attributes) == {**CHAT, **models, n.GEN_AI_TOKEN_TYPE: "input", AGENT: agent.name}
    assert dict(tokens_out.attributes) == {**CHAT, **models, n.GEN_AI_TOKEN_TYPE: "output", AGENT: agent.name}
    assert (tokens_in.count, tokens_in.sum) == (1, result.usage.total_input_tokens)
    assert (tokens_out.count, tokens_out.sum) == (1, result.usage.output_tokens)
    assert tuple(tokens_in.explicit_bounds) == n.TOKEN_BUCKETS

    duration = one(n.M_OPERATION_DURATION, agent.name)
    assert dict(duration.attributes) == {**CHAT, **models, AGENT: agent.name}  # no token type, no error
    assert duration.count == 1 and 0 < duration.sum < result.duration_s
    assert tuple(duration.explicit_bounds) == n.DURATION_BUCKETS
    assert points(n.M_TIME_TO_FIRST_CHUNK, agent.name) == []  # not a stream

    run_attributes = {n.AW_RUN_STOP_REASON: "end_turn"}
    assert one(n.M_RUNS, agent.name, **run_attributes).value == 1
    run_duration = one(n.M_RUN_DURATION, agent.name, **run_attributes)
    assert run_duration.count == 1 and run_duration.sum == pytest.approx(result.duration_s, rel=0.05)
    cost = one(n.M_RUN_COST, agent.name, **run_attributes)
    assert (cost.count, cost.sum) == (1, pytest.approx(result.cost_usd))
    assert tuple(cost.explicit_bounds) == n.COST_BUCKETS
    spend = one(n.M_SPEND, agent.name)
    assert dict(spend.attributes) == {AGENT: agent.name, n.GEN_AI_REQUEST_MODEL: MODEL}
    assert spend.value == pytest.approx(result.cost_usd)
    iterations = one(n.M_RUN_ITERATIONS, agent.name)
    assert (iterations.count, iterations.sum) == (1, 1)
    assert tuple(iterations.explicit_bounds) == n.ITERATION_BUCKETS
    assert points(n.M_BUDGET_STOPS, agent.name) == [] and points(n.M_RETRIES, agent.name) == []


def test_every_metric_has_its_declared_unit(sim) -> None:
    demo_agent("m-units").run(DEMO_TASK, client=sync_client(sim))
    consume(demo_agent("m-units-stream").stream(DIRECT_TASK, client=sync_client(sim)))
    expected = {
        n.M_TOKEN_USAGE: "{token}",
        n.M_OPERATION_DURATION: "s",
        n.M_TIME_TO_FIRST_CHUNK: "s",
        n.M_TOOL_DURATION: "s",
        n.M_RUNS: "{run}",
        n.M_RUN_DURATION: "s",
        n.M_RUN_COST: "{USD}",  # not "USD": Prometheus would append _USD to the series name
        n.M_SPEND: "{USD}",
        n.M_RUN_ITERATIONS: "{iteration}",
        n.M_TOOL_CALLS: "{call}",
    }
    for (name, unit), wanted in expected.items():
        assert unit == wanted
        assert metric_unit(name) == wanted, name
    assert n.M_TOKEN_USAGE[0] == "gen_ai.client.token.usage"
    assert n.M_OPERATION_DURATION[0] == "gen_ai.client.operation.duration"


def test_a_multi_tool_run_counts_calls_tokens_and_tools(sim) -> None:
    agent = demo_agent("m-multi")
    result = agent.run(DEMO_TASK, client=sync_client(sim))

    tokens_in = one(n.M_TOKEN_USAGE, agent.name, **{n.GEN_AI_TOKEN_TYPE: "input"})
    assert (tokens_in.count, tokens_in.sum) == (3, result.usage.total_input_tokens)
    assert one(n.M_OPERATION_DURATION, agent.name).count == 3
    for tool_name in ("web_search", "calculator"):
        calls = one(n.M_TOOL_CALLS, agent.name, **{n.GEN_AI_TOOL_NAME: tool_name})
        assert dict(calls.attributes) == {AGENT: agent.name, n.GEN_AI_TOOL_NAME: tool_name, n.AW_TOOL_OUTCOME: "ok"}
        assert calls.value == 1
        duration = one(n.M_TOOL_DURATION, agent.name, **{n.GEN_AI_TOOL_NAME: tool_name})
        assert duration.count == 1 and n.ERROR_TYPE not in duration.attributes
        assert tuple(duration.explicit_bounds) == n.DURATION_BUCKETS
    assert one(n.M_RUN_ITERATIONS, agent.name).sum == 3


def test_a_streaming_run_records_time_to_first_chunk(sim) -> None:
    agent = demo_agent("m-stream")
    _, result = consume(agent.stream(DEMO_TASK, client=sync_client(sim)))

    first_chunk = one(n.M_TIME_TO_FIRST_CHUNK, agent.name)
    assert first_chunk.count == result.iterations == 3
    assert 0 < first_chunk.sum <= one(n.M_OPERATION_DURATION, agent.name).sum
    assert tuple(first_chunk.explicit_bounds) == n.DURATION_BUCKETS
    assert dict(first_chunk.attributes) == {
        **CHAT,
        n.GEN_AI_REQUEST_MODEL: MODEL,
        n.GEN_AI_RESPONSE_MODEL: MODEL,
        AGENT: agent.name,
    }


def test_retries_are_counted_by_error_type(fresh_sim) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_ms=5), Fault.overloaded()])
    agent = demo_agent("m-retry", tools=[], limits=fast_limits(max_retries=2))
    result = agent.run(DIRECT_TASK, client=sync_client(fresh_sim))

    assert result.ok
    for error_type in ("RateLimitError", "OverloadedError"):
        retries = one(n.M_RETRIES, agent.name, **{n.ERROR_TYPE: error_type})
        assert dict(retries.attributes) == {AGENT: agent.name, n.ERROR_TYPE: error_type, n.GEN_AI_REQUEST_MODEL: MODEL}
        assert retries.value == 1
    assert one(n.M_OPERATION_DURATION, agent.name).count == 1  # one call, retries included


async def test_a_failed_call_records_its_duration_with_error_type(fresh_sim) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.auth_error()])
    agent = demo_agent("m-fail", tools=[])
    result = await agent.arun(DIRECT_TASK, client=async_client(fresh_sim))

    assert result.stop_reason is StopReason.ERROR
    duration = one(n.M_OPERATION_DURATION, agent.name)
    assert dict(duration.attributes) == {
        **CHAT,
        n.GEN_AI_REQUEST_MODEL: MODEL,
        AGENT: agent.name,
        n.ERROR_TYPE: "AuthenticationError",
    }
    assert points(n.M_TOKEN_USAGE, agent.name) == []  # no usage was reported
    assert one(n.M_RUNS, agent.name, **{n.AW_RUN_STOP_REASON: "error"}).value == 1
    assert points(n.M_BUDGET_STOPS, agent.name) == []
    cost = one(n.M_RUN_COST, agent.name)
    assert cost.sum == 0  # nothing was spent, and that is known


@pytest.mark.parametrize(
    ("limits", "stop", "kind"),
    [
        ({"max_iterations": 2}, "max_iterations", "iterations"),
        ({"token_budget": 1_200, "max_tokens": 128}, "token_budget", "tokens"),
        ({"cost_budget_usd": 0.0015, "max_tokens": 128}, "cost_budget", "cost"),
    ],
)
def test_budget_stops_are_counted_by_kind(sim, limits, stop, kind) -> None:
    agent = demo_agent("m-budget", limits=fast_limits(**limits))
    result = agent.run("[[loop]] Keep going.", client=sync_client(sim))

    assert result.stop_reason.value == stop
    stops = one(n.M_BUDGET_STOPS, agent.name)
    assert dict(stops.attributes) == {AGENT: agent.name, n.AW_BUDGET_KIND: kind}
    assert stops.value == 1
    assert one(n.M_RUNS, agent.name, **{n.AW_RUN_STOP_REASON: stop}).value == 1
    assert one(n.M_RUN_ITERATIONS, agent.name).sum == result.iterations
    assert one(n.M_SPEND, agent.name).value == pytest.approx(result.cost_usd)


def test_a_timeout_is_a_budget_stop(fresh_sim) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.hang()])
    agent = demo_agent("m-timeout", limits=fast_limits(timeout_s=0.3))
    result = agent.run(DIRECT_TASK, client=sync_client(fresh_sim))

    assert result.stop_reason is StopReason.TIMEOUT
    assert one(n.M_BUDGET_STOPS, agent.name, **{n.AW_BUDGET_KIND: "timeout"}).value == 1
    assert one(n.M_OPERATION_DURATION, agent.name).attributes[n.ERROR_TYPE] in ("APITimeoutError", "TimeoutError")


@tool
def flaky_inventory(sku: str) -> str:
    """Look up stock for a SKU.

    Args:
        sku: The SKU.
    """
    raise ValueError(f"unknown SKU {sku}")


def test_tool_calls_are_counted_by_outcome(sim) -> None:
    agent = demo_agent("m-tools", tools=[flaky_inventory])
    agent.run('[[tool:flaky_inventory:{"sku": "A1"}]] Check.', client=sync_client(sim))
    agent.run("[[tool:flaky_inventory:{}]] Check.", client=sync_client(sim))
    agent.run("[[tool:nope:{}]] Check.", client=sync_client(sim))

    def calls(tool_name: str, outcome: str) -> float:
        return one(n.M_TOOL_CALLS, agent.name, **{n.GEN_AI_TOOL_NAME: tool_name, n.AW_TOOL_OUTCOME: outcome}).value

    assert calls("flaky_inventory", "error") == 1
    assert calls("flaky_inventory", "invalid_input") == 1
    assert calls("nope", "unknown_tool") == 1
    errors = one(n.M_TOOL_DURATION, agent.name, **{n.GEN_AI_TOOL_NAME: "flaky_inventory", n.ERROR_TYPE: "ValueError"})
    assert errors.count == 1


def test_spend_is_split_by_model_when_routing(sim) -> None:
    agent = demo_agent("m-route", router=TierRouter(fast=MODEL, capable=CAPABLE))
    result = agent.run(DEMO_TASK, client=sync_client(sim))

    fast = one(n.M_SPEND, agent.name, **{n.GEN_AI_REQUEST_MODEL: MODEL}).value
    capable = one(n.M_SPEND, agent.name, **{n.GEN_AI_REQUEST_MODEL: CAPABLE}).value
    assert fast > 0 and capable > 0
    assert fast + capable == pytest.approx(result.cost_usd)
    by_model = {
        p.attributes[n.GEN_AI_REQUEST_MODEL]: p.count
        for p in points(n.M_TOKEN_USAGE, agent.name, **{n.GEN_AI_TOKEN_TYPE: "input"})
    }
    assert by_model == {MODEL: 1, CAPABLE: 2}
