"""The Redis connection the fleet guards share, and what a guard does when Redis cannot be reached.

Every guard names its policy: ``fail_open`` lets the call go ahead unguarded, ``fail_closed`` stops the
run with a clear reason. Either way the failure is counted (``agentwatch.fleet.store_errors``, labelled
by guard and policy) and logged as a warning (at most once per guard every few seconds, so an outage
does not flood the logs) — never a crash, never a silent pass.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from agentwatch.telemetry import instruments
from agentwatch.telemetry import names as n

REDIS_URL_ENV = "AGENTWATCH_FLEET_REDIS_URL"
PREFIX_ENV = "AGENTWATCH_FLEET_PREFIX"
DEFAULT_PREFIX = "agentwatch:fleet:"
# Errors that mean "the store is unreachable or unhealthy" (not a bug in a guard).
STORE_ERRORS = (redis.RedisError, OSError, TimeoutError)
_LOG_EVERY_S = 5.0

logger = logging.getLogger(n.LOGGER_NAME)


class Policy(StrEnum):
    """What a guard does while its store is unreachable."""

    FAIL_OPEN = "fail_open"  # the call goes ahead without this guard
    FAIL_CLOSED = "fail_closed"  # the run stops (the guard's own stop reason, saying the store is down)


def policy_of(value: Policy | str) -> Policy:
    try:
        return Policy(value)
    except ValueError:
        raise ValueError(f"policy must be 'fail_open' or 'fail_closed', got {value!r}") from None


class FleetStore:
    """One Redis for the fleet guards: a sync client and one asyncio client per event loop.

    Timeouts are short and redis-py's own retries are off: a guard asks once, and an unreachable Redis
    costs a call at most ``socket_timeout_s`` before the guard's policy applies (the guards' scripts
    are not idempotent, so a blind retry could count a reservation twice).
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, socket_timeout_s: float = 0.5) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"the fleet store URL must be redis://host:port/db (or rediss://, unix://), got {url!r}")
        self.url = url
        self.where = f"{parts.hostname or parts.path}:{parts.port or 6379}" if parts.scheme != "unix" else parts.path
        self.prefix = prefix
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout_s,
            "socket_connect_timeout": socket_timeout_s,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        self.client = redis.Redis.from_url(url, **self._options)
        self._aclients: dict[int, tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis]] = {}
        self._lock = threading.Lock()
        self._logged: dict[str, float] = {}
        self._errors = instruments.counter(
            n.M_FLEET_STORE_ERRORS, "Fleet guard decisions made without the shared store (Redis unreachable)"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FleetStore:
        env = os.environ if environ is None else environ
        url = env.get(REDIS_URL_ENV, "").strip()
        if not url:
            raise ValueError(f"{REDIS_URL_ENV} is not set: set it to the fleet's Redis (redis://host:6379/0)")
        return cls(url, prefix=env.get(PREFIX_ENV, DEFAULT_PREFIX) or DEFAULT_PREFIX)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def aclient(self) -> redis.asyncio.Redis:
        """The asyncio client of the running event loop (clients cannot move between loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.get(id(loop))
            if entry is None or entry[0] is not loop:
                for key, (other, _) in list(self._aclients.items()):
                    if other.is_closed():
                        del self._aclients[key]
                options = {**self._options, "retry": AsyncRetry(NoBackoff(), 0)}
                entry = (loop, redis.asyncio.Redis.from_url(self.url, **options))
                self._aclients[id(loop)] = entry
        return entry[1]

    def unavailable(self, guard: str, policy: Policy, exc: BaseException) -> None:
        """Count (and, rate-limited, log) a decision made without the store. Never raises."""
        try:
            self._errors.add(1, {n.AW_FLEET_GUARD: guard, n.AW_FLEET_POLICY: policy.value})
            now = time.monotonic()
            with self._lock:
                last = self._logged.get(guard)
                if last is not None and now - last < _LOG_EVERY_S:
                    return
                self._logged[guard] = now
            action = "calls go ahead without it" if policy is Policy.FAIL_OPEN else "runs stop until it is reachable"
            logger.warning(
                "agentwatch fleet %s guard: Redis at %s is unreachable (%s: %s); policy %s: %s",
                guard,
                self.where,
                type(exc).__name__,
                str(exc)[:200],
                policy.value,
                action,
                extra={"event": n.LOG_FLEET_STORE_UNAVAILABLE, "guard": guard, "policy": policy.value},
            )
        except Exception:
            pass

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._aclients.pop(id(loop), None)
        if entry is not None:
            await entry[1].aclose()


def now_ms(client_time: tuple[int, int] | None = None) -> int:
    return int(time.time() * 1000) if client_time is None else client_time[0] * 1000 + client_time[1] // 1000
