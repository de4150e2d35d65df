"""Telemetry never breaks or slows a run: failing exporters, a collector that is down, a recorder bug."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from agentwatch.telemetry import names as n
from agentwatch.telemetry import recorder as recorder_module
from agentwatch.telemetry.instruments import instruments
from agentwatch.telemetry.setup import GuardedSpanExporter
from conftest import metric_points
from runner.support import DEMO_TASK, async_client, demo_agent, sync_client

from .helpers import base_env, closed_port, run_script

RUNS_PER_MODE = 25


class ExplodingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        raise ConnectionError("collector at 127.0.0.1:4318 refused the connection")

    def shutdown(self) -> None:
        raise RuntimeError("shutdown failed too")


def telemetry_errors(error_type: str) -> float:
    return sum(p.value for p in metric_points(n.M_TELEMETRY_ERRORS[0], **{n.ERROR_TYPE: error_type}))


def test_guarded_exporter_turns_exceptions_into_counted_failures() -> None:
    inner = ExplodingExporter()
    guarded = GuardedSpanExporter(inner)
    provider = TracerProvider()  # a provider of the test's own: the global one is left alone
    provider.add_span_processor(SimpleSpanProcessor(guarded))
    before = telemetry_errors("export_traces")

    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    assert guarded.export([]) is SpanExportResult.FAILURE
    guarded.shutdown()  # does not raise either

    assert inner.calls == 2
    assert telemetry_errors("export_traces") - before == 3  # two exports and the shutdown


def test_failing_exporters_and_a_dead_collector_change_neither_results_nor_latency() -> None:
    """Same process, same simulator: runs with telemetry off, then with configure_telemetry exporting to a
    raising (and slow) exporter and an OTLP endpoint nobody listens on. The exporters never run on the
    run's thread, and the medians differ by far less than one blocked export would add (a bound for a
    loaded machine; ``bench/exporter_failure.py`` measures the real ratios)."""
    script = f"""
        import json, statistics, threading, time
        import anthropic
        from opentelemetry.sdk._logs.export import LogRecordExporter
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export import SpanExporter
        from agentwatch import Agent
        from agentwatch.sim import Simulator
        from agentwatch.telemetry.setup import configure_telemetry
        from agentwatch.tools import calculator, web_search

        export_threads = set()

        class SlowBrokenSpans(SpanExporter):
            def export(self, spans):
                export_threads.add(threading.get_ident())
                time.sleep(0.2)  # were this on the request path, every run would show it
                raise ConnectionError("collector down")
            def shutdown(self):
                raise RuntimeError("still down")

        class BrokenLogs(LogRecordExporter):
            def export(self, batch):
                raise ConnectionError("log collector down")
            def shutdown(self):
                pass
            def force_flush(self, timeout_millis=30000):
                return True

        def batch(agent, client, count):
            durations, outcomes = [], []
            for _ in range(count):
                started = time.perf_counter()
                result = agent.run({DEMO_TASK!r}, client=client)
                durations.append(time.perf_counter() - started)
                outcomes.append([result.answer, result.stop_reason.value, result.usage.total_tokens, result.iterations])
            return durations, outcomes

        with Simulator(latency_s=0.01) as sim:
            client = anthropic.Anthropic(api_key="k", base_url=sim.base_url)
            agent = Agent(name="safety", model="claude-haiku-4-5-20251001", tools=[calculator, web_search])
            batch(agent, client, 5)
            off, off_outcomes = batch(agent, client, {RUNS_PER_MODE})
            reader = InMemoryMetricReader()
            telemetry = configure_telemetry(
                "safety-test",
                span_exporters=[SlowBrokenSpans()],
                log_exporters=[BrokenLogs()],
                metric_readers=[reader],
                export_timeout_s=0.5,
                metric_interval_s=0.05,
                shutdown_timeout_s=1.0,
                install_signal_handler=False,
            )
            batch(agent, client, 5)
            on, on_outcomes = batch(agent, client, {RUNS_PER_MODE})
            telemetry.force_flush(timeout_s=1.0)
            errors = {{}}
            for rm in reader.get_metrics_data().resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name == "agentwatch.telemetry.errors":
                            for point in metric.data.data_points:
                                errors[point.attributes["error.type"]] = point.value
            started = time.perf_counter()
            telemetry.shutdown()
            shutdown_s = time.perf_counter() - started
        print(json.dumps({{
            "off": statistics.median(off), "on": statistics.median(on),
            "same": off_outcomes == on_outcomes, "outcome": on_outcomes[0][1],
            "errors": errors, "shutdown_s": shutdown_s,
            "exported_on_run_thread": threading.get_ident() in export_threads,
        }}))
    """
    endpoint = f"http://127.0.0.1:{closed_port()}"
    out = run_script(script, base_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}))

    assert out["same"] and out["outcome"] == "end_turn"
    assert not out["exported_on_run_thread"], out
    # A span export on the request path would add at least 0.2 s to every run (the slow exporter's
    # sleep, once per span), an OTLP export blocking for its timeout 0.5 s; the bound leaves room for
    # a busy machine and still catches either.
    assert out["on"] <= out["off"] * 2 + 0.1, out
    assert out["errors"].get("export_traces", 0) >= 1  # failures are counted, not raised
    assert out["errors"].get("export_logs", 0) >= 1
    assert out["shutdown_s"] <= 1.0 + 1.0, out  # bounded by shutdown_timeout_s, with the collector down


def test_shutdown_is_bounded_when_the_exporter_hangs() -> None:
    script = """
        import json, threading, time
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SpanExporter
        from agentwatch.telemetry.setup import configure_telemetry

        release = threading.Event()

        class Hanging(SpanExporter):
            def export(self, spans):
                release.wait(30)
            def shutdown(self):
                pass

        telemetry = configure_telemetry(
            span_exporters=[Hanging()], shutdown_timeout_s=0.5, install_signal_handler=False
        )
        with trace.get_tracer("t").start_as_current_span("work"):
            pass
        started = time.perf_counter()
        telemetry.shutdown()
        telemetry.shutdown()  # idempotent
        print(json.dumps({"shutdown_s": time.perf_counter() - started}))
    """
    started = time.perf_counter()
    out = run_script(script, base_env(), timeout=30)

    assert out["shutdown_s"] <= 0.5 + 1.0  # the exporter hangs for 30 s
    assert time.perf_counter() - started < 20  # and the process exits without waiting the exporter's 30 s


class Broken:
    """A metric instrument whose backend fails on every call."""

    def record(self, *args, **kwargs):
        raise RuntimeError("metric backend broke")

    add = record


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_a_failing_recorder_never_reaches_the_caller_and_is_counted(sim, spans, tracker, monkeypatch, mode):
    agent = demo_agent("broken-telemetry")
    expected = agent.run(DEMO_TASK, client=sync_client(sim))
    before = telemetry_errors("RuntimeError")
    monkeypatch.setattr(instruments(), "token_usage", Broken())

    if mode == "run":
        result = agent.run(DEMO_TASK, client=sync_client(sim))
    else:
        result = await agent.arun(DEMO_TASK, client=async_client(sim))

    assert (result.answer, result.stop_reason, result.usage, result.iterations) == (
        expected.answer,
        expected.stop_reason,
        expected.usage,
        expected.iterations,
    )
    assert telemetry_errors("RuntimeError") - before == 3  # one failed end_call per LLM call
    assert tracker.open_in(result.trace_id) == []  # the chat spans still ended
    assert len([s for s in spans.get_finished_spans() if s.name.startswith("chat")]) == 6


def test_a_recorder_that_cannot_even_start_spans_leaves_the_run_intact(sim, monkeypatch) -> None:
    def broken_tracer():
        raise RuntimeError("tracer provider misconfigured")

    monkeypatch.setattr(recorder_module, "tracer", broken_tracer)
    before = telemetry_errors("RuntimeError")
    result = demo_agent("no-tracer").run(DEMO_TASK, client=sync_client(sim))

    assert result.ok and "8.1 billion" in result.answer
    assert telemetry_errors("RuntimeError") > before
