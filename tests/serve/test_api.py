"""Every endpoint and every error code of the service, over real HTTP to real uvicorn."""

from __future__ import annotations

import dataclasses
import socket

import httpx
import pytest

from agentwatch import RunResult
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n

from .agents import loop_agent, slow_agent, wait_task
from .conftest import DEADLINE_S, KEY_B, Served, serve, wait_for

TASK = "What is 1234 * 5678?"


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    assert body["error"]["message"].endswith((".", ")")), "an error is a sentence"
    return dict(body["error"])


def running(c: httpx.Client, run_id: str) -> bool:
    return c.get(f"/v1/runs/{run_id}").status_code == 202


def test_health_and_readiness(served: Served) -> None:
    assert httpx.get(served.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(served.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readiness_fails_when_the_backend_is_unreachable() -> None:
    with socket.socket() as holder:  # a port nobody listens on: bound, never listening
        holder.bind(("127.0.0.1", 0))
        dead = Simulator()
        dead.port = holder.getsockname()[1]
        dead._thread = object()  # type: ignore[assignment]  # base_url of a simulator that is not there
        with serve(slow_agent(), dead) as s:
            error = error_of(httpx.get(s.url + "/readyz"), 503)
            assert error["type"] == "backend_unreachable"
            assert httpx.get(s.url + "/healthz").status_code == 200  # alive, just not ready


def test_a_run_returns_every_result_field_with_trace_headers(served: Served) -> None:
    with served.client() as c:
        response = c.post("/v1/runs", json={"task": TASK, "conversation_id": "conv-1", "metadata": {"k": "v"}})
    assert response.status_code == 200
    body = response.json()
    for f in dataclasses.fields(RunResult):
        if f.name != "span_context":  # on the wire as the hex trace_id and span_id it is made of
            assert f.name in body, f.name
    assert RunResult.from_dict(body).span_context.trace_id == int(body["trace_id"], 16)
    assert body["stop_reason"] == "end_turn" and body["stop_detail"] == ""
    assert "7,006,652" in body["answer"] and body["cost_usd"] > 0 and body["usage"]["input_tokens"] > 0
    assert response.headers["X-Run-Id"] == body["run_id"]
    assert response.headers["X-Trace-Id"] == body["trace_id"]
    assert response.headers["traceparent"].split("-")[1] == body["trace_id"]
    with served.client() as c:
        again = c.get(f"/v1/runs/{body['run_id']}")
    assert again.status_code == 200 and again.json() == body


def test_a_budget_stop_is_still_200(sim: Simulator) -> None:
    with serve(loop_agent(), sim) as s, s.client() as c:
        response = c.post("/v1/runs", json={"task": "Keep checking [[loop]]"})
    assert response.status_code == 200
    assert response.json()["stop_reason"] == "max_iterations" and response.json()["stop_detail"]


def test_a_running_run_is_202_and_unknown_or_foreign_runs_are_404(served: Served) -> None:
    with served.client() as c, served.client(KEY_B) as other:
        with c.stream("POST", "/v1/runs", json={"task": wait_task(1)}, headers={"Accept": "text/event-stream"}) as r:
            run_id = r.headers["X-Run-Id"]
            pending = c.get(f"/v1/runs/{run_id}")
            assert pending.status_code == 202 and pending.json() == {"run_id": run_id, "status": "running"}
            assert error_of(other.get(f"/v1/runs/{run_id}"), 404)["type"] == "not_found"  # another tenant's run
            r.read()
        assert error_of(c.get("/v1/runs/no-such-run"), 404)["type"] == "not_found"
        assert error_of(c.get("/v1/runs/no-such-run/events"), 404)["type"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"x-api-key": "wrong-key-0123456789"},
        {"Authorization": "Basic x"},
    ],
)
def test_requests_without_a_valid_key_get_401_and_never_reach_the_model(
    served: Served, headers: dict[str, str]
) -> None:
    before = len(served.sim.requests)
    for method, path in [("POST", "/v1/runs"), ("GET", "/v1/runs/x"), ("GET", "/v1/runs/x/events")]:
        response = httpx.request(method, served.url + path, headers=headers, json={"task": TASK})
        error = error_of(response, 401)
        assert "Authorization: Bearer" in error["message"] and "x-api-key" in error["message"]
        assert "wrong-key" not in response.text  # the key is never echoed
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert len(served.sim.requests) == before


def test_both_key_headers_authenticate_and_the_tenant_is_on_the_server_span(served: Served, spans) -> None:
    run_ids = set()
    for headers in ({"Authorization": f"Bearer {KEY_B}"}, {"x-api-key": KEY_B}):
        response = httpx.post(served.url + "/v1/runs", headers=headers, json={"task": TASK}, timeout=DEADLINE_S)
        assert response.status_code == 200
        run_ids.add(response.json()["run_id"])

    def server_spans() -> list:
        found = [s for s in spans.get_finished_spans() if s.attributes.get(n.AW_SERVE_RUN_ID) in run_ids]
        return found if len(found) == len(run_ids) else []

    assert {s.attributes[n.AW_TENANT] for s in wait_for(server_spans, "the server spans")} == {"beta"}
    assert all(KEY_B not in str(dict(s.attributes)) for s in spans.get_finished_spans())


