"""Hand-built results and a tiny fake agent for unit tests (the real Agent runs in the integration tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import SpanContext

from agentwatch.result import RunResult, StopReason, ToolCall, Usage

SPAN_CONTEXT = SpanContext(0x0123456789ABCDEF0123456789ABCDEF, 0x0123456789ABCDEF, is_remote=False)
TRACE_ID = format(SPAN_CONTEXT.trace_id, "032x")


def tool_call(name: str, tool_input: Any = None, *, is_error: bool = False) -> ToolCall:
    return ToolCall(
        id=f"toolu_{name}",
        name=name,
        input=tool_input if tool_input is not None else {},
        output="err" if is_error else "ok",
        is_error=is_error,
        outcome="error" if is_error else "ok",
        duration_s=0.01,
    )


def make_result(
    answer: str = "",
    *,
    stop: StopReason = StopReason.END_TURN,
    tools: list[ToolCall] | None = None,
    cost: float | None = 0.001,
    iterations: int = 1,
    duration: float = 0.1,
    span_context: SpanContext = SPAN_CONTEXT,
    version: str | None = "v1",
    detail: str = "",
) -> RunResult:
    return RunResult(
        answer=answer,
        stop_reason=stop,
        usage=Usage(input_tokens=100, output_tokens=20),
        cost_usd=cost,
        iterations=iterations,
        tool_calls=tools or [],
        trace_id=format(span_context.trace_id, "032x"),
        span_id=format(span_context.span_id, "016x"),
        span_context=span_context,
        duration_s=duration,
        stop_detail=detail,
        agent_version=version,
    )


@dataclass
class FakeAgent:
    """Answers each task with ``respond(task)`` (a ``RunResult``, or an exception to raise)."""

    respond: Callable[[str], RunResult | Exception]
    name: str = "fake-agent"
    version: str | None = "v1"
    model: str = "fake-model"
    delay_s: float = 0.0
    calls: list[str] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    async def arun(self, task: str, *, client: Any = None) -> RunResult:
        self.calls.append(task)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            outcome = self.respond(task)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        finally:
            self.active -= 1

    def run(self, task: str, *, client: Any = None) -> RunResult:
        return asyncio.run(self.arun(task, client=client))

    def replace(self, **changes: Any) -> FakeAgent:
        return FakeAgent(**{**self.__dict__, **changes, "calls": []})
