"""What the fleet guards show: tenant spend and remaining budget gauges, rate-limit waits as a histogram
and a span event, circuit state as a gauge."""

from __future__ import annotations

import asyncio

import anthropic
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch import Agent, Limits, StopReason
from agentwatch.fleet import CircuitBreaker, FleetGate, ModelLimits, RateLimit, TenantBudget
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from conftest import metric_points
from e2e.queue_stack import RedisServer

MODEL = "claude-haiku-4-5-20251001"


def test_budget_gauges_rate_limit_waits_and_circuit_state_are_recorded(
    redis_server: RedisServer, spans: InMemorySpanExporter
) -> None:
    gate = FleetGate(
        redis_server.url,
        budget=TenantBudget(limit_usd=0.5),
        # Room for one call's 4096 output tokens at a time: the second concurrent call waits for the first.
        rate_limit=RateLimit({"claude-haiku": ModelLimits(output_tokens_per_minute=6000)}),
        circuit=CircuitBreaker(),
    )
    agent = Agent(name="fleet-telemetry", model=MODEL, gate=gate, limits=Limits(max_tokens=4096, timeout_s=60))
    with Simulator(latency_s=0.3) as sim:
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="test-key")

        async def both() -> list[StopReason]:
            runs = await asyncio.gather(
                *(agent.arun(f"What is {i} * 9?", client=client, tenant="telemetry") for i in range(2))
            )
            return [r.stop_reason for r in runs]

        assert asyncio.run(both()) == [StopReason.END_TURN] * 2
    labels = {n.AW_TENANT: "telemetry", n.AW_BUDGET_PERIOD: "day"}
    (spent,) = metric_points(n.M_TENANT_SPEND[0], **labels)
    (limit,) = metric_points(n.M_TENANT_BUDGET_LIMIT[0], **labels)
    (remaining,) = metric_points(n.M_TENANT_BUDGET_REMAINING[0], **labels)
    assert limit.value == 0.5 and 0 < spent.value < 0.01
    assert abs(remaining.value - (0.5 - spent.value)) < 1e-9  # nothing in flight at the end
    waits = metric_points(n.M_RATE_LIMIT_WAIT[0], **{n.GEN_AI_REQUEST_MODEL: MODEL})
    assert waits and sum(p.count for p in waits) >= 1
    events = [e for s in spans.get_finished_spans() for e in s.events if e.name == n.EVENT_RATE_LIMIT_WAIT]
    assert events and events[0].attributes[n.AW_RATE_LIMIT_WAIT_S] > 0  # type: ignore[index]
    (state,) = metric_points(n.M_CIRCUIT_STATE[0], **{n.GEN_AI_REQUEST_MODEL: MODEL})
    assert state.value == n.CIRCUIT_STATE_VALUES[n.CIRCUIT_CLOSED]
