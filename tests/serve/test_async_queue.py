"""Async runs through the service: ``"mode": "async"`` → real Redis → a real `agentwatch worker` → the result
back over ``GET /v1/runs/{id}``, one trace from the HTTP server span to the worker's spans."""

from __future__ import annotations

import contextlib
import uuid

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agentwatch.refs import load_agent
from agentwatch.serve import ServeSettings, create_app
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from e2e.queue_stack import RedisServer, queue_agent
from otlp_receiver import OtlpReceiver
from queue_fixtures import WorkerFactory

from .conftest import KEY_B, Served, serve, wait_for

CALC = queue_agent("calc")


def serve_queued(
    sim: Simulator, redis_server: RedisServer, **settings: object
) -> contextlib.AbstractContextManager[Served]:
    """The service for the queue agent ``calc`` by reference (the one its workers run), queueing on Redis."""
    return serve(load_agent(CALC), sim, agent=CALC, queue_url=redis_server.url, **settings)


def poll(c: httpx.Client, location: str) -> httpx.Response:
    """GET the run until it is no longer 202 (every pending answer must say running)."""

    def finished() -> httpx.Response | None:
        response = c.get(location)
        if response.status_code == 202:
            assert response.json() == {"run_id": location.rsplit("/", 1)[1], "status": "running"}
            return None
        return response

    return wait_for(finished, "the queued run to finish", timeout=60)


def submit(served: Served, body: dict[str, object], **headers: str) -> httpx.Response:
    with served.client() as c:
        return c.post("/v1/runs", json=body, headers=headers)


def test_async_run_is_202_then_its_result_in_one_trace(
    redis_server: RedisServer,
    start_worker: WorkerFactory,
    sim: Simulator,
    otlp: OtlpReceiver,
    spans: InMemorySpanExporter,
) -> None:
    start_worker("calc", sim, otlp)
    with serve_queued(sim, redis_server) as served:
        response = submit(served, {"task": "What is 1234 * 5678?", "mode": "async"})
        assert response.status_code == 202, response.text
        run_id = response.headers["X-Run-Id"]
        assert response.headers["Location"] == f"/v1/runs/{run_id}"
        assert response.json() == {"run_id": run_id, "status": "queued"}
        trace_id = response.headers["X-Trace-Id"]

        with served.client() as c:
            done = poll(c, response.headers["Location"])
            assert done.status_code == 200, done.text
            body = done.json()
            assert body["run_id"] == run_id and body["stop_reason"] == "end_turn" and body["ok"] is True
            assert "7,006,652" in body["answer"] and body["trace_id"] == trace_id
            assert c.get(f"/v1/runs/{uuid.uuid4().hex}").json()["error"]["type"] == "not_found"
        with served.client(KEY_B) as other:
            assert other.get(f"/v1/runs/{run_id}").status_code == 404  # another tenant's run is not found

        preferred = submit(served, {"task": "What is 2 + 3?"}, Prefer="respond-async")
        assert preferred.status_code == 202 and preferred.json()["status"] == "queued"

    # This process: the HTTP server span -> the Celery producer span.
    local = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    server = next(s for s in local if s.kind is SpanKind.SERVER)
    assert server.attributes is not None and server.attributes[n.AW_SERVE_RUN_ID] == run_id
    producer = next(s for s in local if s.kind is SpanKind.PRODUCER)
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id

    # The worker: consumer (child of the producer) -> invoke_agent -> chat / execute_tool.
    def worker_tree() -> list[object]:
        found = otlp.spans(trace_id)
        return found if len([s for s in found if s.name.startswith("chat ")]) == 2 else []

    remote = wait_for(worker_tree, "the worker's spans over OTLP")
    consumer = next(s for s in remote if s.kind == 5)  # SPAN_KIND_CONSUMER
    assert consumer.parent_span_id == format(producer.context.span_id, "016x")
    root = next(s for s in remote if s.name == n.agent_span_name("queue-calc"))
    assert root.parent_span_id == consumer.span_id and root.span_id == body["span_id"]
    children = sorted(s.name for s in remote if s.parent_span_id == root.span_id)
    assert children == ["chat claude-haiku-4-5-20251001"] * 2 + ["execute_tool calculator"]


def test_a_dead_lettered_run_is_a_clear_error(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator
) -> None:
    start_worker("plain", sim)  # serves another agent than the service queues: the job is dead-lettered
    with serve_queued(sim, redis_server) as served:
        response = submit(served, {"task": "What is 2 + 2?", "mode": "async"})
        assert response.status_code == 202, response.text
        with served.client() as c:
            failed = poll(c, response.headers["Location"])
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert error["type"] == "run_failed" and "dead-letter" in error["message"] and "unserved_agent" in error["message"]


def test_redis_down_is_503_with_retry_after(redis_server: RedisServer, sim: Simulator) -> None:
    with serve_queued(sim, redis_server, retry_after_s=3) as served:
        queued = submit(served, {"task": "What is 2 + 2?", "mode": "async"})
        assert queued.status_code == 202, queued.text
        redis_server.kill()
        with served.client() as c:
            for response in (
                c.post("/v1/runs", json={"task": "What is 2 + 2?", "mode": "async"}),
                c.get(queued.headers["Location"]),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "3"
                assert response.json()["error"]["type"] == "queue_unavailable"


def test_async_requests_are_validated_and_authenticated(redis_server: RedisServer, sim: Simulator) -> None:
    with serve_queued(sim, redis_server, max_task_chars=10) as served:
        assert submit(served, {"task": "x" * 11, "mode": "async"}).json()["error"]["type"] == "task_too_long"
        with_conversation = submit(served, {"task": "hi", "mode": "async", "conversation_id": "c1"})
        assert with_conversation.status_code == 422 and "conversation_id" in with_conversation.text
        with served.client(key=None) as anonymous:
            assert anonymous.post("/v1/runs", json={"task": "hi", "mode": "async"}).status_code == 401
    assert redis_server.client().keys("agentwatch:*") == []  # nothing was queued


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"queue_url": "redis://127.0.0.1:6379/0"}, "agent by reference"),
        ({"queue_url": "amqp://127.0.0.1", "agent": CALC}, "must be a Redis URL"),
    ],
)
def test_a_queue_that_cannot_work_is_refused_at_startup(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(load_agent(CALC), settings=ServeSettings(**settings))