@pytest.mark.parametrize(
    ("body", "status", "error_type", "field"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"\xff\xfe", 400, "invalid_json", None),
        (b"[1, 2]", 422, "invalid_request", None),
        (b'{"task": 42}', 422, "invalid_request", "task"),
        (b'{"task": ""}', 422, "invalid_request", "task"),
        (b'{"tsk": "typo"}', 422, "invalid_request", "task"),
        (b'{"task": "x", "temperature": 2}', 422, "invalid_request", "temperature"),
        (b'{"task": "x", "metadata": {"a": 1}}', 422, "invalid_request", "metadata.a"),
        (b'{"task": "x", "conversation_id": 7}', 422, "invalid_request", "conversation_id"),
        (b'{"task": "x", "mode": "later"}', 422, "invalid_request", "mode"),
        (b'{"task": "' + b"a" * 2001 + b'"}', 422, "task_too_long", "task"),
    ],
)
def test_bad_bodies_get_a_clear_4xx_and_never_reach_the_model(
    served: Served, body: bytes, status: int, error_type: str, field: str | None
) -> None:
    before = len(served.sim.requests)
    with served.client() as c:
        error = error_of(c.post("/v1/runs", content=body, headers={"Content-Type": "application/json"}), status)
    assert error["type"] == error_type
    if field:
        assert repr(field) in error["message"]
    assert len(served.sim.requests) == before


def test_a_body_over_the_limit_gets_413_declared_or_chunked(served: Served) -> None:
    big = b'{"task": "' + b"a" * 5000 + b'"}'
    with served.client() as c:
        assert error_of(c.post("/v1/runs", content=big), 413)["type"] == "body_too_large"
        chunked = c.post("/v1/runs", content=iter([big[:3000], big[3000:]]))  # no Content-Length
        assert error_of(chunked, 413)["type"] == "body_too_large"


def test_async_mode_says_no_queue_is_configured(served: Served) -> None:
    with served.client() as c:
        for response in (
            c.post("/v1/runs", json={"task": TASK, "mode": "async"}),
            c.post("/v1/runs", json={"task": TASK}, headers={"Prefer": "respond-async"}),
        ):
            error = error_of(response, 501)
            assert error["type"] == "no_queue" and "--queue redis://" in error["message"]


def test_unknown_paths_and_methods_are_json_errors(served: Served) -> None:
    assert error_of(httpx.get(served.url + "/v2/nothing"), 404)["type"] == "not_found"
    assert error_of(httpx.delete(served.url + "/v1/runs"), 405)["type"] == "method_not_allowed"
    with served.client() as c:
        assert error_of(c.post("/v1/runs?cancel_on_disconnect=maybe", json={"task": TASK}), 400)


def _hold(c: httpx.Client, held: list) -> str:
    """Start a slow streamed run that is cancelled when its stream is closed; returns its run id."""
    stream = c.stream(
        "POST",
        "/v1/runs?cancel_on_disconnect=true",
        json={"task": wait_task(60)},
        headers={"Accept": "text/event-stream"},
    )
    held.append(stream)
    return str(stream.__enter__().headers["X-Run-Id"])


def test_concurrency_limits_per_tenant_and_server_wide_get_429_with_retry_after(served: Served) -> None:
    """max_runs_per_tenant=3, max_runs=4: alpha's 4th run is refused, then beta's 2nd (the server is full)."""
    held: list = []
    with served.client() as a, served.client(KEY_B) as b:
        try:
            ids = [_hold(a, held) for _ in range(3)]
            wait_for(lambda: all(running(a, i) for i in ids), "three runs of tenant alpha in flight")
            before = len(served.sim.requests)
            refused = a.post("/v1/runs", json={"task": TASK})
            assert error_of(refused, 429)["type"] == "tenant_limit" and refused.headers["Retry-After"] == "1"
            _hold(b, held)  # another tenant still gets a run: now 4 in flight
            full = b.post("/v1/runs", json={"task": TASK})
            assert error_of(full, 429)["type"] == "overloaded" and full.headers["Retry-After"] == "1"
            refused_tasks = [r for r in served.sim.requests[before:] if TASK in str(r.body)]
            assert refused_tasks == []  # the refused runs never reached the model
        finally:
            for stream in held:
                stream.__exit__(None, None, None)
    wait_for(lambda: httpx.get(served.url + "/readyz").json()["runs"] == 0, "the held runs to be cancelled")


def test_a_page_on_an_allowed_origin_may_call_the_api(sim: Simulator) -> None:
    origin = "http://dashboard.example"
    with serve(slow_agent(), sim, cors_origins=(origin,)) as s, s.client() as c:
        preflight = c.options(
            "/v1/runs",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == origin
        response = c.post("/v1/runs", json={"task": TASK}, headers={"Origin": origin})
        assert response.headers["access-control-allow-origin"] == origin
        assert "X-Run-Id" in response.headers["access-control-expose-headers"]
        other = c.post("/v1/runs", json={"task": TASK}, headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
