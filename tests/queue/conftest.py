"""Fixtures for the queue tests: redis-server, `agentwatch worker` processes, an OTLP receiver."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_agents import ref
from queue_support import REDIS_SERVER, Proc, RedisServer, Worker, WorkerFactory, wait_until

from agentwatch.queue.client import producer_app
from agentwatch.sim import Simulator
from otlp_receiver import OtlpReceiver


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
    """``start_worker(agent, sim, otlp=None, concurrency=1)``: a worker that answered a ping."""
    started: list[Worker] = []

    def start(
        agent: str,
        sim: Simulator,
        otlp: OtlpReceiver | None = None,
        concurrency: int = 1,
        server: RedisServer | None = None,
    ) -> Worker:
        broker = (server or redis_server).url
        env = {
            "ANTHROPIC_BASE_URL": sim.base_url,
            "ANTHROPIC_API_KEY": "test-key",
            "OTEL_SERVICE_NAME": "agentwatch-worker",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "PYTHONUNBUFFERED": "1",
        }
        if otlp is not None:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.endpoint
        else:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = ""
        argv = [sys.executable, "-m", "agentwatch.cli", "worker", ref(agent), "--broker", broker, "--margin", "2"]
        argv += ["--concurrency", str(concurrency)]
        proc = Proc(f"worker-{len(started)}", argv, tmp_path, env).start()
        worker = Worker(proc)
        started.append(worker)
        hostname_prefix = f"agentwatch-{worker.pid}@"

        def answered() -> bool:
            assert proc.process is not None
            if proc.process.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.process.returncode}:\n{proc.log_tail()}")
            replies = producer_app(broker).control.ping(timeout=0.5)
            return any(name.startswith(hostname_prefix) for reply in replies for name in reply)

        wait_until(answered, 60, 0.1, what=f"worker {worker.pid} to answer a ping")
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver
