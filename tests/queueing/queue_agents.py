"""Agents the queue tests' workers run (loaded by file reference, as `agentwatch worker` users do)."""

from __future__ import annotations

import os
import signal

from agentwatch import Agent, Limits, tool
from agentwatch.fleet import FleetGate, TenantBudget
from agentwatch.tools.builtins import calculator

MODEL = "claude-haiku-4-5-20251001"

# A short run timeout keeps the derived visibility timeout (and so redelivery after a kill) short.
calc = Agent(name="queue-calc", model=MODEL, tools=[calculator], limits=Limits(timeout_s=6, max_retries=1))
plain = Agent(name="queue-plain", model=MODEL, limits=Limits(timeout_s=6, max_iterations=2, max_retries=1))


@tool
def crash(reason: str = "") -> str:
    """Kill the process running this tool (a job that takes its worker down every time)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


crashy = Agent(name="queue-crashy", model=MODEL, tools=[calculator, crash], limits=Limits(timeout_s=6, max_retries=1))


def budgeted() -> Agent:
    """``calc`` behind a fleet budget in the worker's Redis (read from the environment when the worker loads
    it): tenant ``broke`` has nothing to spend, every other tenant a dollar a day."""
    budget = TenantBudget(limit_usd=1.0, tenant_limits_usd={"broke": 0.0})
    return calc.replace(name="queue-budgeted", gate=FleetGate(budget=budget))
