"""Tenant budgets shared by many processes: what the simulator bills never exceeds the budget; a
reservation whose holder was killed expires; refused runs say which budget, what is left, when it resets."""

from __future__ import annotations

import random

from agentwatch import Agent, Limits, StopReason
from agentwatch.fleet import FleetGate, TenantBudget
from agentwatch.runner.gate import Admission, CallRequest, Settlement
from agentwatch.sim import Fault, FaultPlan, Simulator
from e2e.queue_stack import RedisServer
from polling import wait_until

from .fleet_support import Fleet, billed_usd

MODEL = "claude-haiku-4-5-20251001"
PROCESSES = 8
RUNS_PER_PROCESS = 25


def _tasks(rng: random.Random, count: int) -> list[str]:
    tasks = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.6:
            tasks.append(f"Write about topic {i}. [[long:{rng.randint(40, 400)}]]")
        elif kind < 0.8:
            tasks.append(f"What is {rng.randint(2, 999)} * {rng.randint(2, 999)}?")
        else:
            tasks.append(f"Keep going {i} [[loop]]")
    return tasks


def test_many_processes_never_jointly_overspend_one_tenant_budget(redis_server: RedisServer, fleet: Fleet) -> None:
    replicas = fleet.start(PROCESSES)
    for trial in range(3):
        rng = random.Random(1000 + trial)
        budget_usd = round(rng.uniform(0.004, 0.02), 4)
        tenant = f"tenant-{trial}"
        gate = {"redis": redis_server.url, "budget": {"limit_usd": budget_usd, "period": "day"}}
        limits = {"max_tokens": rng.choice([128, 256, 512]), "max_iterations": 4, "timeout_s": 60}
        with Simulator() as sim:
            commands = [
                {
                    "gate": gate,
                    "agent": {"model": MODEL, "limits": limits},
                    "sim": sim.base_url,
                    "tenant": tenant,
                    "tasks": _tasks(rng, RUNS_PER_PROCESS),
                    "concurrency": RUNS_PER_PROCESS,
                }
                for _ in replicas
            ]
            results = fleet.run(replicas, commands)
            billed = billed_usd(sim)
        assert len(results) == PROCESSES * RUNS_PER_PROCESS
        assert billed <= budget_usd + 1e-9, f"trial {trial}: billed ${billed:.6f} over the ${budget_usd} budget"
        assert billed > budget_usd * 0.3, f"trial {trial}: only ${billed:.6f} of ${budget_usd} was used"
        refused = [r for r in results if r["stop_reason"] == StopReason.TENANT_BUDGET]
        assert refused, f"trial {trial}: no run was refused by a ${budget_usd} budget"
        cut = [r for r in refused if r["stop_detail"].startswith("the reply was cut at")]
        for result in cut:  # the budget lowered max_tokens, and the reply used all of it
            assert f"fleet budget of tenant '{tenant}'" in result["stop_detail"]
        spent_out = [r for r in refused if r not in cut]
        assert spent_out, f"trial {trial}: no run was refused outright"
        for result in spent_out:
            detail = result["stop_detail"]
            assert f"daily budget of tenant '{tenant}' is spent" in detail
            assert "is left" in detail and "resets at" in detail
            assert 0 < result["retry_after_s"] <= 86_400
        allowed = {StopReason.END_TURN, StopReason.MAX_TOKENS, StopReason.MAX_ITERATIONS, StopReason.TENANT_BUDGET}
        assert {r["stop_reason"] for r in results} <= allowed
        spent = redis_server.client().hget(f"agentwatch:fleet:budget:{{{tenant}:{_today()}}}", "spent")
        assert spent is not None and abs(int(spent) / 1e9 - billed) < 1e-6  # what the fleet counted is what was billed


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d")


def _request(tenant: str, worst_case_usd: float, base_url: str = "http://sim") -> CallRequest:
    return CallRequest(
        agent="fleet-test",
        tenant=tenant,
        model=MODEL,
        base_url=base_url,
        input_tokens=100,
        max_tokens=64,
        worst_case_usd=worst_case_usd,
        time_left_s=10.0,
    )


