"""Checks that hold the simulator's wire output to the real API: the SDK's own pydantic types in strict mode
(no coercion, no field the SDK does not declare), the documented SSE event order, the id formats, and the
recorded shapes in ``shapes/`` compared field by field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anthropic
import pydantic

SHAPES = Path(__file__).parent / "shapes"
MESSAGE_ID = re.compile(r"msg_01[0-9A-Za-z]{22}")
TOOL_USE_ID = re.compile(r"toolu_01[0-9A-Za-z]{22}")
REQUEST_ID = re.compile(r"req_01[0-9A-Za-z]{22}")
_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
_DELTA_FOR_BLOCK = {"text": {"text_delta"}, "tool_use": {"input_json_delta"}, "thinking": {"thinking_delta"}}


def no_undeclared_fields(model: pydantic.BaseModel, path: str = "") -> None:
    """The SDK's models allow extra fields; the real API sends none the SDK does not declare."""
    extra = model.model_extra or {}
    assert not extra, f"{path or type(model).__name__}: fields the SDK does not declare: {sorted(extra)}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, pydantic.BaseModel):
                no_undeclared_fields(item, f"{path}.{name}[{i}]" if isinstance(value, list) else f"{path}.{name}")


def strict(model: type[pydantic.BaseModel], data: Any) -> Any:
    """``data`` validated against an SDK type in strict mode, with no undeclared fields."""
    parsed = model.model_validate(data, strict=True)
    no_undeclared_fields(parsed)
    return parsed


def message(data: Any) -> anthropic.types.Message:
    """A JSON message body, checked: strict SDK type, real id formats, usage present."""
    parsed: anthropic.types.Message = strict(anthropic.types.Message, data)
    assert MESSAGE_ID.fullmatch(parsed.id), parsed.id
    for block in parsed.content:
        if block.type == "tool_use":
            assert TOOL_USE_ID.fullmatch(block.id), block.id
        if block.type == "thinking":
            assert block.signature, "a thinking block needs its signature"
    return parsed


def error(data: Any, request_id: str | None) -> anthropic.types.ErrorResponse:
    parsed: anthropic.types.ErrorResponse = strict(anthropic.types.ErrorResponse, data)
    assert parsed.request_id == request_id
    return parsed


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``event:``/``data:`` pairs of an SSE body; every event must be named (the SDK drops unnamed ones)."""
    events = []
    for chunk in text.split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
        assert set(lines) == {"event", "data"}, f"an SSE event needs exactly event: and data: lines: {chunk!r}"
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def stream(events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Check a whole stream: each event's name is its type, each validates strictly, and the order is the
    documented one: message_start, per block start / deltas / stop (indexes 0, 1, …; a thinking block's
    signature_delta just before its stop), message_delta, message_stop; ping anywhere after the start; an
    error event ends the stream."""
    parsed: list[Any] = []
    state, index, block_type, signed = "start", -1, "", False
    for position, (name, data) in enumerate(events):
        assert name == data.get("type"), f"event {position}: name {name!r} but type {data.get('type')!r}"
        if name == "ping":
            assert data == {"type": "ping"} and state != "start"
            continue
        if name == "error":
            assert state != "start" and position == len(events) - 1, "an error event ends the stream"
            parsed.append(strict(anthropic.types.ErrorResponse, data))
            return parsed
        event = _EVENT.validate_python(data, strict=True)
        no_undeclared_fields(event)
        parsed.append(event)
        expected = {
            "start": {"message_start"},
            "between": {"content_block_start", "message_delta"},
            "block": {"content_block_delta", "content_block_stop"},
            "delta": {"message_stop"},
        }[state]
        assert name in expected, f"event {position}: {name} where {sorted(expected)} was due"
        if name == "message_start":
            assert event.message.content == [] and event.message.stop_reason is None
            assert MESSAGE_ID.fullmatch(event.message.id)
            state = "between"
        elif name == "content_block_start":
            index += 1
            assert event.index == index
            block_type, signed = event.content_block.type, False
            if block_type == "tool_use":
                assert TOOL_USE_ID.fullmatch(event.content_block.id) and event.content_block.input == {}
            state = "block"
        elif name == "content_block_delta":
            assert event.index == index and not signed, "no delta after a signature"
            if event.delta.type == "signature_delta":
                assert block_type == "thinking" and event.delta.signature
                signed = True
            else:
                assert event.delta.type in _DELTA_FOR_BLOCK[block_type], (block_type, event.delta.type)
        elif name == "content_block_stop":
            assert event.index == index
            assert signed or block_type != "thinking", "a thinking block ends with a signature_delta"
            state = "between"
        elif name == "message_delta":
            state = "delta"
        else:
            state = "done"
    assert state == "done", "the stream did not end with message_stop"
    return parsed


def shape(name: str) -> dict[str, Any]:
    """A recorded response shape: ``{"source": ..., "body" | "events" | "headers": ...}``."""
    loaded: dict[str, Any] = json.loads((SHAPES / f"{name}.json").read_text())
    assert loaded["source"].startswith("https://"), "every recorded shape names its source section"
    return loaded


def same_shape(recorded: Any, actual: Any, path: str = "$", fixed: tuple[str, ...] = ("type", "role")) -> None:
    """Field by field: the same keys at every level, the same JSON type at every leaf (``null`` only where
    the recording has ``null``), the same value for the ``fixed`` fields."""
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(recorded), f"{path}: keys {sorted(actual)} != recorded {sorted(recorded)}"
        for key, value in recorded.items():
            if key in fixed:
                assert actual[key] == value, f"{path}.{key}: {actual[key]!r} != recorded {value!r}"
            same_shape(value, actual[key], f"{path}.{key}", fixed)
    elif isinstance(recorded, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        if recorded:
            assert len(actual) == len(recorded), f"{path}: {len(actual)} items, recorded {len(recorded)}"
            for i, (r, a) in enumerate(zip(recorded, actual, strict=True)):
                same_shape(r, a, f"{path}[{i}]", fixed)
    else:
        kinds = (bool,) if isinstance(recorded, bool) else (int,) if isinstance(recorded, int) else type(recorded)
        ok = (
            actual is None
            if recorded is None
            else isinstance(actual, kinds) and not (isinstance(actual, bool) and not isinstance(recorded, bool))
        )
        assert ok, f"{path}: {actual!r} is not of the recorded kind ({recorded!r})"
