"""The simulator through the real anthropic SDK over HTTP: JSON, streaming, tools, tokens, validation."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest

from agentwatch.sim import Simulator

from .conftest import CALCULATOR, DEMO_TASK, MODEL, WEB_SEARCH, Loop

HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
BODY = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello there"}]}


def test_json_reply_echoes_model_and_has_ids_and_usage(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="any-model-name", max_tokens=100, messages=BODY["messages"])
    assert message.model == "any-model-name"
    assert message.id.startswith("msg_") and len(message.id) == 28
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and "Hello there" in message.content[0].text
    assert message.usage.input_tokens >= 4 and message.usage.output_tokens >= 1
    assert message.usage.cache_read_input_tokens == 0


def test_ids_are_deterministic_per_seed() -> None:
    ids = []
    for _ in range(2):
        with Simulator(seed=7) as sim, anthropic.Anthropic(api_key="k", base_url=sim.base_url) as client:
            ids.append(client.messages.create(**BODY).id)
    assert ids[0] == ids[1]


def test_streaming_named_events_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**{**BODY, "messages": [{"role": "user", "content": "[[long:60]]"}]}) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("text") > 3  # several text deltas
    assert len(final.content[0].text) == 60 * 4
    assert final.usage.output_tokens == 60 and final.stop_reason == "end_turn"


def test_stream_of_tool_use_builds_input_from_partial_json(client: anthropic.Anthropic) -> None:
    task = 'Go [[tool:lookup:{"key": "a fairly long value to split into chunks", "n": [1, 2]}]]'
    with client.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": task}]) as s:
        final = s.get_final_message()
    tool_use = final.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "lookup"
    assert tool_use.input == {"key": "a fairly long value to split into chunks", "n": [1, 2]}
    assert final.stop_reason == "tool_use"


def test_raw_sse_wire_format(sim: Simulator) -> None:
    headers = {**HEADERS, "x-api-key": "k"}
    with httpx2.stream("POST", f"{sim.base_url}/v1/messages", json={**BODY, "stream": True}, headers=headers) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["request-id"].startswith("req_")
        text = r.read().decode()
    names = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert '"usage":{"input_tokens":' in text.split("event: message_delta")[1]  # cumulative usage


def test_demo_task_is_three_calls_and_two_tools(agent_loop: Loop, sim: Simulator) -> None:
    final, calls = agent_loop(DEMO_TASK, [CALCULATOR, WEB_SEARCH])
    assert [(c.name, c.input) for c in calls] == [
        ("web_search", {"query": "population of Earth"}),
        ("calculator", {"expression": "8100000000 / 148940000"}),
    ]
    assert len(sim.requests) == 3
    text = final.content[0].text
    assert "8.1 billion" in text and "about 54 people per km²" in text


@pytest.mark.parametrize(
    ("task", "expected", "tool"),
    [
        ("What is the population of Earth?", "8.1 billion", "web_search"),
        ("What is 1234 * 5678?", "1234 × 5678 = 7,006,652 (7006652).", "calculator"),
        ("What is the speed of light in m/s?", "299,792,458", "web_search"),
        ("What is 12 times 3?", "12 × 3 = 36", "calculator"),
        ("Compute 1,000 ÷ 8", "1000 ÷ 8 = 125", "calculator"),
    ],
)
def test_eval_cases_answer_from_tool_results(agent_loop: Loop, task: str, expected: str, tool: str) -> None:
    final, calls = agent_loop(task, [CALCULATOR, WEB_SEARCH])
    assert [c.name for c in calls] == [tool]
    assert expected in final.content[0].text


def test_tool_error_result_is_reported(client: anthropic.Anthropic) -> None:
    first = client.messages.create(
        model=MODEL, max_tokens=200, tools=[WEB_SEARCH], messages=[{"role": "user", "content": "Who won?"}]
    )
    call = first.content[-1]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Who won?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": "timed out after 5 s",
                    "is_error": True,
                }
            ],
        },
    ]
    final = client.messages.create(model=MODEL, max_tokens=200, tools=[WEB_SEARCH], messages=messages)
    assert final.stop_reason == "end_turn"
    assert "web_search tool failed: timed out after 5 s" in final.content[0].text


def test_without_tools_answers_directly(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "What is 2 ** 10?"}]
    )
    assert message.content[0].text == "2 ^ 10 = 1,024 (1024)."


def test_count_tokens_matches_create_input(client: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x" * 400}],
        "tools": [CALCULATOR],
    }
    counted = client.messages.count_tokens(**kwargs)
    created = client.messages.create(max_tokens=50, **kwargs)
    assert counted.input_tokens == created.usage.input_tokens > 100


def test_prompt_cache_write_then_read_with_ttl_split(client: anthropic.Anthropic) -> None:
    system = [
        {"type": "text", "text": "s" * 4000, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "t" * 2000, "cache_control": {"type": "ephemeral"}},
    ]
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 50, "system": system}
    first = client.messages.create(messages=[{"role": "user", "content": "first question"}], **kwargs).usage
    second = client.messages.create(messages=[{"role": "user", "content": "second one"}], **kwargs).usage
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (1500, 0)
    assert first.cache_creation is not None
    assert (
        first.cache_creation.ephemeral_1h_input_tokens,
        first.cache_creation.ephemeral_5m_input_tokens,
    ) == (1000, 500)
    assert first.input_tokens == 4 + 4  # "first question" (14 chars) + framing
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, 1500)
    other = client.messages.create(messages=[{"role": "user", "content": "hi"}], **{**kwargs, "model": "other"})
    assert other.usage.cache_creation_input_tokens == 1500  # caches are per model


def test_top_level_cache_control_caches_the_conversation(client: anthropic.Anthropic) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "q" * 800}]
    extra = {"cache_control": {"type": "ephemeral"}}
    first = client.messages.create(model=MODEL, max_tokens=20, messages=messages, extra_body=extra)
    messages += [
        {"role": "assistant", "content": first.content[0].text},
        {"role": "user", "content": "and then?"},
    ]
    with client.messages.stream(model=MODEL, max_tokens=20, messages=messages, extra_body=extra) as stream:
        usage = stream.get_final_message().usage
    assert first.usage.cache_creation_input_tokens == 200 and first.usage.input_tokens == 4
    assert usage.cache_read_input_tokens == 200 and usage.cache_creation_input_tokens > 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model: Field required"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": 5}, "messages: Field required"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "at least one message"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
            "'user' or 'assistant'",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "top-level `system`",
        ),
        (
            {"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
            "greater than or equal to 1",
        ),
    ],
)
def test_invalid_requests_are_400_with_the_api_message(
    client: anthropic.Anthropic, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    error = caught.value.body
    assert isinstance(error, dict) and error["error"]["type"] == "invalid_request_error"
    assert message in caught.value.message


def test_tool_result_without_matching_tool_use_is_400(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}]},
    ]
    with pytest.raises(anthropic.BadRequestError, match="toolu_nope"):
        client.messages.create(model=MODEL, max_tokens=10, messages=messages)


@pytest.mark.parametrize(
    "auth", [{"x-api-key": "sk-test"}, {"authorization": "Bearer sk-test"}], ids=["x-api-key", "bearer"]
)
@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21"])
def test_both_auth_styles_and_versions(sim: Simulator, auth: dict[str, str], version: str) -> None:
    headers = {**HEADERS, "anthropic-version": version, **auth}
    response = httpx2.post(f"{sim.base_url}/v1/messages", json=BODY, headers=headers)
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_")
    record = sim.requests[-1]
    assert next(iter(auth)) in record.headers and "sk-test" not in str(record.headers)


@pytest.mark.parametrize(
    ("headers", "status", "error_type"),
    [
        ({}, 401, "authentication_error"),
        ({"authorization": "Basic abc"}, 401, "authentication_error"),
        ({"x-api-key": "k", "anthropic-version": ""}, 400, "invalid_request_error"),
        ({"x-api-key": "k", "anthropic-version": "2024-01-01"}, 400, "invalid_request_error"),
    ],
)
def test_auth_and_version_errors(sim: Simulator, headers: dict[str, str], status: int, error_type: str) -> None:
    response = httpx2.post(f"{sim.base_url}/v1/messages", json=BODY, headers={**HEADERS, **headers})
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["request-id"]


def test_unknown_path_is_404_in_api_shape(sim: Simulator) -> None:
    response = httpx2.get(f"{sim.base_url}/v1/models")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
