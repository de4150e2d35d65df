"""``lambda_handler(agent)``: an AWS Lambda handler that runs the agent once per task, one trace per run.

Per invocation: the run's timeout is what ``context.get_remaining_time_in_millis()`` leaves after
``flush_margin_s`` (and never more than the agent's own ``Limits.timeout_s``), so a long run stops with
stop reason ``timeout`` and returns its partial work before the platform kills the function. Before the
handler returns, traces, metrics and logs are force-flushed, bounded by the time that is left: Lambda
freezes the process right after the response, and whatever is still buffered then may never be sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
from collections.abc import Callable
from typing import Any

import anthropic
from opentelemetry import metrics, propagate, trace
from opentelemetry._logs import get_logger_provider
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch.agent import Agent
from agentwatch.result import RunResult
from agentwatch.serverless.events import Invocation, Item, parse
from agentwatch.telemetry import names as n
from agentwatch.telemetry.recorder import tracer

MIN_RUN_S = 0.5  # a run is not started with less time than this left: the item is reported as failed
Handler = Callable[[Any, Any], dict[str, Any]]


def faas_resource() -> dict[str, Any]:
    """Resource attributes of this function, from the variables the Lambda runtime sets."""
    env = os.environ.get
    found: dict[str, Any] = {n.CLOUD_PROVIDER: "aws", n.CLOUD_PLATFORM: "aws_lambda"}
    optional = {
        n.CLOUD_REGION: env("AWS_REGION"),
        n.FAAS_NAME: env("AWS_LAMBDA_FUNCTION_NAME"),
        n.FAAS_VERSION: env("AWS_LAMBDA_FUNCTION_VERSION"),
        n.FAAS_INSTANCE: env("AWS_LAMBDA_LOG_STREAM_NAME"),
    }
    found.update({key: value for key, value in optional.items() if value})
    memory_mb = env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory_mb.isdigit():
        found[n.FAAS_MAX_MEMORY] = int(memory_mb) * 1024 * 1024
    return found


def _configure_telemetry() -> None:
    """OTLP export per ``OTEL_*`` with the function's resource, unless the application set a provider."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return
    from agentwatch.telemetry.setup import configure_telemetry

    name = os.environ.get("OTEL_SERVICE_NAME") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "agentwatch-lambda"
    configure_telemetry(name, resource_attributes=faas_resource())


def flush_telemetry(timeout_s: float) -> None:
    """Force-flush the global tracer, meter and logger providers; returns within ``timeout_s``. Never raises."""
    providers = (trace.get_tracer_provider(), metrics.get_meter_provider(), get_logger_provider())

    def flush_all() -> None:
        for provider in providers:
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                with contextlib.suppress(Exception):  # telemetry never fails the invocation
                    flush(max(int(timeout_s * 1000), 1))

    worker = threading.Thread(target=flush_all, name="agentwatch-lambda-flush", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))


def lambda_handler(
    agent: Agent,
    *,
    client: anthropic.Anthropic | None = None,
    flush_margin_s: float = 2.0,
    on_result: Callable[[RunResult], None] | None = None,
    configure_telemetry: bool = True,
) -> Handler:
    """A handler for API Gateway / function-URL events, SQS batches and direct ``{"task": ...}`` invocations.

    HTTP: 200 with ``RunResult.to_dict()``, 400 for a bad body, 503 when too little time is left to run.
    SQS: ``{"batchItemFailures": [...]}`` lists the records that were not run (bad body, no time left, a
    crash), so SQS redelivers only those (enable ``ReportBatchItemFailures`` on the event source mapping).
    A run that stopped on a budget or the deadline is a result, not a failure. ``on_result`` sees every
    result (SQS has nowhere else to put it). ``client`` defaults to one built from ``ANTHROPIC_*`` on
    first use. ``flush_margin_s`` is the time kept for flushing telemetry after the run.
    """
    if not flush_margin_s > 0:
        raise ValueError("flush_margin_s must be a positive number of seconds.")
    if configure_telemetry:
        _configure_telemetry()
    state: dict[str, Any] = {"cold": True, "client": client}

    def handler(event: Any, context: Any) -> dict[str, Any]:
        cold, state["cold"] = state["cold"], False
        if state["client"] is None:
            state["client"] = anthropic.Anthropic()
        invocation = parse(event)
        try:
            outcomes = [
                _run_item(agent, state["client"], invocation, item, context, cold, flush_margin_s, on_result)
                for item in invocation.items
            ]
        finally:
            remaining_s = context.get_remaining_time_in_millis() / 1000
            flush_telemetry(min(flush_margin_s, remaining_s - 0.1))
        if invocation.trigger == n.TRIGGER_PUBSUB:
            failed = [item.message_id for item, (status, _) in zip(invocation.items, outcomes, strict=True) if status]
            return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
        status, body = outcomes[0]
        if invocation.trigger == n.TRIGGER_HTTP:
            return {
                "statusCode": status or 200,
                "headers": {"content-type": "application/json"},
                "body": json.dumps(body),
            }
        return body

    return handler


