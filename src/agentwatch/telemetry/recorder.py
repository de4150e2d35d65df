"""``RunRecorder``: observes one run and turns each decision into spans, metrics and a JSON log record.

The runner calls it at every decision point; it never changes what the run does. Every public method
is guarded: a failure inside telemetry is counted, logged once, and swallowed (never raised into the
run). Spans are started with explicit parents and made current only around real work (``activate``),
never across a ``yield``, so streaming and concurrent runs cannot leak or cross contexts.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from agentwatch import __version__
from agentwatch.result import BUDGET_STOPS, RunResult, StopReason, Usage
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import (
    MAX_MESSAGE_CHARS,
    ContentPolicy,
    mark_span_error,
    on_redactor_change,
    redact,
    redact_label,
    to_semconv_messages,
)
from agentwatch.telemetry.instruments import instruments, redacted
from agentwatch.telemetry.logs import emit, logger

P = ParamSpec("P")
R = TypeVar("R")

_reported_failures: set[str] = set()


def never_raises(method: Callable[P, R | None]) -> Callable[P, R | None]:
    """Run ``method``; on any exception count it, log it once per method, and return ``None``."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            try:
                instruments().telemetry_errors.add(1, {n.ERROR_TYPE: type(exc).__name__})
                if method.__name__ not in _reported_failures:
                    _reported_failures.add(method.__name__)
                    logger.warning(
                        "agentwatch telemetry failed in %s: %s (further failures here are counted only)",
                        method.__name__,
                        redact(str(exc)),
                        extra={"event": n.LOG_TELEMETRY_ERROR},
                    )
            except Exception:
                pass
            return None

    return guarded


# Metric attribute sets, built once per distinct combination, already redacted, and shared by every point
# that uses them (the SDK copies what it keeps; nothing here mutates them), so a point costs the SDK's work
# only. ``base`` is the agent's name/version pairs. The caches are emptied when the redactor changes.
_Base = tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=1024)
def _base_metric_attrs(base: _Base) -> dict[str, Any]:
    return redacted(dict(base))  # type: ignore[return-value]


@functools.lru_cache(maxsize=1024)
def _chat_metric_attrs(
    base: _Base, model: str, response_model: str | None, error_type: str | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """For one chat call: (duration, time to first chunk, input tokens, output tokens, spend)."""
    call = {n.GEN_AI_OPERATION_NAME: n.OP_CHAT, n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC}
    call[n.GEN_AI_REQUEST_MODEL] = model
    call.update(base)
    if response_model is not None:
        call[n.GEN_AI_RESPONSE_MODEL] = response_model
    attribute_sets = (
        {**call, n.ERROR_TYPE: error_type} if error_type is not None else call,
        call,
        {**call, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_INPUT},
        {**call, n.GEN_AI_TOKEN_TYPE: n.TOKEN_TYPE_OUTPUT},
        {**dict(base), n.GEN_AI_REQUEST_MODEL: model},
    )
    return tuple(redacted(a) for a in attribute_sets)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1024)
def _run_metric_attrs(base: _Base, stop_reason: str) -> dict[str, Any]:
    return redacted({**dict(base), n.AW_RUN_STOP_REASON: stop_reason})  # type: ignore[return-value]


