"""The executor's per-type decisions (issue 11 §9, §10): what propagates, what becomes the tool's error,
and an async tool that blocks the event loop past its limit is marked, not silently late."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agentwatch.telemetry import names
from agentwatch.tools import Tool, ToolOutcome, aexecute_tool, execute_tool, tool


def _by_name(*tools: Tool[..., Any]) -> dict[str, Tool[..., Any]]:
    return {t.name: t for t in tools}


async def _run(form: str, t: Tool[..., Any], timeout_s: float = 5.0) -> ToolOutcome:
    if form == "sync":
        return execute_tool(_by_name(t), t.name, {}, timeout_s=timeout_s, max_output_chars=1000)
    return await aexecute_tool(_by_name(t), t.name, {}, timeout_s=timeout_s, max_output_chars=1000)


def _raising(exc_type: type[BaseException], *, is_async: bool) -> Tool[..., Any]:
    if is_async:

        @tool(name="raiser")
        async def raiser_async() -> str:
            """Raise the exception under test."""
            raise exc_type

        return raiser_async

    @tool(name="raiser")
    def raiser() -> str:
        """Raise the exception under test."""
        raise exc_type

    return raiser


@pytest.mark.parametrize("form", ["sync", "async"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-tool", "async-tool"])
@pytest.mark.parametrize("exc_type", [asyncio.CancelledError, GeneratorExit])
async def test_a_base_exception_a_tool_raises_on_its_own_is_its_error(form, is_async, exc_type) -> None:
    outcome = await _run(form, _raising(exc_type, is_async=is_async))
    assert (outcome.outcome, outcome.is_error, outcome.error_type) == (names.TOOL_ERROR, True, exc_type.__name__)
    assert outcome.content == f"ToolError: {exc_type.__name__}"


@pytest.mark.parametrize("form", ["sync", "async"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync-tool", "async-tool"])
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_interpreter_exit_signals_propagate_from_every_kind_of_tool(form, is_async, exc_type) -> None:
    with pytest.raises(exc_type):
        await _run(form, _raising(exc_type, is_async=is_async))


async def test_a_real_cancellation_of_the_awaiting_task_still_propagates() -> None:
    started = asyncio.Event()

    @tool(name="waiter")
    async def waiter() -> str:
        """Wait until cancelled."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.ensure_future(_run("async", waiter))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_async_tool_that_blocks_the_loop_past_its_limit_is_marked_as_overrun() -> None:
    @tool(name="blocker")
    async def blocker() -> str:
        """Block the event loop (the bug under test), then answer."""
        time.sleep(0.5)  # the tool under test blocks the loop on purpose
        return "late"

    outcome = await _run("async", blocker, timeout_s=0.1)
    assert outcome.overran_limit_s == 0.1
    assert outcome.duration_s >= 0.5
    assert outcome.content == "late"  # the work was done; it is reported, not thrown away


async def test_a_prompt_async_tool_is_not_marked() -> None:
    @tool(name="quick")
    async def quick() -> str:
        """Answer at once."""
        return "ok"

    assert (await _run("async", quick)).overran_limit_s is None
