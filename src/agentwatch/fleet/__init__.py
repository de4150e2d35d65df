"""Fleet-wide guards in Redis: tenant spend budgets, shared rate limits, circuit breakers.

``Agent(gate=FleetGate(redis_url, budget=TenantBudget(...), rate_limit=RateLimit(...),
circuit=CircuitBreaker(...)))``, then ``agent.run(task, tenant="acme")``. Without a gate each process
guards itself (the run's own ``Limits``). Needs the ``fleet`` extra (``redis``).
"""

from agentwatch.fleet.budget import TenantBudget
from agentwatch.fleet.circuit import CircuitBreaker
from agentwatch.fleet.gate import FleetGate
from agentwatch.fleet.ratelimit import ModelLimits, RateLimit
from agentwatch.fleet.store import REDIS_URL_ENV, FleetStore, Policy

__all__ = [
    "REDIS_URL_ENV",
    "CircuitBreaker",
    "FleetGate",
    "FleetStore",
    "ModelLimits",
    "Policy",
    "RateLimit",
    "TenantBudget",
]
