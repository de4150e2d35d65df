"""The Celery app and its one task, ``agentwatch.run``: run an agent (by reference) on a task string.

What a delivery does, in order: return the stored result if this run id already finished; count the
delivery (too many = poison); win the run's claim (or wait for the delivery holding it); run the agent;
return ``RunResult.to_dict()``, which Celery stores in the Redis result backend before it acknowledges.

A run that ends on a budget, a timeout or an ``error`` stop reason is a result like any other. Only
infrastructure faults (Redis unreachable, a claim that never lapses) are retried, with backoff; anything
else, and retries used up, is a permanent failure: the job goes to the dead-letter list with its error
and trace id, ``agentwatch.queue.dead_letters`` counts it, and ``result()`` raises ``RunFailed``.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import anthropic
import redis
from celery import Celery, Task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded
from opentelemetry import trace

from agentwatch.agent import Agent
from agentwatch.queue import jobs
from agentwatch.queue.metrics import dead_letter_counter, wait_histogram
from agentwatch.queue.settings import TASK_NAME, QueueSettings
from agentwatch.refs import load_agent
from agentwatch.telemetry import names as n

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, TimeoutError)


class JobFailed(Exception):
    """A job that failed for good; it is in the dead-letter list. The message says why."""


class _Permanent(Exception):
    """Raised inside a delivery for a failure that running again cannot fix; ``reason`` is a DEAD_* value."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@cache
def _agent(reference: str) -> Agent:
    return load_agent(reference)  # type: ignore[no-any-return]


@cache
def _client() -> anthropic.Anthropic:
    """Built on first use in the process that runs jobs (after the fork), from ANTHROPIC_* variables."""
    return anthropic.Anthropic()


def make_app(settings: QueueSettings, serves: tuple[str, ...] = ()) -> Celery:
    """A Celery app with ``settings``; ``serves`` lists the agent references a worker of it may run.

    A worker runs only the agents it was started with: a message naming any other reference is a
    permanent failure, so nothing that can write to the queue chooses what code a worker imports.
    """
    app = Celery("agentwatch")
    app.conf.update(settings.celery_config())

    @app.task(name=TASK_NAME, bind=True, shared=False, max_retries=settings.max_retries)  # type: ignore[untyped-decorator]
    def run_agent(
        self: Task, agent_ref: str, task: str, enqueued_at: float, tenant: str | None = None
    ) -> dict[str, Any]:
        return _deliver(self, settings, serves, agent_ref, task, enqueued_at, tenant)

    return app


def _deliver(
    job: Task,
    settings: QueueSettings,
    serves: tuple[str, ...],
    agent_ref: str,
    task: str,
    enqueued_at: float,
    tenant: str | None,
) -> dict[str, Any]:
    run_id: str = job.request.id
    client = jobs.connect(settings.broker_url)
    span = trace.get_current_span()  # the Celery consumer span
    delivery = 0
    try:
        stored = job.AsyncResult(run_id)
        if stored.successful():
            return stored.result  # type: ignore[no-any-return]  # a duplicate delivery of a finished run
        delivery = jobs.count_delivery(client, run_id)
        span.set_attribute(n.AW_QUEUE_DELIVERY, delivery)
        if delivery > settings.max_deliveries:
            raise _Permanent(
                n.DEAD_POISON,
                f"delivered {delivery - 1} times without finishing (its worker died each time); "
                f"treated as poison after max_deliveries={settings.max_deliveries}",
            )
        if agent_ref not in serves:
            raise _Permanent(
                n.DEAD_UNSERVED_AGENT,
                f"this worker serves {', '.join(serves) or 'no agent'}, not {agent_ref!r}: "
                f"start `agentwatch worker {agent_ref}` for it",
            )
        if not isinstance(task, str) or not task.strip():
            raise _Permanent(n.DEAD_INVALID_JOB, f"the task must be a non-empty string; got {task!r}")
        if tenant is not None and not isinstance(tenant, str):
            raise _Permanent(n.DEAD_INVALID_JOB, f"the tenant must be a string or absent; got {tenant!r}")
        if tenant is not None:
            span.set_attribute(n.AW_TENANT, tenant)
        agent = _agent(agent_ref)
        claim = jobs.Claim(client, run_id, settings.claim_lease_s)
        if not jobs.wait_for_claim(claim, lambda: stored.successful(), settings.visibility_timeout_s):
            return stored.result  # type: ignore[no-any-return]  # the delivery holding the claim finished it
        try:
            wait_s = max(time.time() - float(enqueued_at), 0.0)
            span.set_attribute(n.AW_QUEUE_WAIT_S, wait_s)
            wait_histogram().record(wait_s, {n.MESSAGING_DESTINATION_NAME: settings.queue})
            return agent.run(task, client=_client(), tenant=tenant).to_dict()
        finally:
            claim.release()
    except (Retry, Reject):
        raise
    except INFRASTRUCTURE_ERRORS as exc:
        if job.request.retries < settings.max_retries:
            try:
                raise job.retry(exc=exc, countdown=min(2**job.request.retries, 30)) from exc
            except Reject as unpublished:  # Redis is down: leave the message for redelivery instead of failing it
                raise Reject(f"retry not published: {unpublished}", requeue=True) from exc
        failure = _Permanent(n.DEAD_RETRIES_EXHAUSTED, f"retries used up ({settings.max_retries}): {exc}")
        _fail(job, settings, agent_ref, task, delivery, failure, exc)
    except SoftTimeLimitExceeded as exc:
        failure = _Permanent(n.DEAD_TIME_LIMIT, f"ran past the soft time limit {settings.soft_time_limit_s}s")
        _fail(job, settings, agent_ref, task, delivery, failure, exc)
    except _Permanent as exc:
        _fail(job, settings, agent_ref, task, delivery, exc, exc)
    except Exception as exc:
        _fail(job, settings, agent_ref, task, delivery, _Permanent(n.DEAD_CRASH, f"{type(exc).__name__}: {exc}"), exc)
    raise AssertionError("unreachable: _fail raises")


def _fail(
    job: Task,
    settings: QueueSettings,
    agent_ref: str,
    task: str,
    delivery: int,
    failure: _Permanent,
    cause: BaseException,
) -> None:
    """Dead-letter the job, count it, and raise ``JobFailed`` (Celery stores it as the job's outcome)."""
    context = trace.get_current_span().get_span_context()
    letter = jobs.DeadLetter(
        run_id=job.request.id,
        agent_ref=agent_ref,
        task=task if isinstance(task, str) else repr(task),
        reason=failure.reason,
        error_type=type(cause).__name__,
        error=str(failure),
        trace_id=format(context.trace_id, "032x"),
        deliveries=delivery,
        failed_at=time.time(),
    )
    try:
        jobs.push_dead_letter(jobs.connect(settings.broker_url), settings.queue, letter)
    finally:
        dead_letter_counter().add(1, {n.MESSAGING_DESTINATION_NAME: settings.queue, n.ERROR_TYPE: letter.reason})
    raise JobFailed(f"run {letter.run_id} failed for good ({letter.reason}): {letter.error}") from cause
