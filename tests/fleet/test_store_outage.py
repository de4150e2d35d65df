"""Redis stopped and restarted under running agents: each guard follows its policy (fail closed: the run
stops and says why; fail open: the call goes ahead), runs finish, nothing raises, and the
``agentwatch.fleet.store_errors`` metric and a warning log say what happened."""

from __future__ import annotations

import asyncio

import anthropic

from agentwatch import Agent, Limits, StopReason
from agentwatch.fleet import CircuitBreaker, FleetGate, ModelLimits, RateLimit, TenantBudget
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from conftest import JsonCapture, metric_points
from e2e.queue_stack import RedisServer
from polling import await_until

MODEL = "claude-haiku-4-5-20251001"


def _errors(guard: str, policy: str) -> float:
    points = metric_points(n.M_FLEET_STORE_ERRORS[0], **{n.AW_FLEET_GUARD: guard, n.AW_FLEET_POLICY: policy})
    return sum(p.value for p in points)


def _gate(url: str, budget_policy: str) -> FleetGate:
    return FleetGate(
        url,
        budget=TenantBudget(limit_usd=1.0, on_store_error=budget_policy),
        rate_limit=RateLimit({"claude": ModelLimits(10_000, 10_000_000, 10_000_000)}),
        circuit=CircuitBreaker(),
    )


def test_each_guard_follows_its_policy_while_redis_is_down_and_recovers(
    redis_server: RedisServer, logs: JsonCapture
) -> None:
    closed = _gate(redis_server.url, "fail_closed")
    opened = _gate(redis_server.url, "fail_open")
    before = {
        (guard, policy): _errors(guard, policy)
        for guard in (n.GUARD_TENANT_BUDGET, n.GUARD_RATE_LIMIT, n.GUARD_CIRCUIT)
        for policy in ("fail_open", "fail_closed")
    }
    with Simulator(latency_s=0.3) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
        aclient = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="test-key")
        limits = Limits(timeout_s=60)
        strict = Agent(name="fleet-strict", model=MODEL, gate=closed, limits=limits)
        lenient = Agent(name="fleet-lenient", model=MODEL, gate=opened, limits=limits)
        assert strict.run("What is 2 * 3?", client=client, tenant="acme").stop_reason is StopReason.END_TURN

        async def outage() -> list[StopReason]:
            runs = [
                asyncio.ensure_future(lenient.arun(f"What is {i} * 3?", client=aclient, tenant="acme"))
                for i in range(20)
            ]
            await await_until(lambda: len(sim.requests) >= 5, "runs in flight")
            redis_server.kill()  # mid-flight: their settlements find no Redis
            results = await asyncio.gather(*runs)
            down = await strict.arun("What is 4 * 3?", client=aclient, tenant="acme")
            assert down.stop_reason is StopReason.TENANT_BUDGET
            assert f"cannot reach its Redis at 127.0.0.1:{redis_server.port} and fails closed" in down.stop_detail
            assert down.retry_after_s is not None and down.iterations == 0
            more = await lenient.arun("What is 5 * 3?", client=aclient, tenant="acme")
            return [r.stop_reason for r in results] + [more.stop_reason]

        reasons = asyncio.run(outage())
        assert set(reasons) == {StopReason.END_TURN}  # fail open: every run finished as if unguarded
        sync_down = strict.run("What is 6 * 3?", client=client, tenant="acme")
        assert sync_down.stop_reason is StopReason.TENANT_BUDGET
        assert _errors(n.GUARD_TENANT_BUDGET, "fail_closed") > before[(n.GUARD_TENANT_BUDGET, "fail_closed")]
        assert _errors(n.GUARD_TENANT_BUDGET, "fail_open") > before[(n.GUARD_TENANT_BUDGET, "fail_open")]
        assert _errors(n.GUARD_RATE_LIMIT, "fail_open") > before[(n.GUARD_RATE_LIMIT, "fail_open")]
        assert _errors(n.GUARD_CIRCUIT, "fail_open") > before[(n.GUARD_CIRCUIT, "fail_open")]
        warnings = logs.events(n.LOG_FLEET_STORE_UNAVAILABLE)
        assert {w["guard"] for w in warnings} >= {n.GUARD_TENANT_BUDGET, n.GUARD_RATE_LIMIT, n.GUARD_CIRCUIT}
        assert any("unreachable" in w["message"] and "fail_closed" in w["message"] for w in warnings)

        redis_server.start()  # back, empty: the guards reconnect and reload their scripts
        back = strict.run("What is 7 * 3?", client=client, tenant="acme")
        assert back.stop_reason is StopReason.END_TURN
        spent = redis_server.client().keys("agentwatch:fleet:budget:{acme:*}")
        assert spent, "the budget is counted again once Redis is back"
        fresh = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="test-key")  # a client per event loop
        again = asyncio.run(strict.arun("What is 8 * 3?", client=fresh, tenant="acme"))
        assert again.stop_reason is StopReason.END_TURN
