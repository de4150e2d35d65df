"""Circuit breakers shared by many processes: when the API fails a model, every replica stops calling it
within the window and moves to the fallback; a half-open probe closes the circuit once it recovers."""

from __future__ import annotations

import anthropic

from agentwatch import Agent, Limits, StopReason
from agentwatch.fleet import CircuitBreaker, FleetGate
from agentwatch.sim import Fault, FaultPlan, Simulator
from e2e.queue_stack import RedisServer
from polling import wait_until

from .fleet_support import Fleet

PRIMARY = "claude-sonnet-4-5-20250929"
FALLBACK = "claude-haiku-4-5-20251001"
PROCESSES = 3
RUNS_PER_PROCESS = 10
CONCURRENCY = 2
MAX_RETRIES = 1
BREAKER = {"failure_rate": 0.5, "min_calls": 6, "window_s": 30, "cooldown_s": 5, "fallbacks": {PRIMARY: [FALLBACK]}}


def _commands(sim: Simulator, redis_url: str) -> list[dict[str, object]]:
    return [
        {
            "gate": {"redis": redis_url, "circuit": BREAKER},
            "agent": {
                "model": PRIMARY,
                "limits": {"max_retries": MAX_RETRIES, "retry_base_delay_s": 0.05, "retry_max_delay_s": 0.05},
            },
            "sim": sim.base_url,
            "tasks": [f"What is {p} * {i}?" for i in range(RUNS_PER_PROCESS)],
            "concurrency": CONCURRENCY,
        }
        for p in range(PROCESSES)
    ]


def _calls(sim: Simulator, model: str) -> int:
    return sum(1 for r in sim.requests if r.path == "/v1/messages" and r.model == model)


def test_a_failing_model_is_left_by_every_replica_and_taken_back_after_recovery(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    replicas = fleet.start(PROCESSES)
    plan = FaultPlan(rates={Fault.overloaded(): 1.0}, only_models={PRIMARY})
    with Simulator(faults=plan) as sim:
        results = fleet.run(replicas, _commands(sim, redis_server.url))
        # Without the circuit every run would call the failing model 1 + MAX_RETRIES times (60 calls);
        # with it, the fleet stops after the window's min_calls plus the calls already in flight (and a
        # half-open probe per cooldown, should this phase outlast one on a busy machine).
        in_flight = PROCESSES * CONCURRENCY * (1 + MAX_RETRIES)
        assert _calls(sim, PRIMARY) <= BREAKER["min_calls"] + in_flight  # type: ignore[operator]
        for p in range(PROCESSES):
            mine = results[p * RUNS_PER_PROCESS : (p + 1) * RUNS_PER_PROCESS]
            served = [r for r in mine if r["stop_reason"] == StopReason.END_TURN]
            assert served and all(r["models"] == [FALLBACK] for r in served), f"replica {p}: {mine}"
        failed = [r for r in results if r["stop_reason"] != StopReason.END_TURN]
        assert all(r["stop_reason"] in (StopReason.ERROR, StopReason.CIRCUIT_OPEN) for r in failed)

        sim.faults = None  # the model recovers
        gate = FleetGate(redis_server.url, circuit=CircuitBreaker(**BREAKER))  # type: ignore[arg-type]
        agent = Agent(name="fleet-test", model=PRIMARY, gate=gate, limits=Limits(max_retries=0))
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")

        def served_by_primary() -> bool:
            result = agent.run("What is 6 * 7?", client=client)
            assert result.stop_reason is StopReason.END_TURN
            return result.models == [PRIMARY]

        wait_until(served_by_primary, "a half-open probe to close the circuit")
        state = redis_server.client().hget(f"agentwatch:fleet:circuit:{PRIMARY}|{sim.base_url}", "state")
        assert state == b"closed"
        again = fleet.run(replicas, _commands(sim, redis_server.url))
        assert all(r["models"] == [PRIMARY] and r["stop_reason"] == StopReason.END_TURN for r in again)


def test_an_open_circuit_with_no_fallback_fails_fast_and_says_why(redis_server: RedisServer, logs: object) -> None:
    gate = FleetGate(redis_server.url, circuit=CircuitBreaker(min_calls=2, failure_rate=0.5, cooldown_s=60))
    agent = Agent(name="fleet-test", model=PRIMARY, gate=gate, limits=Limits(max_retries=0))
    with Simulator(faults=FaultPlan(rates={Fault.server_error(): 1.0})) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
        for _ in range(2):
            assert agent.run("What is 2 * 3?", client=client).stop_reason is StopReason.ERROR
        sent = _calls(sim, PRIMARY)
        result = agent.run("What is 2 * 3?", client=client)
        assert _calls(sim, PRIMARY) == sent  # failed fast: nothing was sent
        base_url = sim.base_url
    assert result.stop_reason is StopReason.CIRCUIT_OPEN
    assert f"the circuit for {PRIMARY} at {base_url} is open (2 of 2 calls failed" in result.stop_detail
    assert "no fallback model is set" in result.stop_detail
    assert result.retry_after_s is not None and 0 < result.retry_after_s <= 60
    assert result.iterations == 0
    opened = [r for r in logs.events("circuit_state") if r.get("state") == "open"]  # type: ignore[attr-defined]
    assert opened and opened[0]["level"].lower().startswith("warn")
