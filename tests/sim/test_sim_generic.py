"""The scripted model serves agents other than the demo: ordinary SDK code with its own tools, extended
thinking and structured outputs gets replies a real model could give, valid against the request's schemas."""

from __future__ import annotations

import json
from typing import Any, Literal

import anthropic
import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.sim import schema
from agentwatch.sim.script import respond

from . import wire
from .conftest import CALCULATOR, MODEL, WEB_SEARCH

GET_WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["location", "unit", "days"],
    },
}
CREATE_TICKET = {
    "name": "create_ticket",
    "description": "Open a support ticket in the tracker.",
    "input_schema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 10, "maxLength": 40},
            "priority": {"enum": ["p1", "p2", "p3"]},
            "labels": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "owner": {"$ref": "#/$defs/Person"},
            "due": {"type": "string", "format": "date"},
        },
        "required": ["title", "priority", "labels", "owner", "due"],
        "$defs": {
            "Person": {
                "type": "object",
                "properties": {"email": {"type": "string", "format": "email"}, "team": {"const": "support"}},
                "required": ["email", "team"],
            }
        },
    },
}


def _loop(client: anthropic.Anthropic, task: str, tools: list[dict[str, Any]], **kwargs: Any) -> tuple[Any, list[Any]]:
    """An ordinary tool loop: run each tool_use, send the results back, stop at the final answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
    calls = []
    for _ in range(5):
        message = client.messages.create(model=MODEL, max_tokens=4096, messages=messages, tools=tools, **kwargs)
        wire.message(message.to_dict())  # what the wire carried, held to the SDK's types
        if message.stop_reason != "tool_use":
            return message, calls
        messages.append({"role": "assistant", "content": [b.to_dict() for b in message.content]})
        results = []
        for block in message.content:
            if block.type == "tool_use":
                calls.append(block)
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": f"{block.name} says: sunny"})
        messages.append({"role": "user", "content": results})
    raise AssertionError("no final answer")


def test_an_unknown_tool_is_called_with_schema_valid_input_then_the_answer_uses_its_result(
    client: anthropic.Anthropic,
) -> None:
    final, calls = _loop(client, "What's the weather in Paris this week?", [CALCULATOR, GET_WEATHER])
    assert [c.name for c in calls] == ["get_weather"]
    jsonschema.validate(calls[0].input, GET_WEATHER["input_schema"])
    assert calls[0].input["location"] == "Paris" and calls[0].input["unit"] == "celsius"
    assert "get_weather says: sunny" in final.content[0].text


def test_the_best_matching_tool_wins_and_complex_schemas_are_honoured(client: anthropic.Anthropic) -> None:
    final, calls = _loop(client, "Please open a support ticket: the login page is down.", [GET_WEATHER, CREATE_TICKET])
    assert [c.name for c in calls] == ["create_ticket"]
    jsonschema.validate(calls[0].input, CREATE_TICKET["input_schema"], format_checker=jsonschema.FormatChecker())
    assert final.stop_reason == "end_turn"


def test_no_matching_tool_gets_a_direct_answer(client: anthropic.Anthropic) -> None:
    final, calls = _loop(client, "Tell me a joke.", [GET_WEATHER])
    assert calls == [] and final.content[0].type == "text"


def test_same_request_same_reply() -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Weather in Oslo?"}]}
    body["tools"] = [GET_WEATHER]
    assert respond(body, "seed") == respond(body, "seed")


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_blocks_with_signatures_when_thinking_is_on(client: anthropic.Anthropic, stream: bool) -> None:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "What's the weather in Rome?"}],
        "tools": [GET_WEATHER],
    }
    if stream:
        with client.messages.stream(**params) as s:
            kinds = [e.type for e in s]
            message = s.get_final_message()
        assert "thinking" in kinds and "signature" in kinds
    else:
        message = client.messages.create(**params)
    thinking, *rest = message.content
    assert thinking.type == "thinking" and thinking.thinking and len(thinking.signature) > 100
    assert rest[-1].type == "tool_use" and message.stop_reason == "tool_use"
    assert message.usage.output_tokens > len(thinking.thinking) // 4  # thinking is billed as output
    follow = [
        *params["messages"],
        {"role": "assistant", "content": [b.to_dict() for b in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": rest[-1].id, "content": "20 C"}]},
    ]
    final = client.messages.create(**{**params, "messages": follow})
    assert [b.type for b in final.content] == ["thinking", "text"] and "20 C" in final.content[1].text


def test_thinking_off_means_no_thinking_block(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, thinking={"type": "disabled"}, messages=[{"role": "user", "content": "hi"}]
    )
    assert [b.type for b in message.content] == ["text"]


@pytest.mark.parametrize(
    ("thinking", "message"),
    [
        ({"type": "enabled", "budget_tokens": 100}, "greater than or equal to 1024"),
        ({"type": "enabled", "budget_tokens": 5000}, "`max_tokens` must be greater than `thinking.budget_tokens`"),
        ({"type": "sometimes"}, "does not match any of the expected tags"),
    ],
)
def test_bad_thinking_is_the_apis_400(client: anthropic.Anthropic, thinking: dict[str, Any], message: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        client.messages.create(
            model=MODEL, max_tokens=4096, thinking=thinking, messages=[{"role": "user", "content": "x"}]
        )  # type: ignore[arg-type]


class Address(pydantic.BaseModel):
    city: str
    zip: str = pydantic.Field(min_length=5, max_length=5)


class Report(pydantic.BaseModel):
    answer: str
    confidence: float = pydantic.Field(ge=0, le=1)
    level: Literal["low", "high"]
    sources: list[str]
    home: Address
    note: str | None = None


def test_structured_output_parses_into_the_users_model(client: anthropic.Anthropic) -> None:
    parsed = client.messages.parse(
        model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "What is 6 * 7?"}], output_format=Report
    )
    report = parsed.parsed_output
    assert isinstance(report, Report) and report.level == "low" and len(report.home.zip) == 5
    assert "42" in report.answer  # the scripted answer, in the answer field


def test_structured_output_after_a_tool_call_is_schema_valid_json(client: anthropic.Anthropic) -> None:
    spec = Report.model_json_schema()
    final, calls = _loop(
        client,
        "What is 1234 * 5678?",
        [CALCULATOR, WEB_SEARCH],
        output_config={"format": {"type": "json_schema", "schema": spec}},
    )
    assert [c.name for c in calls] == ["calculator"]
    jsonschema.validate(json.loads(final.content[0].text), spec)


_LEAF = st.sampled_from(
    [
        {"type": "string"},
        {"type": "string", "minLength": 3, "maxLength": 6},
        {"type": "string", "format": "date-time"},
        {"type": "integer", "minimum": 5, "maximum": 9},
        {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 3},
        {"type": "number", "maximum": -2.5},
        {"type": "boolean"},
        {"type": "null"},
        {"enum": ["a", 2, None]},
        {"const": {"x": 1}},
        {"type": ["null", "string"]},
        {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 10}]},
        {"oneOf": [{"type": "string", "maxLength": 0}]},
        {},
    ]
)
_SCHEMAS = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.builds(
            lambda props, k: {"type": "object", "properties": props, "required": list(props)[:k]},
            st.dictionaries(st.sampled_from(["a", "b", "query", "location", "expression"]), inner, max_size=4),
            st.integers(0, 4),
        ),
        st.builds(
            lambda items, n: {"type": "array", "items": items, "minItems": n, "maxItems": n + 2},
            inner,
            st.integers(0, 3),
        ),
        st.builds(
            lambda a, b: {"allOf": [a, b]},
            st.just({"type": "object", "properties": {"p": {"type": "integer"}}, "required": ["p"]}),
            st.just({"properties": {"q": {"type": "boolean"}}, "required": ["q"]}),
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(spec=_SCHEMAS)
def test_generated_values_are_valid_against_their_schema(spec: dict[str, Any]) -> None:
    jsonschema.validate(schema.generate(spec), spec, format_checker=jsonschema.FormatChecker())
