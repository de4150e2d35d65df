"""Processes, listeners and clients for the end-to-end stack (fixtures in conftest.py use them)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0

# Tail-sampling settings the session collector runs with (the shipped defaults are for production).
SAMPLING_ENV = {
    "AGENTWATCH_SAMPLING_BASELINE_PERCENT": "50",
    "AGENTWATCH_SAMPLING_SLOW_MS": "3000",  # the slow run takes two 2.2 s LLM calls
    "AGENTWATCH_SAMPLING_COST_USD": "0.10",
    "AGENTWATCH_SAMPLING_DECISION_WAIT": "5s",
    "AGENTWATCH_SAMPLING_AFTER_ROOT_WAIT": "1s",
    "AGENTWATCH_SPANMETRICS_FLUSH_INTERVAL": "1s",
}


# --- small helpers -------------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (all held open together while picked).

    Another process can still take one before the binary binds it; Proc.wait_healthy reports that as
    PortTaken and start_on_free_ports tries again with fresh ports.
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class PortTaken(RuntimeError):
    """A binary exited at start because a port picked for it was bound by someone else meanwhile."""


T = TypeVar("T")


def start_on_free_ports(count: int, start: Callable[[list[int]], T], attempts: int = 3) -> T:
    """``start(ports)`` with ``count`` fresh ports, again with new ones when it lost a port race."""
    for _ in range(attempts - 1):
        try:
            return start(free_ports(count))
        except PortTaken:
            pass
    return start(free_ports(count))


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; raise with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )


class Proc:
    """A child process with its output in a log file, started and stopped by a fixture."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = workdir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir = workdir

    def start(self) -> Proc:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir, start_new_session=True
        )
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_healthy(self, url: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                error = PortTaken if "address already in use" in tail else RuntimeError
                raise error(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            try:
                status, _ = http_get(url, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy at {url} after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class _Listener:
    """A ThreadingHTTPServer on 127.0.0.1 running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer((HOST, 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- what the collector sends Loki, as a second collector (OTLP receiver -> file exporter) wrote it ---
def _any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return {kv["key"]: _any_value(kv.get("value", {})) for kv in value["kvlistValue"].get("values", [])}
    return None


def attributes_of(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value", {})) for kv in items or []}


@dataclass
class LogRecord:
    trace_id: str
    span_id: str
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]


def read_otlp_json_logs(path: Path) -> list[LogRecord]:
    """The log records in a file exporter's output (one OTLP-JSON export request per line).

    OTLP-JSON writes trace and span ids as hex; a line still being written is left for the next read.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        for resource_logs in json.loads(line).get("resourceLogs", []):
            resource = attributes_of(resource_logs.get("resource", {}).get("attributes", []))
            for scope_logs in resource_logs.get("scopeLogs", []):
                for rec in scope_logs.get("logRecords", []):
                    records.append(
                        LogRecord(
                            trace_id=rec.get("traceId", ""),
                            span_id=rec.get("spanId", ""),
                            severity_text=rec.get("severityText", ""),
                            body=_any_value(rec.get("body", {})),
                            attributes=attributes_of(rec.get("attributes", [])),
                            resource=resource,
                        )
                    )
    return records


# --- the Alertmanager webhook listener -----------------------------------------------------------
class AlertWebhook(_Listener):
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__(_WebhookHandler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/alerts"

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [alert for payload in self.payloads for alert in payload.get("alerts", [])]


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner: AlertWebhook = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.payloads.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- components ----------------------------------------------------------------------------------
@dataclass
class Jaeger:
    proc: Proc
    otlp_grpc: str  # host:port
    query_url: str

    def get_trace(self, trace_id: str) -> list[dict[str, Any]] | None:
        """The spans of a trace (OTLP-JSON dicts, with `resource` attributes merged in), or None."""
        status, body = http_get(f"{self.query_url}/api/v3/traces/{trace_id}")
        if status == 404:
            return None
        if status != 200:
            raise ValueError(f"jaeger answered {status}: {body[:300]!r}")
        data = json.loads(body)
        spans = []
        for rs in data.get("result", {}).get("resourceSpans", []):
            resource = attributes_of(rs.get("resource", {}).get("attributes", []))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    span = dict(span)
                    span["attrs"] = attributes_of(span.get("attributes", []))
                    span["resource"] = resource
                    span["event_attrs"] = [
                        (e.get("name"), attributes_of(e.get("attributes", []))) for e in span.get("events", [])
                    ]
                    spans.append(span)
        return spans or None


@dataclass
class Collector:
    proc: Proc
    otlp_grpc: str
    otlp_http: str  # base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
    prometheus_exporter: str  # host:port scraped by Prometheus
    telemetry: str
    health_url: str

    def own_metric(self, name: str, label: str = "") -> float:
        """The sum of the collector's own metric ``name`` over its series whose labels contain ``label``."""
        _, body = http_get(f"http://{self.telemetry}/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] == name and label in series:
                total += float(value)
        return total

    def wait_traces_settled(self, timeout: float = 90.0) -> None:
        """Wait until every trace received so far is decided and out: no trace waits for a sampling
        decision, the Jaeger export queue is empty, and the spans sent to Jaeger stayed the same for
        longer than the batch processor's 2 s timeout (so nothing is still being batched). After this,
        a trace missing from Jaeger was dropped, not late."""
        quiet_s = 3.0
        last: list[float] = []
        since = time.monotonic()

        def settled() -> bool:
            nonlocal last, since
            state = [
                self.own_metric("otelcol_processor_tail_sampling_sampling_traces_on_memory"),
                self.own_metric("otelcol_exporter_queue_size", 'exporter="otlp_grpc/jaeger"'),
                self.own_metric("otelcol_exporter_sent_spans", 'exporter="otlp_grpc/jaeger"'),
            ]
            if state[0] or state[1] or state != last:
                last, since = state, time.monotonic()
                return False
            return time.monotonic() - since >= quiet_s

        wait_until(settled, timeout, what=f"{self.proc.name} to decide and export every trace")


@dataclass
class Prometheus:
    proc: Proc
    url: str

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.url}{path}?{query}", timeout=10)
        data = json.loads(body)
        if status != 200 or data.get("status") != "success":
            raise AssertionError(f"prometheus {path} {params}: {status} {data.get('error', body[:300])}")
        return data["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("/api/v1/query", query=expr)["result"])


@dataclass
class LokiStandIn:
    """A second real collector in Loki's place: it receives OTLP/HTTP logs on Loki's path
    (/otlp/v1/logs) and writes them to a file, so tests read exactly what Loki would receive."""

    proc: Proc
    endpoint: str  # base URL for the collector's otlp_http/loki exporter (it appends /v1/logs)
    output: Path

    def records(self) -> list[LogRecord]:
        return read_otlp_json_logs(self.output)


@dataclass
class Alertmanager:
    proc: Proc
    url: str


COLLECTOR_PORTS = 7  # what collector_listen_env takes


def collector_listen_env(ports: list[int]) -> dict[str, str]:
    """collector/config.yaml's listener variables on 127.0.0.1 ``ports`` (OTLP gRPC, OTLP HTTP, prometheus
    exporter, own telemetry, health, zpages, pprof), for a Collector(..., otlp_grpc=ports[0], ...)."""
    grpc, http, prom, telemetry, health, zpages, pprof = ports
    return {
        "AGENTWATCH_OTLP_GRPC_ENDPOINT": f"{HOST}:{grpc}",
        "AGENTWATCH_OTLP_HTTP_ENDPOINT": f"{HOST}:{http}",
        "AGENTWATCH_PROMETHEUS_EXPORTER_ENDPOINT": f"{HOST}:{prom}",
        "AGENTWATCH_COLLECTOR_TELEMETRY_HOST": HOST,
        "AGENTWATCH_COLLECTOR_TELEMETRY_PORT": str(telemetry),
        "AGENTWATCH_HEALTH_ENDPOINT": f"{HOST}:{health}",
        "AGENTWATCH_ZPAGES_ENDPOINT": f"{HOST}:{zpages}",
        "AGENTWATCH_PPROF_ENDPOINT": f"{HOST}:{pprof}",
    }
