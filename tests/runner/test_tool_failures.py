"""Tools that fail in every way, and bad tasks: the model gets an error result, the run carries on."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import pytest

from agentwatch import StopReason, tool
from agentwatch.runner.state import MAX_TASK_CHARS
from agentwatch.tools import calculator

from .support import assert_stopped, async_client, demo_agent, sync_client


def last_tool_results(sim) -> list[dict]:
    """The tool_result blocks of the last request the simulator received (what the model was told)."""
    body = sim.requests[-1].body
    return [b for b in body["messages"][-1]["content"] if b.get("type") == "tool_result"]


async def run_task(mode: str, agent, task: str, sim):
    if mode == "run":
        return agent.run(task, client=sync_client(sim))
    return await agent.arun(task, client=async_client(sim))


@tool
def explode(reason: str) -> str:
    """A tool whose backend is down.

    Args:
        reason: Why it should fail.
    """
    raise RuntimeError(f"database unreachable: {reason}")


@tool
async def aexplode(reason: str) -> str:
    """An async tool that fails.

    Args:
        reason: Why it should fail.
    """
    await asyncio.sleep(0)
    raise ConnectionRefusedError(f"backend refused: {reason}")


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_unknown_tool_gets_an_error_result(fresh_sim, mode) -> None:
    agent = demo_agent("unknown-tool")
    result = await run_task(mode, agent, "[[tool:teleport:{}]] Use teleport.", fresh_sim)

    assert result.stop_reason is StopReason.END_TURN
    (call,) = result.tool_calls
    assert call.outcome == "unknown_tool" and call.is_error
    (sent,) = last_tool_results(fresh_sim)
    assert sent["is_error"] is True and sent["tool_use_id"] == call.id
    assert "unknown tool 'teleport'" in sent["content"] and "calculator, web_search" in sent["content"]
    assert "The teleport tool failed" in result.answer


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_malformed_tool_input_gets_a_validation_error(fresh_sim, mode) -> None:
    agent = demo_agent("bad-input")
    result = await run_task(mode, agent, '[[tool:calculator:{"expr": 5}]] Calculate.', fresh_sim)

    assert result.stop_reason is StopReason.END_TURN
    (call,) = result.tool_calls
    assert call.outcome == "invalid_input" and call.is_error
    (sent,) = last_tool_results(fresh_sim)
    assert sent["is_error"] is True
    assert "expression" in sent["content"]  # names the missing field
    assert "input_schema" in sent["content"]


@pytest.mark.parametrize(("mode", "failing"), [("run", explode), ("arun", explode), ("arun", aexplode)])
async def test_a_tool_that_raises_gives_the_model_its_error(fresh_sim, mode, failing) -> None:
    agent = demo_agent("raises", tools=[failing])
    task = f'[[tool:{failing.name}:{{"reason": "maintenance"}}]] Look it up.'
    result = await run_task(mode, agent, task, fresh_sim)

    assert result.stop_reason is StopReason.END_TURN
    (call,) = result.tool_calls
    assert call.outcome == "error" and call.is_error
    (sent,) = last_tool_results(fresh_sim)
    assert sent["is_error"] is True
    expected = "RuntimeError: database unreachable" if failing is explode else "ConnectionRefusedError: backend"
    assert expected in sent["content"]
    assert f"The {failing.name} tool failed" in result.answer


ATTACKS = [
    "9**9**9**9",
    "2**99999999",
    "10**10**10",
    "(" * 5_000 + "1" + ")" * 5_000,
    "__import__('os').system('echo pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "1/0",
    "9" * 5_000 + "**" + "9" * 5_000,
    "+".join(["1"] * 5_000),
]


@pytest.mark.parametrize("expression", ATTACKS, ids=lambda e: e[:24])
def test_calculator_attacks_are_refused_quickly_and_the_run_goes_on(fresh_sim, expression) -> None:
    agent = demo_agent("attack", tools=[calculator])
    task = "[[tool:calculator:" + json.dumps({"expression": expression}) + "]] Calculate."
    started = time.perf_counter()
    result = agent.run(task, client=sync_client(fresh_sim))

    assert time.perf_counter() - started < 10  # evaluating any of these would take hours
    assert result.stop_reason is StopReason.END_TURN
    (call,) = result.tool_calls
    if call.is_error:
        (sent,) = last_tool_results(fresh_sim)
        assert sent["is_error"] is True and sent["content"].startswith("ToolError:")
    else:  # a long but harmless sum is simply computed
        assert expression.startswith("1+1") and call.output == "5000"
    assert "pwned" not in call.output


@pytest.mark.parametrize("task", ["", "   \n\t "])
def test_an_empty_task_is_refused_without_calling_the_api(fresh_sim, logs, task) -> None:
    result = demo_agent("empty").run(task, client=sync_client(fresh_sim))

    assert_stopped(result, StopReason.ERROR)
    assert "task is empty" in result.stop_detail
    assert fresh_sim.requests == [] and result.iterations == 0
    assert [r["stop_reason"] for r in logs.events("run_end")] == ["error"]


async def test_a_task_over_the_size_limit_is_refused_without_calling_the_api(fresh_sim, logs) -> None:
    huge = "word " * (MAX_TASK_CHARS // 5 + 1)
    result = await demo_agent("huge").arun(huge, client=async_client(fresh_sim))

    assert_stopped(result, StopReason.ERROR)
    assert "over the 2,000,000" in result.stop_detail and "split the work" in result.stop_detail
    assert fresh_sim.requests == []
    assert len(logs.events("run_end")) == 1


def test_a_large_task_within_the_limit_runs(fresh_sim) -> None:
    big = "Summarise this. " + "All work and no play makes a dull agent. " * 10_000  # ~410 kB
    result = demo_agent("big", tools=[]).run(big, client=sync_client(fresh_sim))

    assert result.stop_reason is StopReason.END_TURN
    assert result.usage.input_tokens > 100_000


def test_a_non_string_task_is_an_error_result_not_a_crash(fresh_sim) -> None:
    result = demo_agent("none-task").run(None, client=sync_client(fresh_sim))  # type: ignore[arg-type]

    assert_stopped(result, StopReason.ERROR)
    assert fresh_sim.requests == []


async def test_a_sync_client_passed_to_arun_is_a_clear_type_error(sim) -> None:
    agent = demo_agent("wrong-client")
    with pytest.raises(TypeError, match=r"arun\(\)/astream\(\) need an anthropic\.AsyncAnthropic client"):
        await agent.arun("Hi", client=sync_client(sim))
    with pytest.raises(TypeError, match=r"run\(\)/stream\(\) need an anthropic\.Anthropic client"):
        agent.run("Hi", client=async_client(sim))
    with pytest.raises(TypeError, match="AsyncAnthropic"):
        async for _ in agent.astream("Hi", client=anthropic.Anthropic(api_key="k", base_url=sim.base_url)):
            pass
