"""Shared helpers for the runner and telemetry tests: tasks, agents, an open-span tracker, stop checks."""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from agentwatch import Agent, Limits, RunEvent, RunFinished, RunResult, StopReason
from agentwatch.sim import Simulator
from agentwatch.tools import calculator, web_search

MODEL = "claude-haiku-4-5-20251001"
CAPABLE = "claude-sonnet-4-6"
DEMO_TASK = (
    "What is the population of Earth, and how many people is that per square kilometre of land area? "
    "Land area = 148,940,000 km²"
)
EVAL_CASES = [
    ("What is the population of Earth?", ["8", "billion"]),
    ("What is 1234 * 5678?", ["7,006,652"]),
    ("What is the speed of light?", ["299,792,458"]),
]
DIRECT_TASK = "Say hello to the team."
API_KEY = "sk-ant-api03-" + "Zq9" * 14 + "AA"  # shaped like a real key, so redaction would catch it
_counter = itertools.count()


def unique(prefix: str) -> str:
    """An agent name no other test uses, so metric points never mix."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def fast_limits(**overrides: Any) -> Limits:
    """Limits with retry waits small enough for tests."""
    values: dict[str, Any] = {"retry_base_delay_s": 0.01, "retry_max_delay_s": 0.02, "timeout_s": 20.0}
    values.update(overrides)
    return Limits(**values)


def demo_agent(prefix: str = "agent", **overrides: Any) -> Agent:
    values: dict[str, Any] = {
        "name": unique(prefix),
        "model": MODEL,
        "tools": [calculator, web_search],
        "limits": fast_limits(),
    }
    values.update(overrides)
    return Agent(**values)


def sync_client(sim: Simulator, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=options.pop("api_key", "test-key"), base_url=sim.base_url, **options)


def async_client(sim: Simulator, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=options.pop("api_key", "test-key"), base_url=sim.base_url, **options)


def consume(events: Iterator[RunEvent]) -> tuple[list[RunEvent], RunResult]:
    collected = list(events)
    last = collected[-1]
    assert isinstance(last, RunFinished), f"a stream must end with RunFinished, got {last!r}"
    return collected, last.result


async def aconsume(events: AsyncIterator[RunEvent]) -> tuple[list[RunEvent], RunResult]:
    collected = [event async for event in events]
    last = collected[-1]
    assert isinstance(last, RunFinished), f"a stream must end with RunFinished, got {last!r}"
    return collected, last.result


async def run_in_mode(mode: str, agent: Agent, task: str, sim: Simulator) -> tuple[list[RunEvent], RunResult]:
    """Run ``task`` the way ``mode`` says: run, arun, stream or astream. Events only for the stream forms."""
    if mode == "run":
        return [], agent.run(task, client=sync_client(sim))
    if mode == "arun":
        return [], await agent.arun(task, client=async_client(sim))
    if mode == "stream":
        return consume(agent.stream(task, client=sync_client(sim)))
    if mode == "astream":
        return await aconsume(agent.astream(task, client=async_client(sim)))
    raise AssertionError(mode)


_SENTENCE_BREAK = re.compile(r"[.!?]\s+[A-Z]")


def assert_stopped(result: RunResult, reason: StopReason) -> None:
    """A stop that returns partial work and ends its answer with ONE sentence saying why.

    (An API error's detail may quote the API's own message, which can hold sentences of its own.)
    """
    assert result.stop_reason is reason, (result.stop_reason, result.answer)
    last_line = result.answer.splitlines()[-1]
    assert last_line == f"Stopped early ({reason.value}): {result.stop_detail}.", result.answer
    assert result.stop_detail, result.answer
    if reason is not StopReason.ERROR:
        assert not _SENTENCE_BREAK.search(result.stop_detail), result.stop_detail
    assert len(result.trace_id) == 32 and int(result.trace_id, 16) != 0


class OpenSpans(SpanProcessor):
    """Remembers spans that started and have not ended, and the attributes each span had at start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open: dict[int, ReadableSpan] = {}
        self.at_start: dict[int, dict[str, Any]] = {}

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        with self._lock:
            self.open[span.context.span_id] = span
            self.at_start[span.context.span_id] = dict(span.attributes or {})

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            assert span.context is not None
            self.open.pop(span.context.span_id, None)

    def open_in(self, trace_id: str) -> list[str]:
        wanted = int(trace_id, 16)
        with self._lock:
            return [s.name for s in self.open.values() if s.context is not None and s.context.trace_id == wanted]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_tracker: OpenSpans | None = None
_tracker_lock = threading.Lock()


def open_spans() -> OpenSpans:
    """The session's open-span tracker, added once as an extra processor of the global provider."""
    global _tracker
    with _tracker_lock:
        if _tracker is None:
            provider = trace.get_tracer_provider()
            assert isinstance(provider, TracerProvider), "tests/conftest.py sets the SDK provider"
            _tracker = OpenSpans()
            provider.add_span_processor(_tracker)
        return _tracker


def of_trace(finished: Any, trace_id: str) -> list[ReadableSpan]:
    wanted = int(trace_id, 16)
    return [s for s in finished if s.context is not None and s.context.trace_id == wanted]


def root_of(finished: list[ReadableSpan]) -> ReadableSpan:
    roots = [s for s in finished if s.name.startswith("invoke_agent")]
    assert len(roots) == 1, [s.name for s in finished]
    return roots[0]


class AttemptClock:
    """httpx2 event hooks that timestamp every request sent and response received (real HTTP)."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self.sent: list[float] = []
        self.received: list[float] = []

    def client(self) -> httpx2.Client:
        return httpx2.Client(
            event_hooks={
                "request": [lambda request: self.sent.append(self._now())],
                "response": [lambda response: self.received.append(self._now())],
            }
        )


def by_iteration(finished: Any) -> list[ReadableSpan]:
    """The chat spans, in call order."""
    chats = [s for s in finished if s.name.startswith("chat ")]
    return sorted(chats, key=lambda s: s.attributes["agentwatch.call.iteration"])
