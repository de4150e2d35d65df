"""What a broken telemetry backend costs a run: run latency with exporters that fail vs telemetry that works.

    python bench/exporter_failure.py                  # 5 rounds x 30 demo runs per mode (~1-2 minutes)
    python bench/exporter_failure.py --rounds 5 --runs 100 --latency 0.01 --json out.json

Each mode runs in its own fresh interpreter (the global OpenTelemetry providers can be set once per
process) with an in-process simulator, timing whole demo-agent runs (3 LLM calls, 2 tool calls). Modes:

  off             no telemetry configured (the OpenTelemetry API's no-op providers)        (the baseline)
  healthy         configure_telemetry with exporters that accept everything
  raising         a span exporter that sleeps 0.2 s and raises, a log exporter that raises
  collector-down  OTLP export of traces, metrics and logs to a 127.0.0.1 port nobody listens on

Every telemetry mode exports metrics every 50 ms and uses a 0.5 s export timeout, so failures happen
all through the timed runs. Two numbers per mode: the median wall-clock time of a run (what a caller
waits) and the process CPU time per run (the work, the exporter threads' included; far less disturbed
by other load on the machine). Modes are interleaved in rounds (order rotated each round); a mode's
number is the median of its per-round numbers, and its ratio is the median over rounds of (its number /
the baseline's in the same round). The test (tests/telemetry/test_safety.py) only holds a generous bound
that catches an exporter on the request path; this prints the real ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

MODES = ("off", "healthy", "raising", "collector-down")
WARMUP_RUNS = 5


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_", "AGENTWATCH_"))}
    if mode == "collector-down":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    return env


def _configure(mode: str) -> None:
    """Install the telemetry of ``mode`` (nothing for ``off``)."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from agentwatch.telemetry.setup import configure_telemetry

    class AcceptingSpans(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class AcceptingLogs(LogRecordExporter):
        def export(self, batch: Any) -> LogRecordExportResult:
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    class SlowRaisingSpans(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            time.sleep(0.2)
            raise ConnectionError("collector down")

    class RaisingLogs(AcceptingLogs):
        def export(self, batch: Any) -> LogRecordExportResult:
            raise ConnectionError("log collector down")

    if mode == "off":
        return
    exporters: dict[str, tuple[list[Any], list[Any]]] = {
        "healthy": ([AcceptingSpans()], [AcceptingLogs()]),
        "raising": ([SlowRaisingSpans()], [RaisingLogs()]),
        "collector-down": ([], []),  # the OTLP exporters, from OTEL_EXPORTER_OTLP_ENDPOINT
    }
    spans, logs = exporters[mode]
    configure_telemetry(
        "bench-exporter-failure",
        span_exporters=spans,
        log_exporters=logs,
        metric_readers=[InMemoryMetricReader()] if mode != "collector-down" else [],
        export_timeout_s=0.5,
        metric_interval_s=0.05,
        shutdown_timeout_s=1.0,
        install_signal_handler=False,
    )


def worker(mode: str, runs: int, latency_s: float) -> dict[str, Any]:
    """Time ``runs`` demo runs in this process under ``mode``; the runs' outcomes prove they did the same work."""
    import anthropic

    from agentwatch.demo import DEMO_TASK, demo_agent
    from agentwatch.sim import Simulator

    _configure(mode)
    agent = demo_agent()
    durations: list[float] = []
    outcomes: set[tuple[str, int, int]] = set()
    with Simulator(latency_s=latency_s) as sim:
        client = anthropic.Anthropic(api_key="bench", base_url=sim.base_url, max_retries=0)
        for i in range(WARMUP_RUNS + runs):
            if i == WARMUP_RUNS:
                cpu_started = time.process_time()
            started = time.perf_counter()
            result = agent.run(DEMO_TASK, client=client)
            if i >= WARMUP_RUNS:
                durations.append(time.perf_counter() - started)
            outcomes.add((result.stop_reason.value, result.usage.total_tokens, result.iterations))
        cpu_per_run = (time.process_time() - cpu_started) / runs
    return {"median_s": statistics.median(durations), "cpu_s": cpu_per_run, "outcomes": sorted(outcomes)}


def _run_worker(mode: str, runs: int, latency_s: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", mode, "--runs", str(runs), "--latency", str(latency_s)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(mode), timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"the {mode} worker failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30, help="timed demo runs per mode and round")
    parser.add_argument("--latency", type=float, default=0.0, help="simulator latency per call (s)")
    parser.add_argument("--json", help="also write every number to this file")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.runs, args.latency)))
        return

    rounds: list[dict[str, dict[str, Any]]] = []
    for r in range(args.rounds):
        order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
        rounds.append({mode: _run_worker(mode, args.runs, args.latency) for mode in order})
        medians = ", ".join(f"{m} {rounds[-1][m]['median_s'] * 1e3:.1f} ms" for m in MODES)
        print(f"round {r + 1}/{args.rounds}: {medians}")
    outcomes = {mode: {tuple(o) for rnd in rounds for o in rnd[mode]["outcomes"]} for mode in MODES}
    same = len({frozenset(o) for o in outcomes.values()}) == 1

    print(f"\n{args.rounds} rounds x {args.runs} demo runs per mode, simulator latency {args.latency} s per call")
    print(
        f"{'mode':<16}{'median run':>12}{'x off':>8}{'x healthy':>11}{'CPU per run':>14}{'x off':>8}{'x healthy':>11}"
    )
    summary: dict[str, dict[str, float]] = {}
    for mode in MODES:
        row: dict[str, float] = {}
        for key in ("median_s", "cpu_s"):
            row[key] = statistics.median(rnd[mode][key] for rnd in rounds)
            for base in ("off", "healthy"):
                row[f"{key}_x_{base}"] = statistics.median(rnd[mode][key] / rnd[base][key] for rnd in rounds)
        summary[mode] = row
        print(
            f"{mode:<16}{row['median_s'] * 1e3:>9.2f} ms{row['median_s_x_off']:>8.3f}{row['median_s_x_healthy']:>11.3f}"
            f"{row['cpu_s'] * 1e3:>11.2f} ms{row['cpu_s_x_off']:>8.3f}{row['cpu_s_x_healthy']:>11.3f}"
        )
    print("every mode's runs had the same outcomes" if same else f"OUTCOMES DIFFER between modes: {outcomes}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "rounds": rounds, "summary": summary, "same_outcomes": same}, out, indent=2)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
