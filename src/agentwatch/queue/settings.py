"""The Celery settings a queue of agent runs needs, each derived once from the run's own time bound.

Why each setting (README "Queue" repeats this for operators):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its run
  finished, and a worker process that dies mid-run hands its message back, so the job runs again
  elsewhere instead of vanishing. The run id makes that second delivery safe (``jobs.py``).
- ``task_soft_time_limit`` = run timeout + margin: the agent's own ``Limits.timeout_s`` ends the run
  with stop reason ``timeout`` first; the soft limit only catches a run stuck outside the runner.
  ``task_time_limit`` = soft + margin kills the process if even that is ignored.
- ``visibility_timeout`` = hard limit + margin: Redis gives an unacknowledged message to another worker
  after this long, so it must exceed the longest a delivered job can run, or a live run is duplicated.
- ``worker_prefetch_multiplier`` = 1: a busy worker process holds no second job that an idle one could
  start (agent runs are long; prefetching only adds queueing delay and redelivery scope).
- JSON only (``task_serializer``, ``result_serializer``, ``accept_content``): a message never reaches
  pickle, so a message from the broker cannot run code.
- ``result_backend_always_retry``: a finished run whose result cannot be stored while Redis is down
  keeps trying instead of being lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_QUEUE = "agentwatch"
TASK_NAME = "agentwatch.run"
RESULT_EXPIRES_S = 7 * 24 * 3600  # results (and so the idempotency record of a run id) are kept a week


@dataclass(frozen=True)
class QueueSettings:
    """Where the queue lives and how long one job may take.

    ``run_timeout_s`` is the agent's ``Limits.timeout_s``; ``margin_s`` is the slack added at each
    step (soft limit, hard limit, visibility timeout) and the lease of a run's claim.
    ``max_deliveries``: a job delivered this many times without finishing (its worker died each time)
    is poison and goes to the dead-letter list. ``max_retries``: retries after infrastructure errors.
    """

    broker_url: str
    run_timeout_s: float = 300.0
    margin_s: float = 30.0
    queue: str = DEFAULT_QUEUE
    max_deliveries: int = 3
    max_retries: int = 5

    def __post_init__(self) -> None:
        if not self.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"the broker URL must be a Redis URL such as redis://127.0.0.1:6379/0; got {self.broker_url!r}."
            )
        if not self.run_timeout_s > 0 or not self.margin_s > 0:
            raise ValueError("run_timeout_s and margin_s must be positive numbers of seconds.")
        if self.max_deliveries < 1 or self.max_retries < 0:
            raise ValueError("max_deliveries must be 1 or more and max_retries 0 or more.")

    @property
    def soft_time_limit_s(self) -> float:
        return self.run_timeout_s + self.margin_s

    @property
    def time_limit_s(self) -> float:
        return self.soft_time_limit_s + self.margin_s

    @property
    def visibility_timeout_s(self) -> float:
        return self.time_limit_s + self.margin_s

    @property
    def claim_lease_s(self) -> float:
        """How long a run's claim outlives a worker that stopped renewing it (renewed every third of it)."""
        return self.margin_s

    def celery_config(self) -> dict[str, Any]:
        """The Celery configuration (see the module docstring for why each value)."""
        transport = {
            "visibility_timeout": self.visibility_timeout_s,
            # Look for abandoned messages every 5 s (kombu's default sweep is about 100 s).
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
        }
        return {
            "broker_url": self.broker_url,
            "result_backend": self.broker_url,
            "broker_transport_options": transport,
            "result_backend_transport_options": transport,
            "broker_connection_retry_on_startup": True,
            "task_default_queue": self.queue,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "task_soft_time_limit": self.soft_time_limit_s,
            "task_time_limit": self.time_limit_s,
            "worker_prefetch_multiplier": 1,
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
            "result_accept_content": ["json"],
            "result_expires": RESULT_EXPIRES_S,
            "result_backend_always_retry": True,
            "result_backend_max_retries": 20,
            "worker_hijack_root_logger": False,
            "worker_cancel_long_running_tasks_on_connection_loss": False,
        }
