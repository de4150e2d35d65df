"""Collector sizing: spans/s per core and memory against the tail-sampling window, with the shipped config.

    python bench/collector_sizing.py                      # single collector, 3 load levels, ~1.5 minutes
    python bench/collector_sizing.py --layout two-tier    # a first-tier collector and a sampler, measured apart
    python bench/collector_sizing.py --rates 50,100 --window 5 --seconds 8 --json out.json

Runs the real collector (``otelcol-agentwatch`` from ``scripts/e2e-binaries.sh``) with
collector/config.yaml (``two-tier``: config.yaml + tier1.yaml in front of config.yaml + tier2.yaml) on
127.0.0.1, its sampled traces exported to a second collector that discards them. A load generator sends
agent-shaped traces (an ``invoke_agent`` root, 3 ``chat`` and 2 ``execute_tool`` spans with the usual
attributes; ordinary successful runs, so only the 10 % baseline keeps them) as raw OTLP/HTTP protobuf at
a fixed rate per level, each level on a fresh collector. Both tail-sampling waits are set to ``--window``
seconds, so the sampler holds every trace for exactly that long: traces held = traces/s × window.

Per level, after the window has filled: CPU-seconds of each measured collector (utime + stime from
/proc/<pid>/stat) over the spans its receiver accepted (its own telemetry) = spans/s per core, and its
RSS (/proc/<pid>/status, the mean of samples taken every 0.5 s) minus its RSS at idle, divided by the
spans held = bytes per held span.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status  # noqa: E402
from tests.e2e.binaries import INSTALL_HINT, find_binary  # noqa: E402
from tests.e2e.stack import COLLECTOR_PORTS, HOST, Proc, collector_listen_env, http_get, start_on_free_ports  # noqa: E402

from agentwatch.telemetry import names as n  # noqa: E402

SPANS_PER_TRACE = 6
REQUESTS_PER_S = 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ACCEPTED = "otelcol_receiver_accepted_spans"  # the collector's own telemetry (no _total suffix)


# --- agent-shaped traces --------------------------------------------------------------------------
def _attrs(values: dict[str, str | int | float]) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        if isinstance(value, str):
            out.append(KeyValue(key=key, value=AnyValue(string_value=value)))
        elif isinstance(value, int):
            out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            out.append(KeyValue(key=key, value=AnyValue(double_value=value)))
    return out


def agent_run(rng: random.Random, now_ns: int) -> list[Span]:
    """One ordinary run: invoke_agent -> chat, execute_tool, chat, execute_tool, chat (1.5 s, OK, cheap)."""
    trace_id = rng.randbytes(16)
    root_id = rng.randbytes(8)
    start = now_ns - 1_500_000_000
    model = "claude-haiku-4-5-20251001"
    agent = "research-assistant"
    spans = [
        Span(
            trace_id=trace_id,
            span_id=root_id,
            name=f"{n.OP_INVOKE_AGENT} {agent}",
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start,
            end_time_unix_nano=now_ns,
            attributes=_attrs(
                {
                    n.GEN_AI_OPERATION_NAME: n.OP_INVOKE_AGENT,
                    n.GEN_AI_AGENT_NAME: agent,
                    n.GEN_AI_REQUEST_MODEL: model,
                    n.AW_RUN_STOP_REASON: "end_turn",
                    n.AW_RUN_COST_USD: 0.004,
                }
            ),
            status=Status(code=Status.STATUS_CODE_OK),
        )
    ]
    step = 250_000_000
    for i, op in enumerate([n.OP_CHAT, n.OP_EXECUTE_TOOL, n.OP_CHAT, n.OP_EXECUTE_TOOL, n.OP_CHAT]):
        chat = op == n.OP_CHAT
        values: dict[str, str | int | float] = {n.GEN_AI_OPERATION_NAME: op, n.GEN_AI_AGENT_NAME: agent}
        if chat:
            values |= {
                n.GEN_AI_PROVIDER_NAME: "anthropic",
                n.GEN_AI_REQUEST_MODEL: model,
                n.GEN_AI_RESPONSE_ID: "msg_" + rng.randbytes(12).hex(),
                n.GEN_AI_USAGE_INPUT_TOKENS: 1200 + 300 * i,
                n.GEN_AI_USAGE_OUTPUT_TOKENS: 180,
                n.AW_CALL_COST_USD: 0.0013,
            }
        else:
            values[n.GEN_AI_TOOL_NAME] = "web_search" if i == 1 else "calculator"
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                parent_span_id=root_id,
                name=f"{op} {model if chat else values[n.GEN_AI_TOOL_NAME]}",
                kind=Span.SPAN_KIND_CLIENT if chat else Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start + i * step,
                end_time_unix_nano=start + (i + 1) * step,
                attributes=_attrs(values),
            )
        )
    return spans


def export_request(rng: random.Random, traces: int) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans: ResourceSpans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        _attrs({"service.name": "bench-agent", "service.instance.id": "bench-1", "telemetry.sdk.language": "python"})
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "agentwatch"
    now = time.time_ns()
    for _ in range(traces):
        scope_spans.spans.extend(agent_run(rng, now))
    return request.SerializeToString()


class Load:
    """Sends ``traces_per_s`` agent runs per second to an OTLP/HTTP receiver until stopped."""

    def __init__(self, endpoint: str, traces_per_s: int, seed: int) -> None:
        self.host, port = endpoint.rsplit(":", 1)
        self.port = int(port)
        self.traces_per_s = traces_per_s
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.sent_traces = 0
        self.failures = 0
        self.behind_s = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True, name="load")

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        per_request = max(1, round(self.traces_per_s / REQUESTS_PER_S))
        interval = per_request / self.traces_per_s
        next_at = time.monotonic()
        while not self.stop.is_set():
            body = export_request(self.rng, per_request)
            try:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.sent_traces += per_request
                else:
                    self.failures += 1
            except OSError:
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                self.behind_s = max(self.behind_s, -delay)
        conn.close()

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)


# --- the collectors -------------------------------------------------------------------------------
@dataclass
class Running:
    proc: Proc
    otlp_grpc: str
    otlp_http: str
    telemetry: str

    @property
    def pid(self) -> int:
        assert self.proc.process is not None
        return self.proc.process.pid

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def accepted_spans(self) -> float:
        _, body = http_get(f"http://{self.telemetry}/metrics")
        lines = body.decode().splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(ACCEPTED + "{"))


def start(name: str, workdir: Path, argv: list[str], env: dict[str, str], health: int) -> Proc:
    proc = Proc(name, argv, workdir, env).start()
    try:
        proc.wait_healthy(f"http://{HOST}:{health}/")
    except BaseException:
        proc.stop()
        raise
    return proc


def start_sink(binary: Path, workdir: Path) -> Running:
    """A collector that accepts OTLP/gRPC traces and discards them (stands in for Jaeger)."""

    def on(ports: list[int]) -> Running:
        grpc, health, telemetry = ports
        config = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{HOST}:{grpc}"}}}},
            "exporters": {"debug": {"verbosity": "basic"}},
            "extensions": {"health_check": {"endpoint": f"{HOST}:{health}"}},
            "service": {
                "extensions": ["health_check"],
                "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}},
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            },
        }
        path = workdir / "sink.json"
        path.write_text(json.dumps(config))  # JSON is YAML
        proc = start("sink", workdir, [str(binary), f"--config={path}"], {}, health)
        return Running(proc, f"{HOST}:{grpc}", "", f"{HOST}:{telemetry}")

    return start_on_free_ports(3, on)


def start_collector(binary: Path, workdir: Path, name: str, overlays: tuple[str, ...], env: dict[str, str]) -> Running:
    """collector/config.yaml plus ``overlays`` on fresh ports (again on new ones if it lost a port race)."""
    configs = [f"--config={REPO / 'collector' / f}" for f in ("config.yaml", *overlays)]

    def on(ports: list[int]) -> Running:
        grpc, http, _, telemetry, health = ports[:5]
        full_env = {
            **collector_listen_env(ports[:COLLECTOR_PORTS]),
            "AGENTWATCH_LOKI_OTLP_ENDPOINT": f"http://{HOST}:{ports[-1]}/otlp",  # no logs are sent
            "AGENTWATCH_COLLECTOR_LOG_LEVEL": "warn",
            **env,
        }
        proc = start(name, workdir, [str(binary), *configs], full_env, health)
        return Running(proc, f"{HOST}:{grpc}", f"{HOST}:{http}", f"{HOST}:{telemetry}")

    return start_on_free_ports(COLLECTOR_PORTS + 1, on)


# --- one level ------------------------------------------------------------------------------------
@dataclass
class Measured:
    level: int  # traces/s asked of the generator
    layout: str
    collector: str
    traces_per_s: float
    spans_per_s: float
    cpu_cores: float  # CPU-seconds per second
    spans_per_s_per_core: float
    rss_idle_mb: float
    rss_mb: float
    spans_held: float  # in the tail-sampling window (0 for a first-tier collector)
    bytes_per_held_span: float | None
    load_failures: int
    generator_behind_s: float


def measure_level(
    binary: Path, workdir: Path, sink: Running, layout: str, rate: int, window_s: float, seconds: float
) -> list[Measured]:
    waits = {
        "AGENTWATCH_SAMPLING_DECISION_WAIT": f"{window_s}s",
        "AGENTWATCH_SAMPLING_AFTER_ROOT_WAIT": f"{window_s}s",
        "AGENTWATCH_JAEGER_OTLP_ENDPOINT": sink.otlp_grpc,
    }
    started: list[tuple[str, Running]] = []
    try:
        if layout == "single":
            entry = start_collector(binary, workdir, f"collector-{rate}", (), waits)
            started.append(("single", entry))
        else:
            sampler = start_collector(binary, workdir, f"sampler-{rate}", ("tier2.yaml",), waits)
            started.append(("tier2 (sampler)", sampler))
            entry = start_collector(
                binary,
                workdir,
                f"node-{rate}",
                ("tier1.yaml",),
                {**waits, "AGENTWATCH_SAMPLING_TIER": f"[{sampler.otlp_grpc}]"},
            )
            started.insert(0, ("tier1 (node)", entry))
        idle = {name: c.rss_mb() for name, c in started}
        with Load(entry.otlp_http, rate, seed=rate) as load:
            # Fill the window (each trace is held window_s), then measure the steady state.
            time.sleep(window_s + 2.0)
            before = {name: (c.cpu_s(), c.accepted_spans()) for name, c in started}
            t0 = time.monotonic()
            rss: dict[str, list[float]] = {name: [] for name, _ in started}
            while time.monotonic() - t0 < seconds:
                for name, c in started:
                    rss[name].append(c.rss_mb())
                time.sleep(0.5)
            elapsed = time.monotonic() - t0
            after = {name: (c.cpu_s(), c.accepted_spans()) for name, c in started}
        results = []
        for name, _ in started:
            cpu = after[name][0] - before[name][0]
            spans = after[name][1] - before[name][1]
            held = spans / elapsed * window_s if name != "tier1 (node)" else 0.0  # arrived within one window
            mean_rss = statistics.fmean(rss[name])
            results.append(
                Measured(
                    level=rate,
                    layout=layout,
                    collector=name,
                    traces_per_s=spans / elapsed / SPANS_PER_TRACE,
                    spans_per_s=spans / elapsed,
                    cpu_cores=cpu / elapsed,
                    spans_per_s_per_core=spans / cpu if cpu else float("nan"),
                    rss_idle_mb=idle[name],
                    rss_mb=mean_rss,
                    spans_held=held,
                    bytes_per_held_span=(mean_rss - idle[name]) * 1024 * 1024 / held if held else None,
                    load_failures=load.failures,
                    generator_behind_s=load.behind_s,
                )
            )
        return results
    finally:
        for _, c in reversed(started):
            c.proc.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", choices=["single", "two-tier"], default="single")
    parser.add_argument("--rates", default="250,1000,2000", help="traces/s per level (6 spans each)")
    parser.add_argument("--window", type=float, default=10.0, help="tail-sampling wait in seconds")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per level")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    binary = find_binary("otelcol-agentwatch")
    if binary is None:
        raise SystemExit(f"otelcol-agentwatch not found: {INSTALL_HINT}")
    rates = [int(r) for r in args.rates.split(",")]
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="collector-sizing-") as tmp:
        workdir = Path(tmp)
        sink = start_sink(binary, workdir)
        try:
            for rate in rates:
                print(f"level {rate} traces/s ({rate * SPANS_PER_TRACE} spans/s) ...", file=sys.stderr, flush=True)
                results += measure_level(binary, workdir, sink, args.layout, rate, args.window, args.seconds)
        finally:
            sink.proc.stop()
    print_table(results, args.window, os.cpu_count() or 1)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


def print_table(results: list[Measured], window_s: float, cpus: int) -> None:
    print(f"collector/config.yaml, otelcol 0.159.0, tail-sampling window {window_s:g} s, {cpus} CPUs (shared)")
    print(
        "| layout | collector | traces/s | spans/s | CPU cores | spans/s per core | RSS idle MB | RSS MB "
        "| spans held | bytes per held span |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        per_span = f"{r.bytes_per_held_span:,.0f}" if r.bytes_per_held_span is not None else "—"
        print(
            f"| {r.layout} | {r.collector} | {r.traces_per_s:,.0f} | {r.spans_per_s:,.0f} | {r.cpu_cores:.2f} "
            f"| {r.spans_per_s_per_core:,.0f} | {r.rss_idle_mb:.0f} | {r.rss_mb:.0f} "
            f"| {r.spans_held:,.0f} | {per_span} |"
        )
    behind = {r.level: r for r in results if r.load_failures or r.generator_behind_s > 1.0}
    for level, r in behind.items():
        print(
            f"note: at {level} traces/s the generator had {r.load_failures} failed requests and fell up to "
            f"{r.generator_behind_s:.1f} s behind (the rates above are what the collector accepted)"
        )


if __name__ == "__main__":
    main()
