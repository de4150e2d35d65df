"""`agentwatch serve` in the e2e pipeline: a caller's traceparent in, the whole trace back out of real Jaeger
(caller -> HTTP server span -> invoke_agent -> chat / execute_tool), found by the trace id the service returned."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import httpx
import pytest

from agentwatch.telemetry import names as n
from serve.process import start_serve

from .stack import Jaeger, wait_until

pytestmark = pytest.mark.e2e
KEY = "e2e-tenant-key-0123456789"


@pytest.fixture
def service(jaeger: Jaeger, tmp_path) -> Iterator[str]:
    env = {
        **os.environ,
        "AGENTWATCH_API_KEYS": f"e2e:{KEY}",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://{jaeger.otlp_grpc}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": "agentwatch-serve-e2e",
    }
    process, url = start_serve(["agentwatch.demo:demo_agent", "--sim"], env, tmp_path / "serve.log")
    try:
        yield url
    finally:
        process.terminate()
        assert process.wait(60) == 0, (tmp_path / "serve.log").read_text()[-2000:]


def test_a_served_run_is_one_trace_in_jaeger_from_the_callers_traceparent(jaeger: Jaeger, service: str) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.post(
        service + "/v1/runs",
        json={"task": "What is 1234 * 5678?"},
        headers={"Authorization": f"Bearer {KEY}", "traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=60,
    )
    assert response.status_code == 200 and response.headers["X-Trace-Id"] == trace_id
    assert response.json()["trace_id"] == trace_id

    def whole_trace() -> list | None:
        spans = jaeger.get_trace(trace_id) or []
        names = {s["name"].split(" ")[0] for s in spans}
        return spans if {"POST", n.OP_INVOKE_AGENT, n.OP_CHAT, n.OP_EXECUTE_TOOL} <= names else None

    spans = wait_until(whole_trace, 60, what=f"trace {trace_id} in Jaeger")
    by_name = {s["name"]: s for s in spans}
    server, root = by_name["POST /v1/runs"], by_name["invoke_agent research-assistant"]
    assert server["parentSpanId"] == caller_span and server["attrs"][n.AW_TENANT] == "e2e"
    assert root["parentSpanId"] == server["spanId"] and root["attrs"][n.AW_RUN_STOP_REASON] == "end_turn"
    assert server["resource"]["service.name"] == "agentwatch-serve-e2e"
    assert all(s["parentSpanId"] == root["spanId"] for s in spans if s["name"].startswith(("chat", "execute_tool")))
