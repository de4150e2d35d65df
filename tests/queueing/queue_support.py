"""Helpers of the queue tests: how many model calls a job made, whether the queue is drained."""

from __future__ import annotations

import redis

from agentwatch.sim import Simulator
from e2e.queue_stack import QUEUE, RedisServer, Worker
from queue_fixtures import WorkerFactory

__all__ = ["QUEUE", "RedisServer", "Worker", "WorkerFactory", "queue_drained", "requests_for"]


def requests_for(sim: Simulator, marker: str) -> int:
    """How many Messages API calls the simulator received for the job whose task contains ``marker``."""
    count = 0
    for record in sim.requests:
        messages = record.body.get("messages") or [{}]
        content = messages[0].get("content")
        text = content if isinstance(content, str) else str(content)
        count += marker in text
    return count


def queue_drained(client: redis.Redis) -> bool:
    """No job waiting and none delivered but unacknowledged."""
    return client.llen(QUEUE) == 0 and client.hlen("unacked") == 0
