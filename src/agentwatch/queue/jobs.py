"""Exactly one result per run id: the Redis records around a Celery job (claim, deliveries, dead letters).

Late acknowledgement means a job can be delivered more than once (its worker died, its ack was lost
while Redis was down). The run id is the idempotency key:

1. a run whose result is already in the result backend is never run again: the stored result is returned;
2. otherwise the delivery must win ``SET claim NX PX lease`` before it runs; a live run renews its claim
   (every third of the lease), so a second delivery waits for it and then returns its result, while the
   claim of a worker that died lapses after one lease and the job runs again;
3. every delivery is counted: a job delivered ``max_deliveries`` times without finishing kills its worker
   every time and is dead-lettered instead of being run again.

Keys (all under ``agentwatch:``): ``run:<id>:claim``, ``run:<id>:deliveries``, ``run:<id>:submitted``,
``dead:<queue>`` (a list of JSON records, newest first).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import redis

from agentwatch.queue.settings import RESULT_EXPIRES_S

# Only the holder of the claim may renew or release it.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@cache
def connect(url: str) -> redis.Redis:
    """One client per URL and process (redis-py's pool reconnects after a fork and after an outage)."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _key(run_id: str, what: str) -> str:
    return f"agentwatch:run:{run_id}:{what}"


def dead_letter_key(queue: str) -> str:
    return f"agentwatch:dead:{queue}"


def mark_submitted(client: redis.Redis, run_id: str, enqueued_at: float) -> None:
    """Remember that ``run_id`` was queued, so ``result`` can tell "not finished" from "never submitted"."""
    client.set(_key(run_id, "submitted"), repr(enqueued_at), ex=RESULT_EXPIRES_S)


def was_submitted(client: redis.Redis, run_id: str) -> bool:
    return bool(client.exists(_key(run_id, "submitted")))


def count_delivery(client: redis.Redis, run_id: str) -> int:
    """This delivery's number (1 for the first)."""
    key = _key(run_id, "deliveries")
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, RESULT_EXPIRES_S)
    return int(pipe.execute()[0])


class Claim:
    """The right to run ``run_id`` now; renewed by a heartbeat thread while held, released when done."""

    def __init__(self, client: redis.Redis, run_id: str, lease_s: float) -> None:
        self.client, self.key, self.lease_ms = client, _key(run_id, "claim"), max(int(lease_s * 1000), 100)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self.client.set(self.key, self.token, nx=True, px=self.lease_ms):
            return False
        self._heartbeat = threading.Thread(target=self._renew, name="agentwatch-claim", daemon=True)
        self._heartbeat.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_ms / 3000):
            # Redis is down: the claim may lapse; a second delivery then finds the stored result.
            with contextlib.suppress(redis.RedisError):
                self.client.eval(_RENEW, 1, self.key, self.token, self.lease_ms)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        # Best effort: a claim that cannot be released lapses after one lease, and the run's result must
        # not be lost to a failed release.
        with contextlib.suppress(redis.RedisError):
            self.client.eval(_RELEASE, 1, self.key, self.token)


@dataclass(frozen=True)
class DeadLetter:
    """A job that failed for good: enough to see why, find its trace, and submit it again."""

    run_id: str
    agent_ref: str
    task: str
    reason: str  # poison | unserved_agent | invalid_job | retries_exhausted | time_limit | crash
    error_type: str
    error: str
    trace_id: str
    deliveries: int
    failed_at: float


def push_dead_letter(client: redis.Redis, queue: str, letter: DeadLetter) -> None:
    client.lpush(dead_letter_key(queue), json.dumps(asdict(letter)))


def dead_letters(client: redis.Redis, queue: str, limit: int = 100) -> list[DeadLetter]:
    """The newest ``limit`` dead letters of ``queue``."""
    raw: Any = client.lrange(dead_letter_key(queue), 0, limit - 1)
    return [DeadLetter(**json.loads(item)) for item in raw]


def wait_for_claim(claim: Claim, finished: Any, timeout_s: float) -> bool:
    """Acquire ``claim``, or return False as soon as ``finished()`` says another delivery stored the result.

    Raises ``TimeoutError`` after ``timeout_s`` (a claim that never lapses: an infrastructure fault).
    """
    deadline = time.monotonic() + timeout_s
    pause = min(max(claim.lease_ms / 10_000, 0.05), 1.0)
    while not claim.acquire():
        if finished():
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"the claim {claim.key} was held for more than {timeout_s:.0f}s")
        time.sleep(pause)
    return True
