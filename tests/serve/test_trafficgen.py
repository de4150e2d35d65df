"""The compose traffic generator (scripts/serve_traffic.py) calls the service over HTTP with a traceparent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentwatch.sim import Simulator
from e2e.queue_stack import RedisServer
from otlp_receiver import OtlpReceiver
from queue_fixtures import WorkerFactory

from .conftest import KEY_A, Served, wait_for
from .test_async_queue import serve_queued

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "serve_traffic.py"


def test_the_traffic_generator_runs_each_call_in_the_callers_trace(served: Served, spans) -> None:
    with OtlpReceiver() as sink:
        env = {**os.environ, "AGENTWATCH_TRAFFIC_API_KEY": KEY_A, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--target", served.url, "--count", "2", "--interval", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.strip().splitlines()) == 2, done.stdout + done.stderr
        clients = [s for s in sink.spans() if s.name == "trafficgen run"]
    assert len(clients) == 2
    callers = {int(c.span_id, 16) for c in clients}

    def parented() -> bool:
        parents = {s.parent.span_id for s in spans.get_finished_spans() if s.name == "POST /v1/runs" and s.parent}
        return callers <= parents

    wait_for(parented, "a server span under each traffic generator span")


def run_traffic(target: str, count: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--target", target, "--count", str(count), "--interval", "0"],
        env={**os.environ, "AGENTWATCH_TRAFFIC_API_KEY": KEY_A, "OTEL_EXPORTER_OTLP_ENDPOINT": "", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_traffic_generator_sends_its_async_share_through_the_queue_and_polls_the_result(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator
) -> None:
    start_worker("calc", sim)
    with serve_queued(sim, redis_server) as served:
        done = run_traffic(served.url, 2, AGENTWATCH_TRAFFIC_ASYNC_SHARE="1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.split()[0] == "async" for line in lines), done.stdout + done.stderr
    assert "run failed" not in done.stderr, done.stderr


def test_the_traffic_generator_refuses_an_async_share_outside_0_to_1() -> None:
    done = run_traffic("http://127.0.0.1:9", 1, AGENTWATCH_TRAFFIC_ASYNC_SHARE="20%")
    assert done.returncode != 0 and "AGENTWATCH_TRAFFIC_ASYNC_SHARE='20%'" in done.stderr, done.stderr
