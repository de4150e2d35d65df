"""Agent runs off the request path: a Celery task on Redis, one trace per run across the queue.

``submit(agent_ref, task, broker=...) -> run_id`` queues a run; ``result(run_id, timeout=...)`` returns
its ``RunResult``; ``agentwatch worker MODULE:ATTR --broker redis://...`` runs them. Needs the ``queue``
extra (``pip install 'agentwatch[queue]'``). README "Queue" explains the settings and the guarantees.
"""

from agentwatch.queue.app import JobFailed
from agentwatch.queue.client import QueueUnavailable, RunFailed, RunNotFound, RunPending, result, submit
from agentwatch.queue.jobs import DeadLetter
from agentwatch.queue.settings import DEFAULT_QUEUE, QueueSettings

__all__ = [
    "DEFAULT_QUEUE",
    "DeadLetter",
    "JobFailed",
    "QueueSettings",
    "QueueUnavailable",
    "RunFailed",
    "RunNotFound",
    "RunPending",
    "result",
    "submit",
]
