"""The compose traffic generator (scripts/serve_traffic.py) calls the service over HTTP with a traceparent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from otlp_receiver import OtlpReceiver

from .conftest import KEY_A, Served, wait_for

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
