"""One benchmark mode in one fresh interpreter: set up, warm up, time N operations, write JSON.

Run by ``overhead.py`` (``python bench/_worker.py --mode M --scenario S --n N --out FILE``); not meant to
be run by hand, but it can be, to look at one mode. An operation is one LLM call (scenario ``call``) or one
whole 3-call, 2-tool conversation (scenario ``run3``); for agentwatch it is always one ``Agent.run``.

Every mode gets the same providers before anything is instrumented: a ``TracerProvider`` with a
``BatchSpanProcessor`` (default batch size and delay, a deeper queue) over an exporter that only counts,
and a ``MeterProvider`` with a periodic reader over a metric exporter that only counts, so each mode pays
for exactly what it records.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

MODES = (
    "bare",
    "sdk-tracing",
    "openllmetry",
    "openinference",
    "agentwatch",
    # breakdown of agentwatch (overhead.py --breakdown): what each signal costs on top of the runner itself
    "agentwatch-runtime",  # no providers, no log handler: the run loop, guards, cost, non-recording spans
    "agentwatch-spans",  # + real spans
    "agentwatch-spans-metrics",  # + metrics (everything but the JSON log file)
    "signals-floor",  # bare SDK calls + the same signals made with the OTel SDK directly (_floor.py)
)


class Unavailable(Exception):
    """The mode cannot run here (a peer is missing or does not work); the message says why."""


# --- providers that pay the real SDK cost but export nowhere ----------------------------------------
def _providers(with_tracer: bool, with_meter: bool) -> tuple[Any, Any, Any, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class CountingSpanExporter(SpanExporter):
        def __init__(self) -> None:
            self.names: Counter[str] = Counter()
            self.processor: Any = None

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            for span in spans:
                self.names[span.name] += 1
            return SpanExportResult.SUCCESS

    class CountingMetricExporter(MetricExporter):
        def __init__(self) -> None:
            super().__init__(preferred_temporality={}, preferred_aggregation={})
            self.names: set[str] = set()

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
            for resource_metrics in metrics_data.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    self.names.update(f"{scope.scope.name}:{m.name}" for m in scope.metrics)
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            pass

    class CountingBatchSpanProcessor(BatchSpanProcessor):
        """Counts ended spans, so spans the queue dropped (exported < ended) are visible."""

        ended = 0

        def on_end(self, span: Any) -> None:
            CountingBatchSpanProcessor.ended += 1
            super().on_end(span)

    tracer_provider = meter_provider = span_exporter = metric_exporter = None
    if with_tracer:
        span_exporter = CountingSpanExporter()
        tracer_provider = TracerProvider()
        # A deep queue: on a busy 2-core machine the export thread can be starved long enough for the
        # default 2048 to overflow, and a mode that drops spans would look cheaper. Batches stay at 512.
        processor = CountingBatchSpanProcessor(span_exporter, max_queue_size=65_536)
        tracer_provider.add_span_processor(processor)
        span_exporter.processor = processor
        trace.set_tracer_provider(tracer_provider)
    if with_meter:
        metric_exporter = CountingMetricExporter()
        reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=600_000)
        meter_provider = MeterProvider(metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)
    return tracer_provider, span_exporter, meter_provider, metric_exporter


# --- the operations ------------------------------------------------------------------------------
def _sdk_call(client: Any) -> Callable[[], Any]:
    import _mock

    def op() -> Any:
        return client.messages.create(
            model=_mock.MODEL, max_tokens=_mock.MAX_TOKENS, messages=[{"role": "user", "content": _mock.TASK}]
        )

    return op


def conversation(client: Any) -> Callable[[Callable[..., Any], Callable[..., Any]], Any]:
    """What a developer writes without a framework: call, run the tools asked for, send results, repeat.

    Returns ``converse(call, run_tool)``, one whole scripted conversation; ``call(create)`` makes each LLM
    call and ``run_tool(name, call_id, description, invoke)`` each tool call, so the signals floor can wrap
    them (``_floor.py``); the SDK modes call through (``_sdk_loop``).
    """
    import _mock

    from agentwatch.tools import calculator, web_search

    tools = {t.name: t for t in (calculator, web_search)}
    tool_params = [t.to_api() for t in tools.values()]

    def converse(call: Callable[..., Any], run_tool: Callable[..., Any]) -> Any:
        messages: list[dict[str, Any]] = [{"role": "user", "content": _mock.TASK_TOOLS}]
        for _ in range(10):
            message = call(
                lambda: client.messages.create(
                    model=_mock.MODEL, max_tokens=_mock.MAX_TOKENS, messages=messages, tools=tool_params
                )
            )
            messages.append({"role": "assistant", "content": message.content})
            if message.stop_reason != "tool_use":
                return message
            results = []
            for block in message.content:
                if block.type == "tool_use":
                    tool = tools[block.name]
                    output = run_tool(block.name, block.id, tool.description, lambda: tool(**block.input))  # noqa: B023
                    results.append({"type": "tool_result", "tool_use_id": block.id, "content": output})
            messages.append({"role": "user", "content": results})
        raise RuntimeError("the scripted conversation did not end")

    return converse


def _sdk_loop(client: Any) -> Callable[[], Any]:
    converse = conversation(client)

    def call(create: Callable[[], Any]) -> Any:
        return create()

    def run_tool(name: str, call_id: str, description: str, invoke: Callable[[], str]) -> str:
        return invoke()

    return lambda: converse(call, run_tool)


def _check_sdk(scenario: str, result: Any) -> None:
    if result.stop_reason != "end_turn" or result.content[0].type != "text":
        raise RuntimeError(f"unexpected mock answer: {result!r}")
    if scenario == "call" and "Paris" not in result.content[0].text:
        raise RuntimeError(f"unexpected mock answer: {result!r}")


def _check_run(scenario: str, result: Any) -> None:
    from agentwatch import StopReason

    want_calls, want_tools = (1, 0) if scenario == "call" else (3, 2)
    if (
        result.stop_reason is not StopReason.END_TURN
        or result.iterations != want_calls
        or len(result.tool_calls) != want_tools
        or any(c.is_error for c in result.tool_calls)
        or result.cost_usd is None
    ):
        raise RuntimeError(
            f"agentwatch run did not go as scripted: stop={result.stop_reason} detail={result.stop_detail!r} "
            f"iterations={result.iterations} tools={[(c.name, c.outcome) for c in result.tool_calls]}"
        )


def build(mode: str, scenario: str, log_path: str) -> tuple[Callable[[], Any], Callable[[Any], None], dict[str, Any]]:
    """The operation to time for ``mode``, a check of its result, and the objects to inspect afterwards."""
    import _mock

    agentwatch_mode = mode.startswith("agentwatch")
    with_tracer = mode != "agentwatch-runtime"
    with_meter = mode not in ("agentwatch-runtime", "agentwatch-spans")
    tracer_provider, span_exporter, meter_provider, metric_exporter = _providers(with_tracer, with_meter)
    handles: dict[str, Any] = {
        "tracer_provider": tracer_provider,
        "span_exporter": span_exporter,
        "meter_provider": meter_provider,
        "metric_exporter": metric_exporter,
    }

    if mode == "openllmetry":
        try:
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        except Exception as exc:
            raise Unavailable(f"opentelemetry-instrumentation-anthropic not importable ({exc})") from exc
        AnthropicInstrumentor().instrument()
    elif mode == "openinference":
        try:
            from openinference.instrumentation.anthropic import AnthropicInstrumentor as OIAnthropicInstrumentor
        except Exception as exc:
            raise Unavailable(f"openinference-instrumentation-anthropic not importable ({exc})") from exc
        OIAnthropicInstrumentor().instrument()

    if agentwatch_mode:
        from agentwatch import Agent
        from agentwatch.tools import calculator, web_search

        if mode == "agentwatch":
            from agentwatch.telemetry.logs import configure_json_logs

            handles["log_handler"] = configure_json_logs(log_path)
        # the caller's client as it comes (SDK tracing at its default); agentwatch turns the SDK spans off itself
        client = _mock.client(scenario, open_telemetry=None)
        tools = (calculator, web_search) if scenario == "run3" else ()
        agent = Agent(name="bench", model=_mock.MODEL, tools=tools)
        task = _mock.TASK if scenario == "call" else _mock.TASK_TOOLS

        def run() -> Any:
            return agent.run(task, client=client)

        return run, lambda result: _check_run(scenario, result), handles

    client = _mock.client(scenario, open_telemetry=None if mode == "sdk-tracing" else False)
    if mode == "signals-floor":
        import _floor

        op = _floor.call_op(client, log_path) if scenario == "call" else _floor.loop_op(client, log_path)
        return op, lambda result: _check_sdk(scenario, result), handles
    op = _sdk_call(client) if scenario == "call" else _sdk_loop(client)
    return op, lambda result: _check_sdk(scenario, result), handles


# --- measuring ----------------------------------------------------------------------------------
def _quantile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure(op: Callable[[], Any], check: Callable[[Any], None], n: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        check(op())
    gc.collect()
    gc.freeze()  # the import-time heap is not scanned again: less noise, same for every mode
    samples: list[int] = [0] * n
    clock = time.perf_counter_ns
    cpu_start = time.process_time_ns()
    wall_start = clock()
    last = None
    for i in range(n):
        start = clock()
        last = op()
        samples[i] = clock() - start
    wall = clock() - wall_start
    cpu = time.process_time_ns() - cpu_start
    check(last)
    us = sorted(s / 1000 for s in samples)
    return {
        "n": n,
        "warmup": warmup,
        "median_us": statistics.median(us),
        "p90_us": _quantile(us, 0.90),
        "p99_us": _quantile(us, 0.99),
        "mean_us": statistics.fmean(us),
        "min_us": us[0],
        "cpu_us_per_op": cpu / 1000 / n,  # all threads of the process (includes the batch exporters)
        "wall_us_per_op": wall / 1000 / n,
    }


def inspect_output(handles: dict[str, Any], ops: int, log_path: str) -> dict[str, Any]:
    """What the mode actually emitted: spans, metric names and log lines per operation (a sanity check)."""
    out: dict[str, Any] = {}
    if handles["tracer_provider"] is not None:
        handles["tracer_provider"].force_flush(10_000)
        names = handles["span_exporter"].names
        exported = sum(names.values())
        out["spans_per_op"] = round(exported / ops, 4)
        out["dropped_spans"] = handles["span_exporter"].processor.ended - exported
        out["span_names"] = sorted(names)
    if handles["meter_provider"] is not None:
        handles["meter_provider"].force_flush(10_000)
        out["metrics"] = sorted(handles["metric_exporter"].names)
    if handles.get("log_handler") is not None:
        handles["log_handler"].flush()
        with open(log_path, encoding="utf-8") as f:
            out["log_lines_per_op"] = round(sum(1 for _ in f) / ops, 3)
    return out


def profile(op: Callable[[], Any], n: int, top: int) -> dict[str, Any]:
    """cProfile ``n`` operations; the agentwatch functions by cumulative time and all by own time, per op."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        op()
    profiler.disable()
    profiled_us = (time.perf_counter() - start) / n * 1e6
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename.replace("\\", "/")
        short = where.split("site-packages/")[-1].split("/src/")[-1]
        rows.append(
            {
                "function": f"{short}:{line}({func})",
                "agentwatch": short.startswith("agentwatch/"),
                "calls_per_op": round(ncalls / n, 2),
                "own_us_per_op": round(tottime / n * 1e6, 2),
                "cum_us_per_op": round(cumtime / n * 1e6, 2),
            }
        )
    ours = sorted((r for r in rows if r["agentwatch"]), key=lambda r: -r["cum_us_per_op"])[:top]
    own = sorted(rows, key=lambda r: -r["own_us_per_op"])[:top]
    return {
        "n": n,
        "profiled_us_per_op": round(profiled_us, 1),
        "agentwatch_by_cumulative": ours,
        "all_by_own_time": own,
    }


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": sys.version.split()[0]}
    for name in (
        "anthropic",
        "httpx2",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-anthropic",
        "openinference-instrumentation-anthropic",
        "agentwatch",
    ):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--scenario", choices=("call", "run3"), default="call")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, help="instead of timing, cProfile this many ops")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--versions", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    result: dict[str, Any]
    if args.versions:
        result = {"ok": True, "versions": versions()}
    else:
        result = {"mode": args.mode, "scenario": args.scenario}
        log_dir = tempfile.mkdtemp(prefix="agentwatch-bench-")
        log_path = os.path.join(log_dir, "agentwatch.jsonl")
        try:
            op, check, handles = build(args.mode, args.scenario, log_path)
            check(op())  # one call before anything else: a mode that does not work fails here, clearly
            if args.profile:
                for _ in range(args.warmup):
                    op()
                result.update(ok=True, profile=profile(op, args.profile, args.top))
            else:
                result.update(ok=True, **measure(op, check, args.n, args.warmup))
                result.update(inspect_output(handles, args.n + args.warmup + 1, log_path))
                if args.mode in ("sdk-tracing", "openllmetry", "openinference") and not result.get("spans_per_op"):
                    raise Unavailable(f"instrumented, but it emitted no spans with anthropic {versions()['anthropic']}")
        except Unavailable as exc:
            result.update(ok=False, reason=str(exc))
        except Exception as exc:
            result.update(ok=False, reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        finally:
            logging.shutdown()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
