"""``agentwatch worker REF --broker redis://...``: a Celery worker for one agent, with telemetry per process.

Time limits and the visibility timeout come from the agent's ``Limits.timeout_s`` (see settings.py).
Telemetry (OTLP per the ``OTEL_*`` variables) and the Celery instrumentation are set up in each pool
process after the fork (``worker_process_init``: the SDK's export threads do not survive a fork), and
flushed when the process shuts down.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import signals

from agentwatch.agent import Agent
from agentwatch.queue.app import make_app
from agentwatch.queue.client import instrument_celery
from agentwatch.queue.metrics import register_queue_gauges
from agentwatch.queue.settings import DEFAULT_QUEUE, QueueSettings
from agentwatch.refs import load_agent

POOLS = ("prefork", "solo")


def settings_for(agent: Agent, broker: str, *, queue: str = DEFAULT_QUEUE, margin_s: float = 30.0) -> QueueSettings:
    """Queue settings bounded by ``agent``'s run timeout; an agent without one cannot be bounded."""
    if agent.limits.timeout_s is None:
        raise ValueError(
            f"agent {agent.name!r} has no Limits.timeout_s: a queue worker derives its time limits and Redis "
            "visibility timeout from it, so give the agent a timeout (e.g. Limits(timeout_s=300))."
        )
    return QueueSettings(broker, run_timeout_s=agent.limits.timeout_s, margin_s=margin_s, queue=queue)


def run_worker(
    agent_ref: str,
    broker: str,
    *,
    queue: str = DEFAULT_QUEUE,
    concurrency: int = 1,
    pool: str = "prefork",
    margin_s: float = 30.0,
    loglevel: str = "INFO",
) -> None:
    """Start a worker in the foreground until it is stopped (SIGTERM: finish running jobs, then exit)."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}; got {pool!r}.")
    settings = settings_for(load_agent(agent_ref), broker, queue=queue, margin_s=margin_s)
    app = make_app(settings, serves=(agent_ref,))
    telemetry: list[Any] = []

    def start_telemetry(**_: Any) -> None:
        from agentwatch.telemetry.setup import configure_telemetry

        service = os.environ.get("OTEL_SERVICE_NAME", "agentwatch-worker")
        telemetry.append(configure_telemetry(service, install_signal_handler=False))
        instrument_celery()
        register_queue_gauges(broker, queue)

    def stop_telemetry(**_: Any) -> None:
        for installed in telemetry:
            installed.shutdown()

    signals.worker_process_init.connect(start_telemetry, weak=False)
    signals.worker_process_shutdown.connect(stop_telemetry, weak=False)

    hostname = f"agentwatch-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(
        ["worker", f"--loglevel={loglevel}", "-Q", queue, "-c", str(concurrency), "-P", pool, "-n", hostname]
    )
