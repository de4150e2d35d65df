"""The docker-compose.yml stack itself: up, healthy, and showing the traffic generator's runs.

Needs a Docker engine; skips with the reason when none is reachable (the binary-backed tests in
tests/e2e prove the same pipeline without Docker up to what Loki receives; Loki itself (its config,
LogQL, trace -> logs links) and Grafana are AGPL-licensed, never built here, and only this covers them).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
SERVICE = "agentwatch-serve"  # OTEL_SERVICE_NAME of the agent service (it runs the agents)
GRAFANA_AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()


_spec = importlib.util.spec_from_file_location("agentwatch_e2e_dashboards", REPO / "tests" / "e2e" / "dashboards.py")
assert _spec and _spec.loader
dashboards = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dashboards)


def docker_unavailable_reason() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker engine reachable ({type(exc).__name__}); the compose stack is tested only with Docker"
    return None


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(2)
    raise TimeoutError(f"{what} not within {timeout:.0f}s (last error: {last})")


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.compose import DockerCompose

    compose = DockerCompose(str(REPO), compose_file_name="docker-compose.yml", build=True, wait=True)
    with compose:
        yield


def jaeger_traces() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    query = urllib.parse.urlencode(
        {
            "query.service_name": SERVICE,
            "query.start_time_min": (now - timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
            "query.start_time_max": (now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        }
    )
    data = get_json(f"http://127.0.0.1:16686/api/v3/traces?{query}")
    return [span for rs in data["result"]["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]


def test_jaeger_returns_the_demo_traces(stack: None) -> None:
    spans = wait_for(jaeger_traces, 180, f"traces of {SERVICE} in Jaeger")
    assert any(span["name"].startswith("invoke_agent ") for span in spans)


def test_loki_returns_the_logs_of_a_trace(stack: None) -> None:
    spans = wait_for(jaeger_traces, 180, f"traces of {SERVICE} in Jaeger")
    trace_id = spans[0]["traceId"]
    if len(trace_id) != 32:  # OTLP-JSON bytes may come base64-encoded
        trace_id = base64.b64decode(trace_id).hex()
    now = time.time_ns()
    query = urllib.parse.urlencode(
        {
            "query": f'{{service_name="{SERVICE}"}} | trace_id="{trace_id}"',
            "start": str(now - 15 * 60 * 10**9),
            "end": str(now + 60 * 10**9),
        }
    )

    def logs() -> list[Any]:
        result = get_json(f"http://127.0.0.1:3100/loki/api/v1/query_range?{query}")["data"]["result"]
        return [value for stream in result for value in stream["values"]]

    assert wait_for(logs, 120, f"Loki logs with trace_id {trace_id}")


def loki_query_range(query: str) -> list[Any]:
    now = time.time_ns()
    params = urllib.parse.urlencode(
        {"query": query, "start": str(now - 30 * 60 * 10**9), "end": str(now + 60 * 10**9), "step": "60s"}
    )
    return list(get_json(f"http://127.0.0.1:3100/loki/api/v1/query_range?{params}")["data"]["result"])


def test_every_dashboard_log_query_returns_data(stack: None) -> None:
    """The Loki panels (recent runs, most expensive runs, cache-hit ratio, ...) against real Loki."""
    queries = dashboards.dashboard_queries("loki")
    assert len(queries) >= 4
    pending = dict(queries)

    def all_answered() -> bool:
        for where, expr in list(pending.items()):
            if loki_query_range(expr):  # an HTTP 400 (LogQL parse error) raises
                del pending[where]
        return not pending

    wait_for(all_answered, 180, "data for every dashboard log query: " + ", ".join(pending))


def test_prometheus_has_the_agent_metrics_and_rules(stack: None) -> None:
    def runs() -> list[Any]:
        q = urllib.parse.urlencode({"query": f'agentwatch_runs_total{{job="{SERVICE}"}}'})
        return list(get_json(f"http://127.0.0.1:9090/api/v1/query?{q}")["data"]["result"])

    assert wait_for(runs, 180, "agentwatch_runs_total in Prometheus")
    groups = get_json("http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    assert {g["name"] for g in groups} >= {"agentwatch.recording", "agentwatch.alerts"}


def test_grafana_lists_the_dashboards_and_its_datasources_are_healthy(stack: None) -> None:
    headers = {"Authorization": GRAFANA_AUTH}
    search = wait_for(
        lambda: get_json("http://127.0.0.1:3000/api/search?type=dash-db", headers),
        120,
        "provisioned dashboards in Grafana",
    )
    assert {d["uid"] for d in search} >= {"agentwatch-cost", "agentwatch-runs"}
    sources = {d["uid"] for d in get_json("http://127.0.0.1:3000/api/datasources", headers)}
    assert sources >= {"prometheus", "loki", "jaeger"}
    for uid in ("prometheus", "loki", "jaeger"):
        health = wait_for(
            lambda uid=uid: (
                (h := get_json(f"http://127.0.0.1:3000/api/datasources/uid/{uid}/health", headers))
                and h.get("status") == "OK"
                and h
            ),
            60,
            f"datasource {uid} healthy",
        )
        assert health["status"] == "OK"
