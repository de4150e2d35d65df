"""A queued run is one trace in real Jaeger: the producer span (the enqueuing process), the worker's consumer
span, invoke_agent and its chat / execute_tool spans, every parent present (queue_stack.py, enqueue_traced.py)."""

from __future__ import annotations

from typing import Any

from agentwatch.telemetry import names as n

from .enqueue_traced import SERVICE as PRODUCER_SERVICE
from .queue_stack import QUEUE_SERVICE, QueuedRun
from .stack import Collector, Jaeger, wait_until

PRODUCER, CONSUMER = ("SPAN_KIND_PRODUCER", 4), ("SPAN_KIND_CONSUMER", 5)  # Jaeger's OTLP JSON: name or number


def test_a_queued_run_is_one_trace_from_the_producer_through_the_worker(
    queued_run: QueuedRun, collector: Collector, jaeger: Jaeger
) -> None:
    assert queued_run.stop_reason in {"max_iterations", "timeout"}, queued_run  # a run the tail sampler keeps
    collector.wait_traces_settled()

    def whole_trace() -> list[dict[str, Any]] | None:
        spans = jaeger.get_trace(queued_run.trace_id) or []
        kinds = {s.get("kind") for s in spans}
        names = {s["name"].split(" ")[0] for s in spans}
        complete = {n.OP_INVOKE_AGENT, n.OP_CHAT, n.OP_EXECUTE_TOOL} <= names
        return spans if complete and kinds & set(PRODUCER) and kinds & set(CONSUMER) else None

    spans = wait_until(whole_trace, 60, what=f"queued trace {queued_run.trace_id} with both sides in Jaeger")
    by_id = {s["spanId"]: s for s in spans}
    roots = [s for s in spans if not s.get("parentSpanId")]
    assert len(roots) == 1, [s["name"] for s in roots]
    orphans = [s["name"] for s in spans if s.get("parentSpanId") and s["parentSpanId"] not in by_id]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"
    (producer,) = [s for s in spans if s.get("kind") in PRODUCER]
    (consumer,) = [s for s in spans if s.get("kind") in CONSUMER]
    (agent,) = [s for s in spans if s["name"].startswith(n.OP_INVOKE_AGENT)]
    assert producer is roots[0] and producer["resource"]["service.name"] == PRODUCER_SERVICE
    assert consumer["parentSpanId"] == producer["spanId"] and consumer["resource"]["service.name"] == QUEUE_SERVICE
    assert agent["parentSpanId"] == consumer["spanId"]
    assert agent["attrs"][n.AW_RUN_STOP_REASON] == queued_run.stop_reason
    children = [s for s in spans if s["name"].startswith((n.OP_CHAT, n.OP_EXECUTE_TOOL))]
    assert children and all(s["parentSpanId"] == agent["spanId"] for s in children)