@functools.lru_cache(maxsize=1024)
def _tool_metric_attrs(
    base: _Base, tool: str, outcome: str, error_type: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """For one tool call: (duration, calls by outcome)."""
    duration = {n.GEN_AI_TOOL_NAME: tool, **dict(base)}
    if error_type is not None:
        duration[n.ERROR_TYPE] = error_type
    calls = {n.GEN_AI_TOOL_NAME: tool, n.AW_TOOL_OUTCOME: outcome, **dict(base)}
    return redacted(duration), redacted(calls)  # type: ignore[return-value]


for _cache in (_base_metric_attrs, _chat_metric_attrs, _run_metric_attrs, _tool_metric_attrs):
    on_redactor_change(_cache.cache_clear)


@functools.cache
def tracer() -> trace.Tracer:
    """agentwatch's tracer from the global provider (a proxy until one is set, so caching is safe)."""
    return trace.get_tracer(n.INSTRUMENTATION_SCOPE, __version__, schema_url=n.SCHEMA_URL)


class _Active:
    """``with``: attach a context, detach it on the way out (a plain class: cheaper than @contextmanager)."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: otel_context.Context) -> None:
        self._context = context

    def __enter__(self) -> None:
        self._token = otel_context.attach(self._context)

    def __exit__(self, *exc_info: object) -> None:
        otel_context.detach(self._token)


@dataclass
class CallObservation:
    """The telemetry handle of one LLM call (its ``chat`` span and timings)."""

    span: Span
    model: str
    started: float
    stream: bool
    attempts: int = 1
    first_chunk_s: float | None = None
    input_content: str | None = None  # rendered input messages, for the opt-in content event
    cut_usage: Usage | None = None  # what attempts whose stream ended early were billed for
    cut_cost: float | None = 0.0


@dataclass
class ToolObservation:
    """The telemetry handle of one tool call."""

    span: Span
    name: str
    call_id: str


@dataclass
class AgentInfo:
    """What telemetry needs to know about the agent, fixed for the run."""

    name: str
    model: str
    version: str | None = None
    description: str | None = None
    conversation_id: str | None = None
    server_address: str | None = None
    server_port: int | None = None


class RunRecorder:
    """Spans, metrics and logs of one run. Create one per run; not shared across runs."""

    def __init__(self, agent: AgentInfo, limits: Any, content: ContentPolicy | None = None) -> None:
        self.agent = agent
        self.limits = limits
        self.content = content or ContentPolicy.from_env()
        self.metrics = instruments()
        self.run_span: Span = trace.INVALID_SPAN
        self.run_context: otel_context.Context | None = None
        self.base_metric_attrs: dict[str, str] = {n.GEN_AI_AGENT_NAME: agent.name}
        if agent.version:
            self.base_metric_attrs[n.AW_AGENT_VERSION] = agent.version
        self._base: _Base = tuple(self.base_metric_attrs.items())
        self.count_fallback_logged = False

    # --- context -------------------------------------------------------------------------------------
    def activate(self, span: Span | None = None) -> _Active:
        """Make ``span`` (default: the run span) current for the duration of real work; never across a yield."""
        return _Active(trace.set_span_in_context(span or self.run_span, self.run_context))

    def span_context(self) -> trace.SpanContext:
        return self.run_span.get_span_context()

    def trace_id(self) -> str:
        context = self.run_span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else "0" * 32

    def span_id(self) -> str:
        context = self.run_span.get_span_context()
        return format(context.span_id, "016x") if context.is_valid else "0" * 16

    def _log(
        self,
        event: str,
        message: str,
        span: Span | None,
        level: int = logging.INFO,
        *,
        message_redacted: bool = False,
        **fields: Any,
    ) -> None:
        """One JSON log record. ``message_redacted``: the caller built ``message`` from ``redact_label``-ed
        names and numbers only (the per-call records), so it skips the redactor's pass over the whole text."""
        if not logger.isEnabledFor(level):
            return
        extra = {"event": event, "agent": self.agent.name}
        for key, value in fields.items():
            if value is not None:  # OTLP log attributes reject None
                extra[key] = value
        emit(level, message, extra, span or self.run_span, self.run_context, message_redacted=message_redacted)

    def _exemplar_context(self, span: Span) -> otel_context.Context:
        """The context a measurement is taken in: ``span``'s, so exemplars link metrics to this run's trace."""
        return trace.set_span_in_context(span, self.run_context)

    def _error(self, span: Span, exc: BaseException | None, error_type: str, message: str) -> None:
        mark_span_error(span, error_type, message, exc)

    # --- run -----------------------------------------------------------------------------------------
    @never_raises
    def start_run(self, task: str) -> None:
        agent = self.agent
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_INVOKE_AGENT,
            n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_AGENT_NAME: agent.name,
            n.GEN_AI_REQUEST_MODEL: agent.model,
        }
        if agent.description:
            attributes[n.GEN_AI_AGENT_DESCRIPTION] = agent.description
        if agent.conversation_id:
            attributes[n.GEN_AI_CONVERSATION_ID] = agent.conversation_id
        if agent.version:
            attributes[n.AW_AGENT_VERSION] = agent.version
        limits = self.limits
        for key, value in (
            (n.AW_BUDGET_ITERATIONS_LIMIT, limits.max_iterations),
            (n.AW_BUDGET_TOKENS_LIMIT, limits.token_budget),
            (n.AW_BUDGET_COST_LIMIT_USD, limits.cost_budget_usd),
            (n.AW_BUDGET_TIMEOUT_S, limits.timeout_s),
        ):
            if value is not None:
                attributes[key] = value
        self.run_span = tracer().start_span(
            n.agent_span_name(agent.name), kind=SpanKind.INTERNAL, attributes=attributes
        )
        self.run_context = otel_context.get_current()
        self._log(
            n.LOG_RUN_START,
            f"run_start {redact_label(agent.name)}",
            None,
            message_redacted=True,
            model=agent.model,
            version=agent.version,
            task_chars=len(task) if isinstance(task, str) else 0,
        )

    @never_raises
    def end_run(self, result: RunResult, tokens_left: int | None, cost_left: float | None) -> None:
        """Record the run's outcome; its span ends even if recording fails (no span is ever left open)."""
        try:
            self._record_run_end(result, tokens_left, cost_left)
        finally:
            self.run_span.end()

    def _record_run_end(self, result: RunResult, tokens_left: int | None, cost_left: float | None) -> None:
        span = self.run_span
        usage = result.usage
        attributes: dict[str, Any] = {
            n.AW_RUN_STOP_REASON: result.stop_reason.value,
            n.AW_RUN_ITERATIONS: result.iterations,
            n.AW_RUN_TOOL_CALLS: len(result.tool_calls),
            n.AW_RUN_INPUT_TOKENS: usage.total_input_tokens,
            n.AW_RUN_OUTPUT_TOKENS: usage.output_tokens,
            n.AW_RUN_CACHE_READ_TOKENS: usage.cache_read_tokens,
            n.AW_RUN_CACHE_WRITE_TOKENS: usage.cache_write_tokens,
            n.AW_RUN_MODELS: list(result.models),
        }
        if result.stop_detail:
            attributes[n.AW_RUN_STOP_DETAIL] = redact(result.stop_detail)
        if result.cost_usd is not None:
            attributes[n.AW_RUN_COST_USD] = result.cost_usd
        if tokens_left is not None:
            attributes[n.AW_BUDGET_TOKENS_REMAINING] = tokens_left
        if cost_left is not None:
            attributes[n.AW_BUDGET_COST_REMAINING_USD] = round(cost_left, 10)
        span.set_attributes(attributes)
        if result.stop_reason is StopReason.ERROR:
            self._error(span, None, result.error or "error", result.stop_detail or "run failed")
        metric_attrs = _run_metric_attrs(self._base, result.stop_reason.value)
        m = self.metrics
        ctx = self._exemplar_context(span)
        m.runs.add(1, metric_attrs, ctx)
        m.run_duration.record(result.duration_s, metric_attrs, ctx)
        m.run_iterations.record(result.iterations, _base_metric_attrs(self._base), ctx)
        if result.cost_usd is not None:
            m.run_cost.record(result.cost_usd, metric_attrs, ctx)
        if result.stop_reason in BUDGET_STOPS:
            kind = {
                StopReason.MAX_ITERATIONS: "iterations",
                StopReason.TOKEN_BUDGET: "tokens",
                StopReason.COST_BUDGET: "cost",
                StopReason.TIMEOUT: "timeout",
                StopReason.TENANT_BUDGET: n.GUARD_TENANT_BUDGET,
            }[result.stop_reason]
            m.budget_stops.add(1, {**self.base_metric_attrs, n.AW_BUDGET_KIND: kind}, ctx)
        level = logging.ERROR if result.stop_reason is StopReason.ERROR else logging.INFO
        self._log(
            n.LOG_RUN_END,
            f"run_end {redact_label(self.agent.name)} stop_reason={result.stop_reason.value}",
            None,
            level,
            message_redacted=True,
            stop_reason=result.stop_reason.value,
            detail=redact(result.stop_detail),
            iterations=result.iterations,
            tool_calls=len(result.tool_calls),
            input_tokens=usage.total_input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=result.cost_usd,
            duration_s=round(result.duration_s, 4),
            models=result.models,
            version=self.agent.version,
        )

    # --- LLM calls -----------------------------------------------------------------------------------
    @never_raises
    def start_call(
        self,
        *,
        model: str,
        max_tokens: int,
        stream: bool,
        iteration: int,
        tier: str | None,
        route_reason: str | None,
        system: Any,
        messages: list[dict[str, Any]],
    ) -> CallObservation:
        agent = self.agent
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_CHAT,
            n.GEN_AI_PROVIDER_NAME: n.PROVIDER_ANTHROPIC,
            n.GEN_AI_REQUEST_MODEL: model,
            n.GEN_AI_REQUEST_MAX_TOKENS: max_tokens,
            n.AW_CALL_ITERATION: iteration,
        }
        if stream:
            attributes[n.GEN_AI_REQUEST_STREAM] = True
        if agent.server_address:
            attributes[n.SERVER_ADDRESS] = agent.server_address
        if agent.server_port:
            attributes[n.SERVER_PORT] = agent.server_port
        if agent.version:
            attributes[n.AW_AGENT_VERSION] = agent.version
        if tier:
            attributes[n.AW_MODEL_TIER] = tier
        if route_reason:
            attributes[n.AW_MODEL_ROUTE_REASON] = route_reason
        if self.content.on_spans:
            attributes[n.GEN_AI_INPUT_MESSAGES] = self.content.render(to_semconv_messages(messages))
            if system:
                attributes[n.GEN_AI_SYSTEM_INSTRUCTIONS] = self.content.render(system)
        span = tracer().start_span(
            n.chat_span_name(model), context=self.run_context_with_span(), kind=SpanKind.CLIENT, attributes=attributes
        )
        observation = CallObservation(span=span, model=model, started=time.perf_counter(), stream=stream)
        if self.content.in_events:
            observation.input_content = self.content.render(to_semconv_messages(messages))
        return observation

    def run_context_with_span(self) -> otel_context.Context:
        return trace.set_span_in_context(self.run_span, self.run_context)

    @never_raises
    def first_chunk(self, call: CallObservation | None) -> None:
        if call is not None and call.first_chunk_s is None:
            call.first_chunk_s = time.perf_counter() - call.started

    @never_raises
    def cut_stream_usage(self, call: CallObservation | None, usage: Usage, cost_usd: float | None) -> None:
        """Remember the usage of an attempt whose stream ended early; ``end_call`` adds it to the span."""
        if call is not None:
            call.cut_usage = usage if call.cut_usage is None else call.cut_usage + usage
            call.cut_cost = None if cost_usd is None or call.cut_cost is None else call.cut_cost + cost_usd

    @never_raises
    def retry(
        self, call: CallObservation | None, *, attempt: int, exc: BaseException, status: int | None, wait_s: float
    ) -> None:
        error_type = type(exc).__name__
        attributes: dict[str, Any] = {
            n.AW_RETRY_ATTEMPT: attempt,
            n.ERROR_TYPE: error_type,
            n.AW_RETRY_WAIT_S: round(wait_s, 4),
        }
        if status is not None:
            attributes[n.HTTP_RESPONSE_STATUS_CODE] = status
        model = self.agent.model
        if call is not None:
            call.attempts = attempt + 1
            call.span.add_event(n.EVENT_RETRY, attributes)
            model = call.model
        self.metrics.retries.add(
            1,
            {**self.base_metric_attrs, n.ERROR_TYPE: error_type, n.GEN_AI_REQUEST_MODEL: model},
            self._exemplar_context(call.span if call else self.run_span),
        )
        self._log(
            n.LOG_RETRY,
            f"retry attempt={attempt} after {error_type}, waiting {wait_s:.3f}s",
            call.span if call else None,
            logging.WARNING,
            attempt=attempt,
            error_type=error_type,
            status=status,
            wait_s=round(wait_s, 4),
            model=model,
            error=redact(str(exc))[:300],
        )

    @never_raises
    def end_call(
        self,
        call: CallObservation | None,
        *,
        message: Any = None,
        usage: Usage | None = None,
        cost_usd: float | None = None,
        exc: BaseException | None = None,
        output_blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record an LLM call's outcome; its span ends even if recording fails (no span is left open)."""
        if call is None:
            return
        try:
            self._record_call_end(call, message, usage, cost_usd, exc, output_blocks)
        finally:
            call.span.end()

    def _record_call_end(
        self,
        call: CallObservation,
        message: Any,
        usage: Usage | None,
        cost_usd: float | None,
        exc: BaseException | None,
        output_blocks: list[dict[str, Any]] | None,
    ) -> None:
        span = call.span
        ctx = self._exemplar_context(span)
        duration = time.perf_counter() - call.started
        if call.cut_usage is not None:  # attempts cut short were billed too: the span covers them all
            usage = call.cut_usage if usage is None else usage + call.cut_usage
            if message is None:
                cost_usd = call.cut_cost
            elif cost_usd is not None and call.cut_cost is not None:
                cost_usd = round(cost_usd + call.cut_cost, 10)
            else:
                cost_usd = None
        attributes: dict[str, Any] = {n.AW_CALL_ATTEMPTS: call.attempts}
        response_model = None
        if message is not None:
            response_model = getattr(message, "model", None) or call.model
            attributes[n.GEN_AI_RESPONSE_ID] = getattr(message, "id", "") or ""
            attributes[n.GEN_AI_RESPONSE_MODEL] = response_model
            stop_reason = getattr(message, "stop_reason", None)
            if stop_reason:
                attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = [str(stop_reason)]
        error_type = type(exc).__name__ if exc is not None else None
        duration_attrs, first_chunk_attrs, input_attrs, output_attrs, spend_attrs = _chat_metric_attrs(
            self._base, call.model, response_model, error_type
        )
        if usage is not None:
            attributes[n.GEN_AI_USAGE_INPUT_TOKENS] = usage.total_input_tokens
            attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            attributes[n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
            self.metrics.token_usage.record(usage.total_input_tokens, input_attrs, ctx)
            self.metrics.token_usage.record(usage.output_tokens, output_attrs, ctx)
        if cost_usd is not None:
            attributes[n.AW_CALL_COST_USD] = cost_usd
            self.metrics.spend.add(cost_usd, spend_attrs, ctx)
        if call.first_chunk_s is not None:
            attributes[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = call.first_chunk_s
            self.metrics.time_to_first_chunk.record(call.first_chunk_s, first_chunk_attrs, ctx)
        if output_blocks is not None and self.content.on_spans:
            attributes[n.GEN_AI_OUTPUT_MESSAGES] = self.content.render(
                to_semconv_messages([{"role": "assistant", "content": output_blocks}])
            )
        span.set_attributes(attributes)
        if exc is not None and error_type is not None:
            self._error(span, exc, error_type, f"{error_type}: {exc}")
        self.metrics.operation_duration.record(duration, duration_attrs, ctx)
        usage = usage or Usage()
        self._log(
            n.LOG_LLM_CALL,
            f"llm_call {redact_label(call.model)} in {duration:.3f}s",
            span,
            logging.ERROR if exc is not None else logging.INFO,
            message_redacted=True,
            model=call.model,
            response_id=attributes.get(n.GEN_AI_RESPONSE_ID),
            finish_reason=(attributes.get(n.GEN_AI_RESPONSE_FINISH_REASONS) or [None])[0],
            input_tokens=usage.total_input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=cost_usd,
            attempts=call.attempts,
            duration_s=round(duration, 4),
            error_type=error_type,
        )
        if self.content.in_events:
            details: dict[str, Any] = {
                n.GEN_AI_OUTPUT_MESSAGES: self.content.render(
                    to_semconv_messages([{"role": "assistant", "content": output_blocks or []}])
                )
            }
            if call.input_content is not None:
                details[n.GEN_AI_INPUT_MESSAGES] = call.input_content
            self._log(n.LOG_INFERENCE_DETAILS, "inference content", span, logging.INFO, **details)

    # --- tools ---------------------------------------------------------------------------------------
    @never_raises
    def start_tool(self, *, name: str, call_id: str, description: str | None, arguments: Any) -> ToolObservation:
        attributes: dict[str, Any] = {
            n.GEN_AI_OPERATION_NAME: n.OP_EXECUTE_TOOL,
            n.GEN_AI_TOOL_NAME: name,
            n.GEN_AI_TOOL_CALL_ID: call_id,
            n.GEN_AI_TOOL_TYPE: n.TOOL_TYPE_FUNCTION,
        }
        if description:
            attributes[n.GEN_AI_TOOL_DESCRIPTION] = description
        if self.agent.version:
            attributes[n.AW_AGENT_VERSION] = self.agent.version
        if self.content.on_spans:
            attributes[n.GEN_AI_TOOL_CALL_ARGUMENTS] = self.content.render(arguments)
        span = tracer().start_span(
            n.tool_span_name(name), context=self.run_context_with_span(), kind=SpanKind.INTERNAL, attributes=attributes
        )
        self._log(
            n.LOG_TOOL_CALL, f"tool_call {redact_label(name)}", span, message_redacted=True, tool=name, call_id=call_id
        )
        return ToolObservation(span=span, name=name, call_id=call_id)

    @never_raises
    def end_tool(
        self,
        tool: ToolObservation | None,
        *,
        content: str,
        is_error: bool,
        outcome: str,
        error_type: str | None,
        attempts: int,
        duration_s: float,
    ) -> None:
        """Record a tool call's outcome; its span ends even if recording fails (no span is left open)."""
        if tool is None:
            return
        try:
            self._record_tool_end(tool, content, is_error, outcome, error_type, attempts, duration_s)
        finally:
            tool.span.end()

    def _record_tool_end(
        self,
        tool: ToolObservation,
        content: str,
        is_error: bool,
        outcome: str,
        error_type: str | None,
        attempts: int,
        duration_s: float,
    ) -> None:
        span = tool.span
        attributes: dict[str, Any] = {n.AW_TOOL_OUTCOME: outcome, n.AW_TOOL_ATTEMPTS: attempts}
        if self.content.on_spans:
            attributes[n.GEN_AI_TOOL_CALL_RESULT] = self.content.render(content)
        span.set_attributes(attributes)
        duration_attrs, calls_attrs = _tool_metric_attrs(
            self._base, tool.name, outcome, (error_type or "error") if is_error else None
        )
        if is_error:
            self._error(span, None, error_type or "error", content)
            # The executor turned the exception into the tool result; record it as the exception event.
            span.add_event(
                n.EVENT_EXCEPTION,
                {n.EXCEPTION_TYPE: error_type or "error", n.EXCEPTION_MESSAGE: redact(content)[:MAX_MESSAGE_CHARS]},
            )
        ctx = self._exemplar_context(span)
        self.metrics.tool_duration.record(duration_s, duration_attrs, ctx)
        self.metrics.tool_calls.add(1, calls_attrs, ctx)
        self._log(
            n.LOG_TOOL_RESULT,
            f"tool_result {redact_label(tool.name)} outcome={redact_label(outcome)}",
            span,
            logging.WARNING if is_error else logging.INFO,
            message_redacted=True,
            tool=tool.name,
            call_id=tool.call_id,
            outcome=outcome,
            error_type=error_type,
            attempts=attempts,
            duration_s=round(duration_s, 4),
            output_chars=len(content),
        )

    @never_raises
    def tool_overrun(self, tool: ToolObservation | None, *, limit_s: float, duration_s: float) -> None:
        """A tool ran past its timeout, which could not fire: an async tool that blocked the event loop, or an
        ``inline`` sync tool (it runs on the caller's thread)."""
        if tool is None:
            return
        attributes = {n.AW_TOOL_TIMEOUT_S: limit_s, n.AW_TOOL_DURATION_S: round(duration_s, 4)}
        tool.span.add_event(n.EVENT_TOOL_OVERRUN, attributes)
        self._log(
            n.LOG_TOOL_OVERRUN,
            f"tool {tool.name!r} ran {duration_s:.2f}s, past its {limit_s:g}s timeout, which could not stop it: "
            "an async tool must not block the event loop (await instead, or make it a sync tool, run in a thread), "
            "and an inline=True tool must be fast and bounded (drop inline=True so a thread can abandon it)",
            tool.span,
            logging.WARNING,
            tool=tool.name,
            call_id=tool.call_id,
            timeout_s=limit_s,
            duration_s=round(duration_s, 4),
        )

    @never_raises
    def tool_retry(self, tool: ToolObservation | None, attempt: int, wait_s: float, exc: BaseException) -> None:
        """A tool attempt failed and is retried after ``wait_s``: a span event, a count and a log record.

        Only the tool's name and the exception's type are recorded, never its message: a tool's exception
        may quote its input.
        """
        if tool is None:
            return
        error_type = type(exc).__name__
        wait = round(wait_s, 4)
        tool.span.add_event(
            n.EVENT_RETRY, {n.AW_RETRY_ATTEMPT: attempt, n.ERROR_TYPE: error_type, n.AW_RETRY_WAIT_S: wait}
        )
        self.metrics.tool_retries.add(
            1,
            {**self.base_metric_attrs, n.GEN_AI_TOOL_NAME: tool.name, n.ERROR_TYPE: error_type},
            self._exemplar_context(tool.span),
        )
        self._log(
            n.LOG_TOOL_RETRY,
            f"tool_retry {tool.name} attempt={attempt} after {error_type}, waiting {wait_s:.3f}s",
            tool.span,
            logging.WARNING,
            tool=tool.name,
            call_id=tool.call_id,
            attempt=attempt,
            error_type=error_type,
            wait_s=wait,
        )

    @never_raises
    def rate_limit_wait(self, call: CallObservation | None, waited_s: float) -> None:
        """A ``CallGate`` held the call's attempt ``waited_s`` for shared rate-limit capacity."""
        if call is not None:
            call.span.add_event(n.EVENT_RATE_LIMIT_WAIT, {n.AW_RATE_LIMIT_WAIT_S: round(waited_s, 4)})

    # --- decisions -----------------------------------------------------------------------------------
    @never_raises
    def budget_warning(self, kind: str, used: float, limit: float) -> None:
        self.run_span.add_event(n.EVENT_BUDGET_WARNING, {n.AW_BUDGET_KIND: kind, "used": used, "limit": limit})
        self._log(
            n.LOG_BUDGET_WARNING,
            f"budget_warning {kind}: {used:g} of {limit:g} used",
            None,
            logging.WARNING,
            kind=kind,
            used=used,
            limit=limit,
        )

    @never_raises
    def count_tokens_failed(self, exc: BaseException) -> None:
        """``count_tokens`` failed near a budget and the byte estimate stands: counted each time, logged once a run."""
        error_type = type(exc).__name__
        attributes = {**self.base_metric_attrs, n.ERROR_TYPE: error_type}
        self.metrics.count_tokens_fallbacks.add(1, attributes, self._exemplar_context(self.run_span))
        if self.count_fallback_logged:
            return
        self.count_fallback_logged = True
        self._log(
            n.LOG_COUNT_TOKENS_FALLBACK,
            f"count_tokens failed ({error_type}); the budgets use the byte estimate, which is conservative",
            None,
            logging.WARNING,
            error_type=error_type,
            status=getattr(exc, "status_code", None),
            error=redact(str(exc))[:300],
        )

    @never_raises
    def budget_exceeded(self, kind: str, detail: str) -> None:
        self._log(
            n.LOG_BUDGET_EXCEEDED, f"budget_exceeded {kind}: {detail}", None, logging.WARNING, kind=kind, detail=detail
        )

    @never_raises
    def route(self, *, model: str, tier: str | None, reason: str | None, iteration: int) -> None:
        self._log(
            n.LOG_ROUTE,
            f"model_route {model} tier={tier}",
            None,
            model=model,
            tier=tier,
            reason=reason,
            iteration=iteration,
        )
