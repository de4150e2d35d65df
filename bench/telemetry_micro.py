"""Per-operation cost of agentwatch's telemetry primitives, A/B in one process (robust on a busy machine).

    python bench/telemetry_micro.py            # the bench venv's interpreter: python bench/telemetry_micro.py --no-venv

On a shared 2-core machine the wall clock of ``overhead.py`` moves by tens of percent between rounds. Here
every pair of variants runs in the same process, with the same providers ``_worker.py`` installs (a real
``MeterProvider`` + reader, ``TracerProvider`` + ``BatchSpanProcessor``, the queued JSON log handler), in
alternating blocks; the number is the median over blocks of the caller thread's CPU time per operation
(``time.thread_time_ns``: what the run's own thread spends, whoever else is busy). Pairs:

  histogram point   a plain attribute dict (redacted on every point)  vs  a ``RedactedAttributes`` set
  counter increment the SDK counter  vs  agentwatch's summed (observable) counter
  log record        a record redacted by the logger's filter (how ``emit`` worked before)  vs  ``emit`` now

Use it to compare two versions of the telemetry code; ``overhead.py`` decides the targets.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(cases: dict[str, Callable[[], object]], blocks: int, per_block: int, between: Callable[[], None]) -> None:
    results: dict[str, list[float]] = {name: [] for name in cases}
    clock = time.thread_time_ns
    gc.collect()
    gc.freeze()
    for block in range(blocks):
        items = list(cases.items())
        if block % 2:
            items.reverse()
        for name, fn in items:
            start = clock()
            for _ in range(per_block):
                fn()
            results[name].append((clock() - start) / per_block / 1000)
            between()
    for name, values in results.items():
        print(f"  {name:<48} {statistics.median(values):7.2f} us  (min {min(values):6.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--per-block", type=int, default=200)
    parser.add_argument("--no-venv", action="store_true", help="run here, with this interpreter")
    args = parser.parse_args(argv)
    if not args.no_venv:
        import subprocess

        import _venv

        python = _venv.ensure()
        forwarded = ["--blocks", str(args.blocks), "--per-block", str(args.per_block), "--no-venv"]
        return subprocess.run([str(python), __file__, *forwarded], check=False).returncode

    import _worker
    from opentelemetry import trace

    from agentwatch.telemetry import logs
    from agentwatch.telemetry import names as n
    from agentwatch.telemetry import recorder as rec
    from agentwatch.telemetry.instruments import counter, instruments

    log_path = os.path.join(tempfile.mkdtemp(prefix="agentwatch-micro-"), "agentwatch.jsonl")
    op, check, handles = _worker.build("agentwatch", "call", log_path)
    for _ in range(200):  # warm every cache on the way
        check(op())
    handler = handles["log_handler"]
    m = instruments()
    span = rec.tracer().start_span("micro")
    context = trace.set_span_in_context(span)
    base = ((n.GEN_AI_AGENT_NAME, "bench"),)
    input_attrs = rec._chat_metric_attrs(base, "claude-haiku-4-5", "claude-haiku-4-5", None)[2]
    plain_attrs = dict(input_attrs)
    run_attrs = rec._run_metric_attrs(base, "end_turn")
    sdk_counter = counter(("bench.micro.counter", "{run}"), "a plain SDK counter, for comparison")
    fields = {
        "event": "llm_call",
        "agent": "bench",
        "model": "claude-haiku-4-5",
        "response_id": "msg_01ABCDEFGH123456",
        "finish_reason": "end_turn",
        "input_tokens": 12,
        "output_tokens": 30,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 0.0001,
        "attempts": 1,
        "duration_s": 0.0004,
    }
    message = "llm_call claude-haiku-4-5 in 0.000s"

    print(f"caller-thread CPU per operation, median of {args.blocks} blocks of {args.per_block} (min in brackets)")
    measure(
        {
            "histogram point, plain dict (redacted each time)": lambda: m.token_usage.record(12, plain_attrs, context),
            "histogram point, RedactedAttributes": lambda: m.token_usage.record(12, input_attrs, context),
            "counter +1, SDK counter": lambda: sdk_counter.add(1, run_attrs, context),
            "counter +1, summed (observable) counter": lambda: m.runs.add(1, run_attrs, context),
        },
        args.blocks,
        args.per_block,
        lambda: None,
    )
    measure(
        {
            "log record, redacted by the logger's filter": lambda: logs.logger.handle(
                logs.logger.makeRecord(
                    logs.LOGGER_NAME, logging.INFO, "agentwatch", 0, message, (), None, extra=dict(fields)
                )
            ),
            "log record, emit (redacted as built)": lambda: logs.emit(logging.INFO, message, dict(fields)),
        },
        args.blocks,
        args.per_block,
        handler._write_pending,  # formatted and written between blocks, not counted
    )
    span.end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
