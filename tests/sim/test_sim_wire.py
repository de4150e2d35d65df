"""Every response the simulator sends, held to the real API: the SDK's types in strict mode, the documented
event order, id and header formats, and the recorded shapes in ``shapes/`` (hand-written from the API
reference, each naming its section) compared field by field. When an SDK release changes a type, or the
simulator drifts from the API, these fail first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from agentwatch.sim import Fault, FaultPlan, RateLimit, Simulator
from agentwatch.sim.faults import FAULT_KINDS, error_reply

from . import wire
from .conftest import CALCULATOR, MODEL, WEB_SEARCH

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
GET_WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}},
        "required": ["location"],
    },
}
WEATHER_TASK = 'What is the weather in San Francisco? [[tool:get_weather:{"location": "San Francisco, CA"}]]'


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# Requests that between them make the scripted model produce every kind of reply it has.
SCENARIOS: dict[str, dict[str, Any]] = {
    "text": {"messages": _user("Hello there")},
    "calculator": {"messages": _user("What is 1234 * 5678?"), "tools": [CALCULATOR]},
    "search": {"messages": _user("What is the speed of light?"), "tools": [WEB_SEARCH]},
    "tool-trigger": {"messages": _user(WEATHER_TASK), "tools": [GET_WEATHER]},
    "parallel": {"messages": _user("What is 6 * 7 and 100 / 4? [[parallel]]"), "tools": [CALCULATOR]},
    "max-tokens": {"messages": _user("[[long:500]]"), "max_tokens": 20},
    "stop-sequence": {"messages": _user("What is 1234 * 5678?"), "stop_sequences": ["="]},
    "refusal": {"messages": _user("Do it [[refuse]]")},
    "pause": {"messages": _user("Think [[pause]]")},
    "judge": {
        "system": "You are an evaluation judge.",
        "messages": _user('Task: t\n\nRubric: has "a"\n\nAnswer: a'),
    },
    "thinking": {
        "messages": _user(WEATHER_TASK),
        "tools": [GET_WEATHER],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "max_tokens": 4096,
    },
    "unknown-tool": {"messages": _user("What's the weather in Paris?"), "tools": [GET_WEATHER]},
    "structured": {
        "messages": _user("What is 2 + 2?"),
        "output_config": {
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"answer": {"type": "string"}},
                    "required": ["answer"],
                    "additionalProperties": False,
                },
            }
        },
    },
    "cached": {
        "system": [{"type": "text", "text": "s" * 4000, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": _user("Hello"),
    },
}


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sim.base_url, headers=HEADERS, timeout=30) as client:
        yield client


def _body(name: str) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, **SCENARIOS[name]}


def _request_id(response: httpx2.Response) -> str:
    request_id = response.headers["request-id"]
    assert wire.REQUEST_ID.fullmatch(request_id), request_id
    return request_id


@pytest.mark.parametrize("name", SCENARIOS)
def test_json_replies_are_strict_sdk_messages(http: httpx2.Client, name: str) -> None:
    response = http.post("/v1/messages", json=_body(name))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    _request_id(response)
    wire.message(response.json())


@pytest.mark.parametrize("name", SCENARIOS)
def test_streams_follow_the_documented_order_and_build_the_same_message(http: httpx2.Client, name: str) -> None:
    whole = wire.message(http.post("/v1/messages", json=_body(name)).json())
    response = http.post("/v1/messages", json={**_body(name), "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    _request_id(response)
    events = wire.stream(wire.parse_sse(response.text))
    content: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for event in events:
        if event.type == "content_block_start":
            content.append(event.content_block.model_dump())
        elif event.type == "content_block_delta":
            delta = event.delta
            block = content[event.index]
            if delta.type == "text_delta":
                block["text"] += delta.text
            elif delta.type == "thinking_delta":
                block["thinking"] += delta.thinking
            elif delta.type == "signature_delta":
                block["signature"] = delta.signature
            else:
                partial[event.index] = partial.get(event.index, "") + delta.partial_json
    for index, raw in partial.items():
        content[index]["input"] = json.loads(raw)
    final = events[-2]  # message_delta
    assert final.delta.stop_reason == whole.stop_reason and final.usage.output_tokens == whole.usage.output_tokens
    per_message = ("id", "signature")  # differ between two messages, as with the real API
    strip = [{k: v for k, v in b.items() if k not in per_message} for b in content]
    assert strip == [{k: v for k, v in b.model_dump().items() if k not in per_message} for b in whole.content]


def test_count_tokens_is_a_strict_sdk_type(http: httpx2.Client) -> None:
    response = http.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": _user("hi")})
    _request_id(response)
    wire.strict(anthropic.types.MessageTokensCount, response.json())
    wire.same_shape(wire.shape("count_tokens")["body"], response.json())


HTTP_FAULTS = [kind for kind in FAULT_KINDS if error_reply(Fault(kind)) is not None]  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", HTTP_FAULTS)
def test_every_fault_error_is_a_strict_sdk_error_with_its_headers(
    sim: Simulator, http: httpx2.Client, kind: str
) -> None:
    fault = Fault.rate_limit(retry_after_s=2, retry_after_ms=1500) if kind == "rate_limit" else Fault(kind)  # type: ignore[arg-type]
    sim.faults = FaultPlan(schedule=[fault])
    response = http.post("/v1/messages", json=_body("text"))
    reply = error_reply(fault)
    assert reply is not None and response.status_code == reply.status
    parsed = wire.error(response.json(), _request_id(response))
    assert parsed.error.type == reply.error_type
    wire.same_shape(wire.shape("error_body")["body"], response.json(), fixed=())
    if kind == "rate_limit":
        assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2", "1500")


@pytest.mark.parametrize(
    ("request_args", "status"),
    [
        ({"json": {"model": MODEL, "messages": _user("x")}}, 400),
        ({"json": {"model": MODEL, "max_tokens": 10**9, "messages": _user("x")}}, 400),
        ({"json": _body("text"), "headers": {"x-api-key": ""}}, 401),
        ({"json": _body("text"), "headers": {"anthropic-version": "1999-01-01"}}, 400),
    ],
    ids=["missing-field", "max-tokens-over-limit", "no-key", "bad-version"],
)
def test_request_errors_are_strict_sdk_errors(http: httpx2.Client, request_args: dict[str, Any], status: int) -> None:
    response = http.post("/v1/messages", **request_args)
    assert response.status_code == status
    wire.error(response.json(), _request_id(response))
    wire.same_shape(wire.shape("error_body")["body"], response.json(), fixed=())


def test_not_found_is_a_strict_sdk_error(http: httpx2.Client) -> None:
    response = http.get("/v1/models")
    assert response.status_code == 404
    assert wire.error(response.json(), _request_id(response)).error.type == "not_found_error"


def test_midstream_error_event_matches_the_recording(sim: Simulator, http: httpx2.Client) -> None:
    sim.faults = FaultPlan(schedule=[Fault.midstream_error()])
    events = wire.parse_sse(http.post("/v1/messages", json={**_body("text"), "stream": True}).text)
    wire.stream(events)
    name, data = events[-1]
    assert name == "error"
    wire.same_shape(dict(wire.shape("stream_error")["events"])["error"], data)


@pytest.mark.parametrize(("recording", "scenario"), [("message_text", "text"), ("message_tool_use", "tool-trigger")])
def test_json_reply_matches_the_recorded_shape(http: httpx2.Client, recording: str, scenario: str) -> None:
    wire.same_shape(wire.shape(recording)["body"], http.post("/v1/messages", json=_body(scenario)).json())


@pytest.mark.parametrize(
    ("recording", "scenario"),
    [("stream_text", "text"), ("stream_tool_use", "tool-trigger"), ("stream_thinking", "thinking")],
)
def test_stream_events_match_the_recorded_shapes(http: httpx2.Client, recording: str, scenario: str) -> None:
    """Each recorded event kind against the first event of that kind (and block type) the simulator sends."""
    events = wire.parse_sse(http.post("/v1/messages", json={**_body(scenario), "stream": True}).text)
    for name, recorded in wire.shape(recording)["events"]:
        kind = (recorded.get("content_block") or recorded.get("delta") or {}).get("type")
        sent = next(
            d
            for n, d in events
            if n == name and (kind is None or (d.get("content_block") or d["delta"]).get("type") == kind)
        )
        if "index" in recorded:
            recorded = {**recorded, "index": sent["index"]}
        wire.same_shape(recorded, sent)


def test_the_checks_catch_drift() -> None:
    """The checkers are not vacuous: an undeclared field, a coerced type, a wrong order and a bad id fail."""
    good = wire.shape("message_text")["body"] | {"id": "msg_01" + "a" * 22}
    wire.message(good)
    for bad in (
        good | {"surprise": 1},
        good | {"usage": good["usage"] | {"input_tokens": "5"}},
        good | {"id": "msg_" + "0" * 24},
        good | {"content": [{"type": "text", "text": "x", "extra": True}]},
    ):
        with pytest.raises((AssertionError, ValueError)):
            wire.message(bad)
    events = [(n, d) for n, d in wire.shape("stream_text")["events"]]
    events[0][1]["message"]["id"] = "msg_01" + "b" * 22
    wire.stream(events)
    with pytest.raises(AssertionError):
        wire.stream([events[0], events[1], events[3], events[5], events[6]])  # no content_block_stop
    with pytest.raises(AssertionError):
        wire.same_shape({"a": 1, "b": None}, {"a": 1})
    with pytest.raises(AssertionError):
        wire.same_shape({"a": 1}, {"a": True})


def test_rate_limit_headers_match_the_recording() -> None:
    """With limits on, JSON replies, streams and 429s carry exactly the documented headers, in their formats."""
    recorded = wire.shape("ratelimit_headers")["headers"]
    formats = {"integer": re.compile(r"\d+"), "RFC 3339": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")}
    with (
        Simulator(rate_limits={"*": RateLimit(2, 100_000, 50_000)}) as sim,
        httpx2.Client(base_url=sim.base_url, headers=HEADERS, timeout=30) as http,
    ):
        replies = [
            http.post("/v1/messages", json=_body("text")),
            http.post("/v1/messages", json={**_body("text"), "stream": True}),
            http.post("/v1/messages", json=_body("text")),
        ]
    assert [r.status_code for r in replies] == [200, 200, 429]
    for reply in replies:
        sent = {k: v for k, v in reply.headers.items() if k.startswith("anthropic-ratelimit-") or k == "retry-after"}
        expected = {k for k in recorded if k != "retry-after" or reply.status_code == 429}
        assert set(sent) == expected
        for name, value in sent.items():
            kind = recorded[name]
            assert value.isdigit() if name == "retry-after" else formats[kind].fullmatch(value), (name, value)
