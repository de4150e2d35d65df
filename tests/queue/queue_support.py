"""Real redis-server and real `agentwatch worker` processes on 127.0.0.1 for the queue tests.

Redis runs without persistence unless a test asks for an append-only file (the restart test: a Redis
that forgets its data on restart loses queued jobs by design, so that test runs the durable setup).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import redis

from agentwatch.sim import Simulator
from e2e.stack import Proc, free_ports, wait_until

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
