"""Tenant spend budgets shared by every replica: reserve a call's worst case before it, settle after.

Per tenant (and, with ``per_agent``, per agent) and per period (a calendar day or month in UTC or a
configured timezone), one Redis hash holds what was spent and what is reserved by calls in flight. A
Lua script checks and reserves atomically, so concurrent calls on many replicas can never jointly
overshoot: a call is admitted only when its worst case (input + full ``max_tokens`` of output) fits what
is left, with ``max_tokens`` lowered to what still fits when the full worst case does not. After the
call, the reservation is replaced by the real cost. A reservation whose holder died (no settle) expires
after ``reservation_ttl_s`` and its money returns to the budget.

Amounts are integer nano-dollars in Redis (Lua truncates floats; ``INCRBYFLOAT`` drifts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from agentwatch.fleet.store import Policy, policy_of

NANO = 1_000_000_000
Period = Literal["day", "month"]

# KEYS[1] the period's hash; KEYS[2] its reservations (zset: id -> expiry ms).
# ARGV: id, input nano-$, output nano-$ per token, max_tokens, min_tokens, limit nano-$, lease ms, key ttl s.
# Returns {granted max_tokens (0: refused), spent, reserved} (reserved includes this reservation).
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  local held = redis.call('HGET', KEYS[1], 'r:' .. id)
  if held then
    redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(held))
    redis.call('HDEL', KEYS[1], 'r:' .. id)
  end
  redis.call('ZREM', KEYS[2], id)
end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local input = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local max_tokens = tonumber(ARGV[4])
local min_tokens = tonumber(ARGV[5])
local left = tonumber(ARGV[6]) - spent - reserved - input
local granted = max_tokens
if rate > 0 then
  local affordable = math.floor(left / rate)
  if affordable < granted then granted = affordable end
elseif left < 0 then
  granted = 0
end
if granted < min_tokens or left < 0 then
  return {0, tostring(spent), tostring(reserved)}
end
local amount = input + math.ceil(granted * rate)
redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], amount)
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
return {granted, tostring(spent), tostring(reserved + amount)}
"""

# KEYS as RESERVE. ARGV: id, actual nano-$, key ttl s. Returns {spent, reserved} after settling.
SETTLE = """
local held = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
if held then
  redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(held))
  redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local actual = tonumber(ARGV[2])
if actual > 0 then
  redis.call('HINCRBY', KEYS[1], 'spent', actual)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {redis.call('HGET', KEYS[1], 'spent') or '0', redis.call('HGET', KEYS[1], 'reserved') or '0'}
"""


@dataclass(frozen=True)
class TenantBudget:
    """A spend limit per tenant and period, shared across replicas.

    ``limit_usd`` applies to every tenant; ``tenant_limits_usd`` overrides it per tenant (a tenant mapped
    to ``None`` is unlimited). ``period`` is ``"day"`` or ``"month"``, calendar periods in ``timezone``
    (an IANA name). With ``per_agent`` each agent of a tenant has its own budget of that size. Runs
    with no tenant are not charged to any tenant budget. ``reservation_ttl_s`` is how long a call's
    reservation outlives a process that died holding it (longer than the slowest call).
    When the call would fit once calls in flight settle (their reservations are worst cases), it waits
    for them, at most ``max_wait_s`` and never past the run's deadline, instead of being refused.
    ``on_store_error``: ``fail_closed`` (default: no spend that cannot be counted) or ``fail_open``.
    """

    limit_usd: float | None
    period: Period = "day"
    timezone: str = "UTC"
    per_agent: bool = False
    tenant_limits_usd: Mapping[str, float | None] = field(default_factory=dict)
    reservation_ttl_s: float = 900.0
    max_wait_s: float = 30.0
    min_output_tokens: int = 64
    on_store_error: Policy | str = Policy.FAIL_CLOSED

    def __post_init__(self) -> None:
        if self.period not in ("day", "month"):
            raise ValueError(f"TenantBudget.period must be 'day' or 'month', got {self.period!r}")
        try:
            ZoneInfo(self.timezone)
        except Exception:
            raise ValueError(
                f"TenantBudget.timezone must be an IANA name such as 'Europe/Paris', got {self.timezone!r}"
            ) from None
        for name, value in (("limit_usd", self.limit_usd), *self.tenant_limits_usd.items()):
            if value is not None and (not isinstance(value, int | float) or value < 0 or math.isnan(value)):
                raise ValueError(
                    f"TenantBudget limit for {name!r} must be a non-negative number of dollars, got {value!r}"
                )
        if self.reservation_ttl_s <= 0:
            raise ValueError("TenantBudget.reservation_ttl_s must be positive")
        object.__setattr__(self, "on_store_error", policy_of(self.on_store_error))

    def limit_for(self, tenant: str) -> float | None:
        return self.tenant_limits_usd.get(tenant, self.limit_usd)

    def window(self, now: datetime) -> tuple[str, datetime]:
        """The current period's id and the moment it resets (aware datetimes)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        if self.period == "day":
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            reset = (start + timedelta(days=1, hours=2)).replace(hour=0)  # DST-safe next midnight
            return start.strftime("%Y-%m-%d"), reset
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        reset = (start + timedelta(days=32)).replace(day=1)
        return start.strftime("%Y-%m"), reset

    def scope(self, tenant: str, agent: str) -> str:
        return f"{tenant}/{agent}" if self.per_agent else tenant

    def describe(self, tenant: str, agent: str) -> str:
        what = f"tenant {tenant!r}" + (f" agent {agent!r}" if self.per_agent else "")
        return f"the {'daily' if self.period == 'day' else 'monthly'} budget of {what}"


def to_nano(usd: float) -> int:
    return math.ceil(usd * NANO)


def from_nano(value: object) -> float:
    return int(float(value)) / NANO  # type: ignore[arg-type]
