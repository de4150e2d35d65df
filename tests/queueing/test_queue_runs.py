"""Enqueue → result through real Redis and a real Celery worker; one trace across both processes;
exactly one result per run id; budget stops are results; a poison job is dead-lettered."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agentwatch import StopReason
from agentwatch.queue import RunFailed, RunNotFound, result, submit
from agentwatch.queue.client import resolve_broker
from agentwatch.queue.jobs import dead_letters
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from e2e.queue_stack import queue_agent as ref
from e2e.stack import wait_until
from otlp_receiver import OtlpReceiver
from queueing.queue_support import QUEUE, RedisServer, WorkerFactory, queue_drained, requests_for

CALC = ref("calc")


def test_submit_then_result_is_one_trace_across_processes(
    redis_server: RedisServer,
    start_worker: WorkerFactory,
    sim: Simulator,
    otlp: OtlpReceiver,
    spans: InMemorySpanExporter,
) -> None:
    start_worker("calc", sim, otlp)
    marker = uuid.uuid4().hex[:8]
    with trace.get_tracer("test").start_as_current_span("enqueue") as enqueue:
        run_id = submit(CALC, f"What is 1234 * 5678? ({marker})", broker=redis_server.url)
    run = result(run_id, timeout=60, broker=redis_server.url)

    assert run.stop_reason is StopReason.END_TURN
    assert "7,006,652" in run.answer
    trace_id = format(enqueue.get_span_context().trace_id, "032x")
    assert run.trace_id == trace_id  # the run's root span joined the enqueuing trace

    # This process: enqueue -> Celery producer span.
    local = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]
    producer = next(s for s in local if s.kind is SpanKind.PRODUCER)
    assert producer.parent is not None and producer.parent.span_id == enqueue.get_span_context().span_id
    assert producer.attributes[n.MESSAGING_MESSAGE_ID] == run_id

    # The worker: consumer span (child of the producer) -> invoke_agent -> chat / execute_tool.
    def worker_tree() -> list:
        found = otlp.spans(trace_id)
        return found if len([s for s in found if s.name.startswith("chat ")]) == 2 else []

    remote = wait_until(worker_tree, 30, 0.1, what="the worker's spans over OTLP")
    by_id = {s.span_id: s for s in remote}
    consumer = next(s for s in remote if s.kind == 5)  # SPAN_KIND_CONSUMER
    assert consumer.parent_span_id == format(producer.context.span_id, "016x")
    assert consumer.attributes[n.AW_QUEUE_WAIT_S] >= 0
    assert consumer.attributes[n.AW_QUEUE_DELIVERY] == 1
    root = next(s for s in remote if s.name == n.agent_span_name("queue-calc"))
    assert root.parent_span_id == consumer.span_id and root.span_id == run.span_id
    children = [s for s in remote if s.parent_span_id == root.span_id]
    assert sorted(s.name for s in children) == ["chat claude-haiku-4-5-20251001"] * 2 + ["execute_tool calculator"]
    assert all(by_id[s.parent_span_id] is root for s in children)
    assert {s.resource["service.name"] for s in remote} == {"agentwatch-worker"}

    # Time in queue reaches the metrics pipeline too.
    wait_until(lambda: otlp.metric_points(n.M_QUEUE_WAIT[0]), 30, 0.1, what="the queue wait histogram")


def test_a_duplicate_delivery_of_a_finished_run_is_not_run_again(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator
) -> None:
    start_worker("calc", sim)
    marker = uuid.uuid4().hex[:8]
    task = f"What is 12 * 3? ({marker})"
    run_id = submit(CALC, task, broker=redis_server.url)
    first = result(run_id, timeout=60, broker=redis_server.url)
    calls = requests_for(sim, marker)
    assert calls == 2  # calculator call, then the answer

    # The same message again (what a redelivery is): answered from the stored result, no model call.
    assert submit(CALC, task, broker=redis_server.url, run_id=run_id) == run_id
    client = redis_server.client()
    wait_until(lambda: queue_drained(client), 30, 0.1, what="the duplicate to be consumed")
    assert requests_for(sim, marker) == calls
    again = result(run_id, timeout=10, broker=redis_server.url)
    assert again == first


def test_a_budget_stop_is_a_result_not_a_retry(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator
) -> None:
    start_worker("calc", sim)
    run_id = submit(CALC, "Keep checking [[loop]]", broker=redis_server.url)
    run = result(run_id, timeout=60, broker=redis_server.url)
    assert run.stop_reason is StopReason.MAX_ITERATIONS
    assert "iteration" in run.answer.lower()
    assert dead_letters(redis_server.client(), QUEUE) == []


def test_a_queued_run_is_charged_to_the_tenant_it_was_submitted_for(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator
) -> None:
    start_worker("budgeted", sim)
    budgeted = ref("budgeted")
    paid = submit(budgeted, "What is 1234 * 5678?", broker=redis_server.url, tenant="acme")
    refused = submit(budgeted, "What is 1234 * 5678?", broker=redis_server.url, tenant="broke")
    assert result(paid, timeout=60, broker=redis_server.url).stop_reason is StopReason.END_TURN
    run = result(refused, timeout=60, broker=redis_server.url)
    assert run.stop_reason is StopReason.TENANT_BUDGET and "broke" in run.stop_detail
    assert run.usage.total_tokens == 0 and dead_letters(redis_server.client(), QUEUE) == []


def test_a_poison_job_lands_in_the_dead_letter_list(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator, otlp: OtlpReceiver
) -> None:
    start_worker("calc", sim, otlp)
    with trace.get_tracer("test").start_as_current_span("enqueue") as enqueue:
        run_id = submit("somewhere.else:agent", "What is 2 + 2?", broker=redis_server.url)
    with pytest.raises(RunFailed, match="this worker serves"):
        result(run_id, timeout=60, broker=redis_server.url)

    [letter] = dead_letters(redis_server.client(), QUEUE)
    assert letter.run_id == run_id and letter.agent_ref == "somewhere.else:agent" and letter.reason == "unserved_agent"
    assert "start `agentwatch worker somewhere.else:agent`" in letter.error
    assert letter.trace_id == format(enqueue.get_span_context().trace_id, "032x")
    assert (
        wait_until(lambda: otlp.metric_points(n.M_QUEUE_DEAD_LETTERS[0]), 30, 0.1, what="the dead-letter counter")[-1][
            "asInt"
        ]
        == "1"
    )


def test_result_of_an_unknown_run_says_so(redis_server: RedisServer) -> None:
    with pytest.raises(RunNotFound):
        result(uuid.uuid4().hex, timeout=0, broker=redis_server.url)


def test_no_broker_configured_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTWATCH_BROKER_URL", raising=False)
    with pytest.raises(ValueError, match="AGENTWATCH_BROKER_URL"):
        resolve_broker()


def test_queue_depth_and_oldest_job_age_are_read_from_redis(
    redis_server: RedisServer, start_worker: WorkerFactory, otlp: OtlpReceiver
) -> None:
    with Simulator(latency_s=1.0) as slow:
        start_worker("plain", slow, otlp)
        run_ids = [submit(ref("plain"), f"Say hello {i}", broker=redis_server.url) for i in range(4)]

        def waiting() -> list:
            depths = [int(p.get("asInt", 0)) for p in otlp.metric_points(n.M_QUEUE_DEPTH[0])]
            ages = [p.get("asDouble", 0.0) for p in otlp.metric_points(n.M_QUEUE_OLDEST_AGE[0])]
            return [max(depths), max(ages)] if depths and ages and max(depths) >= 1 and max(ages) > 0 else []

        depth, age = wait_until(waiting, 30, 0.1, what="queue depth and oldest job age while jobs wait")
        assert 1 <= depth <= 3 and age > 0
        for run_id in run_ids:
            result(run_id, timeout=60, broker=redis_server.url)
    attributes = otlp.metric_points(n.M_QUEUE_DEPTH[0])[-1]["attributes"]
    assert attributes == [{"key": n.MESSAGING_DESTINATION_NAME, "value": {"stringValue": QUEUE}}]
