"""The tool executor: every way a tool call can end becomes a ``ToolOutcome``; nothing escapes."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.telemetry import names
from agentwatch.tools import Tool, ToolOutcome, TransientToolError, aexecute_tool, execute_tool, tool
from polling import DEADLINE_S, await_until

Runner = Callable[..., Awaitable[ToolOutcome]]


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Both executor forms behind one awaitable signature, so each rule is tested in both."""

    async def call(tools: list[Tool[..., Any]], name: str, raw: object, **kwargs: Any) -> ToolOutcome:
        kwargs.setdefault("timeout_s", 5.0)
        kwargs.setdefault("max_output_chars", 10_000)
        by_name = {t.name: t for t in tools}
        if request.param == "sync":
            return execute_tool(by_name, name, raw, **kwargs)
        return await aexecute_tool(by_name, name, raw, **kwargs)

    return call


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def async_add(a: int, b: int) -> int:
    """Add two integers, asynchronously."""
    await asyncio.sleep(0)
    return a + b


@tool
def explode(message: str) -> str:
    """Always fails."""
    raise ValueError(message)


class Model(pydantic.BaseModel):
    name: str
    size: int


@dataclasses.dataclass
class Record:
    key: str


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


@pytest.mark.parametrize("fn", [add, async_add])
async def test_ok(run: Runner, fn: Tool[..., Any]) -> None:
    outcome = await run([fn], fn.name, {"a": 2, "b": "3"})
    assert outcome.content == "5"
    assert (outcome.is_error, outcome.outcome, outcome.error_type, outcome.attempts) == (
        False,
        names.TOOL_OK,
        None,
        1,
    )
    assert outcome.duration_s >= 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text as is", "text as is"),
        ({"a": [1, 2.5, None], "b": "é"}, '{"a":[1,2.5,null],"b":"é"}'),
        ([1, "two"], '[1,"two"]'),
        (Model(name="x", size=3), '{"name":"x","size":3}'),
        (Record(key="k"), '{"key":"k"}'),
        (True, "true"),
        (None, "null"),
        (Opaque(), "<opaque thing>"),
    ],
)
async def test_return_values_are_serialised(run: Runner, value: object, expected: str) -> None:
    @tool
    def produce() -> object:
        """Return the value."""
        return value

    assert (await run([produce], "produce", {})).content == expected


async def test_exception_becomes_an_error_result(run: Runner) -> None:
    outcome = await run([explode], "explode", {"message": "disk full"})
    assert outcome.content == "ToolError: ValueError: disk full"
    assert (outcome.is_error, outcome.outcome, outcome.error_type, outcome.attempts) == (
        True,
        names.TOOL_ERROR,
        "ValueError",
        1,
    )


async def test_unprintable_result_is_an_error_not_a_crash(run: Runner) -> None:
    @tool
    def weird() -> object:
        """Return something whose str() fails."""
        return Unprintable()

    outcome = await run([weird], "weird", {})
    assert outcome.outcome == names.TOOL_ERROR
    assert outcome.content == "ToolError: RuntimeError: cannot print me"


class OddBaseError(BaseException):
    """A BaseException that is not one of the three that must propagate."""


async def test_other_base_exceptions_are_contained(run: Runner) -> None:
    @tool
    def odd() -> None:
        """Raise a BaseException subclass."""
        raise OddBaseError("odd")

    @tool
    async def odd_async() -> None:
        """Raise a BaseException subclass."""
        raise GeneratorExit

    assert (await run([odd], "odd", {})).error_type == "OddBaseError"
    assert (await run([odd_async], "odd_async", {})).error_type == "GeneratorExit"


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_interrupt_and_exit_propagate(run: Runner, exc_type: type[BaseException]) -> None:
    @tool
    def stop() -> None:
        """Ask the process to stop."""
        raise exc_type

    with pytest.raises(exc_type):
        await run([stop], "stop", {})


async def test_a_cancelled_error_the_tool_raises_itself_is_a_tool_error(run: Runner) -> None:
    """Nobody cancelled the call, so it is the tool's error (a real cancellation: tests/tools/test_redteam.py)."""

    @tool
    async def cancelled() -> None:
        """Raise CancelledError."""
        raise asyncio.CancelledError

    outcome = await run([cancelled], "cancelled", {})
    assert (outcome.outcome, outcome.error_type) == (names.TOOL_ERROR, "CancelledError")


async def test_unknown_tool_names_the_available_ones(run: Runner) -> None:
    outcome = await run([explode, add], "multiply", {"a": 1})
    assert outcome.content == "ToolError: unknown tool 'multiply'. Available tools: add, explode."
    assert (outcome.is_error, outcome.outcome, outcome.error_type, outcome.attempts) == (
        True,
        names.TOOL_UNKNOWN,
        "unknown_tool",
        0,
    )
    assert "(none)" in (await run([], "x", {})).content


