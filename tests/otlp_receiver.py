"""A real OTLP/HTTP (protobuf) receiver on 127.0.0.1 for tests whose telemetry comes from other processes.

Worker and Lambda processes export with the SDK's own OTLP exporters (``OTEL_EXPORTER_OTLP_ENDPOINT``
pointed here); the test reads back what arrived, decoded into plain dicts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # MessageToDict of each Metric + resource
    logs: list[dict[str, Any]] = field(default_factory=list)  # body, attributes, trace_id


class OtlpReceiver:
    """``with OtlpReceiver() as otlp:`` then ``OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint`` in the child env."""

    def __init__(self) -> None:
        self.received = Received()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.take(self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self, path: str, body: bytes) -> None:
        with self.lock:
            if path == "/v1/traces":
                traces = ExportTraceServiceRequest.FromString(body)
                for rs in traces.resource_spans:
                    resource = _attributes(rs.resource.attributes)
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            self.received.spans.append(
                                Span(
                                    name=s.name,
                                    trace_id=s.trace_id.hex(),
                                    span_id=s.span_id.hex(),
                                    parent_span_id=s.parent_span_id.hex(),
                                    kind=s.kind,
                                    attributes=_attributes(s.attributes),
                                    resource=resource,
                                    status_code=s.status.code,
                                )
                            )
            elif path == "/v1/metrics":
                metrics = ExportMetricsServiceRequest.FromString(body)
                for rm in metrics.resource_metrics:
                    resource = _attributes(rm.resource.attributes)
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            self.received.metrics.append({**MessageToDict(m), "resource": resource})
            elif path == "/v1/logs":
                logs = ExportLogsServiceRequest.FromString(body)
                for rl in logs.resource_logs:
                    for sl in rl.scope_logs:
                        for record in sl.log_records:
                            self.received.logs.append(
                                {
                                    "body": _value(record.body),
                                    "attributes": _attributes(record.attributes),
                                    "trace_id": record.trace_id.hex(),
                                }
                            )

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self.lock:
            return [s for s in self.received.spans if trace_id is None or s.trace_id == trace_id]

    def metric_points(self, name: str) -> list[dict[str, Any]]:
        """Data points of metric ``name`` (gauge, sum or histogram), as protobuf-JSON dicts."""
        with self.lock:
            found = []
            for metric in self.received.metrics:
                if metric.get("name") != name:
                    continue
                for kind in ("gauge", "sum", "histogram"):
                    found += metric.get(kind, {}).get("dataPoints", [])
            return found

    def logs(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received.logs if trace_id is None or r["trace_id"] == trace_id]
