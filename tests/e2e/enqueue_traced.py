"""Queue one run from a process of its own whose spans go to the e2e collector, so the producer side of a
queued run reaches the same collector (and Jaeger) as the worker's side.

    python tests/e2e/enqueue_traced.py OTLP_HTTP_ENDPOINT BROKER AGENT_REF TASK

Prints ``{"run_id", "trace_id", "stop_reason"}`` once the run's result is back, then waits for a line on
stdin before it exports its spans. The caller stops the worker first, so the worker's spans are at the
collector before the trace's root (the producer span) arrives and the tail sampler decides on the whole
trace. That is why this exports with a batch delay longer than the run instead of configure_telemetry's
one second: the root would otherwise arrive first and the sampler would decide on it alone.
"""

from __future__ import annotations

import json
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agentwatch.queue import result, submit

SERVICE = "agentwatch-e2e-producer"
HOLD_MS = 600_000  # longer than any run here: nothing is exported before the caller says so


def main() -> int:
    endpoint, broker, agent_ref, task = sys.argv[1:5]
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=HOLD_MS))
    trace.set_tracer_provider(provider)
    run_id = submit(agent_ref, task, broker=broker)
    done = result(run_id, timeout=60, broker=broker)
    print(json.dumps({"run_id": run_id, "trace_id": done.trace_id, "stop_reason": done.stop_reason}), flush=True)
    sys.stdin.readline()
    provider.shutdown()  # exports the producer span
    return 0


if __name__ == "__main__":
    sys.exit(main())