async def test_invalid_input_tells_the_model_what_to_fix(run: Runner) -> None:
    outcome = await run([add], "add", {"a": "one"})
    assert (outcome.is_error, outcome.outcome, outcome.error_type, outcome.attempts) == (
        True,
        names.TOOL_INVALID_INPUT,
        "invalid_input",
        0,
    )
    assert "- a: Input should be a valid integer" in outcome.content
    assert "- b: required field is missing" in outcome.content
    assert "Fix the input" in outcome.content


async def test_output_is_truncated_with_a_marker(run: Runner) -> None:
    @tool
    def big() -> str:
        """Return a lot."""
        return "x" * 100

    outcome = await run([big], "big", {}, max_output_chars=10)
    assert outcome.content == "x" * 10 + "\n[truncated 90 chars]"
    assert outcome.outcome == names.TOOL_OK
    huge_error = await run([explode], "explode", {"message": "e" * 500}, max_output_chars=40)
    assert huge_error.content.endswith("[truncated 483 chars]")


# --- timeouts ----------------------------------------------------------------------------------


@tool
def hung_sync() -> str:
    """Hang for 30 seconds."""
    time.sleep(30)
    return "too late"


@tool
async def hung_async() -> str:
    """Hang for 30 seconds."""
    await asyncio.sleep(30)
    return "too late"


@pytest.mark.parametrize("fn", [hung_sync, hung_async])
async def test_hung_tool_times_out_on_time(run: Runner, fn: Tool[..., Any]) -> None:
    started = time.monotonic()
    outcome = await run([fn], fn.name, {}, timeout_s=0.3)
    assert time.monotonic() - started < 0.3 + 5  # not the 30 s the tool hangs, even on a busy machine
    assert (outcome.is_error, outcome.outcome, outcome.error_type) == (True, names.TOOL_TIMEOUT, "timeout")
    assert outcome.content == f"ToolError: timeout: tool {fn.name!r} did not finish within 0.3 s."


async def test_hung_sync_tool_does_not_block_the_event_loop() -> None:
    """The tool is released by a task on the event loop: only a loop the tool does not block can do that."""
    started, release = threading.Event(), threading.Event()

    @tool
    def blocked() -> str:
        """Block until released."""
        started.set()
        return "released" if release.wait(2 * DEADLINE_S) else "never released"

    async def releaser() -> None:
        await await_until(started.is_set, "the tool to start")
        release.set()

    task = asyncio.create_task(releaser())
    outcome = await aexecute_tool({"blocked": blocked}, "blocked", {}, timeout_s=3 * DEADLINE_S, max_output_chars=100)
    await task
    assert outcome.content == "released"


async def test_smaller_of_the_two_timeouts_wins(run: Runner) -> None:
    quick = tool(timeout_s=0.2, name="quick")(hung_sync.fn)
    started = time.monotonic()
    outcome = await run([quick], "quick", {}, timeout_s=10)
    assert outcome.outcome == names.TOOL_TIMEOUT
    assert time.monotonic() - started < 5  # not the executor's 10 s
    assert "0.2 s" in outcome.content


async def test_no_timeout_means_no_limit(run: Runner) -> None:
    @tool
    def slowish() -> str:
        """Take a moment."""
        time.sleep(0.05)
        return "done"

    assert (await run([slowish], "slowish", {}, timeout_s=None)).content == "done"


