"""A canary's state in Redis, shared by every replica (needs the ``redis`` package: ``agentwatch[redis]``).

Keys, for a canary named ``{name}`` (its salt, by default ``canary:{agent}:{candidate version}``):

- ``agentwatch:canary:{name}:state`` — a hash: ``state``, ``step``, ``step_started``, ``step_runs``,
  ``rollback`` (JSON);
- ``agentwatch:canary:{name}:runs`` / ``:evals`` — sorted sets scored by time, one member per candidate
  run / eval verdict (JSON with a unique id).

Each operation is one Lua script, so an append, the pruning of the window (by time and by size) and the
read the guards make are one atomic step, and a rollback or a ramp step is a compare-and-set that
exactly one replica wins. Times are the canary's clock (wall-clock seconds by default, so that replicas
agree). Any Redis error surfaces as ``StoreUnavailable``: the canary then follows its store-down policy.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agentwatch.rollout.state import (
    CanaryState,
    Rollback,
    Sample,
    SlidingWindow,
    Snapshot,
    StoreUnavailable,
    Verdict,
    Window,
)

ENV_URL = "AGENTWATCH_CANARY_REDIS_URL"
ENV_POLL = "AGENTWATCH_CANARY_POLL_S"
KEY_PREFIX = "agentwatch:canary:"

# KEYS[1] is the state hash, ARGV[1] now: create the state (ACTIVE at step 0) on first use.
_INIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'active', 'step', 0, 'step_started', ARGV[1], 'step_runs', 0)
end
"""

_READ = _INIT + "return redis.call('HGETALL', KEYS[1])\n"

# KEYS: state, runs, evals. ARGV: now, member ('' = none), 'run'|'eval', size (0 = none), seconds (0 = none)
_ADD = (
    _INIT
    + """
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'state') == 'active' then
  if ARGV[3] == 'run' then
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[1], 'step_runs', 1)
  else
    redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
  end
end
local size = tonumber(ARGV[4])
local seconds = tonumber(ARGV[5])
for i = 2, 3 do
  if seconds > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. tostring(tonumber(ARGV[1]) - seconds))
  end
  if size > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(size + 1))
  end
end
return {redis.call('HGETALL', KEYS[1]), redis.call('ZRANGE', KEYS[2], 0, -1), redis.call('ZRANGE', KEYS[3], 0, -1)}
"""
)

# KEYS: state. ARGV: rollback JSON, '1' to roll back a promoted canary too, now
_ROLL_BACK = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'rolled_back' or (state == 'promoted' and ARGV[2] ~= '1') then
  return 0
end
if not state then
  redis.call('HSET', KEYS[1], 'step', 0, 'step_started', ARGV[3], 'step_runs', 0)
end
redis.call('HSET', KEYS[1], 'state', 'rolled_back', 'rollback', ARGV[1])
return 1
"""

# KEYS: state. ARGV: from step, now, '1' to promote
_ADVANCE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then
  return 0
end
if tonumber(redis.call('HGET', KEYS[1], 'step')) ~= tonumber(ARGV[1]) then
  return 0
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'state', 'promoted')
else
  redis.call('HSET', KEYS[1], 'step', tonumber(ARGV[1]) + 1, 'step_started', ARGV[2], 'step_runs', 0)
end
return 1
"""


