"""Queue metrics: depth and oldest job age read from Redis at each collection, time in queue, dead letters."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

import redis
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation

from agentwatch.queue import jobs
from agentwatch.telemetry import names as n
from agentwatch.telemetry.instruments import counter, histogram, meter


@cache
def wait_histogram() -> Histogram:
    return histogram(n.M_QUEUE_WAIT, "Time from submit to the start of the run", n.QUEUE_WAIT_BUCKETS)


@cache
def dead_letter_counter() -> Counter:
    return counter(n.M_QUEUE_DEAD_LETTERS, "Jobs that failed for good and went to the dead-letter list")


def enqueued_at(raw_message: bytes | str) -> float | None:
    """When the job in a kombu Redis message was submitted (the task's ``enqueued_at`` kwarg)."""
    try:
        message = json.loads(raw_message)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
        return float(kwargs["enqueued_at"])
    except (ValueError, KeyError, TypeError):
        return None


def register_queue_gauges(broker_url: str, queue: str) -> None:
    """Observable gauges for ``queue``: ``LLEN`` of its list and the age of the job at its head.

    The head is the next job to run (kombu pushes left, pops right; a redelivered job rejoins at the
    tail, so after a redelivery this is the age of the oldest job that was never started).
    Nothing is observed while Redis is unreachable (a gap, not a zero).
    """
    attributes = {n.MESSAGING_DESTINATION_NAME: queue}

    def depth(_options: CallbackOptions) -> Iterable[Observation]:
        try:
            return [Observation(int(jobs.connect(broker_url).llen(queue)), attributes)]
        except redis.RedisError:
            return []

    def oldest_age(_options: CallbackOptions) -> Iterable[Observation]:
        try:
            head: Any = jobs.connect(broker_url).lindex(queue, -1)
        except redis.RedisError:
            return []
        submitted = enqueued_at(head) if head is not None else None
        age = max(time.time() - submitted, 0.0) if submitted is not None else 0.0
        return [Observation(age, attributes)]

    name, unit = n.M_QUEUE_DEPTH
    meter().create_observable_gauge(name, [depth], unit=unit, description="Jobs waiting in the queue")
    name, unit = n.M_QUEUE_OLDEST_AGE
    meter().create_observable_gauge(
        name, [oldest_age], unit=unit, description="Age of the job next in line (0 when the queue is empty)"
    )
