"""SIGTERM drain of a real ``agentwatch serve`` process: in-flight runs finish, new ones get 503, stragglers
are cancelled and recorded, the process exits 0, and every span reaches the OTLP receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
from httpx_sse import connect_sse

from agentwatch.telemetry import names as n
from otlp_receiver import OtlpReceiver

from .agents import wait_task
from .conftest import DEADLINE_S, KEY_A, KEYS, wait_for
from .process import start_serve


def start_service(sink: OtlpReceiver, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "AGENTWATCH_API_KEYS": KEYS,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "60000",
    }
    return start_serve(["tests/serve/agents.py:slow_agent", "--sim", "--drain-timeout", "10"], env, log)


def follow(url: str, task: str, started: threading.Event, out: list[tuple[str, dict]]) -> None:
    """Stream one run into ``out``; set ``started`` when its tool call begins."""
    with (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY_A}"}, timeout=60) as c,
        connect_sse(c, "POST", "/v1/runs", json={"task": task}) as source,
    ):
        for event in source.iter_sse():
            out.append((event.event, json.loads(event.data)))
            if event.event == "tool_started":
                started.set()


def test_sigterm_drains_in_flight_runs_cancels_stragglers_and_exits_0(tmp_path: Path) -> None:
    with OtlpReceiver() as sink:
        process, url = start_service(sink, tmp_path / "serve.log")
        try:
            runs: dict[str, list[tuple[str, dict]]] = {"finisher": [], "straggler": []}
            started = {name: threading.Event() for name in runs}
            threads = [
                threading.Thread(target=follow, args=(url, wait_task(3), started["finisher"], runs["finisher"])),
                threading.Thread(target=follow, args=(url, wait_task(300), started["straggler"], runs["straggler"])),
            ]
            for thread in threads:
                thread.start()
            for name, event in started.items():
                assert event.wait(DEADLINE_S), f"the {name} run never reached its tool"

            process.send_signal(signal.SIGTERM)
            wait_for(lambda: httpx.get(url + "/readyz").status_code == 503, "/readyz to turn 503")
            refused = httpx.post(url + "/v1/runs", json={"task": "hi"}, headers={"x-api-key": KEY_A})
            assert refused.status_code == 503 and refused.json()["error"]["type"] == "draining"
            assert refused.headers["Retry-After"] == "1"

            for thread in threads:
                thread.join(60)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                process.kill()
        log = (tmp_path / "serve.log").read_text()

        results = {name: events[-1][1]["result"] for name, events in runs.items()}
        assert all(events[-1][0] == "run_finished" for events in runs.values())
        assert results["finisher"]["stop_reason"] == "end_turn"
        assert results["straggler"]["stop_reason"] == "cancelled"
        assert "drain timeout" in results["straggler"]["stop_detail"]
        assert results["straggler"]["usage"]["input_tokens"] > 0

        for name, result in results.items():  # every span of both runs was exported before exit
            spans = sink.spans(result["trace_id"])
            (root,) = [s for s in spans if s.name.startswith(n.OP_INVOKE_AGENT)]
            (server,) = [s for s in spans if s.name == "POST /v1/runs"]
            assert root.parent_span_id == server.span_id and server.attributes[n.AW_TENANT] == "alpha"
            assert root.attributes[n.AW_RUN_STOP_REASON] == result["stop_reason"], name
            assert [s for s in spans if s.name.startswith(n.OP_EXECUTE_TOOL)], name
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        (end,) = [r for r in records if r.get("event") == n.LOG_SERVE_DRAIN_END]
        assert end["finished"] == 1 and end["cancelled"] == 1
        assert sorted(r["stop_reason"] for r in records if r.get("event") == n.LOG_RUN_END) == ["cancelled", "end_turn"]
