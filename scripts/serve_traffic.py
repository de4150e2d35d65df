"""The compose stack's traffic generator: calls the agent service over HTTP, each call in its own trace.

Every request carries a W3C ``traceparent`` from a CLIENT span of this process, so a trace in Jaeger runs
caller -> the service's HTTP server span -> invoke_agent -> chat / execute_tool. Alternates JSON and SSE
runs over the demo's tasks, a failing tool call and a run that stops on its iteration budget.

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


def call(target: str, key: str, task: str, stream: bool) -> dict[str, Any]:
    """One run; returns the RunResult JSON (from ``run_finished`` when streamed)."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if stream:
        headers["Accept"] = "text/event-stream"
    inject(headers)  # traceparent of the current (client) span
    body = json.dumps({"task": task}).encode()
    request = urllib.request.Request(f"{target}/v1/runs", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=300) as response:
        if not stream:
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
    telemetry = configure_telemetry(os.environ.get("OTEL_SERVICE_NAME", "agentwatch-trafficgen"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tracer = trace.get_tracer("agentwatch.trafficgen")
    for n in itertools.count(1):
        ok = False
        task, stream = random.choice(TASKS), n % 2 == 0
        with tracer.start_as_current_span("trafficgen run", kind=trace.SpanKind.CLIENT) as span:
            try:
                result = call(args.target.rstrip("/"), key, task, stream)
                print(f"{result['stop_reason']:>14}  ${result['cost_usd'] or 0:.6f}  trace {result['trace_id']}")
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