def test_hung_tools_never_block_interpreter_exit() -> None:
    script = textwrap.dedent(
        """
        import asyncio, time
        from agentwatch.tools import aexecute_tool, execute_tool, tool

        @tool
        def hang() -> None:
            time.sleep(30)

        tools = {"hang": hang}
        print(execute_tool(tools, "hang", {}, timeout_s=0.1, max_output_chars=100).outcome)
        print(asyncio.run(aexecute_tool(tools, "hang", {}, timeout_s=0.1, max_output_chars=100)).outcome)
        """
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["timeout", "timeout"]
    assert time.monotonic() - started < 20  # not the 30 s the tool sleeps


# --- retries -------------------------------------------------------------------------------------


def flaky_tool(failures: int, exc: type[BaseException] = TransientToolError, **options: Any) -> Tool[..., Any]:
    calls = {"n": 0}

    def flaky() -> str:
        """Fail ``failures`` times, then succeed."""
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc(f"failure {calls['n']}")
        return f"ok after {calls['n']}"

    options.setdefault("retry_backoff_s", 0.01)
    return tool(**options)(flaky)


async def test_retries_with_backoff_and_on_retry(run: Runner) -> None:
    seen: list[tuple[int, float, str]] = []
    outcome = await run(
        [flaky_tool(2, retries=3)],
        "flaky",
        {},
        on_retry=lambda n, wait, exc: seen.append((n, wait, str(exc))),
    )
    assert outcome.content == "ok after 3"
    assert outcome.attempts == 3
    assert [(n, message) for n, _, message in seen] == [(1, "failure 1"), (2, "failure 2")]
    for n, wait, _ in seen:  # retry_backoff_s doubled per retry, a random 50-100% of it
        ceiling = 0.01 * 2 ** (n - 1)
        assert ceiling / 2 <= wait <= ceiling


async def test_retry_waits_are_jittered(run: Runner) -> None:
    """Tools that fail together must not retry in lockstep: the same retry waits a different time."""
    waits: list[float] = []
    for _ in range(6):
        outcome = await run([flaky_tool(1, retries=1)], "flaky", {}, on_retry=lambda n, wait, exc: waits.append(wait))
        assert outcome.attempts == 2
    assert len(waits) == 6 and all(0.005 <= wait <= 0.01 for wait in waits)
    assert len(set(waits)) > 1


class RateLimited(TransientToolError):
    """What an HTTP client raises for a 429: the response (and its headers) ride on the exception."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429 Too Many Requests")
        self.response = types.SimpleNamespace(headers=headers)


def rate_limited_tool(headers: dict[str, str], **options: Any) -> Tool[..., Any]:
    calls = {"n": 0}

    def fetch() -> str:
        """Rate limited once, then served."""
        calls["n"] += 1
        if calls["n"] == 1:
            raise RateLimited(headers)
        return "served"

    return tool(**options)(fetch)


async def test_a_retry_after_on_the_tools_error_is_honoured(run: Runner) -> None:
    waits: list[float] = []
    outcome = await run(
        [rate_limited_tool({"retry-after-ms": "30"}, retries=2)],
        "fetch",
        {},
        on_retry=lambda n, wait, exc: waits.append(wait),
    )
    assert outcome.content == "served" and waits == [0.03]


async def test_a_retry_wait_that_would_outlast_the_tools_timeout_is_not_taken(run: Runner) -> None:
    """``retry-after: 3600`` is capped at 10 s, which is still past a 1 s timeout: the error stands at once."""
    started = time.monotonic()
    outcome = await run([rate_limited_tool({"retry-after": "3600"}, retries=2)], "fetch", {}, timeout_s=1.0)
    assert time.monotonic() - started < 0.9
    assert (outcome.outcome, outcome.error_type, outcome.attempts) == (names.TOOL_ERROR, "RateLimited", 1)


@pytest.mark.parametrize("exc", [TimeoutError, ConnectionError])
async def test_default_retry_on_includes_timeout_and_connection_errors(run: Runner, exc: type[BaseException]) -> None:
    assert (await run([flaky_tool(1, exc, retries=1)], "flaky", {})).attempts == 2


async def test_retries_exhausted_reports_the_last_error(run: Runner) -> None:
    outcome = await run([flaky_tool(5, retries=2)], "flaky", {})
    assert outcome.content == "ToolError: TransientToolError: failure 3"
    assert (outcome.outcome, outcome.error_type, outcome.attempts) == (
        names.TOOL_ERROR,
        "TransientToolError",
        3,
    )


async def test_errors_outside_retry_on_are_not_retried(run: Runner) -> None:
    outcome = await run([flaky_tool(1, KeyError, retries=3)], "flaky", {})
    assert outcome.attempts == 1
    assert outcome.error_type == "KeyError"
    custom = await run([flaky_tool(1, KeyError, retries=3, retry_on=(KeyError,))], "flaky", {})
    assert custom.content == "ok after 2"


async def test_failing_on_retry_callback_is_swallowed(run: Runner, caplog: pytest.LogCaptureFixture) -> None:
    def broken(attempt: int, wait: float, exc: BaseException) -> None:
        raise RuntimeError("telemetry down")

    with caplog.at_level(logging.WARNING, logger="agentwatch"):
        outcome = await run([flaky_tool(1, retries=1)], "flaky", {}, on_retry=broken)
    assert outcome.content == "ok after 2"
    assert "on_retry callback" in caplog.text


async def test_timeout_covers_all_attempts(run: Runner) -> None:
    @tool(retries=50, retry_backoff_s=0.05)
    def slow_and_flaky() -> None:
        """Take 0.1 s, then fail transiently."""
        time.sleep(0.1)
        raise TransientToolError("busy")

    started = time.monotonic()
    outcome = await run([slow_and_flaky], "slow_and_flaky", {}, timeout_s=0.5)
    assert time.monotonic() - started < 0.5 + 4  # 50 attempts with growing backoff would take far longer
    assert outcome.is_error
    assert 1 < outcome.attempts < 6


# --- context propagation -----------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@pytest.mark.parametrize("is_async", [False, True])
async def test_tool_sees_the_callers_context_and_spans_nest(run: Runner, is_async: bool) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    def body() -> str:
        with tracer.start_as_current_span("inside-tool"):
            return request_id.get()

    async def async_body() -> str:
        return body()

    traced = tool(name="traced")(async_body if is_async else body)
    token = request_id.set("req-42")
    try:
        with tracer.start_as_current_span("caller") as caller:
            outcome = await run([traced], "traced", {})
    finally:
        request_id.reset(token)
    assert outcome.content == "req-42"
    inside = next(s for s in exporter.get_finished_spans() if s.name == "inside-tool")
    assert inside.parent is not None
    assert inside.parent.span_id == caller.get_span_context().span_id
    assert inside.context.trace_id == caller.get_span_context().trace_id
