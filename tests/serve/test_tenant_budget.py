"""The service charges each run to its API key's tenant; a run its fleet budget refused before doing
anything is a 429 with Retry-After, and the other tenants are served."""

from __future__ import annotations

from agentwatch import Agent, StopReason
from agentwatch.fleet import FleetGate, TenantBudget
from agentwatch.sim import Simulator
from e2e.queue_stack import RedisServer

from .conftest import KEY_B, serve

TASK = "What is 6 * 7?"


def test_a_tenant_out_of_budget_gets_429_with_retry_after_and_others_are_served(redis_server: RedisServer) -> None:
    budget = TenantBudget(limit_usd=1.0, tenant_limits_usd={"alpha": 0.0})
    agent = Agent(name="served", model="claude-haiku-4-5-20251001", gate=FleetGate(redis_server.url, budget=budget))
    with Simulator() as sim, serve(agent, sim) as served:
        with served.client() as alpha:
            refused = alpha.post("/v1/runs", json={"task": TASK})
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == StopReason.TENANT_BUDGET
        assert "daily budget of tenant 'alpha' is spent" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
        assert refused.headers.get("X-Trace-Id")
        with served.client(KEY_B) as beta:
            ok = beta.post("/v1/runs", json={"task": TASK})
        assert ok.status_code == 200 and ok.json()["stop_reason"] == StopReason.END_TURN
        assert redis_server.client().keys("agentwatch:fleet:budget:{beta:*}")  # charged to the key's tenant
        assert not [r for r in sim.requests if r.path == "/v1/messages" and r.status != 200]
        assert sum(1 for r in sim.requests if r.path == "/v1/messages") == 1  # alpha's run sent nothing