def _run_item(
    agent: Agent,
    client: anthropic.Anthropic,
    invocation: Invocation,
    item: Item,
    context: Any,
    cold: bool,
    flush_margin_s: float,
    on_result: Callable[[RunResult], None] | None,
) -> tuple[int, dict[str, Any]]:
    """Run one item under its own span; ``(0, result)`` when it ran, else ``(HTTP status, error)``."""
    arn = str(getattr(context, "invoked_function_arn", ""))
    attributes: dict[str, Any] = {
        n.FAAS_TRIGGER: invocation.trigger,
        n.FAAS_INVOCATION_ID: str(getattr(context, "aws_request_id", "")),
        n.FAAS_COLDSTART: cold,
        n.CLOUD_PROVIDER: "aws",
        n.CLOUD_RESOURCE_ID: arn,
    }
    if arn.count(":") >= 5:
        attributes[n.CLOUD_ACCOUNT_ID] = arn.split(":")[4]
    if invocation.trigger == n.TRIGGER_PUBSUB:
        name, kind = f"{item.source} process", SpanKind.CONSUMER
        attributes.update(
            {
                n.MESSAGING_SYSTEM: "aws_sqs",
                n.MESSAGING_OPERATION_TYPE: "process",
                n.MESSAGING_MESSAGE_ID: item.message_id,
            }
        )
    else:
        name, kind = str(getattr(context, "function_name", "") or "lambda"), SpanKind.SERVER
    if invocation.http_method:
        attributes.update({n.HTTP_REQUEST_METHOD: invocation.http_method, n.URL_PATH: invocation.path})

    parent = propagate.extract(item.carrier) if item.carrier else None
    with tracer().start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        status, body = _outcome(
            agent, client, item, context.get_remaining_time_in_millis() / 1000 - flush_margin_s, span, on_result
        )
        if invocation.trigger == n.TRIGGER_HTTP:
            span.set_attribute(n.HTTP_RESPONSE_STATUS_CODE, status or 200)
        if status:
            span.set_status(Status(StatusCode.ERROR, body["error"]))
            span.set_attribute(n.ERROR_TYPE, str(status))
        return status, body


def _outcome(
    agent: Agent,
    client: anthropic.Anthropic,
    item: Item,
    deadline_s: float,
    span: trace.Span,
    on_result: Callable[[RunResult], None] | None,
) -> tuple[int, dict[str, Any]]:
    """Run ``item`` within ``deadline_s`` seconds (the invocation's time left minus the flush margin)."""
    if item.task is None:
        return 400, {"error": item.problem}
    if deadline_s < MIN_RUN_S:
        return 503, {"error": f"only {deadline_s:.1f}s left in this invocation after the flush margin: not run"}
    timeout_s = min(agent.limits.timeout_s or math.inf, deadline_s)
    span.set_attribute(n.AW_FAAS_DEADLINE_S, timeout_s)
    bounded = agent.replace(limits=dataclasses.replace(agent.limits, timeout_s=timeout_s))
    try:
        result = bounded.run(item.task, client=client)
    except Exception as exc:  # the runner returns failed runs as results; this is a crash outside it
        span.record_exception(exc)
        return 500, {"error": f"{type(exc).__name__}: {exc}"}
    if on_result is not None:
        on_result(result)
    return 0, result.to_dict()
