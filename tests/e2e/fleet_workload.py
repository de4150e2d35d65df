"""Fleet-guarded runs from a process of their own exporting to the e2e collector, so every fleet series the
dashboards and alert rules query has data (tenant spend/limit/remaining, rate-limit waits, circuit state,
store errors), and every shared-canary series too (a rollback, store errors).

    python tests/e2e/fleet_workload.py OTLP_HTTP_ENDPOINT REDIS_URL

Two concurrent runs share a tenant budget, a rate limit with room for one call's output at a time (the
second waits) and a circuit; one more run goes through a gate whose Redis is unreachable (fail open), so
the store-error counter counts. Then a canary shared through the same Redis rolls back a candidate whose model
the simulator fails, and one whose Redis is unreachable counts its store errors. Prints
``{"stop_reasons": [...], "canary_states": [...]}`` after the telemetry is flushed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import anthropic

from agentwatch import Agent, Limits
from agentwatch.fleet import CircuitBreaker, FleetGate, ModelLimits, RateLimit, TenantBudget
from agentwatch.rollout import Canary, CanaryGuards, CanaryState, Ramp
from agentwatch.rollout.redis_state import RedisCanaryStore
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import configure_telemetry

MODEL = "claude-haiku-4-5-20251001"
CANDIDATE_MODEL = "claude-sonnet-4-6"  # the simulator fails every call to it
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
SERVICE = "agentwatch-e2e-fleet"


async def runs(sim_url: str, redis_url: str) -> list[str]:
    client = anthropic.AsyncAnthropic(base_url=sim_url, api_key="e2e-key")
    gate = FleetGate(
        redis_url,
        budget=TenantBudget(limit_usd=1.0),
        rate_limit=RateLimit({"claude-haiku": ModelLimits(output_tokens_per_minute=6000)}),
        circuit=CircuitBreaker(),
    )
    agent = Agent(name="fleet-e2e", model=MODEL, gate=gate, limits=Limits(max_tokens=4096, timeout_s=60))
    results = list(
        await asyncio.gather(*(agent.arun(f"What is {i} * 9?", client=client, tenant="e2e") for i in range(2)))
    )
    down = FleetGate(UNREACHABLE_REDIS, rate_limit=RateLimit(), circuit=CircuitBreaker())
    results.append(await agent.replace(gate=down).arun("What is 3 * 9?", client=client, tenant="e2e"))
    return [r.stop_reason.value for r in results]


def canaries(sim_url: str, redis_url: str) -> list[str]:
    """A shared canary rolled back by its failing candidate, one that cannot reach its store, and one ramped up
    to promotion: their states."""
    client = anthropic.Anthropic(base_url=sim_url, api_key="e2e-key", max_retries=0)
    stable = Agent(name="canary-e2e", model=MODEL, version="v1", limits=Limits(max_retries=0, timeout_s=60))
    candidate = stable.replace(model=CANDIDATE_MODEL, version="v2")
    states = []
    for salt, url in (("e2e", redis_url), ("e2e-down", UNREACHABLE_REDIS)):
        store = RedisCanaryStore(url, poll_interval_s=0)
        canary = Canary(stable, candidate, 1.0, CanaryGuards(max_error_rate=0.2), min_runs=2, salt=salt, store=store)
        for i in range(3):
            canary.run(f"What is {i} * 7?", key=f"user-{i}", client=client)
        states.append(canary.state.value)
    ramp = Ramp((0.5, 1.0), min_runs=1, min_seconds=0)  # a healthy candidate steps up to promotion
    ramped = Canary(
        stable,
        stable.replace(version="v3"),
        guards=CanaryGuards(max_error_rate=0.2),
        min_runs=1,
        salt="e2e-ramp",
        ramp=ramp,
        store=RedisCanaryStore(redis_url, poll_interval_s=0),
    )
    for i in range(40):
        if ramped.state is CanaryState.PROMOTED:
            break
        ramped.run(f"What is {i} * 3?", key=f"user-{i}", client=client)
    states.append(ramped.state.value)
    return states


def main() -> int:
    endpoint, redis_url = sys.argv[1:3]
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    telemetry = configure_telemetry(SERVICE, install_signal_handler=False)
    with Simulator(latency_s=0.3) as sim:
        reasons = asyncio.run(runs(sim.base_url, redis_url))
        sim.faults = FaultPlan(rates={Fault.server_error(): 1.0}, only_models={CANDIDATE_MODEL})
        canary_states = canaries(sim.base_url, redis_url)
    telemetry.shutdown()  # exports the metrics
    print(json.dumps({"stop_reasons": reasons, "canary_states": canary_states}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
