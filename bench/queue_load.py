"""Queue and Lambda benchmark: jobs/s and enqueue-to-start latency per worker pool size; Lambda cold start
and the time the telemetry flush adds per invocation.

    python bench/queue_load.py                  # ~2 minutes; needs the queue and lambda extras,
                                                # /usr/bin/redis-server and aws-lambda-rie (scripts/e2e-binaries.sh rie)
    python bench/queue_load.py --quick          # fewer jobs and invocations
    python bench/queue_load.py --json out.json

Queue: one real redis-server, one `agentwatch worker --concurrency N` (N prefork pool processes) per row,
the in-process simulator answering every model call after a fixed latency. Jobs are submitted as fast as
possible; jobs/s is jobs / (last result - first submit). Enqueue-to-start is the ``agentwatch.queue.wait_s``
attribute of each job's consumer span, exported by the worker over OTLP to a receiver in this process: in
the burst it is mostly the backlog ahead of the job; "idle start" submits one job at a time.

Lambda: the Runtime Interface Emulator running tests/serverless/lambda_app.py through awslambdaric. Cold
start = first invocation - median warm invocation (Python start, imports, telemetry setup), over fresh
emulators. Flush = median warm invocation exporting to an OTLP receiver - median warm invocation with no
exporter configured (the force flush then has nothing to send).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]  # the OTLP receiver the tests use

from agentwatch.queue import result, submit  # noqa: E402
from agentwatch.queue.client import producer_app  # noqa: E402
from agentwatch.sim import Simulator  # noqa: E402
from agentwatch.telemetry import names as n  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402

REDIS = "/usr/bin/redis-server"
RIE = Path(os.environ.get("AGENTWATCH_BIN_CACHE") or Path.home() / ".cache/agentwatch/bin") / "aws-lambda-rie"
AGENT = f"{REPO / 'tests/queueing/queue_agents.py'}:plain"  # no tools: one model call per job
LATENCY_S = 0.05
IDLE_JOBS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def queue_waits(otlp: OtlpReceiver, run_ids: list[str]) -> list[float]:
    """The time in queue of each of ``run_ids`` (from its consumer span), once all have arrived."""
    wanted = set(run_ids)
    found = [
        float(s.attributes[n.AW_QUEUE_WAIT_S])
        for s in otlp.spans()
        if s.attributes.get(n.MESSAGING_MESSAGE_ID) in wanted and n.AW_QUEUE_WAIT_S in s.attributes
    ]
    return found if len(found) >= len(wanted) else []


def queue_row(concurrency: int, jobs: int, sim: Simulator, workdir: Path) -> dict[str, Any]:
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    redis_proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        cwd=workdir,
    )
    try:
        with OtlpReceiver() as otlp:
            env = {
                **os.environ,
                "ANTHROPIC_BASE_URL": sim.base_url,
                "ANTHROPIC_API_KEY": "bench",
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
                "OTEL_SERVICE_NAME": "bench-worker",
            }
            argv = [sys.executable, "-m", "agentwatch.cli", "worker", AGENT, "--broker", broker]
            worker = subprocess.Popen(
                [*argv, "--concurrency", str(concurrency), "--margin", "5"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=workdir,
            )
            try:
                wait_for(lambda: producer_app(broker).control.ping(timeout=0.5), 60, "the worker")
                # Warm every pool process before timing.
                for run_id in [submit(AGENT, f"warm up {i}", broker=broker) for i in range(concurrency * 2)]:
                    result(run_id, timeout=60, broker=broker)
                start = time.perf_counter()
                run_ids = [submit(AGENT, f"Say hello {uuid.uuid4().hex[:8]}", broker=broker) for _ in range(jobs)]
                for run_id in run_ids:
                    result(run_id, timeout=300, broker=broker)
                elapsed = time.perf_counter() - start

                wait_s = wait_for(lambda: queue_waits(otlp, run_ids), 60, "every job's consumer span")
                # One job at a time: the start latency of a job that finds an idle worker.
                idle_ids = []
                for i in range(IDLE_JOBS):
                    idle_ids.append(submit(AGENT, f"alone {i}", broker=broker))
                    result(idle_ids[-1], timeout=60, broker=broker)
                idle_s = wait_for(lambda: queue_waits(otlp, idle_ids), 60, "the idle jobs' consumer spans")
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
    return {
        "pool_processes": concurrency,
        "jobs": jobs,
        "jobs_per_s": jobs / elapsed,
        "ideal_jobs_per_s": concurrency / LATENCY_S,
        "enqueue_to_start_p50_ms": quantile(wait_s, 0.5) * 1000,
        "enqueue_to_start_p99_ms": quantile(wait_s, 0.99) * 1000,
        "idle_enqueue_to_start_p50_ms": quantile(idle_s, 0.5) * 1000,
    }


def invoke(port: int, task: str) -> float:
    body = json.dumps({"task": task}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations", data=body, method="POST"
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        reply = json.loads(response.read())
    assert reply.get("stop_reason") == "end_turn", reply
    return time.perf_counter() - start


def lambda_series(sim: Simulator, otlp_endpoint: str, warm: int, workdir: Path) -> tuple[float, list[float]]:
    """(first invocation s, warm invocations s) on a fresh emulator."""
    port, runtime_port = free_port(), free_port()
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": sim.base_url,
        "ANTHROPIC_API_KEY": "bench",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        "AWS_LAMBDA_FUNCTION_NAME": "bench-fn",
        "PYTHONPATH": str(REPO / "tests" / "serverless"),
    }
    argv = [str(RIE), "--runtime-interface-emulator-address", f"127.0.0.1:{port}"]
    argv += ["--runtime-api-address", f"127.0.0.1:{runtime_port}", sys.executable, "-m", "awslambdaric"]
    rie = subprocess.Popen(
        [*argv, "lambda_app.handler"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir
    )
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1), 30, "the emulator")
        first = invoke(port, "What is 2 + 2?")
        return first, [invoke(port, f"What is {i} + 2?") for i in range(warm)]
    finally:
        rie.terminate()
        rie.wait(timeout=10)


def lambda_rows(sim: Simulator, colds: int, warm: int, workdir: Path) -> dict[str, Any]:
    with OtlpReceiver() as otlp:
        exported = [lambda_series(sim, otlp.endpoint, warm, workdir) for _ in range(colds)]
        spans = len(otlp.spans())
    quiet = [lambda_series(sim, "", warm, workdir) for _ in range(colds)]
    warm_exported = statistics.median(t for _, ts in exported for t in ts)
    warm_quiet = statistics.median(t for _, ts in quiet for t in ts)
    return {
        "cold_start_ms": statistics.median(first - warm_exported for first, _ in exported) * 1000,
        "warm_invocation_ms": warm_exported * 1000,
        "warm_invocation_no_export_ms": warm_quiet * 1000,
        "flush_ms": (warm_exported - warm_quiet) * 1000,
        "spans_received": spans,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args(argv)
    for needed in (Path(REDIS), RIE):
        if not needed.exists():
            print(f"missing {needed}: see the docstring", file=sys.stderr)
            return 2
    sizes = {1: 40, 4: 150, 8: 240} if not args.quick else {1: 20, 4: 60, 8: 80}
    out: dict[str, Any] = {"latency_s": LATENCY_S, "queue": [], "lambda": {}}
    with tempfile.TemporaryDirectory() as tmp, Simulator(latency_s=LATENCY_S) as sim:
        workdir = Path(tmp)
        print(f"queue: one worker, N prefork processes, simulator latency {LATENCY_S * 1000:.0f} ms per call")
        print("jobs submitted in one burst; 'idle start' is one job at a time on an idle worker")
        print(
            f"{'processes':>9} {'jobs':>5} {'jobs/s':>8} {'ideal':>7} {'start p50':>10} {'start p99':>10} "
            f"{'idle start p50':>15}"
        )
        for concurrency, jobs in sizes.items():
            row = queue_row(concurrency, jobs, sim, workdir)
            out["queue"].append(row)
            print(
                f"{concurrency:>9} {jobs:>5} {row['jobs_per_s']:>8.1f} {row['ideal_jobs_per_s']:>7.0f} "
                f"{row['enqueue_to_start_p50_ms']:>8.0f}ms {row['enqueue_to_start_p99_ms']:>8.0f}ms "
                f"{row['idle_enqueue_to_start_p50_ms']:>13.1f}ms"
            )
        with Simulator() as fast:
            lam = lambda_rows(fast, colds=2 if args.quick else 3, warm=10 if args.quick else 20, workdir=workdir)
        out["lambda"] = lam
        print("lambda (RIE + awslambdaric, simulator without latency, 2 model calls + 1 tool per invocation):")
        print(
            f"  cold start {lam['cold_start_ms']:.0f} ms   warm invocation {lam['warm_invocation_ms']:.1f} ms   "
            f"flush adds {lam['flush_ms']:.1f} ms (no-export invocation {lam['warm_invocation_no_export_ms']:.1f} ms)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
