"""Shared fixtures: one in-memory OpenTelemetry setup for the whole session, the simulator, clients.

The global tracer/meter providers can be set only once per process, so they are set here and every
test reads (and clears) the same in-memory exporter and reader.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.sim import Simulator
from agentwatch.telemetry.logs import JsonFormatter
from secret_scan import PLANTED_KEY, SecretScan, SpanCapture, delta_reader

SPAN_EXPORTER = InMemorySpanExporter()
METRIC_READER = InMemoryMetricReader()
SCAN_METRIC_READER = delta_reader()  # each collection: only the series measured since the last one
SPAN_CAPTURE = SpanCapture()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPAN_EXPORTER))
_provider.add_span_processor(SPAN_CAPTURE)
trace.set_tracer_provider(_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[METRIC_READER, SCAN_METRIC_READER]))


class JsonCapture(logging.Handler):
    """Keeps every ``agentwatch`` record as the JSON object the formatter makes of it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(self.format(record)))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == name]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    SPAN_EXPORTER.clear()
    yield SPAN_EXPORTER
    SPAN_EXPORTER.clear()


@pytest.fixture
def logs() -> Iterator[JsonCapture]:
    handler = JsonCapture()
    agentwatch_logger = logging.getLogger("agentwatch")
    previous = agentwatch_logger.level
    agentwatch_logger.addHandler(handler)
    agentwatch_logger.setLevel(logging.DEBUG)
    yield handler
    agentwatch_logger.removeHandler(handler)
    agentwatch_logger.setLevel(previous)


def metric_points(name: str, **attributes: Any) -> list[Any]:
    """Data points of metric ``name`` whose attributes include ``attributes`` (cumulative)."""
    data = METRIC_READER.get_metrics_data()
    found = []
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    if all((point.attributes or {}).get(k) == v for k, v in attributes.items()):
                        found.append(point)
    return found


def metric_unit(name: str) -> str | None:
    data = METRIC_READER.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    return str(metric.unit)
    return None


def by_name(finished: list[ReadableSpan] | tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name.startswith(prefix)]


@pytest.fixture
def secret_scan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretScan]:
    """Plant an API key (``ANTHROPIC_API_KEY``, and ``runner.support.API_KEY`` for explicit clients) and
    fail the test if any form of it reaches a span, metric, log record or file under ``tmp_path``.
    Autouse in the telemetry, runner and evals folders (see tests/secret_scan.py)."""
    from runner.support import API_KEY

    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED_KEY)
    scan = SecretScan((PLANTED_KEY, API_KEY), SPAN_CAPTURE, SCAN_METRIC_READER)
    if "tmp_path" in request.fixturenames:
        scan.tmp_path = request.getfixturevalue("tmp_path")
    scan.start()
    yield scan
    leaks = scan.leaks()
    if leaks:
        pytest.fail(SecretScan.describe(leaks), pytrace=False)


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A simulator of the test's own, for fault plans that must not leak into other tests."""
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=sim.base_url)


@pytest.fixture
def aclient(sim: Simulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test-key", base_url=sim.base_url)
