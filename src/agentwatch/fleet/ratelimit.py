"""Rate limits shared by every replica: requests, input and output tokens per minute, per model.

Each limit is a token bucket in Redis that holds one minute's allowance and refills continuously, as
the Anthropic API's own limits do. A call takes one request, its (estimated) input tokens and its full
``max_tokens`` of output before it is sent, and gets back what it did not use when it ends; when a
bucket lacks room, the call waits (within the run's time left) instead of being sent to collect a 429.

Limits are configured per model prefix, and learned from the API's ``anthropic-ratelimit-*-limit``
response headers for models without a configured limit (``learn_from_headers``). A 429 that gets
through blocks the model for every replica for its ``retry-after``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentwatch.fleet.store import Policy, policy_of

KINDS = ("requests", "input-tokens", "output-tokens")
NOUNS = {"requests": "requests", "input-tokens": "input tokens", "output-tokens": "output tokens"}

# KEYS[1]: the model's bucket hash. ARGV: wanted r, i, o; capacities r, i, o (0: learned or none).
# Fields: l:<kind> level, c:<kind> learned capacity, ts (ms), until (ms, blocked by a 429).
# Returns {1, 0} when taken, {0, wait ms} when it must wait, {-1, kind index} when it never fits.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kinds = {'requests', 'input-tokens', 'output-tokens'}
local h = redis.call('HGETALL', KEYS[1])
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
local until_ms = tonumber(f['until'] or '0')
local ts = tonumber(f['ts'] or now)
local levels, caps = {}, {}
local wait = 0
if until_ms > now then wait = until_ms - now end
for i, kind in ipairs(kinds) do
  local cap = tonumber(ARGV[3 + i])
  if cap == 0 then cap = tonumber(f['c:' .. kind] or '0') end
  caps[i] = cap
  if cap > 0 then
    local level = tonumber(f['l:' .. kind] or cap)
    level = math.min(cap, level + (now - ts) * cap / 60000)
    levels[i] = level
    local want = tonumber(ARGV[i])
    if want > cap then return {-1, i} end
    if want > level then
      local w = math.ceil((want - level) * 60000 / cap)
      if w > wait then wait = w end
    end
  end
end
for i, kind in ipairs(kinds) do
  if caps[i] > 0 then redis.call('HSET', KEYS[1], 'l:' .. kind, tostring(levels[i])) end
end
redis.call('HSET', KEYS[1], 'ts', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
if wait > 0 then return {0, wait} end
for i, kind in ipairs(kinds) do
  if caps[i] > 0 then redis.call('HSET', KEYS[1], 'l:' .. kind, tostring(levels[i] - tonumber(ARGV[i]))) end
end
return {1, 0}
"""

# KEYS[1]: the bucket. ARGV: refund r, i, o; learned capacity r, i, o (0: none); learned remaining r, i, o
# (-1: none); blocked for ms (0: not).
GIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kinds = {'requests', 'input-tokens', 'output-tokens'}
for i, kind in ipairs(kinds) do
  local learned = tonumber(ARGV[3 + i])
  if learned > 0 then redis.call('HSET', KEYS[1], 'c:' .. kind, learned) end
  local level = redis.call('HGET', KEYS[1], 'l:' .. kind)
  local remaining = tonumber(ARGV[6 + i])
  if level then
    level = tonumber(level) + tonumber(ARGV[i])
    if remaining >= 0 and remaining < level then level = remaining end
    redis.call('HSET', KEYS[1], 'l:' .. kind, tostring(level))
  elseif learned > 0 and remaining >= 0 then
    redis.call('HSET', KEYS[1], 'l:' .. kind, remaining)
    redis.call('HSETNX', KEYS[1], 'ts', now)
  end
end
local block = tonumber(ARGV[10])
if block > 0 then
  local until_ms = now + block
  if until_ms > tonumber(redis.call('HGET', KEYS[1], 'until') or '0') then
    redis.call('HSET', KEYS[1], 'until', until_ms)
  end
