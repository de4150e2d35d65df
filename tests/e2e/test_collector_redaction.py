"""The collector masks API keys that reached it unredacted (an application that bypasses agentwatch's
redactor, or another service on the same collector): the test sends raw OTLP straight from the OTel SDK
(whose record_exception writes the stack trace as it is) and reads what the real collector running
collector/config.yaml forwards to Jaeger and to Loki (the stand-in's file exporter)."""

from __future__ import annotations

import json
import logging
import urllib.parse
import uuid
from typing import Any

import pytest

from agentwatch.telemetry import names as n
from secret_scan import PLANTED_KEY, find_leaks

from .stack import Collector, Jaeger, LokiStandIn, wait_until
from .test_pipeline import TRACE_WAIT_S, wait_for_trace

pytestmark = pytest.mark.e2e

GATEWAY_TOKEN = "gw_" + "Tk7" * 10  # a gateway bearer token: no sk-ant- shape, only "Bearer" before it
KEYS = (PLANTED_KEY, GATEWAY_TOKEN)
# Every form the key takes in the wild: raw, before a newline, in a bytes repr inside Bearer, URL-encoded
# (newline as %0A, dashes as %2D, the whole header value), and a gateway token after Bearer.
FORMS = [
    f"raw {PLANTED_KEY} end",
    f"file secret {PLANTED_KEY}\n",
    f"Illegal header value b'Bearer {PLANTED_KEY}\\n'",
    f"url {urllib.parse.quote(PLANTED_KEY + chr(10), safe='')}",
    f"url {PLANTED_KEY.replace('-', '%2D')}",
    f"form {urllib.parse.quote_plus('Bearer ' + GATEWAY_TOKEN)}",
    f"Authorization: Bearer {GATEWAY_TOKEN}",
]


def leaking_exception() -> BaseException:
    """A chained exception quoting every form (the cause carries them, so only the stack trace has them all)."""
    try:
        try:
            raise ValueError(" | ".join(FORMS))
        except ValueError as cause:
            raise ConnectionError(f"gateway said: {FORMS[2]}") from cause
    except ConnectionError as exc:
        return exc


def test_exception_events_and_statuses_that_bypass_agentwatch_are_masked(collector: Collector, jaeger: Jaeger) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "agentwatch-e2e-raw-app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.otlp_http}/v1/traces")))
    span = provider.get_tracer("raw-app").start_span("chat claude-haiku-4-5")
    error = leaking_exception()
    span.record_exception(error)  # the SDK's own event: message and stack trace exactly as raised
    span.add_event("gateway.reply", {"body": " | ".join(FORMS)})
    span.set_attribute("error.detail", FORMS[2])
    span.set_status(Status(StatusCode.ERROR, " | ".join(FORMS)))  # ERROR: tail sampling keeps it
    trace_id = format(span.get_span_context().trace_id, "032x")
    span.end()
    provider.shutdown()

    (received,) = wait_for_trace(jaeger, trace_id)
    events = dict(received["event_attrs"])
    stacktrace = events[n.EVENT_EXCEPTION][n.EXCEPTION_STACKTRACE]
    assert "ValueError" in stacktrace and "The above exception was the direct cause" in stacktrace
    assert "****" in stacktrace and "****" in received["status"].get("message", "")
    everything = json.dumps([received["attrs"], received["event_attrs"], received["status"]])
    assert find_leaks(KEYS, [("jaeger", everything)]) == []


def test_log_records_with_raw_tracebacks_are_masked(collector: Collector, loki: LokiStandIn) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "agentwatch-e2e-raw-app"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{collector.otlp_http}/v1/logs"))
    )
    app_logger = logging.getLogger(f"raw-app-{uuid.uuid4().hex[:8]}")  # not agentwatch's: no redacting filter
    app_logger.propagate = False
    app_logger.addHandler(LoggingHandler(logger_provider=provider))
    marker = f"marker-{uuid.uuid4().hex}"
    app_logger.error("%s call failed: %s", marker, FORMS[2], exc_info=leaking_exception(), extra={"reply": FORMS[0]})
    provider.shutdown()

    def arrived() -> list[Any]:
        return [r for r in loki.records() if marker in str(r.body)]

    (record,) = wait_until(arrived, TRACE_WAIT_S, interval=0.5, what="the raw app's log record at Loki")
    stacktrace = record.attributes[n.EXCEPTION_STACKTRACE]
    assert "ValueError" in stacktrace and "****" in stacktrace and "****" in str(record.body)
    everything = json.dumps([record.body, record.attributes], default=str)
    assert find_leaks(KEYS, [("loki", everything)]) == []