class RedisCanaryStore:
    """A canary's state in Redis. ``poll_interval_s``: how long a replica routes from its cached state
    before reading Redis again — the longest a replica keeps sending traffic to a candidate another
    replica rolled back. Every call fails fast (``timeout_s``, no retries) so that a Redis outage costs a
    run at most that long."""

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        poll_interval_s: float = 1.0,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if poll_interval_s < 0:
            raise ValueError(f"RedisCanaryStore poll_interval_s must be 0 or more; got {poll_interval_s!r}.")
        if isinstance(url_or_client, str):
            self.redis = redis.Redis.from_url(
                url_or_client,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        else:
            self.redis = url_or_client
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self._keys: list[str] = []
        self._spec = SlidingWindow()
        self._read = self.redis.register_script(_READ)
        self._add = self.redis.register_script(_ADD)
        self._roll_back = self.redis.register_script(_ROLL_BACK)
        self._advance = self.redis.register_script(_ADVANCE)

    @classmethod
    def from_env(cls, **kwargs: Any) -> RedisCanaryStore:
        """From ``AGENTWATCH_CANARY_REDIS_URL`` (required) and ``AGENTWATCH_CANARY_POLL_S`` (default 1)."""
        url = os.environ.get(ENV_URL)
        if not url:
            raise ValueError(f"Set {ENV_URL} (e.g. redis://127.0.0.1:6379/0) to share a canary across replicas.")
        poll = os.environ.get(ENV_POLL)
        if poll is not None:
            try:
                kwargs.setdefault("poll_interval_s", float(poll))
            except ValueError:
                raise ValueError(f"{ENV_POLL} is a number of seconds (e.g. 1); got {poll!r}.") from None
        return cls(url, **kwargs)

    def attach(self, name: str, window: SlidingWindow) -> None:
        base = f"{KEY_PREFIX}{name}"
        self._keys = [f"{base}:state", f"{base}:runs", f"{base}:evals"]
        self._spec = window

    def reset(self) -> None:
        """Forget this canary's shared state (all replicas start it again, ACTIVE at step 0)."""
        self._call(lambda: self.redis.delete(*self._keys))

    # --- the store protocol -------------------------------------------------------------------------
    def read(self, now: float) -> Snapshot:
        return _snapshot(self._call(lambda: self._read(keys=self._keys[:1], args=[repr(now)])))

    def add(self, item: Sample | Verdict, now: float) -> tuple[Snapshot, Window]:
        kind = "run" if isinstance(item, Sample) else "eval"
        member = json.dumps({"id": uuid.uuid4().hex[:12], **asdict(item)}, separators=(",", ":"))
        return self._windowed(now, member, kind)

    def window(self, now: float) -> Window:
        return self._windowed(now, "", "run")[1]

    def roll_back(self, rollback: Rollback, *, from_promoted: bool) -> bool:
        payload = json.dumps(asdict(rollback), separators=(",", ":"))
        args: list[str | int | float] = [payload, "1" if from_promoted else "0", repr(rollback.at)]
        return bool(self._call(lambda: self._roll_back(keys=self._keys[:1], args=args)))

    def advance(self, from_step: int, now: float, *, promote: bool) -> bool:
        args: list[str | int | float] = [from_step, repr(now), "1" if promote else "0"]
        return bool(self._call(lambda: self._advance(keys=self._keys[:1], args=args)))

    def promote(self) -> None:
        self._call(lambda: self.redis.hset(self._keys[0], "state", CanaryState.PROMOTED.value))

    # --- internals ----------------------------------------------------------------------------------
    def _windowed(self, now: float, member: str, kind: str) -> tuple[Snapshot, Window]:
        args: list[str | int | float] = [repr(now), member, kind, self._spec.size or 0, self._spec.seconds or 0]
        state, runs, evals = self._call(lambda: self._add(keys=self._keys, args=args))
        samples = tuple(Sample(**_fields(m, _SAMPLE_FIELDS)) for m in runs)
        verdicts = tuple(Verdict(**_fields(m, _VERDICT_FIELDS)) for m in evals)
        return _snapshot(state), Window(samples, verdicts)

    def _call(self, operation: Callable[[], Any]) -> Any:
        if not self._keys:
            raise RuntimeError("RedisCanaryStore is used by one Canary: pass it as Canary(..., store=...).")
        try:
            return operation()
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_SAMPLE_FIELDS = tuple(f.name for f in fields(Sample))
_VERDICT_FIELDS = tuple(f.name for f in fields(Verdict))


def _fields(member: Any, names: tuple[str, ...]) -> dict[str, Any]:
    data = json.loads(_text(member))
    return {k: data[k] for k in names}


def _snapshot(flat: list[Any]) -> Snapshot:
    raw = {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
    rollback = Rollback(**json.loads(raw["rollback"])) if raw.get("rollback") else None
    return Snapshot(
        state=CanaryState(raw.get("state", CanaryState.ACTIVE.value)),
        step=int(raw.get("step", 0)),
        step_started=float(raw.get("step_started", 0.0)),
        step_runs=int(raw.get("step_runs", 0)),
        rollback=rollback,
    )
