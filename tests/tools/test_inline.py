"""``@tool(inline=True)``: a sync tool run on the caller's thread (no worker hand-off), in both executor
forms; everything else about a tool call (errors as results, retries, what propagates) is unchanged, and a
run past its limit, which nothing can stop, is reported as an overrun."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agentwatch.telemetry import names
from agentwatch.tools import (
    Tool,
    ToolOutcome,
    TransientToolError,
    aexecute_tool,
    calculator,
    execute_tool,
    tool,
    web_search,
)


async def _run(form: str, t: Tool[..., Any], timeout_s: float = 5.0) -> ToolOutcome:
    tools = {t.name: t}
    if form == "sync":
        return execute_tool(tools, t.name, {}, timeout_s=timeout_s, max_output_chars=1000)
    return await aexecute_tool(tools, t.name, {}, timeout_s=timeout_s, max_output_chars=1000)


def _thread_reporter(*, inline: bool) -> tuple[Tool[..., Any], list[int]]:
    seen: list[int] = []

    @tool(name="where", inline=inline)
    def where() -> str:
        """Say which thread ran it."""
        seen.append(threading.get_ident())
        return "here"

    return where, seen


@pytest.mark.parametrize("form", ["sync", "async"])
async def test_an_inline_tool_runs_on_the_callers_thread(form) -> None:
    where, seen = _thread_reporter(inline=True)
    outcome = await _run(form, where)
    assert (outcome.outcome, outcome.content) == (names.TOOL_OK, "here")
    assert seen == [threading.get_ident()]


@pytest.mark.parametrize("form", ["sync", "async"])
async def test_a_sync_tool_runs_on_a_worker_thread_by_default(form) -> None:
    where, seen = _thread_reporter(inline=False)
    assert (await _run(form, where)).content == "here"
    assert seen and seen[0] != threading.get_ident()


@pytest.mark.parametrize("form", ["sync", "async"])
async def test_an_inline_tool_past_its_limit_is_kept_and_reported_as_an_overrun(form) -> None:
    @tool(name="slow", inline=True)
    def slow() -> str:
        """Take longer than the limit (the behaviour under test)."""
        threading.Event().wait(0.4)
        return "late"

    outcome = await _run(form, slow, timeout_s=0.1)
    assert outcome.content == "late"  # nothing could stop it; its work is reported, not thrown away
    assert outcome.overran_limit_s == 0.1
    assert outcome.duration_s >= 0.4


@pytest.mark.parametrize("form", ["sync", "async"])
async def test_an_inline_tool_error_is_its_result_and_retries_apply(form) -> None:
    attempts: list[int] = []

    @tool(name="flaky", inline=True, retries=1, retry_backoff_s=0)
    def flaky() -> str:
        """Fail once, then answer."""
        attempts.append(1)
        if len(attempts) == 1:
            raise TransientToolError("try again")
        return "ok"

    outcome = await _run(form, flaky)
    assert (outcome.outcome, outcome.content, outcome.attempts) == (names.TOOL_OK, "ok", 2)

    @tool(name="broken", inline=True)
    def broken() -> str:
        """Always fail."""
        raise ValueError("no")

    failed = await _run(form, broken)
    assert (failed.outcome, failed.error_type, failed.content) == (
        names.TOOL_ERROR,
        "ValueError",
        "ToolError: ValueError: no",
    )


@pytest.mark.parametrize("form", ["sync", "async"])
async def test_keyboard_interrupt_from_an_inline_tool_propagates(form) -> None:
    @tool(name="interrupted", inline=True)
    def interrupted() -> str:
        """Raise KeyboardInterrupt."""
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await _run(form, interrupted)


def test_inline_is_refused_for_an_async_function() -> None:
    with pytest.raises(ValueError, match="inline=True is for sync functions"):

        @tool(name="nope", inline=True)
        async def nope() -> str:
            """Async."""
            return "x"


def test_the_builtin_tools_are_inline() -> None:
    assert calculator.inline and web_search.inline
