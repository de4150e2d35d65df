"""Cancellation: a consumer that stops early or a cancelled task ends the run as cancelled, spans ended."""

from __future__ import annotations

import asyncio
import contextlib
import gc

import pytest

from agentwatch import TextDelta, tool
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import names as n
from polling import DEADLINE_S, await_until

from .support import async_client, by_iteration, demo_agent, of_trace, root_of, sync_client

TASK = "What is 1234 * 5678?"


@pytest.fixture
def slow_sim():
    """A simulator whose streams take a while, so a consumer can walk away mid-stream."""
    with Simulator(latency_s=0.3) as simulator:
        yield simulator


def assert_cancelled_and_closed(spans, tracker, logs, trace_id: str, billed_call: bool = True) -> None:
    assert tracker.open_in(trace_id) == []  # every span of the run has ended
    finished = of_trace(spans.get_finished_spans(), trace_id)
    root = root_of(finished)
    assert root.attributes[n.AW_RUN_STOP_REASON] == "cancelled"
    assert all(s.end_time <= root.end_time for s in finished)  # children end before their parent
    ends = [r for r in logs.events("run_end") if r["trace_id"] == trace_id]
    assert len(ends) == 1 and ends[0]["stop_reason"] == "cancelled"
    if not billed_call:  # a JSON call cancelled before its response: no usage was ever reported
        return
    # The stream that was cut short was still billed for its input: the run and the chat span say so.
    chat = [s for s in finished if s.name.startswith("chat")][-1]
    billed = chat.attributes[n.GEN_AI_USAGE_INPUT_TOKENS]
    assert billed > 0 and chat.attributes[n.AW_CALL_COST_USD] > 0
    assert root.attributes[n.AW_RUN_INPUT_TOKENS] >= billed and ends[0]["input_tokens"] >= billed


def test_closing_a_sync_stream_early_cancels_the_run(slow_sim, spans, tracker, logs) -> None:
    events = demo_agent("close-sync").stream(TASK, client=sync_client(slow_sim))
    first = next(events)
    assert isinstance(first, TextDelta)
    events.close()

    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    trace_id = format(root.context.trace_id, "032x")
    assert_cancelled_and_closed(spans, tracker, logs, trace_id)
    (chat,) = [s for s in of_trace(spans.get_finished_spans(), trace_id) if s.name.startswith("chat")]
    assert chat.attributes[n.GEN_AI_REQUEST_STREAM] is True


def test_breaking_out_of_a_sync_stream_loop_cancels_the_run(slow_sim, spans, tracker, logs) -> None:
    for event in demo_agent("break-sync").stream(TASK, client=sync_client(slow_sim)):
        if isinstance(event, TextDelta):
            break  # the generator is closed when the loop drops it

    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert_cancelled_and_closed(spans, tracker, logs, format(root.context.trace_id, "032x"))


async def test_closing_an_async_stream_early_cancels_the_run(slow_sim, spans, tracker, logs) -> None:
    events = demo_agent("close-async").astream(TASK, client=async_client(slow_sim))
    async with contextlib.aclosing(events):
        first = await anext(events)
        assert isinstance(first, TextDelta)

    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert_cancelled_and_closed(spans, tracker, logs, format(root.context.trace_id, "032x"))
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []  # nothing left running


async def test_an_abandoned_async_stream_is_finalised_as_cancelled(slow_sim, spans, tracker, logs) -> None:
    async for event in demo_agent("abandon-async").astream(TASK, client=async_client(slow_sim)):
        if isinstance(event, TextDelta):
            break  # no aclose(): the event loop finalises the generator
    gc.collect()
    roots = await await_until(
        lambda: [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")],
        "the abandoned run's root span to end",
    )

    (root,) = roots
    assert_cancelled_and_closed(spans, tracker, logs, format(root.context.trace_id, "032x"))


async def test_cancelling_the_task_that_reads_an_async_stream(slow_sim, spans, tracker, logs) -> None:
    seen: list[object] = []

    async def reader() -> None:
        async with contextlib.aclosing(
            demo_agent("cancel-astream").astream(TASK, client=async_client(slow_sim))
        ) as events:
            async for event in events:
                seen.append(event)

    task = asyncio.create_task(reader())
    await await_until(lambda: seen, "the stream's first event")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert_cancelled_and_closed(spans, tracker, logs, format(root.context.trace_id, "032x"))


async def test_cancelling_arun_mid_call_ends_the_run_as_cancelled(fresh_sim, spans, tracker, logs) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.hang()])  # the call never gets an answer
    task = asyncio.create_task(demo_agent("cancel-arun").arun(TASK, client=async_client(fresh_sim)))
    await await_until(lambda: fresh_sim.requests, "the simulator to receive the call")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    trace_id = format(root.context.trace_id, "032x")
    assert_cancelled_and_closed(spans, tracker, logs, trace_id, billed_call=False)
    (chat,) = [s for s in of_trace(spans.get_finished_spans(), trace_id) if s.name.startswith("chat")]
    assert chat.attributes[n.ERROR_TYPE] == "CancelledError"


async def test_cancelling_arun_during_a_tool_ends_the_tool_span(sim, spans, tracker, logs) -> None:
    started = asyncio.Event()

    @tool
    async def slow_lookup() -> str:
        """A lookup that takes a long time."""
        started.set()
        await asyncio.sleep(30)
        return "never"

    agent = demo_agent("cancel-tool", tools=[slow_lookup])
    task = asyncio.create_task(agent.arun("[[tool:slow_lookup:{}]] Look it up.", client=async_client(sim)))
    await asyncio.wait_for(started.wait(), DEADLINE_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    trace_id = format(root.context.trace_id, "032x")
    assert_cancelled_and_closed(spans, tracker, logs, trace_id)
    (tool_span,) = [s for s in of_trace(spans.get_finished_spans(), trace_id) if s.name.startswith("execute_tool")]
    assert tool_span.attributes[n.AW_TOOL_OUTCOME] == "cancelled"


def test_a_stream_cut_by_an_error_is_billed_and_the_retry_too(fresh_sim, spans) -> None:
    """An overloaded error mid-stream: the cut attempt's input counts in the run, its budget and its span."""
    agent = demo_agent("cut-billed")
    clean = agent.run(TASK, client=sync_client(fresh_sim))
    clean_first = by_iteration(of_trace(spans.get_finished_spans(), clean.trace_id))[0]

    fresh_sim.reset()
    fresh_sim.faults = FaultPlan(schedule=[Fault.midstream_error()])
    *_, finished = agent.stream(TASK, client=sync_client(fresh_sim))
    result = finished.result
    chats = by_iteration(of_trace(spans.get_finished_spans(), result.trace_id))

    assert result.stop_reason == "end_turn" and len(chats) == clean.iterations
    first_input = clean_first.attributes[n.GEN_AI_USAGE_INPUT_TOKENS]
    assert chats[0].attributes[n.GEN_AI_USAGE_INPUT_TOKENS] == 2 * first_input  # cut attempt + retry
    assert result.usage.total_input_tokens == clean.usage.total_input_tokens + first_input
    assert result.usage.total_input_tokens == sum(c.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] for c in chats)
    assert result.cost_usd == pytest.approx(sum(c.attributes[n.AW_CALL_COST_USD] for c in chats))
