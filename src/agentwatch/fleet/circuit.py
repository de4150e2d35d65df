"""Circuit breakers shared by every replica, one per (model, API base URL).

Outcomes of calls (5xx, 529 overloaded and timeouts count as failures; other answers, 4xx included,
as successes of the backend) are counted in Redis in fixed windows of ``window_s``; the rate is read over
the current and the previous window, weighted by how much of the previous one is still in the sliding
window. When at least ``min_calls`` calls show a failure rate of ``failure_rate`` or more, the circuit
opens for every replica for ``cooldown_s``: calls fail fast (``circuit_open``) or move to a configured
fallback model. After the cooldown one replica's call is let through as the half-open probe (a lock with
a TTL, so a probe whose process died frees the slot); its success closes the circuit, its failure opens
it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agentwatch.fleet.store import Policy, policy_of

# KEYS[1]: the circuit's hash (state, until ms, probe ms, why). ARGV: probe lease ms, acquire (1/0).
# Returns {verdict, state, wait ms, why}: 1 allowed, 2 the half-open probe (taken only when acquiring), 0 refused.
CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, state, 0, ''} end
local why = redis.call('HGET', KEYS[1], 'why') or ''
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if state == 'open' and now < until_ms then return {0, state, until_ms - now, why} end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe') or '0')
if probe > now then return {0, 'half_open', probe - now, why} end
if tonumber(ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe', now + tonumber(ARGV[1]))
end
return {2, 'half_open', 0, why}
"""

# KEYS[1]: the hash. ARGV: failed (1/0), window ms, min calls, failure rate, cooldown ms, was probe (1/0).
# Returns {state, changed (1/0)}.
RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local failed = tonumber(ARGV[1]) == 1
local window = tonumber(ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local index = math.floor(now / window)
local current = 'w:' .. index
redis.call('HINCRBY', KEYS[1], current .. ':n', 1)
if failed then redis.call('HINCRBY', KEYS[1], current .. ':f', 1) end
redis.call('HDEL', KEYS[1], 'w:' .. (index - 2) .. ':n', 'w:' .. (index - 2) .. ':f')
redis.call('PEXPIRE', KEYS[1], math.max(window * 3, tonumber(ARGV[5]) * 2))
if state == 'half_open' or (state == 'open' and tonumber(ARGV[6]) == 1) then
  if tonumber(ARGV[6]) ~= 1 then return {state, 0} end
  if failed then
    redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + tonumber(ARGV[5]), 'probe', 0,
      'why', 'the half-open probe failed')
    return {'open', 0}
  end
  redis.call('HSET', KEYS[1], 'state', 'closed', 'probe', 0)
  local previous = 'w:' .. (index - 1)
  redis.call('HDEL', KEYS[1], current .. ':n', current .. ':f', previous .. ':n', previous .. ':f')
  return {'closed', 1}
end
if state ~= 'closed' or not failed then return {state, 0} end
local weight = 1 - (now % window) / window
local n = tonumber(redis.call('HGET', KEYS[1], current .. ':n') or '0')
  + weight * tonumber(redis.call('HGET', KEYS[1], 'w:' .. (index - 1) .. ':n') or '0')
local f = tonumber(redis.call('HGET', KEYS[1], current .. ':f') or '0')
  + weight * tonumber(redis.call('HGET', KEYS[1], 'w:' .. (index - 1) .. ':f') or '0')
if n >= tonumber(ARGV[3]) and f / n >= tonumber(ARGV[4]) then
  local why = string.format('%d of %d calls failed in the last %ds',
    math.floor(f + 0.5), math.floor(n + 0.5), window / 1000)
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + tonumber(ARGV[5]), 'probe', 0, 'why', why)
  return {'open', 1}
end
return {state, 0}
"""


# KEYS[1]: the hash. A probe that was never sent: free the slot for the next caller.
RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', 0, 'probe', 0)
end
return 1
"""


@dataclass(frozen=True)
class CircuitBreaker:
    """Open a (model, base URL) circuit after ``failure_rate`` of at least ``min_calls`` calls in
    ``window_s`` failed (5xx, 529, timeouts, dropped connections); keep it open ``cooldown_s``, then let
    one probe through (``probe_ttl_s`` frees the slot when a probe's process died).

    ``fallbacks`` maps a model to the models to move to, in order, while its circuit is open (the route
    reason says why); with none that is closed, the run stops with ``circuit_open``.
    ``on_store_error``: ``fail_open`` (default: calls go ahead; the runner's retries still apply) or
    ``fail_closed``.
    """

    failure_rate: float = 0.5
    min_calls: int = 10
    window_s: float = 30.0
    cooldown_s: float = 30.0
    probe_ttl_s: float = 60.0
    fallbacks: Mapping[str, Sequence[str] | str] = field(default_factory=dict)
    on_store_error: Policy | str = Policy.FAIL_OPEN

    def __post_init__(self) -> None:
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"CircuitBreaker.failure_rate must be in (0, 1], got {self.failure_rate!r}")
        if self.min_calls < 1:
            raise ValueError("CircuitBreaker.min_calls must be at least 1")
        for name in ("window_s", "cooldown_s", "probe_ttl_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"CircuitBreaker.{name} must be positive")
        object.__setattr__(self, "on_store_error", policy_of(self.on_store_error))
        object.__setattr__(
            self,
            "fallbacks",
            {k: (v,) if isinstance(v, str) else tuple(v) for k, v in self.fallbacks.items()},
        )

    def fallbacks_for(self, model: str) -> tuple[str, ...]:
        found = self.fallbacks.get(model, ())
        return found if isinstance(found, tuple) else tuple(found)
