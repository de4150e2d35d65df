"""The secret scan: plant an API key, capture everything agentwatch writes, fail the test if the key is in it.

``SecretScan`` (the ``secret_scan`` fixture in tests/conftest.py, autouse in the telemetry, runner and
evals folders) sets ``ANTHROPIC_API_KEY`` to ``PLANTED_KEY`` for every client a test builds from the
environment, and after the test looks for that key, and for ``runner.support.API_KEY`` (the key tests
pass to clients explicitly), in every form it could take (``leak_forms``) in:

- every span that ended during the test: name, attributes, status, events and their attributes, links;
- every metric data point's attributes;
- every record on the ``agentwatch`` loggers, as a plain handler of the application's would see it
  (message, fields, formatted traceback) and as the JSON formatter writes it;
- every file the test wrote under its ``tmp_path`` (JSON log files, eval reports, JUnit, Markdown).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Counter, Histogram, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from agentwatch.telemetry.logs import JsonFormatter

PLANTED_KEY = "sk-ant-api03-" + "pL4nT" * 17 + "-QQ"  # shaped like a real key (108 characters)
MAX_FILE_BYTES = 5_000_000


def leak_forms(key: str) -> list[str]:
    """Substrings whose presence means ``key`` leaked: the key itself (also inside ``Bearer …``, before a
    newline, in a bytes repr), its URL-encoded forms, and its secret part alone (a truncated copy)."""
    secret = key.removeprefix("sk-ant-api03-")
    return [
        key,
        urllib.parse.quote(key, safe=""),
        key.replace("-", "%2D"),
        key.replace("-", "%2d"),
        urllib.parse.quote_plus(f"Bearer {key}"),
        secret[:24],
        secret[-24:],
    ]


def find_leaks(keys: Iterable[str], sources: Iterable[tuple[str, str]]) -> list[str]:
    """``where: …context…`` for every source text that holds any form of any key."""
    forms = [form for key in keys for form in leak_forms(key)]
    found = []
    for where, text in sources:
        for form in forms:
            at = text.find(form)
            if at >= 0:
                found.append(f"{where}: …{text[max(0, at - 80) : at + len(form) + 20]!r}…")
                break
    return found


class SpanCapture(SpanProcessor):
    """Keeps the spans that end while a scan is active (added once to the session's tracer provider)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReadableSpan] | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            if self._spans is not None:
                self._spans.append(span)

    def begin(self) -> None:
        with self._lock:
            self._spans = []

    def end(self) -> list[ReadableSpan]:
        with self._lock:
            spans, self._spans = self._spans or [], None
        return spans


class LogCapture(logging.Handler):
    """Every ``agentwatch`` record, as an application's plain handler and the JSON formatter see it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.plain = logging.Formatter("%(levelname)s %(name)s %(message)s")
        self.json = JsonFormatter()
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {k: v for k, v in record.__dict__.items() if k not in ("msg", "args", "exc_info")}
        self.texts.append(self.plain.format(record) + "\n" + json.dumps(fields, default=repr))
        self.texts.append(self.json.format(record))


def span_texts(spans: Iterable[ReadableSpan]) -> Iterator[tuple[str, str]]:
    for span in spans:
        parts = [span.name, json.dumps(dict(span.attributes or {}), default=str), span.status.description or ""]
        parts += [json.dumps([e.name, dict(e.attributes or {})], default=str) for e in span.events]
        parts += [json.dumps(dict(link.attributes or {}), default=str) for link in span.links]
        yield f"span {span.name!r}", "\n".join(parts)


def delta_reader() -> InMemoryMetricReader:
    """A reader whose every collection holds only the series measured since the previous one."""
    temporality = {kind: AggregationTemporality.DELTA for kind in (Counter, Histogram, UpDownCounter)}
    return InMemoryMetricReader(preferred_temporality=temporality)  # type: ignore[arg-type]


def metric_texts(reader: InMemoryMetricReader) -> Iterator[tuple[str, str]]:
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = [dict(p.attributes or {}) for p in metric.data.data_points]
                yield f"metric {metric.name!r}", json.dumps(points, default=str)


def file_texts(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
            yield f"file {path.name}", path.read_text(encoding="utf-8", errors="replace")


class SecretScan:
    """One test's scan: ``start``, then the test, then ``leaks`` (empty when nothing leaked)."""

    def __init__(self, keys: tuple[str, ...], spans: SpanCapture, reader: InMemoryMetricReader) -> None:
        self.keys = keys
        self._spans = spans
        self._reader = reader
        self.logs = LogCapture()
        self.tmp_path: Path | None = None

    def start(self) -> None:
        self._reader.get_metrics_data()  # what earlier tests measured is theirs
        self._spans.begin()
        logging.getLogger("agentwatch").addHandler(self.logs)

    def leaks(self) -> list[str]:
        """Stop capturing and return where the keys were found."""
        logging.getLogger("agentwatch").removeHandler(self.logs)
        sources: list[tuple[str, str]] = [*span_texts(self._spans.end()), *metric_texts(self._reader)]
        sources += [("log record", text) for text in self.logs.texts]
        if self.tmp_path is not None and self.tmp_path.exists():
            sources += file_texts(self.tmp_path)
        return find_leaks(self.keys, sources)

    @staticmethod
    def describe(leaks: list[str]) -> str:
        return "the planted API key leaked into what agentwatch writes:\n" + "\n".join(leaks[:10])


def scan_texts(keys: Iterable[str], texts: Iterable[Any]) -> list[str]:
    """``find_leaks`` over plain values (for tests that check one output directly)."""
    return find_leaks(keys, ((f"value {i}", str(text)) for i, text in enumerate(texts)))
