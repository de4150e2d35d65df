"""The signals floor: what agentwatch's documented signals cost on their own, made with bare OTel SDK calls.

Mode ``signals-floor`` of ``_worker.py``. It runs the same SDK calls as the ``bare`` mode (one call, or the
hand-written 3-call, 2-tool loop) and emits, directly with the OTel SDK and ``json``, what an agentwatch
run of the same conversation documents and emits: the ``invoke_agent`` root span, a ``chat`` span per LLM
call and an ``execute_tool`` span per tool call, with the same attributes (set at start and at end, as
the runner does); the same histogram points with the same attribute sets, each in its span's context so
exemplars link; the counters as plain sums under a lock (agentwatch sums them in process too); the same
JSON log lines, the run's lines written with one write at its end.

No run loop, guards, pricing, redaction or error handling: the added time is the price of the signals
themselves, the least any implementation can add that keeps every one of them on the caller's thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import _mock
from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, SpanKind

AGENT = "bench"
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
COST_USD = 8.5e-05  # what agentwatch prices one mock call at (the floor does not price)


class Signals:
    """The spans, metric points and log lines of one run, emitted as directly as the SDK allows."""

    def __init__(self, log_path: str) -> None:
        self.tracer = trace.get_tracer("agentwatch", "floor")
        meter = metrics.get_meter("agentwatch", "floor")
        self.token_usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        self.op_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
        )
        self.tool_duration = meter.create_histogram(
            "gen_ai.execute_tool.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
        )
        self.run_duration = meter.create_histogram("agentwatch.run.duration", unit="s")
        self.iterations = meter.create_histogram("agentwatch.run.iterations", unit="{call}")
        self.run_cost = meter.create_histogram("agentwatch.run.cost.usd", unit="USD")
        self.sums: dict[tuple[str, ...], float] = {}
        self.lock = threading.Lock()
        chat = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": _mock.MODEL,
            "gen_ai.agent.name": AGENT,
            "gen_ai.response.model": _mock.MODEL,
        }
        self.chat_attrs = chat
        self.token_attrs = ({**chat, "gen_ai.token.type": "input"}, {**chat, "gen_ai.token.type": "output"})
        self.run_attrs = {"gen_ai.agent.name": AGENT, "agentwatch.run.stop_reason": "end_turn"}
        self.agent_attrs = {"gen_ai.agent.name": AGENT}
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (the process ends with the mode)
        self.encode = json.JSONEncoder(default=str, ensure_ascii=False).encode

    def _add(self, key: tuple[str, ...], amount: float) -> None:
        with self.lock:
            self.sums[key] = self.sums.get(key, 0) + amount

    def _line(self, message: str, span: Span, fields: dict[str, Any]) -> str:
        created = time.time()
        span_context = span.get_span_context()
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z",
            "level": "info",
            "logger": "agentwatch",
            "message": message,
            "trace_id": format(span_context.trace_id, "032x"),
            "span_id": format(span_context.span_id, "016x"),
            "event": fields.pop("event"),
            "agent": AGENT,
            **fields,
        }
        return self.encode(out)

    def run(self, body: Callable[[Run], Any]) -> Any:
        """``body`` inside a run's root span; the run's metric points and log lines after it."""
        run = Run(self)
        result = body(run)
        run.end()
        return result


class Run:
    """One run's signals: ``call`` wraps each LLM call, ``tool`` each tool call."""

    def __init__(self, signals: Signals) -> None:
        self.signals = signals
        self.started = time.perf_counter()
        self.span = signals.tracer.start_span(
            f"invoke_agent {AGENT}",
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.agent.name": AGENT,
                "gen_ai.request.model": _mock.MODEL,
                "agentwatch.budget.iterations.limit": 10,
                "agentwatch.budget.timeout_s": 300.0,
            },
        )
        self.context = trace.set_span_in_context(self.span)
        self.lines = [
            signals._line(
                f"run_start {AGENT}", self.span, {"event": "run_start", "model": _mock.MODEL, "task_chars": 30}
            )
        ]
        self.calls = self.tools = self.input_tokens = self.output_tokens = 0

    def call(self, create: Callable[[], Any]) -> Any:
        s = self.signals
        self.calls += 1
        started = time.perf_counter()
        span = s.tracer.start_span(
            f"chat {_mock.MODEL}",
            context=self.context,
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": _mock.MODEL,
                "gen_ai.request.max_tokens": _mock.MAX_TOKENS,
                "agentwatch.call.iteration": self.calls,
                "server.address": "bench.invalid",
                "server.port": 80,
            },
        )
        call_context = trace.set_span_in_context(span, self.context)
        token = context.attach(call_context)
        try:
            message = create()
        finally:
            context.detach(token)
        usage = message.usage
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        span.set_attributes(
            {
                "agentwatch.call.attempts": 1,
                "gen_ai.response.id": message.id,
                "gen_ai.response.model": message.model,
                "gen_ai.response.finish_reasons": [message.stop_reason],
                "gen_ai.usage.input_tokens": usage.input_tokens,
                "gen_ai.usage.output_tokens": usage.output_tokens,
                "gen_ai.usage.cache_read.input_tokens": 0,
                "gen_ai.usage.cache_write.input_tokens": 0,
                "agentwatch.call.cost_usd": COST_USD,
            }
        )
        s.token_usage.record(usage.input_tokens, s.token_attrs[0], call_context)
        s.token_usage.record(usage.output_tokens, s.token_attrs[1], call_context)
        duration = time.perf_counter() - started
        s.op_duration.record(duration, s.chat_attrs, call_context)
        s._add(("spend", _mock.MODEL), COST_USD)
        span.end()
        fields = {
            "event": "llm_call",
            "model": _mock.MODEL,
            "response_id": message.id,
            "finish_reason": message.stop_reason,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost_usd": COST_USD,
            "attempts": 1,
            "duration_s": round(duration, 4),
        }
        self.lines.append(s._line(f"llm_call {_mock.MODEL} in {duration:.3f}s", span, fields))
        return message

    def tool(self, name: str, call_id: str, description: str, run_tool: Callable[[], str]) -> str:
        s = self.signals
        self.tools += 1
        started = time.perf_counter()
        span = s.tracer.start_span(
            f"execute_tool {name}",
            context=self.context,
            kind=SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.type": "function",
                "gen_ai.tool.description": description,
            },
        )
        self.lines.append(s._line(f"tool_call {name}", span, {"event": "tool_call", "tool": name, "call_id": call_id}))
        token = context.attach(trace.set_span_in_context(span, self.context))
        try:
            output = run_tool()
        finally:
            context.detach(token)
        span.set_attributes({"agentwatch.tool.outcome": "ok", "agentwatch.tool.attempts": 1})
        duration = time.perf_counter() - started
        tool_context = trace.set_span_in_context(span, self.context)
        s.tool_duration.record(duration, {"gen_ai.tool.name": name, "gen_ai.agent.name": AGENT}, tool_context)
        s._add(("tool_calls", name, "ok"), 1)
        span.end()
        fields = {
            "event": "tool_result",
            "tool": name,
            "call_id": call_id,
            "outcome": "ok",
            "attempts": 1,
            "duration_s": round(duration, 4),
            "output_chars": len(output),
        }
        self.lines.append(s._line(f"tool_result {name} outcome=ok", span, fields))
        return output

    def end(self) -> None:
        s, span = self.signals, self.span
        cost = round(COST_USD * self.calls, 10)
        span.set_attributes(
            {
                "agentwatch.run.stop_reason": "end_turn",
                "agentwatch.run.iterations": self.calls,
                "agentwatch.run.tool_calls": self.tools,
                "agentwatch.run.input_tokens": self.input_tokens,
                "agentwatch.run.output_tokens": self.output_tokens,
                "agentwatch.run.cache_read_tokens": 0,
                "agentwatch.run.cache_write_tokens": 0,
                "agentwatch.run.models": [_mock.MODEL],
                "agentwatch.run.cost_usd": cost,
            }
        )
        duration = time.perf_counter() - self.started
        s.run_duration.record(duration, s.run_attrs, self.context)
        s.iterations.record(self.calls, s.agent_attrs, self.context)
        s.run_cost.record(cost, s.run_attrs, self.context)
        s._add(("runs", "end_turn"), 1)
        span.end()
        fields = {
            "event": "run_end",
            "stop_reason": "end_turn",
            "detail": "",
            "iterations": self.calls,
            "tool_calls": self.tools,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost_usd": cost,
            "duration_s": round(duration, 4),
            "models": [_mock.MODEL],
        }
        self.lines.append(s._line(f"run_end {AGENT} stop_reason=end_turn", span, fields))
        s.log.write("\n".join(self.lines) + "\n")
        s.log.flush()


def call_op(client: Any, log_path: str) -> Callable[[], Any]:
    """One LLM call with a one-call run's signals."""
    signals = Signals(log_path)

    def create() -> Any:
        return client.messages.create(
            model=_mock.MODEL, max_tokens=_mock.MAX_TOKENS, messages=[{"role": "user", "content": _mock.TASK}]
        )

    return lambda: signals.run(lambda run: run.call(create))


def loop_op(client: Any, log_path: str) -> Callable[[], Any]:
    """The hand-written 3-call, 2-tool loop of ``_worker.conversation`` with a whole run's signals."""
    import _worker

    signals = Signals(log_path)
    converse = _worker.conversation(client)
    return lambda: signals.run(lambda run: converse(run.call, run.tool))
