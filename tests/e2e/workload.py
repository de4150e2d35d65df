"""The workload the end-to-end tests push through the real collector.

Until the agent runner lands, this emits what a run emits — spans, metrics and logs, with exactly
the names in ``agentwatch.telemetry.names`` and the attribute sets of ``telemetry/recorder.py`` —
through the OpenTelemetry Python SDK and real OTLP/HTTP exporters. To switch to real agent runs,
replace the body of ``run_workload`` (and ``Workload.run`` if the alert test should use them too):
the tests only rely on the returned ``EmittedRun`` list (trace id, kind, agent, stop reason, cost).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agentwatch.telemetry import names as n

# A fake key in the shape of a real one, planted where a careless tool would echo it.
PLANTED_KEY = "sk-ant-api03-E2Eplanted" + "Xy7_-" * 8
SERVICE_NAME = "agentwatch-e2e"

INPUT_MESSAGES = '[{"role":"user","parts":[{"type":"text","content":"What is 1234 * 5678?"}]}]'
OUTPUT_MESSAGES = '[{"role":"assistant","parts":[{"type":"text","content":"7006652"}]}]'

AGENTS = {
    "research-assistant": "claude-sonnet-4-5-20250929",
    "triage": "claude-haiku-4-5-20251001",
}
TOOLS = ("calculator", "search_corpus")

# Kinds the collector's tail sampling must always keep; "ordinary" runs are left to the baseline.
ALWAYS_KEPT = frozenset({"error", "budget", "slow", "expensive", "secret"})


@dataclass(frozen=True)
class EmittedRun:
    trace_id: str  # 32 hex chars
    kind: str  # ordinary | error | budget | slow | expensive | secret
    agent: str
    model: str
    stop_reason: str
    cost_usd: float
    iterations: int
    tool_calls: int
    span_names: tuple[str, ...] = field(default=())
    failed_tool_calls: int = 0

    @property
    def must_keep(self) -> bool:
        """Tail sampling must keep it: a kind it always keeps, or any span with status ERROR."""
        return self.kind in ALWAYS_KEPT or self.failed_tool_calls > 0


class Workload:
    """One process-like source of telemetry: its own resource (service.instance.id) and providers.

    Metrics are exported on ``flush()``/``shutdown()`` (the periodic interval is a minute, as in a
    service), so one export carries every measurement of a phase together with its exemplars.
    """

    def __init__(
        self,
        otlp_http_endpoint: str,
        *,
        service_name: str = SERVICE_NAME,
        instance_id: str | None = None,
        export_interval_ms: int = 60_000,
        seed: int = 7,
    ) -> None:
        base = otlp_http_endpoint.rstrip("/")
        self.resource = Resource.create(
            {"service.name": service_name, "service.instance.id": instance_id or uuid.uuid4().hex[:12]}
        )
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"), schedule_delay_millis=200)
        )
        self.meter_provider = MeterProvider(
            resource=self.resource,
            metric_readers=[
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=export_interval_ms
                )
            ],
        )
        self.logger_provider = LoggerProvider(resource=self.resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs"), schedule_delay_millis=200)
        )
        with warnings.catch_warnings():
            # Deprecated in favour of opentelemetry-instrumentation-logging, which is not a dependency;
            # the records it produces are the same.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._handler = LoggingHandler(level=logging.INFO, logger_provider=self.logger_provider)
        self.log = logging.getLogger(f"{n.LOGGER_NAME}.e2e.{uuid.uuid4().hex[:8]}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self.log.addHandler(self._handler)
        self.tracer = self.tracer_provider.get_tracer(n.INSTRUMENTATION_SCOPE, schema_url=n.SCHEMA_URL)
        meter = self.meter_provider.get_meter(n.INSTRUMENTATION_SCOPE, schema_url=n.SCHEMA_URL)

        def hist(spec: tuple[str, str], buckets: tuple[float, ...]) -> Any:
            return meter.create_histogram(spec[0], unit=spec[1], explicit_bucket_boundaries_advisory=list(buckets))

        def counter(spec: tuple[str, str]) -> Any:
            return meter.create_counter(spec[0], unit=spec[1])

        self.m_token_usage = hist(n.M_TOKEN_USAGE, n.TOKEN_BUCKETS)
        self.m_operation_duration = hist(n.M_OPERATION_DURATION, n.DURATION_BUCKETS)
        self.m_time_to_first_chunk = hist(n.M_TIME_TO_FIRST_CHUNK, n.DURATION_BUCKETS)
        self.m_tool_duration = hist(n.M_TOOL_DURATION, n.DURATION_BUCKETS)
        self.m_tool_calls = counter(n.M_TOOL_CALLS)
        self.m_runs = counter(n.M_RUNS)
        self.m_run_duration = hist(n.M_RUN_DURATION, n.RUN_DURATION_BUCKETS)
        self.m_run_cost = hist(n.M_RUN_COST, n.COST_BUCKETS)
        self.m_spend = counter(n.M_SPEND)
        self.m_run_iterations = hist(n.M_RUN_ITERATIONS, n.ITERATION_BUCKETS)
        self.m_retries = counter(n.M_RETRIES)
        self.m_budget_stops = counter(n.M_BUDGET_STOPS)
        self.rng = random.Random(seed)
        self._budget_stops = 0

    # --- one run ---------------------------------------------------------------------------------
    def run(
        self,
        kind: str = "ordinary",
        *,
        agent: str = "research-assistant",
        cost_usd: float | None = None,
        duration_s: float | None = None,
        version: str | None = None,
        tool_failure_rate: float = 0.2,
    ) -> EmittedRun:
        """Emit one agent run: root span, a chat span per iteration, a tool span between iterations."""
        rng = self.rng
        model = AGENTS.get(agent, AGENTS["research-assistant"])
        iterations = {"budget": 3, "secret": 2}.get(kind, rng.choice((1, 2, 2, 3)))
        stop_reason = {"error": "error", "secret": "error"}.get(kind, "end_turn")
        if kind == "budget":
            self._budget_stops += 1
            stop_reason = ("max_iterations", "cost_budget")[self._budget_stops % 2]
        if cost_usd is None:
            cost_usd = {"expensive": 1.5}.get(kind, round(rng.uniform(0.001, 0.02), 6))
        if duration_s is None:
            duration_s = {"slow": 60.0}.get(kind, rng.uniform(0.5, 3.0))
        base_attrs: dict[str, Any] = {n.GEN_AI_AGENT_NAME: agent}
        if version:
            base_attrs[n.AW_AGENT_VERSION] = version

        end_ns = time.time_ns()
        start_ns = end_ns - int(duration_s * 1e9)
        step = (end_ns - start_ns) // (2 * iterations + 1)
        root_attrs: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_INVOKE_AGENT,
            n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_AGENT_NAME: agent,
            n.GEN_AI_REQUEST_MODEL: model,
            n.AW_BUDGET_ITERATIONS_LIMIT: 3 if kind == "budget" else 10,
            n.AW_BUDGET_COST_LIMIT_USD: 2.0,
            **({n.AW_AGENT_VERSION: version} if version else {}),
        }
        root = self.tracer.start_span(
            n.agent_span_name(agent), kind=SpanKind.INTERNAL, attributes=root_attrs, start_time=start_ns
        )
        span_names = [n.agent_span_name(agent)]
        call_cost = cost_usd / iterations
        tool_calls = 0
        failed_tool_calls = 0
        with self._current(root):
            self._log(n.LOG_RUN_START, f"run_start {agent}", agent=agent, model=model)
            t = start_ns + step
            for i in range(1, iterations + 1):
                failing_call = kind == "error" and i == iterations
                self._chat(root, model, base_attrs, i, i == iterations, t, t + step, call_cost, failing_call)
                span_names.append(n.chat_span_name(model))
                t += step
                if i < iterations:
                    tool = TOOLS[i % len(TOOLS)]
                    secret = kind == "secret" and i == 1
                    failed_tool_calls += self._tool(root, tool, base_attrs, t, t + step, secret, tool_failure_rate)
                    span_names.append(n.tool_span_name(tool))
                    tool_calls += 1
                    t += step
            detail = None
            if kind == "secret":
                detail = f"tool search_corpus failed: upstream said invalid x-api-key {PLANTED_KEY}"
            elif kind == "budget":
                detail = f"stopped by {stop_reason}"
            trace_id = format(root.get_span_context().trace_id, "032x")
            root.set_attributes(
                {
                    n.AW_RUN_STOP_REASON: stop_reason,
                    n.AW_RUN_ITERATIONS: iterations,
                    n.AW_RUN_TOOL_CALLS: tool_calls,
                    n.AW_RUN_INPUT_TOKENS: 1200 * iterations,
                    n.AW_RUN_OUTPUT_TOKENS: 150 * iterations,
                    n.AW_RUN_CACHE_READ_TOKENS: 800 * (iterations - 1),
                    n.AW_RUN_CACHE_WRITE_TOKENS: 400,
                    n.AW_RUN_COST_USD: cost_usd,
                    n.AW_RUN_MODELS: [model],
                    **({n.AW_RUN_STOP_DETAIL: detail} if detail else {}),
                }
            )
            if stop_reason == "error":
                error_type = "ToolError" if kind == "secret" else "InternalServerError"
                root.set_attribute(n.ERROR_TYPE, error_type)
                root.set_status(Status(StatusCode.ERROR, "run failed"))
            run_attrs = {**base_attrs, n.AW_RUN_STOP_REASON: stop_reason}
            self.m_runs.add(1, run_attrs)
            self.m_run_duration.record(duration_s, run_attrs)
            self.m_run_iterations.record(iterations, base_attrs)
            self.m_run_cost.record(cost_usd, run_attrs)
            if kind == "budget":
                budget_kind = {"max_iterations": "iterations", "cost_budget": "cost"}[stop_reason]
                self.m_budget_stops.add(1, {**base_attrs, n.AW_BUDGET_KIND: budget_kind})
            self._log(
                n.LOG_RUN_END,
                f"run_end {agent} stop_reason={stop_reason}",
                level=logging.ERROR if stop_reason == "error" else logging.INFO,
                agent=agent,
                stop_reason=stop_reason,
                detail=detail or "",
                iterations=iterations,
                tool_calls=tool_calls,
                input_tokens=1200 * iterations,
                output_tokens=150 * iterations,
                cache_read_tokens=800 * (iterations - 1),
                cache_write_tokens=400,
                cost_usd=cost_usd,
                duration_s=round(duration_s, 4),
            )
        root.end(end_time=end_ns)
        return EmittedRun(
            trace_id=trace_id,
            kind=kind,
            agent=agent,
            model=model,
            stop_reason=stop_reason,
            cost_usd=cost_usd,
            iterations=iterations,
            tool_calls=tool_calls,
            span_names=tuple(span_names),
            failed_tool_calls=failed_tool_calls,
        )

    def _chat(
        self,
        root: Span,
        model: str,
        base_attrs: dict[str, Any],
        iteration: int,
        last: bool,
        t0: int,
        t1: int,
        cost: float,
        failing: bool,
    ) -> None:
        stream = iteration % 2 == 1
        attrs: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_CHAT,
            n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_REQUEST_MODEL: model,
            n.GEN_AI_REQUEST_MAX_TOKENS: 1024,
            n.SERVER_ADDRESS: "127.0.0.1",
            n.SERVER_PORT: 8765,
            n.AW_CALL_ITERATION: iteration,
            # Content an application turned on: the collector must drop it unless allowed.
            n.GEN_AI_INPUT_MESSAGES: INPUT_MESSAGES,
            n.GEN_AI_SYSTEM_INSTRUCTIONS: "You are a research assistant.",
        }
        if stream:
            attrs[n.GEN_AI_REQUEST_STREAM] = True
        ctx = trace.set_span_in_context(root)
        span = self.tracer.start_span(
            n.chat_span_name(model), context=ctx, kind=SpanKind.CLIENT, attributes=attrs, start_time=t0
        )
        metric_attrs: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_CHAT,
            n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_REQUEST_MODEL: model,
            **base_attrs,
        }
        duration = (t1 - t0) / 1e9
        with self._current(span):
            attempts = 1
            if self.rng.random() < 0.3 or failing:
                error_type = "OverloadedError" if failing else "RateLimitError"
                status = 529 if failing else 429
                attempts = 2
                span.add_event(
                    n.EVENT_RETRY,
                    {
                        n.AW_RETRY_ATTEMPT: 1,
                        n.ERROR_TYPE: error_type,
                        n.AW_RETRY_WAIT_S: 0.5,
                        n.HTTP_RESPONSE_STATUS_CODE: status,
                    },
                    timestamp=t0 + (t1 - t0) // 3,
                )
                self.m_retries.add(1, {**base_attrs, n.ERROR_TYPE: error_type, n.GEN_AI_REQUEST_MODEL: model})
                self._log(
                    n.LOG_RETRY,
                    f"retry attempt=1 after {error_type}",
                    level=logging.WARNING,
                    attempt=1,
                    error_type=error_type,
                    status=status,
                    model=model,
                )
            # Content as a span event too (the conventions' EVENT_ONLY mode).
            span.add_event(
                "gen_ai.client.inference.operation.details",
                {n.GEN_AI_OUTPUT_MESSAGES: OUTPUT_MESSAGES},
                timestamp=t1 - 1000,
            )
            # ...and as a log record (the conventions' inference details event).
            self._log(
                "gen_ai.client.inference.operation.details",
                "inference content",
                **{n.GEN_AI_INPUT_MESSAGES: INPUT_MESSAGES, n.GEN_AI_OUTPUT_MESSAGES: OUTPUT_MESSAGES},
            )
            span.set_attribute(n.AW_CALL_ATTEMPTS, attempts)
            if failing:
                span.set_attribute(n.ERROR_TYPE, "InternalServerError")
                span.set_status(Status(StatusCode.ERROR, "InternalServerError: 500"))
                metric_attrs[n.ERROR_TYPE] = "InternalServerError"
                self.m_operation_duration.record(duration, metric_attrs)
                self._log(
                    n.LOG_LLM_CALL,
                    f"llm_call {model} failed",
                    level=logging.ERROR,
                    model=model,
                    error_type="InternalServerError",
                )
            else:
                input_tokens, output_tokens = 1200, 150
                cache_read = 800 if iteration > 1 else 0
                metric_attrs[n.GEN_AI_RESPONSE_MODEL] = model
                span.set_attributes(
                    {
                        n.GEN_AI_RESPONSE_ID: f"msg_{uuid.uuid4().hex[:24]}",
                        n.GEN_AI_RESPONSE_MODEL: model,
                        n.GEN_AI_RESPONSE_FINISH_REASONS: ["end_turn" if last else "tool_use"],
                        n.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                        n.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                        n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
                        n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 400 if iteration == 1 else 0,
                        n.AW_CALL_COST_USD: cost,
                        n.GEN_AI_OUTPUT_MESSAGES: OUTPUT_MESSAGES,
                    }
                )
                self.m_token_usage.record(input_tokens, {**metric_attrs, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_INPUT})
                self.m_token_usage.record(output_tokens, {**metric_attrs, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_OUTPUT})
                self.m_spend.add(cost, {**base_attrs, n.GEN_AI_REQUEST_MODEL: model})
                if stream:
                    ttfc = min(duration, 0.05 + self.rng.random() * 0.3)
                    span.set_attribute(n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, ttfc)
                    self.m_time_to_first_chunk.record(ttfc, metric_attrs)
                self.m_operation_duration.record(duration, metric_attrs)
                self._log(
                    n.LOG_LLM_CALL,
                    f"llm_call {model} in {duration:.3f}s",
                    model=model,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cache_read_tokens=cache_read,
                    cost_usd=cost,
                )
        span.end(end_time=t1)

    def _tool(
        self, root: Span, tool: str, base_attrs: dict[str, Any], t0: int, t1: int, secret: bool, failure_rate: float
    ) -> bool:
        call_id = f"toolu_{uuid.uuid4().hex[:20]}"
        attrs: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_EXECUTE_TOOL,
            n.GEN_AI_TOOL_NAME: tool,
            n.GEN_AI_TOOL_CALL_ID: call_id,
            n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION,
            n.GEN_AI_TOOL_CALL_ARGUMENTS: '{"expression": "1234 * 5678"}',
        }
        span = self.tracer.start_span(
            n.tool_span_name(tool),
            context=trace.set_span_in_context(root),
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            start_time=t0,
        )
        failed = secret or self.rng.random() < failure_rate
        outcome = n.TOOL_ERROR if failed else n.TOOL_OK
        result = f"error: upstream rejected key {PLANTED_KEY}" if secret else "7006652"
        with self._current(span):
            span.set_attributes(
                {
                    n.AW_TOOL_OUTCOME: outcome,
                    n.AW_TOOL_ATTEMPTS: 1,
                    n.GEN_AI_TOOL_CALL_RESULT: result,
                }
            )
            duration_attrs: dict[str, Any] = {n.GEN_AI_TOOL_NAME: tool, **base_attrs}
            if failed:
                span.set_attribute(n.ERROR_TYPE, "ToolError")
                span.set_status(Status(StatusCode.ERROR, "tool failed"))
                duration_attrs[n.ERROR_TYPE] = "ToolError"
            self.m_tool_duration.record((t1 - t0) / 1e9, duration_attrs)
            self.m_tool_calls.add(1, {n.GEN_AI_TOOL_NAME: tool, n.AW_TOOL_OUTCOME: outcome, **base_attrs})
            self._log(
                n.LOG_TOOL_RESULT,
                f"tool_result {tool} outcome={outcome}" + (f" {result}" if secret else ""),
                level=logging.WARNING if failed else logging.INFO,
                tool=tool,
                call_id=call_id,
                outcome=outcome,
                **({"error": result} if secret else {}),
            )
        span.end(end_time=t1)
        return failed

    @contextmanager
    def _current(self, span: Span) -> Iterator[None]:
        with trace.use_span(span, end_on_exit=False):
            yield

    def _log(self, event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
        self.log.log(level, message, extra={"event": event, **fields})

    # --- lifecycle ---------------------------------------------------------------------------------
    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        self.logger_provider.force_flush()

    def shutdown(self) -> None:
        # Each provider exports what it holds on shutdown. No flush() first: a second metric export
        # with no new measurements would carry no exemplars and replace the points that had them.
        self.log.removeHandler(self._handler)
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def run_workload(otlp_http_endpoint: str, *, ordinary: int = 30, seed: int = 7) -> list[EmittedRun]:
    """Emit a mix of runs over OTLP/HTTP (``otlp_http_endpoint`` as in OTEL_EXPORTER_OTLP_ENDPOINT).

    The mix: ``ordinary`` runs across two agents that end normally (some with a failed tool call,
    which makes them errored traces; the rest are left to the sampling baseline), then one or two of
    each kind tail sampling must keep: errored, budget-stopped, slow (60 s), expensive ($1.50) and
    one whose tool output echoes an API key.
    """
    workload = Workload(otlp_http_endpoint, seed=seed)
    runs: list[EmittedRun] = []
    try:
        agents = list(AGENTS)
        for i in range(ordinary):
            runs.append(workload.run("ordinary", agent=agents[i % 2], version="1.0.0" if i % 2 else None))
        for kind in ("error", "error", "budget", "budget", "slow", "expensive", "secret"):
            runs.append(workload.run(kind, agent=agents[len(runs) % 2]))
    finally:
        workload.shutdown()
    return runs