def test_a_reservation_held_by_a_killed_process_expires(redis_server: RedisServer, fleet: Fleet) -> None:
    gate = FleetGate(redis_server.url, budget=TenantBudget(limit_usd=0.01, max_wait_s=0))  # refuse, never wait
    (holder,) = fleet.start(1)
    plan = FaultPlan(schedule=[Fault.hang()])
    with Simulator(faults=plan) as sim:
        holder.send(
            {
                "gate": {"redis": redis_server.url, "budget": {"limit_usd": 0.01, "reservation_ttl_s": 10.0}},
                "agent": {"model": MODEL, "limits": {"max_tokens": 1024, "timeout_s": 600, "max_retries": 0}},
                "sim": sim.base_url,
                "tenant": "acme",
                "tasks": ["hold the budget"],
                "hold": True,
            }
        )
        client = redis_server.client()
        key = f"agentwatch:fleet:budget:{{acme:{_today()}}}"
        wait_until(lambda: int(client.hget(key, "reserved") or 0) > 0, "the replica's reservation")
        wait_until(lambda: any(r.fault == "hang" for r in sim.requests), "the replica's call to hang")
        whole = gate.admit(_request("acme", 0.0099))
        assert not isinstance(whole, Admission), "the budget was whole while a live call held part of it"
        assert whole.reason is StopReason.TENANT_BUDGET and "held by calls in flight" in whole.detail
        holder.kill()

        def whole_again() -> Admission | None:
            admitted = gate.admit(_request("acme", 0.0099))
            return admitted if isinstance(admitted, Admission) else None

        admission = wait_until(whole_again, "the dead replica's reservation to expire")
        gate.settle(Settlement(admission=admission, request=_request("acme", 0.0099), cost_usd=0.0))
        assert int(client.hget(key, "reserved") or 0) == 0
        assert int(client.hget(key, "spent") or 0) == 0


def test_a_refused_run_says_which_budget_what_is_left_and_when_it_resets(redis_server: RedisServer) -> None:
    gate = FleetGate(redis_server.url, budget=TenantBudget(limit_usd=0.0005, period="month", timezone="Europe/Paris"))
    agent = Agent(name="fleet-test", model=MODEL, limits=Limits(max_tokens=4096), gate=gate)
    with Simulator() as sim:
        import anthropic

        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
        first = agent.run("Tell me a story [[long:60]]", client=client, tenant="small")
        assert first.stop_reason is StopReason.END_TURN  # max_tokens lowered to what the budget affords
        assert sim.requests[-1].body["max_tokens"] < 4096
        second = None
        for _ in range(20):
            second = agent.run("Tell me another story [[long:60]]", client=client, tenant="small")
            if second.stop_reason is StopReason.TENANT_BUDGET:
                break
        assert second is not None and second.stop_reason is StopReason.TENANT_BUDGET
        assert "monthly budget of tenant 'small'" in second.stop_detail
        assert "+01:00" in second.stop_detail or "+02:00" in second.stop_detail  # the reset in Paris time
        assert second.retry_after_s is not None and second.retry_after_s > 0
        assert second.iterations == 0 and "Stopped early (tenant_budget)" in second.answer
        other = agent.run("What is 2 * 3?", client=client, tenant="other")  # another tenant's budget is its own
        assert other.stop_reason is StopReason.END_TURN
        assert billed_usd(sim) <= 0.0005 + 0.0005 + 1e-9


def test_periods_reset_at_local_midnight_and_the_first_of_the_month() -> None:
    from datetime import UTC, datetime

    day = TenantBudget(limit_usd=1.0, period="day", timezone="America/New_York")
    period, reset = day.window(datetime(2026, 3, 8, 3, 30, tzinfo=UTC))  # 22:30 on the 7th in New York
    assert period == "2026-03-07" and reset.isoformat() == "2026-03-08T00:00:00-05:00"
    period, reset = day.window(datetime(2026, 3, 8, 12, 0, tzinfo=UTC))  # the day clocks go forward: 23 hours
    assert period == "2026-03-08" and reset.isoformat() == "2026-03-09T00:00:00-04:00"
    month = TenantBudget(limit_usd=1.0, period="month")
    period, reset = month.window(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert period == "2026-12" and reset.isoformat() == "2027-01-01T00:00:00+00:00"


def test_per_agent_budgets_are_separate_and_unset_tenants_are_not_charged(redis_server: RedisServer) -> None:
    import anthropic

    budget = TenantBudget(limit_usd=0.0, per_agent=True, tenant_limits_usd={"acme": 0.0, "rich": None})
    gate = FleetGate(redis_server.url, budget=budget)
    with Simulator() as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
        one = Agent(name="one", model=MODEL, gate=gate)
        refused = one.run("What is 2 * 3?", client=client, tenant="acme")
        assert refused.stop_reason is StopReason.TENANT_BUDGET
        assert "daily budget of tenant 'acme' agent 'one' is spent" in refused.stop_detail
        assert one.run("What is 2 * 3?", client=client, tenant="rich").stop_reason is StopReason.END_TURN  # unlimited
        assert one.run("What is 2 * 3?", client=client).stop_reason is StopReason.END_TURN  # no tenant: not charged
