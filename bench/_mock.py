"""The in-process Messages API used by every benchmark mode: canned JSON over ``httpx2.MockTransport``.

No network, no server, no threads: the SDK's whole request path runs (request building, httpx2, response
parsing) and only the socket is replaced. Responses are built once as bytes, so the mock costs the same
in every mode and cancels out in "added time over bare".
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2

MODEL = "claude-haiku-4-5-20251001"  # has a known price, so agentwatch computes cost on every call
MAX_TOKENS = 4096  # agentwatch's default Limits.max_tokens: bare calls send the same request size
TASK = "What is the capital of France?"
TASK_TOOLS = "How many people per square kilometre of land are there on Earth? Look the figures up."

_HEADERS = {"content-type": "application/json", "request-id": "req_bench_0001"}
_USAGE = {"input_tokens": 25, "output_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def _message(content: list[dict[str, Any]], stop_reason: str, n: int) -> bytes:
    return json.dumps(
        {
            "id": f"msg_bench_{n:04d}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _USAGE,
        }
    ).encode()


ANSWER = _message([{"type": "text", "text": "The capital of France is Paris."}], "end_turn", 1)

# The scripted 3-call, 2-tool conversation: which reply comes next is decided by how many
# tool_result blocks the request carries (0, 1, 2), so it needs no state and survives a failed run.
SCRIPT = (
    _message(
        [
            {"type": "text", "text": "I'll compute the density."},
            {
                "type": "tool_use",
                "id": "toolu_bench_calc",
                "name": "calculator",
                "input": {"expression": "8,100,000,000 / 148,940,000"},
            },
        ],
        "tool_use",
        2,
    ),
    _message(
        [
            {
                "type": "tool_use",
                "id": "toolu_bench_search",
                "name": "web_search",
                "input": {"query": "world population 2024"},
            }
        ],
        "tool_use",
        3,
    ),
    _message([{"type": "text", "text": "About 54 people per square kilometre of land."}], "end_turn", 4),
)


def _answer(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, headers=_HEADERS, content=ANSWER)


def _scripted(request: httpx2.Request) -> httpx2.Response:
    step = min(request.read().count(b'"tool_result"'), len(SCRIPT) - 1)
    return httpx2.Response(200, headers=_HEADERS, content=SCRIPT[step])


def client(scenario: str, *, open_telemetry: bool | None) -> anthropic.Anthropic:
    """A sync client whose HTTP goes to the in-process mock. ``open_telemetry=None`` keeps the SDK default."""
    handler = _answer if scenario == "call" else _scripted
    options: dict[str, Any] = {}
    if open_telemetry is not None:
        options["open_telemetry"] = open_telemetry
    return anthropic.Anthropic(
        api_key="bench",
        base_url="http://bench.invalid",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        **options,
    )
