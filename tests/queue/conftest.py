"""Real redis-server and real `agentwatch worker` processes on 127.0.0.1, the simulator as the model.

Redis runs without persistence unless a test asks for an append-only file (the restart test: a Redis
that forgets its data on restart loses queued jobs by design, so that test runs the durable setup).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from e2e.stack import Proc, free_ports, wait_until
from otlp_receiver import OtlpReceiver
from queue_agents import ref

from agentwatch.queue.client import producer_app
from agentwatch.sim import Simulator

REDIS_SERVER = Path("/usr/bin/redis-server")
QUEUE = "agentwatch"


class RedisServer:
    """One redis-server process; ``restart`` keeps the port (and the data, when ``durable``)."""

    def __init__(self, workdir: Path, durable: bool = False) -> None:
        self.workdir, self.durable = workdir, durable
        self.port = free_ports(1)[0]
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else ["--appendonly", "no"]
        argv = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence]
        self.proc = Proc(f"redis-{self.port}", [*argv, "--dir", str(self.workdir)], self.workdir).start()
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_until(lambda: self._alive() and client.ping(), 30, 0.05, what=f"redis-server on port {self.port}")
        client.close()
        return self

    def _alive(self) -> bool:
        assert self.proc is not None and self.proc.process is not None
        if self.proc.process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.proc.log_tail()}")
        return True

    def kill(self) -> None:
        assert self.proc is not None and self.proc.process is not None
        self.proc.process.kill()
        self.proc.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not REDIS_SERVER.exists():
        pytest.skip("redis-server is not installed: run scripts/system-packages.sh (Debian package redis-server)")
    server = RedisServer(tmp_path).start()
    yield server
    assert server.proc is not None
    server.proc.stop()


class Worker:
    """An `agentwatch worker` process (and its pool children, in their own process group)."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    @property
    def pid(self) -> int:
        assert self.proc.process is not None
        return self.proc.process.pid

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: nothing gets to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        assert self.proc.process is not None
        self.proc.process.wait(timeout=10)

    def stop(self) -> None:
        self.proc.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # any pool child left behind


WorkerFactory = Callable[..., Worker]


@pytest.fixture
def start_worker(tmp_path: Path, redis_server: RedisServer) -> Iterator[WorkerFactory]:
    """``start_worker(agent, sim, otlp=None, concurrency=1)``: a worker that answered a ping."""
    started: list[Worker] = []

    def start(
        agent: str, sim: Simulator, otlp: OtlpReceiver | None = None, concurrency: int = 1, server: RedisServer | None = None
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

