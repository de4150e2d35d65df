"""Real redis-server and real `agentwatch worker` processes on 127.0.0.1 (tests/queueing and the e2e workload).

Redis runs without persistence unless asked for an append-only file (a Redis that forgets its data on
restart loses queued jobs by design, so the restart test runs the durable setup).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import redis

from .binaries import REPO
from .stack import Proc, free_ports, wait_until

REDIS_SERVER = Path("/usr/bin/redis-server")
QUEUE = "agentwatch"
QUEUE_AGENTS = REPO / "tests" / "queueing" / "queue_agents.py"


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


def queue_agent(name: str) -> str:
    """The reference of an agent in tests/queueing/queue_agents.py (``path/file.py:attr``)."""
    return f"{QUEUE_AGENTS}:{name}"


def start_worker_process(
    agent_ref: str,
    broker: str,
    *,
    model_url: str,
    workdir: Path,
    name: str,
    otlp_endpoint: str = "",
    service_name: str = "agentwatch-worker",
    concurrency: int = 1,
) -> Worker:
    """`agentwatch worker` for ``agent_ref`` (time margins of 2 s), returned once it answers a ping."""
    from agentwatch.queue.client import producer_app

    env = {
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": "test-key",
        "AGENTWATCH_FLEET_REDIS_URL": broker,  # fleet guards share the queue's Redis, as in compose
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "agentwatch.cli", "worker", agent_ref, "--broker", broker, "--margin", "2"]
    proc = Proc(name, [*argv, "--concurrency", str(concurrency)], workdir, env).start()
    worker = Worker(proc)
    hostname_prefix = f"agentwatch-{worker.pid}@"

    def answered() -> bool:
        assert proc.process is not None
        if proc.process.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.process.returncode}:\n{proc.log_tail()}")
        replies = producer_app(broker).control.ping(timeout=0.5)
        return any(name.startswith(hostname_prefix) for reply in replies for name in reply)

    try:
        wait_until(answered, 60, 0.1, what=f"worker {worker.pid} to answer a ping")
    except BaseException:
        worker.stop()
        raise
    return worker


QUEUE_SERVICE = "agentwatch-e2e-worker"
ENQUEUE_TRACED = Path(__file__).with_name("enqueue_traced.py")
FLEET_WORKLOAD = Path(__file__).with_name("fleet_workload.py")
# Calls the calculator every turn until the iteration budget (or the timeout) stops it: the tail sampler
# keeps budget-stopped runs, so this trace is in Jaeger whatever the baseline rate.
TRACED_TASK = "Keep checking [[loop]]"


@dataclass(frozen=True)
class QueuedRun:
    """The queued run whose producer side was exported too (enqueue_traced.py)."""

    run_id: str
    trace_id: str
    stop_reason: str


def run_queue_workload(otlp_http_endpoint: str, workdir: Path) -> QueuedRun:
    """Queued runs through real Redis and a real worker exporting to the collector: three runs and one
    poison job, so every queue series (depth, oldest job age, time in queue, dead letters) has data, and
    one run queued by a process exporting to the same collector, so its whole trace is in Jaeger. On the
    same Redis, fleet-guarded runs and shared canaries (fleet_workload.py), so every fleet and canary series
    has data too."""
    from agentwatch.queue import RunFailed, result, submit
    from agentwatch.sim import Simulator

    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(workdir).start()
    try:
        with Simulator() as sim:
            agent = queue_agent("calc")
            worker = start_worker_process(
                agent,
                server.url,
                model_url=sim.base_url,
                workdir=workdir,
                name="e2e-worker",
                otlp_endpoint=otlp_http_endpoint,
                service_name=QUEUE_SERVICE,
            )
            try:
                runs = [submit(agent, f"What is {i} * 7?", broker=server.url) for i in range(3)]
                poison = submit("no.such:agent", "What is 1 + 1?", broker=server.url)
                for run_id in runs:
                    result(run_id, timeout=60, broker=server.url)
                with contextlib.suppress(RunFailed):
                    result(poison, timeout=60, broker=server.url)
                fleet = subprocess.run(  # fleet-guarded runs: every fleet series has data
                    [sys.executable, str(FLEET_WORKLOAD), otlp_http_endpoint, server.url],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if fleet.returncode != 0:
                    raise RuntimeError(f"fleet_workload.py failed ({fleet.returncode}):\n{fleet.stderr[-3000:]}")
                enqueuer = subprocess.Popen(
                    [sys.executable, str(ENQUEUE_TRACED), otlp_http_endpoint, server.url, agent, TRACED_TASK],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                assert enqueuer.stdout is not None
                line = enqueuer.stdout.readline()  # the run is done (or the process failed: empty line)
            finally:
                worker.stop()  # a warm shutdown: each pool process flushes its telemetry
            out, err = enqueuer.communicate("\n", timeout=60)  # now the producer side exports
            if enqueuer.returncode != 0 or not line:
                raise RuntimeError(f"enqueue_traced.py failed ({enqueuer.returncode}):\n{line}{out}{err[-3000:]}")
            return QueuedRun(**json.loads(line))
    finally:
        assert server.proc is not None
        server.proc.stop()
