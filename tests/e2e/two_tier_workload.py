"""Concurrent real agent runs for the two-tier test: the child process behind ``run_split``.

    python -m tests.e2e.two_tier_workload --node http://127.0.0.1:4318 [--node ...] \\
        [--also http://127.0.0.1:4328] [--split-spans] --threads 8 < specs.json   # prints the runs as JSON

The runs are ``agent_workload.Runner`` runs (real ``agentwatch.Agent``, real SDK, simulators on
127.0.0.1) on ``--threads`` threads at once, with telemetry from ``configure_telemetry``:

- one ``--node``: everything goes there through the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (an agent
  and its node's collector, the sidecar/DaemonSet case);
- ``--split-spans`` with two nodes: metrics and logs go to the first, and the spans alternate between the
  nodes one by one, so every trace arrives in pieces at different first-tier collectors (the worst case
  the load-balancing tier must repair);
- ``--also``: every span is also exported, whole, to a further collector (the single-collector
  reference the test compares sampling decisions with, on the very same traces).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run by path: make `tests.e2e` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from tests.e2e.agent_workload import Runner

from agentwatch.telemetry.setup import configure_telemetry


class AlternatingSpans(SpanExporter):
    """Sends span 1 of a batch to the first exporter, span 2 to the second, and so on."""

    def __init__(self, exporters: Sequence[SpanExporter]) -> None:
        self.exporters = list(exporters)
        self.turn = itertools.cycle(range(len(self.exporters)))
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        shares: list[list[ReadableSpan]] = [[] for _ in self.exporters]
        with self.lock:
            for span in spans:
                shares[next(self.turn)].append(span)
        results = [exporter.export(share) for exporter, share in zip(self.exporters, shares, strict=True) if share]
        ok = all(result is SpanExportResult.SUCCESS for result in results)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        for exporter in self.exporters:
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(exporter.force_flush(timeout_millis) for exporter in self.exporters)


def traces_exporter(base_url: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{base_url}/v1/traces", timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", action="append", required=True, help="a first-tier collector's OTLP/HTTP base URL")
    parser.add_argument("--also", help="a further collector that gets every span too")
    parser.add_argument("--split-spans", action="store_true", help="alternate spans between the --node collectors")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    specs = json.load(sys.stdin)
    # stdout carries the result only: anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    extra: list[SpanExporter] = [traces_exporter(args.also)] if args.also else []
    if args.split_spans:
        if len(args.node) < 2:
            raise SystemExit("--split-spans needs two --node collectors")
        first = args.node[0]
        os.environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = f"{first}/v1/metrics"
        os.environ["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] = f"{first}/v1/logs"
        extra.append(AlternatingSpans([traces_exporter(node) for node in args.node]))
    else:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = args.node[0]
    telemetry = configure_telemetry(
        span_exporters=extra, metric_interval_s=1.0, export_timeout_s=5.0, shutdown_timeout_s=20.0
    )
    runner = Runner(args.seed)
    telemetry.tracer_provider.add_span_processor(runner.spans)
    try:
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            runs = list(pool.map(runner.run, specs))
    finally:
        runner.close()
        telemetry.shutdown()
    out.write(json.dumps([run.to_json() for run in runs]) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
