"""The compose stack's traffic generator: calls the agent service over HTTP, each call in its own trace.

Every request carries a W3C ``traceparent`` from a CLIENT span of this process, so a trace in Jaeger runs
caller -> the service's HTTP server span -> invoke_agent -> chat / execute_tool. Alternates JSON and SSE
runs over the demo's tasks, a failing tool call and a run that stops on its iteration budget. A share of
the runs (``AGENTWATCH_TRAFFIC_ASYNC_SHARE``, 0 to 1, default 0) goes asynchronously: ``"mode": "async"``
queues it (202), then ``GET /v1/runs/{id}`` is polled until the worker's result is there (200).

    python scripts/serve_traffic.py --target http://agent:8000   (key: AGENTWATCH_TRAFFIC_API_KEY)

Stdlib HTTP only (the image has no extra client); telemetry per the OTEL_* variables.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import inject

from agentwatch.demo import DEMO_TASK, SEED_CASES
from agentwatch.telemetry.setup import configure_telemetry

TASKS = [
    DEMO_TASK,
    *(case.task for case in SEED_CASES),
    'Divide by zero [[tool:calculator:{"expression": "1/0"}]]',
    "Keep checking [[loop]]",
]


ASYNC_SHARE_ENV = "AGENTWATCH_TRAFFIC_ASYNC_SHARE"
POLL_INTERVAL_S = 0.5
ASYNC_DEADLINE_S = 300.0


def async_share() -> float:
    """The share of runs sent ``"mode": "async"``, from ``$AGENTWATCH_TRAFFIC_ASYNC_SHARE``."""
    raw = os.environ.get(ASYNC_SHARE_ENV, "0")
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise SystemExit(f"{ASYNC_SHARE_ENV}={raw!r}: give a number from 0 to 1 (e.g. 0.2 for a fifth of the runs)")
    return share


def poll(target: str, headers: dict[str, str], location: str) -> dict[str, Any]:
    """GET ``location`` until the queued run's result is there (200); 202 means still queued or running."""
    deadline = time.monotonic() + ASYNC_DEADLINE_S
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{target}{location}", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status == 200:
                return dict(json.loads(response.read()))
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"no result at {location} within {ASYNC_DEADLINE_S:.0f} s")


def call(target: str, key: str, task: str, mode: str) -> dict[str, Any]:
    """One run (``mode``: json, sse or async); returns the RunResult JSON (from ``run_finished`` when
    streamed, from polling ``GET /v1/runs/{id}`` when queued)."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if mode == "sse":
        headers["Accept"] = "text/event-stream"
    inject(headers)  # traceparent of the current (client) span
    body = json.dumps({"task": task, **({"mode": "async"} if mode == "async" else {})}).encode()
    request = urllib.request.Request(f"{target}/v1/runs", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        if mode == "async":
            if response.status != 202:
                raise RuntimeError(f"an async run was answered {response.status}, not 202")
            return poll(target, headers, response.headers["Location"])
        if mode == "json":
            return dict(json.loads(response.read()))
        event = ""
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "run_finished":
                return dict(json.loads(line.split(":", 1)[1])["result"])
    raise RuntimeError("the stream ended without run_finished")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=os.environ.get("AGENTWATCH_TRAFFIC_TARGET", "http://127.0.0.1:8000"))
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--count", type=int, default=0, help="stop after N runs (0 = forever)")
    args = parser.parse_args(argv)
    key = os.environ.get("AGENTWATCH_TRAFFIC_API_KEY", "")
    share = async_share()
    telemetry = configure_telemetry(os.environ.get("OTEL_SERVICE_NAME", "agentwatch-trafficgen"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tracer = trace.get_tracer("agentwatch.trafficgen")
    for n in itertools.count(1):
        ok = False
        task = random.choice(TASKS)
        mode = "async" if random.random() < share else ("sse" if n % 2 == 0 else "json")
        with tracer.start_as_current_span("trafficgen run", kind=trace.SpanKind.CLIENT) as span:
            try:
                result = call(args.target.rstrip("/"), key, task, mode)
                cost = result["cost_usd"] or 0
                print(f"{mode:>5} {result['stop_reason']:>14}  ${cost:.6f}  trace {result['trace_id']}")
                ok = True
            except (OSError, urllib.error.URLError, RuntimeError, ValueError) as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, str(exc))
                print(f"run failed ({exc}); retrying", file=sys.stderr)
        if args.count and n >= args.count:
            break
        time.sleep(args.interval if ok else 5 * args.interval)  # back off while the service is not there
    telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
