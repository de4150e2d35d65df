"""A human-readable span tree of one run, with tokens and cost per span (used by the demo and CLI)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentwatch.telemetry import names as n


class SpanTreeCollector(SpanExporter):
    """Keeps the most recent finished spans in memory (bounded) so a run's tree can be printed."""

    def __init__(self, max_spans: int = 10_000) -> None:
        self._spans: deque[ReadableSpan] = deque(maxlen=max_spans)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    def spans_of(self, trace_id: int) -> list[ReadableSpan]:
        with self._lock:
            return [s for s in self._spans if s.context is not None and s.context.trace_id == trace_id]

    def render(self, trace_id: int) -> str:
        """The tree of ``trace_id`` as indented lines: name, duration, tokens, cost, status."""
        spans = self.spans_of(trace_id)
        ids = {s.context.span_id for s in spans if s.context is not None}
        children: dict[int | None, list[ReadableSpan]] = {}
        for span in spans:
            parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
            children.setdefault(parent, []).append(span)
        lines: list[str] = []

        def walk(parent: int | None, depth: int) -> None:
            for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
                lines.append("  " * depth + ("└─ " if depth else "") + describe(span))
                if span.context is not None:
                    walk(span.context.span_id, depth + 1)

        walk(None, 0)
        return "\n".join(lines)


def describe(span: ReadableSpan) -> str:
    attrs: dict[str, Any] = dict(span.attributes or {})
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    parts = [f"{span.name}  {duration_ms:.1f} ms"]
    if n.GEN_AI_USAGE_INPUT_TOKENS in attrs:
        parts.append(f"in={attrs[n.GEN_AI_USAGE_INPUT_TOKENS]} out={attrs.get(n.GEN_AI_USAGE_OUTPUT_TOKENS)}")
        cache_read = attrs.get(n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        if cache_read:
            parts.append(f"cache_read={cache_read}")
    if n.AW_CALL_COST_USD in attrs:
        parts.append(f"${attrs[n.AW_CALL_COST_USD]:.6f}")
    if n.AW_RUN_STOP_REASON in attrs:
        parts.append(
            f"stop={attrs[n.AW_RUN_STOP_REASON]} tokens={attrs.get(n.AW_RUN_INPUT_TOKENS)}+"
            f"{attrs.get(n.AW_RUN_OUTPUT_TOKENS)}"
        )
        if n.AW_RUN_COST_USD in attrs:
            parts.append(f"${attrs[n.AW_RUN_COST_USD]:.6f}")
    if n.AW_TOOL_OUTCOME in attrs:
        parts.append(f"outcome={attrs[n.AW_TOOL_OUTCOME]}")
    if span.status.status_code.name == "ERROR":
        parts.append(f"ERROR {attrs.get(n.ERROR_TYPE, '')}".rstrip())
    return "  ".join(parts)
