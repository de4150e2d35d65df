"""Rate limits shared by many processes: with the limits configured, a fleet sends no more than the
API allows (the simulator enforces the API's token buckets and counts the 429s); learned from the
``anthropic-ratelimit-*`` headers, 429s stop after the first burst."""

from __future__ import annotations

from agentwatch import StopReason
from agentwatch.sim import RateLimit as SimLimit
from agentwatch.sim import Simulator
from e2e.queue_stack import RedisServer

from .fleet_support import Fleet, statuses

MODEL = "claude-haiku-4-5-20251001"
RPM = 120
PROCESSES = 4
RUNS_PER_PROCESS = 32  # 128 runs of one call each: 8 more than a minute's requests


def _commands(sim: Simulator, gate: dict[str, object] | None, replicas: int) -> list[dict[str, object]]:
    return [
        {
            "gate": gate,
            "agent": {"model": MODEL, "limits": {"max_tokens": 256, "timeout_s": 90, "max_retries": 8}},
            "sim": sim.base_url,
            "tasks": [f"What is {p} * {i}?" for i in range(RUNS_PER_PROCESS)],
            "concurrency": RUNS_PER_PROCESS,
        }
        for p in range(replicas)
    ]


def _limited_sim() -> Simulator:
    return Simulator(rate_limits={"claude-haiku-4-5": SimLimit(RPM, 1_000_000, 1_000_000)})


def test_configured_limits_keep_a_fleet_under_the_api_limit_with_no_429s(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    replicas = fleet.start(PROCESSES)
    limits = {"claude-haiku-4-5": [RPM * 9 // 10, 900_000, 900_000]}  # configured right: 90% of the API's
    gate = {"redis": redis_server.url, "rate_limit": {"limits": limits, "learn": False}}
    with _limited_sim() as sim:
        results = fleet.run(replicas, _commands(sim, gate, PROCESSES))
        sent = statuses(sim, MODEL)
    assert {r["stop_reason"] for r in results} == {StopReason.END_TURN}
    assert sent.count(429) == 0, f"{sent.count(429)} calls were sent only to be refused"
    assert sent.count(200) == PROCESSES * RUNS_PER_PROCESS
    # The same load without the shared limit collects 429s: the limit above did the work.
    with _limited_sim() as sim:
        fleet.run(replicas, _commands(sim, None, PROCESSES))
        assert statuses(sim, MODEL).count(429) > 0


def test_limits_learned_from_headers_stop_the_429s_after_the_first_burst(
    redis_server: RedisServer, fleet: Fleet
) -> None:
    replicas = fleet.start(PROCESSES)
    gate = {"redis": redis_server.url, "rate_limit": {"learn": True}}
    with _limited_sim() as sim:
        results = fleet.run(replicas, _commands(sim, gate, PROCESSES))
        sent = statuses(sim, MODEL)
    runs = PROCESSES * RUNS_PER_PROCESS
    assert {r["stop_reason"] for r in results} == {StopReason.END_TURN}
    first_burst, after = sent[:runs], sent[runs:]
    assert first_burst.count(429) <= runs - RPM + 2  # before anything was learned: what the API refused
    assert after.count(429) <= 1, f"after the first burst: {after.count(429)} 429s in {len(after)} calls"


def test_streamed_calls_teach_the_limits_from_their_response_headers(redis_server: RedisServer) -> None:
    import asyncio

    import anthropic

    from agentwatch import Agent
    from agentwatch.fleet import FleetGate, RateLimit
    from agentwatch.runner.events import RunFinished

    agent = Agent(name="fleet-stream", model=MODEL, gate=FleetGate(redis_server.url, rate_limit=RateLimit()))
    bucket = f"agentwatch:fleet:ratelimit:{MODEL}"
    with _limited_sim() as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
        events = list(agent.stream("What is 2 * 3?", client=client))
        assert isinstance(events[-1], RunFinished) and events[-1].result.stop_reason is StopReason.END_TURN
        learned = redis_server.client().hgetall(bucket)
        assert int(learned[b"c:requests"]) == RPM * 9 // 10  # the API's limit, with headroom
        redis_server.client().delete(bucket)

        async def astream() -> StopReason:
            aclient = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="test-key")
            async for event in agent.astream("What is 3 * 4?", client=aclient):
                if isinstance(event, RunFinished):
                    return event.result.stop_reason
            raise AssertionError("no RunFinished")

        assert asyncio.run(astream()) is StopReason.END_TURN
        assert int(redis_server.client().hget(bucket, "c:requests") or 0) == RPM * 9 // 10