end
redis.call('PEXPIRE', KEYS[1], 3600000)
return 1
"""


@dataclass(frozen=True)
class ModelLimits:
    """Per-minute limits of one model (or model prefix); ``None`` leaves that dimension unlimited."""

    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"ModelLimits.{name} must be a positive whole number or None, got {value!r}")

    def capacities(self) -> tuple[int, int, int]:
        return (
            self.requests_per_minute or 0,
            self.input_tokens_per_minute or 0,
            self.output_tokens_per_minute or 0,
        )


@dataclass(frozen=True)
class RateLimit:
    """Shared per-model rate limits: ``limits`` maps a model prefix (or ``"*"``) to its ``ModelLimits``.

    With ``learn_from_headers`` (default), models with no configured limit take the limits the API
    reports in its ``anthropic-ratelimit-*`` headers, times ``learned_headroom`` (the API's bucket and
    the fleet's do not refill in phase; other clients may share the organisation's limit), and every
    response's ``remaining`` lowers the shared bucket to the API's own view. Configure limits with the
    same headroom (about 90% of the API's): a fleet bucket exactly at the API's limit refills in step
    with it and can still be refused at the boundary. A call waits at most ``max_wait_s`` (and never past the run's
    deadline) for capacity. ``on_store_error``: ``fail_open`` (default: the API's own limits and the
    runner's retries still apply) or ``fail_closed``.
    """

    limits: Mapping[str, ModelLimits] = field(default_factory=dict)
    learn_from_headers: bool = True
    learned_headroom: float = 0.9
    max_wait_s: float = 120.0
    on_store_error: Policy | str = Policy.FAIL_OPEN

    def __post_init__(self) -> None:
        if not 0 < self.learned_headroom <= 1:
            raise ValueError(f"RateLimit.learned_headroom must be in (0, 1], got {self.learned_headroom!r}")
        object.__setattr__(self, "on_store_error", policy_of(self.on_store_error))
        object.__setattr__(self, "limits", dict(self.limits))

    def rule(self, model: str) -> tuple[str, ModelLimits | None]:
        """The bucket key for ``model`` (its configured prefix, else the model) and its configured limits."""
        matches = [k for k in self.limits if k != "*" and model.startswith(k)]
        if matches:
            key = max(matches, key=len)
            return key, self.limits[key]
        if "*" in self.limits:
            return "*", self.limits["*"]
        return model, None


@dataclass(frozen=True)
class Learned:
    """What a response's headers say: capacities and remaining per kind (0 / -1 when absent)."""

    capacities: tuple[int, int, int] = (0, 0, 0)
    remaining: tuple[int, int, int] = (-1, -1, -1)

    def scaled(self, headroom: float) -> Learned:
        caps = tuple(max(int(c * headroom), 1) if c > 0 else 0 for c in self.capacities)
        return Learned((caps[0], caps[1], caps[2]), self.remaining)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> Learned | None:
        if not headers:
            return None
        lower = {k.lower(): v for k, v in headers.items()}
        caps: list[int] = []
        left: list[int] = []
        for kind in KINDS:
            caps.append(_int(lower.get(f"anthropic-ratelimit-{kind}-limit"), 0))
            left.append(_int(lower.get(f"anthropic-ratelimit-{kind}-remaining"), -1))
        if not any(caps):
            return None
        return cls((caps[0], caps[1], caps[2]), (left[0], left[1], left[2]))


def _int(value: str | None, default: int) -> int:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return default
    return int(number) if math.isfinite(number) and number >= 0 else default


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    raw = lower.get("retry-after-ms")
    try:
        if raw is not None:
            return max(float(raw) / 1000, 0.0)
        raw = lower.get("retry-after")
        return max(float(raw), 0.0) if raw is not None else None
    except ValueError:
        return None
