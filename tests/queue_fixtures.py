"""Queue fixtures for tests/queueing and tests/serve: redis-server, `agentwatch worker` processes, an OTLP receiver.

A folder's conftest.py imports them (``from queue_fixtures import ...``) to use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agentwatch.sim import Simulator
from e2e.queue_stack import REDIS_SERVER, RedisServer, Worker, queue_agent, start_worker_process
from otlp_receiver import OtlpReceiver

WorkerFactory = Callable[..., Worker]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not REDIS_SERVER.exists():
        pytest.skip("redis-server is not installed: run scripts/system-packages.sh (Debian package redis-server)")
    server = RedisServer(tmp_path).start()
    yield server
    assert server.proc is not None
    server.proc.stop()


@pytest.fixture
def start_worker(tmp_path: Path, redis_server: RedisServer) -> Iterator[WorkerFactory]:
    """``start_worker(agent, sim, otlp=None, concurrency=1, server=None)``: a worker that answered a ping."""
    started: list[Worker] = []

    def start(
        agent: str,
        sim: Simulator,
        otlp: OtlpReceiver | None = None,
        concurrency: int = 1,
        server: RedisServer | None = None,
    ) -> Worker:
        worker = start_worker_process(
            queue_agent(agent),
            (server or redis_server).url,
            model_url=sim.base_url,
            workdir=tmp_path,
            name=f"worker-{len(started)}",
            otlp_endpoint=otlp.endpoint if otlp is not None else "",
            concurrency=concurrency,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver
