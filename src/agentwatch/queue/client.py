"""The producer side: ``submit`` a run, fetch its ``result`` later. Safe to call from any thread."""

from __future__ import annotations

import os
import threading
import time
import uuid
from functools import cache
from urllib.parse import urlsplit

import celery.exceptions
import kombu.exceptions
import redis
from celery import Celery

from agentwatch.queue import jobs
from agentwatch.queue.app import make_app
from agentwatch.queue.settings import DEFAULT_QUEUE, TASK_NAME, QueueSettings
from agentwatch.result import RunResult

BROKER_ENV = "AGENTWATCH_BROKER_URL"
_instrument_lock = threading.Lock()


class QueueUnavailable(ConnectionError):
    """Redis could not be reached; the message says what was not done."""


class RunNotFound(KeyError):
    """No run with this id was submitted (or its record expired)."""


class RunPending(TimeoutError):
    """The run has not finished yet."""


class RunFailed(RuntimeError):
    """The run failed for good and is in the dead-letter list."""


def resolve_broker(explicit: str | None = None) -> str:
    """The broker URL: ``explicit``, else ``$AGENTWATCH_BROKER_URL``."""
    url = explicit or os.environ.get(BROKER_ENV)
    if not url:
        raise ValueError(f"no queue configured: pass broker='redis://host:6379/0' or set {BROKER_ENV}.")
    return url


def _where(url: str) -> str:
    """The broker URL without credentials, for error messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


@cache
def producer_app(url: str) -> Celery:
    """The Celery app used to publish to ``url`` (one per URL and process)."""
    instrument_celery()
    app = make_app(QueueSettings(url))
    app.conf.result_backend_always_retry = False  # a caller asking for a result gets a prompt, clear error
    return app


def instrument_celery() -> None:
    """Turn on the OpenTelemetry Celery instrumentation once: producer/consumer spans, W3C context in headers."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    with _instrument_lock:
        instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def submit(
    agent_ref: str,
    task: str,
    *,
    broker: str | None = None,
    run_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    tenant: str | None = None,
) -> str:
    """Queue one run of the agent ``agent_ref`` (``module:attr`` or ``path/file.py:attr``) on ``task``.

    Returns the run id (a new one unless given: pass your own to make a resubmission idempotent).
    ``tenant`` is whose fleet budget the run is charged to (``Agent(gate=...)``), as in ``Agent.run``.
    The current span (e.g. the HTTP request's) becomes the parent of the job's trace.
    Raises ``QueueUnavailable`` when Redis is down (nothing was queued; submit again later).
    """
    if not isinstance(task, str) or not task.strip():
        raise ValueError("task must be a non-empty string.")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ValueError("tenant must be a non-empty string (or None for a run charged to no tenant).")
    if ":" not in agent_ref:
        raise ValueError(f"{agent_ref!r} is not an agent reference: write 'package.module:name' or 'file.py:name'.")
    url = resolve_broker(broker)
    run_id = run_id or uuid.uuid4().hex
    app = producer_app(url)
    now = time.time()
    try:
        jobs.mark_submitted(jobs.connect(url), run_id, now)
        app.tasks[TASK_NAME].apply_async(
            args=[agent_ref, task],
            kwargs={"enqueued_at": now, **({"tenant": tenant} if tenant is not None else {})},
            task_id=run_id,
            queue=queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3},
        )
    except (redis.RedisError, kombu.exceptions.OperationalError) as exc:
        raise QueueUnavailable(
            f"cannot reach the queue at {_where(url)} ({type(exc).__name__}: {exc}); run {run_id} was not "
            "queued: submit it again (with the same run_id) once Redis is back."
        ) from exc
    return run_id


def result(run_id: str, *, timeout: float | None = None, broker: str | None = None) -> RunResult:
    """The ``RunResult`` of ``run_id``, waiting up to ``timeout`` seconds (``None``: forever, 0: no wait).

    Raises ``RunPending`` when it has not finished in time, ``RunNotFound`` for an unknown id,
    ``RunFailed`` when it failed for good (dead-lettered), ``QueueUnavailable`` when Redis is down.
    """
    url = resolve_broker(broker)
    outcome = producer_app(url).AsyncResult(run_id)
    try:
        if not outcome.ready():
            if not jobs.was_submitted(jobs.connect(url), run_id):
                raise RunNotFound(run_id)
            if timeout == 0:
                raise RunPending(f"run {run_id} has not finished yet.")
            outcome.get(timeout=timeout, propagate=False, interval=0.1)
        if outcome.failed():
            raise RunFailed(str(outcome.result))
        return RunResult.from_dict(outcome.result)
    except celery.exceptions.TimeoutError:
        raise RunPending(f"run {run_id} has not finished after {timeout}s.") from None
    except (redis.RedisError, kombu.exceptions.OperationalError, celery.exceptions.BackendError) as exc:
        raise QueueUnavailable(
            f"cannot reach the queue at {_where(url)} ({type(exc).__name__}: {exc}); the run itself is unaffected: "
            "ask again once Redis is back."
        ) from exc
