"""The demo task and the three eval cases, end to end against the simulator, in every run form."""

from __future__ import annotations

import pytest

from agentwatch import RunFinished, StopReason, TextDelta, ToolFinished, ToolStarted

from .support import DEMO_TASK, EVAL_CASES, demo_agent, run_in_mode

MODES = ["run", "arun", "stream", "astream"]


@pytest.mark.parametrize("mode", MODES)
async def test_demo_task_answers_population_and_density(sim, mode) -> None:
    agent = demo_agent("demo")
    _events, result = await run_in_mode(mode, agent, DEMO_TASK, sim)

    assert result.stop_reason is StopReason.END_TURN and result.ok
    assert "8.1 billion" in result.answer
    assert "54 people per km²" in result.answer  # 8,100,000,000 / 148,940,000 ≈ 54.4
    assert [c.name for c in result.tool_calls] == ["web_search", "calculator"]
    assert all(not c.is_error and c.outcome == "ok" for c in result.tool_calls)
    assert result.iterations == 3
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.cost_usd is not None and result.cost_usd > 0
    assert len(result.trace_id) == 32 and int(result.trace_id, 16) != 0
    assert result.duration_s > 0
    assert result.models == [agent.model]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("task", "expected"), EVAL_CASES, ids=["population", "multiply", "light"])
async def test_eval_cases_pass(sim, mode, task, expected) -> None:
    _events, result = await run_in_mode(mode, demo_agent("eval"), task, sim)

    assert result.stop_reason is StopReason.END_TURN
    for fragment in expected:
        assert fragment in result.answer, result.answer
    assert result.tool_calls and not any(c.is_error for c in result.tool_calls)


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_stream_yields_text_and_tool_events_in_order(sim, mode) -> None:
    events, result = await run_in_mode(mode, demo_agent("events"), "What is 1234 * 5678?", sim)

    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolStarted") < kinds.index("ToolFinished") < len(kinds) - 1
    assert isinstance(events[-1], RunFinished) and kinds.count("RunFinished") == 1
    started = [e for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [(s.name, s.call_id) for s in started] == [(f.call.name, f.call.id) for f in finished]
    assert finished[0].call.output == "7006652"
    final_text = "".join(e.text for e in events if isinstance(e, TextDelta) and e.iteration == result.iterations)
    assert final_text.strip() == result.answer
    assert "7,006,652" in final_text
