"""Async runs: ``POST /v1/runs`` with ``"mode": "async"`` hands the run to the Celery queue (``agentwatch.queue``).

The service queues the agent it serves, by the reference it was started with, so a worker started with the
same ``MODULE:ATTR`` runs it. Each queued run's tenant is recorded in Redis next to the job, so a tenant
never sees another's run. Every call here blocks on Redis: call them in a thread, off the event loop.
"""

from __future__ import annotations

import uuid

import redis

from agentwatch.queue import QueueSettings, QueueUnavailable, RunNotFound, result, submit
from agentwatch.queue.jobs import connect
from agentwatch.queue.settings import RESULT_EXPIRES_S
from agentwatch.result import RunResult


class QueuedRuns:
    """Submit runs of ``agent_ref`` to the queue at ``broker_url`` and read their results back."""

    def __init__(self, broker_url: str, agent_ref: str) -> None:
        if not agent_ref:
            raise ValueError("--queue needs the agent by reference (MODULE:ATTR), the one the workers run.")
        try:
            QueueSettings(broker_url)  # a clear error for a URL that is not Redis
        except ValueError as exc:
            raise ValueError(f"--queue (AGENTWATCH_SERVE_QUEUE_URL): {exc}") from None
        self.broker_url, self.agent_ref = broker_url, agent_ref

    @staticmethod
    def _tenant_key(run_id: str) -> str:
        return f"agentwatch:serve:tenant:{run_id}"

    def submit(self, task: str, tenant: str) -> str:
        """Queue a run for ``tenant``; its run id. Raises ``QueueUnavailable`` when Redis is down."""
        run_id = uuid.uuid4().hex
        try:
            connect(self.broker_url).set(self._tenant_key(run_id), tenant, ex=RESULT_EXPIRES_S)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"cannot record run {run_id}: {type(exc).__name__}") from exc
        return submit(self.agent_ref, task, broker=self.broker_url, run_id=run_id, tenant=tenant)

    def result(self, run_id: str, tenant: str) -> RunResult:
        """The run's result now, or ``RunPending``, ``RunNotFound`` (also another tenant's), ``RunFailed``,
        ``QueueUnavailable`` (see ``agentwatch.queue.result``)."""
        try:
            owner = connect(self.broker_url).get(self._tenant_key(run_id))
        except redis.RedisError as exc:
            raise QueueUnavailable(f"cannot look up run {run_id}: {type(exc).__name__}") from exc
        if not isinstance(owner, bytes) or owner.decode() != tenant:
            raise RunNotFound(run_id)
        return result(run_id, timeout=0, broker=self.broker_url)
