"""The API's own stop reasons are handled deliberately: pause_turn, refusal, max_tokens, stop_sequence."""

from __future__ import annotations

import pytest

from agentwatch import StopReason

from .support import assert_stopped, demo_agent, fast_limits, run_in_mode

MODES = ["run", "arun", "stream", "astream"]


@pytest.mark.parametrize("mode", MODES)
async def test_pause_turn_is_continued(sim, mode) -> None:
    _, result = await run_in_mode(mode, demo_agent("pause"), "[[pause]] What is 1234 * 5678?", sim)

    assert result.stop_reason is StopReason.END_TURN
    assert "7,006,652" in result.answer
    assert result.iterations == 3  # the paused turn, the tool call, the answer


@pytest.mark.parametrize("mode", MODES)
async def test_refusal_is_its_own_stop(sim, mode) -> None:
    _, result = await run_in_mode(mode, demo_agent("refuse"), "[[refuse]] Do something bad.", sim)

    assert_stopped(result, StopReason.REFUSAL)
    assert "declined" in result.stop_detail
    assert "I can't help with that request." in result.answer


async def test_max_tokens_says_how_to_get_a_longer_answer(sim) -> None:
    agent = demo_agent("long", tools=[], limits=fast_limits(max_tokens=100))
    _, result = await run_in_mode("run", agent, "[[long:2000]] Write a lot.", sim)

    assert_stopped(result, StopReason.MAX_TOKENS)
    assert "raise Limits.max_tokens" in result.stop_detail
    assert result.usage.output_tokens <= 100


async def test_a_stop_sequence_ends_the_turn_normally(sim) -> None:
    agent = demo_agent("stop-seq", stop_sequences=["(7006652)"])
    _, result = await run_in_mode("run", agent, "What is 1234 * 5678?", sim)

    assert result.stop_reason is StopReason.END_TURN
    assert result.answer == "1234 × 5678 = 7,006,652"
    assert "stop sequence" in result.stop_detail
