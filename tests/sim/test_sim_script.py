"""The scripted model's triggers, judge mode and limits, through the real SDK."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.sim import Simulator
from agentwatch.sim.arith import find_expression
from agentwatch.sim.protocol import message, stream_events
from agentwatch.sim.script import respond
from agentwatch.sim.usage import InputUsage, output_tokens
from agentwatch.sim.validation import problem

from .conftest import CALCULATOR, MODEL, WEB_SEARCH, Loop

JUDGE = "You are an evaluation judge. Grade the answer against the rubric."


def _ask(client: anthropic.Anthropic, task: str, **kwargs: Any) -> anthropic.types.Message:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 1024, **kwargs}
    return client.messages.create(messages=[{"role": "user", "content": task}], **params)


def _assistant(message: anthropic.types.Message) -> dict[str, Any]:
    return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}


def test_refuse(client: anthropic.Anthropic) -> None:
    message = _ask(client, "Do the thing [[refuse]]")
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"


def test_pause_then_continue(client: anthropic.Anthropic) -> None:
    task = "What is 1234 * 5678? [[pause]]"
    first = _ask(client, task, tools=[CALCULATOR])
    assert first.stop_reason == "pause_turn"
    messages = [{"role": "user", "content": task}, _assistant(first)]
    second = client.messages.create(model=MODEL, max_tokens=200, messages=messages, tools=[CALCULATOR])
    assert second.stop_reason == "tool_use"


def test_loop_calls_the_first_tool_every_turn(agent_loop: Loop) -> None:
    with pytest.raises(AssertionError, match="no final answer after 5 turns"):
        agent_loop("Keep going [[loop]]", [CALCULATOR, WEB_SEARCH], max_turns=5)


def test_long_respects_max_tokens(client: anthropic.Anthropic) -> None:
    short = _ask(client, "[[long:500]]", max_tokens=100)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 100
    full = _ask(client, "[[long:500]]", max_tokens=1000)
    assert full.stop_reason == "end_turn" and full.usage.output_tokens == 500


def test_tool_trigger_calls_any_tool_and_reports_the_result(client: anthropic.Anthropic) -> None:
    task = 'Try [[tool:no_such_tool:{"x": 1}]]'
    first = _ask(client, task, tools=[CALCULATOR])
    call = first.content[-1]
    assert call.type == "tool_use" and (call.name, call.input) == ("no_such_tool", {"x": 1})
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Unknown tool", "is_error": True}
    messages = [{"role": "user", "content": task}, _assistant(first), {"role": "user", "content": [result]}]
    final = client.messages.create(model=MODEL, max_tokens=200, messages=messages, tools=[CALCULATOR])
    assert final.stop_reason == "end_turn" and "no_such_tool tool failed: Unknown tool" in final.content[0].text


def test_tool_trigger_with_invalid_json_passes_the_raw_text(client: anthropic.Anthropic) -> None:
    call = _ask(client, "[[tool:calculator:not json]]", tools=[CALCULATOR]).content[-1]
    assert call.type == "tool_use" and call.input == {"input": "not json"}


def test_parallel_calls_then_one_answer(agent_loop: Loop) -> None:
    final, calls = agent_loop("What is 6 * 7 and 100 / 4? [[parallel]]", [CALCULATOR])
    assert [c.input["expression"] for c in calls] == ["6 * 7", "100 / 4"]
    assert "6 × 7 = 42 (42)." in final.content[0].text and "100 ÷ 4 = 25 (25)." in final.content[0].text


@pytest.mark.parametrize(
    ("answer", "verdict", "score"),
    [
        ("About 8.1 BILLION people.", "pass", 1.0),
        ("About 8.1 million people.", "fail", 0.5),
        ("No idea.", "fail", 0.0),
    ],
)
def test_judge_mode(client: anthropic.Anthropic, answer: str, verdict: str, score: float) -> None:
    rubric = 'the answer: has "8.1" and "billion"'
    prompt = f"Task: What is the population of Earth?\n\nRubric: {rubric}\n\nAnswer: {answer}"
    reply = json.loads(_ask(client, prompt, system=JUDGE).content[0].text)
    assert (reply["verdict"], reply["score"]) == (verdict, score) and reply["reason"]


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    message = _ask(client, "What is 1234 * 5678?", stop_sequences=["="])
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "="
    assert message.content[0].text == "1234 × 5678 "


def test_tool_choice(client: anthropic.Anthropic) -> None:
    forced = _ask(client, "Hello", tools=[WEB_SEARCH], tool_choice={"type": "tool", "name": "web_search"})
    assert forced.stop_reason == "tool_use" and forced.content[-1].input == {"query": "Hello"}
    none = _ask(client, "What is 2 + 2?", tools=[CALCULATOR], tool_choice={"type": "none"})
    assert none.stop_reason == "end_turn" and none.content[0].text == "2 + 2 = 4 (4)."


def test_latency_and_first_chunk(client: anthropic.Anthropic, sim: Simulator) -> None:
    """The first event waits ``first_chunk_s``; ``latency_s`` is spread over the rest of the stream (only
    lower bounds: a busy machine may be slower, never faster)."""
    sim.latency_s, sim.first_chunk_s = 1.0, 0.1
    started = time.monotonic()
    with client.messages.stream(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        next(iter(s))
        first = time.monotonic() - started
        s.get_final_message()
    rest = time.monotonic() - started - first
    assert first >= 0.1 and rest >= 0.5  # the latency comes after the first event, not before it


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("What is 1234 * 5678?", "1234 * 5678"),
        ("what's 1,234 × 5,678", "1234 * 5678"),
        ("12 multiplied by 3", "12 * 3"),
        ("2 ** 10", "2 ** 10"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("Land area = 148,940,000 km²", None),
        ("What is the speed of light in m/s?", None),
    ],
)
def test_arithmetic_detection(text: str, expression: str | None) -> None:
    assert find_expression(text) == expression


_TASK_PARTS = st.sampled_from(
    [
        "What is",
        "1234 * 5678",
        "?",
        "[[loop]]",
        "[[parallel]]",
        "[[pause]]",
        "[[long:7]]",
        "[[refuse]]",
        '[[tool:calculator:{"expression": "1 + 1"}]]',
        "[[tool:x:oops]]",
        "per km²",
        "148,940,000",
        "and",
        "population of Earth",
        " ",
        "÷",
        "times",
        'Rubric: "a"',
        "Answer: a",
        "9" * 30,
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(_TASK_PARTS | st.text(max_size=20), min_size=1, max_size=8),
    tools=st.sampled_from(
        [[], [CALCULATOR], [WEB_SEARCH], [CALCULATOR, WEB_SEARCH], [{"name": "t", "input_schema": {"required": "x"}}]]
    ),
    max_tokens=st.integers(min_value=1, max_value=300),
    result=st.text(max_size=60),
    is_error=st.booleans(),
)
def test_scripted_model_always_gives_a_well_formed_reply(
    parts: list[str], tools: list[dict[str, Any]], max_tokens: int, result: str, is_error: bool
) -> None:
    task = " ".join(parts) or "x"
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": task}],
        "tools": tools,
    }
    for turn in range(3):
        reply = respond(body, f"seed{turn}")
        assert reply.stop_reason in {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
        assert output_tokens(reply.content) <= max(1, max_tokens)
        events = stream_events(message("msg_x", "m", reply, InputUsage(10), output_tokens(reply.content)))
        assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
        uses = [b for b in reply.content if b["type"] == "tool_use"]
        if reply.stop_reason != "tool_use" or not uses:
            break
        results = [
            {"type": "tool_result", "tool_use_id": b["id"], "content": result, "is_error": is_error} for b in uses
        ]
        body["messages"] += [{"role": "assistant", "content": reply.content}, {"role": "user", "content": results}]
        assert problem(body) is None


def test_concurrent_requests_are_all_answered(client: anthropic.Anthropic, sim: Simulator) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda i: _ask(client, f"What is {i} + {i}?", max_tokens=50), range(48)))
    assert [r.content[0].text for r in replies] == [f"{i} + {i} = {2 * i} ({2 * i})." for i in range(48)]
    assert len({r.id for r in replies}) == 48 and len(sim.requests) == 48
