"""Wire shapes of the Messages API: ids, error bodies, the message object and its SSE event sequence.

Kept apart from the HTTP server so the exact shapes the SDK parses (named events, cumulative usage in
``message_delta``, ``input_json_delta`` chunks) can be read and tested on their own.
"""

from __future__ import annotations

import json
from typing import Any

from agentwatch.sim.script import Reply
from agentwatch.sim.usage import InputUsage

TEXT_CHUNK_WORDS = 4
JSON_CHUNK_CHARS = 12
Event = tuple[str, dict[str, Any]]


def error_body(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    """The API's error body: ``{"type":"error","error":{"type","message"},"request_id"}``; without
    ``request_id`` for a mid-stream ``error`` event (the response headers carried it)."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def message(msg_id: str, model: str, reply: Reply, usage: InputUsage, output_tokens: int) -> dict[str, Any]:
    """The full (non-streaming) message object."""
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "stop_details": reply.stop_details,
        "usage": usage.as_dict(output_tokens),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One named server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _text_chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [" ".join(words[i : i + TEXT_CHUNK_WORDS]) + " " for i in range(0, len(words), TEXT_CHUNK_WORDS)]


def _block_events(index: int, block: dict[str, Any]) -> list[Event]:
    if block.get("type") == "tool_use":
        start = {**block, "input": {}}
        raw = json.dumps(block.get("input", {}), separators=(",", ":"))
        parts = [""] + [raw[i : i + JSON_CHUNK_CHARS] for i in range(0, len(raw), JSON_CHUNK_CHARS)]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
    elif block.get("type") == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        chunks = _text_chunks(str(block.get("thinking", "")))
        chunks[-1] = chunks[-1][:-1]
        deltas = [{"type": "thinking_delta", "thinking": c} for c in chunks if c]
        deltas.append({"type": "signature_delta", "signature": str(block.get("signature", ""))})
    else:
        start = {"type": "text", "text": ""}
        chunks = _text_chunks(str(block.get("text", "")))
        chunks[-1] = chunks[-1][:-1]  # no trailing space after the last word
        deltas = [{"type": "text_delta", "text": c} for c in chunks if c]
    events: list[Event] = [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def stream_events(full: dict[str, Any]) -> list[Event]:
    """The SSE events that stream the message ``full`` (as built by ``message``)."""
    usage = full["usage"]
    start_message = {**full, "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None}
    start_message["usage"] = {**usage, "output_tokens": min(1, usage["output_tokens"])}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start_message})]
    for index, block in enumerate(full["content"]):
        events += _block_events(index, block)
    # Like the API: a ping right after the first content_block_start.
    events.insert(2 if full["content"] else 1, ("ping", {"type": "ping"}))
    cumulative = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    final_usage = {k: usage[k] for k in cumulative}
    delta = {
        "stop_reason": full["stop_reason"],
        "stop_sequence": full["stop_sequence"],
        "stop_details": full["stop_details"],
    }
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events
