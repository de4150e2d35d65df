"""Token accounting for the simulator: deterministic estimates and prompt-cache bookkeeping.

Tokens are estimated as ``ceil(chars / 4)``, the usual rule of thumb, so numbers look like the real
API's without a tokenizer. Input is walked in the API's cache order (tools, system, messages); every
``cache_control`` marks a cache breakpoint at the end of its block, and a top-level ``cache_control``
marks one at the last block. The first request with a given prefix writes it to the cache
(``cache_creation_input_tokens``, split 5m/1h by the breakpoint's ``ttl``); later requests read the
longest cached prefix ending at a block boundary up to 20 blocks before a breakpoint
(``cache_read_input_tokens``); ``input_tokens`` is always only the uncached remainder.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
FRAMING_TOKENS = 4
"""Uncacheable tokens every request pays (role markers, message framing): the input floor."""
IMAGE_CHARS = 1600 * CHARS_PER_TOKEN
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
LOOKBACK_BLOCKS = 20


def tokens(chars: int) -> int:
    """Estimated tokens for ``chars`` characters."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _without_cache_control(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def tool_result_text(content: Any) -> str:
    """The text of a ``tool_result`` content (a string or a list of blocks). Never raises."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def block_chars(block: Any) -> int:
    """Characters a content block contributes to the prompt (text only, not JSON structure)."""
    if isinstance(block, str):
        return len(block)
    if not isinstance(block, dict):
        return len(_canonical(block))
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "tool_use":
        return len(str(block.get("name", ""))) + len(_canonical(block.get("input", {})))
    if kind == "tool_result":
        return len(tool_result_text(block.get("content", "")))
    if kind == "thinking":
        return len(str(block.get("thinking", "")))
    if kind == "image":
        return IMAGE_CHARS
    return len(_canonical(_without_cache_control(block)))


@dataclass(frozen=True)
class _Segment:
    chars: int
    key: str
    ttl: str | None  # set when the segment ends with a cache breakpoint


def _ttl(cache_control: Any) -> str:
    if isinstance(cache_control, dict) and cache_control.get("ttl") == "1h":
        return "1h"
    return "5m"


def _segments(body: dict[str, Any]) -> list[_Segment]:
    out: list[_Segment] = []

    def add(block: Any, chars: int, prefix: str) -> None:
        control = block.get("cache_control") if isinstance(block, dict) else None
        key = prefix + _canonical(_without_cache_control(block))
        out.append(_Segment(chars, key, _ttl(control) if control else None))

    for tool in body.get("tools") or []:
        add(tool, len(_canonical(_without_cache_control(tool))), "tool:")
    system = body.get("system")
    if isinstance(system, str) and system:
        add(system, len(system), "system:")
    elif isinstance(system, list):
        for block in system:
            add(block, block_chars(block), "system:")
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role"))
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        for block in blocks:
            add(block, block_chars(block), role + ":")
    if body.get("cache_control") and out and out[-1].ttl is None:
        last = out[-1]
        out[-1] = _Segment(last.chars, last.key, _ttl(body["cache_control"]))
    return out


def count_input_tokens(body: dict[str, Any]) -> int:
    """Total input tokens of a request (cached or not), as ``count_tokens`` reports them."""
    return tokens(sum(s.chars for s in _segments(body))) + FRAMING_TOKENS


def output_tokens(blocks: list[dict[str, Any]]) -> int:
    """Output tokens of response content blocks (at least 1)."""
    return max(1, sum(tokens(block_chars(b)) for b in blocks))


@dataclass(frozen=True)
class InputUsage:
    """How a request's input splits into uncached, cache-write and cache-read tokens."""

    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    def as_dict(self, output: int) -> dict[str, Any]:
        """The API's ``usage`` object with ``output`` output tokens."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
            "output_tokens": output,
            "service_tier": "standard",
        }


class CacheLedger:
    """Prompt-cache prefixes one simulator has seen, with their expiry. Thread-safe; never raises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def clear(self) -> None:
        """Forget every cached prefix."""
        with self._lock:
            self._expiry.clear()

    def account(self, body: dict[str, Any]) -> InputUsage:
        """Split the input of ``body`` into uncached / written / read tokens and record the writes."""
        segments = _segments(body)
        total = tokens(sum(s.chars for s in segments)) + FRAMING_TOKENS
        digest = hashlib.sha256(str(body.get("model")).encode())
        chars = 0
        prefixes: list[tuple[int, str, str | None]] = []  # (prefix tokens, prefix hash, breakpoint ttl)
        for segment in segments:
            chars += segment.chars
            digest.update(b"\x00" + segment.key.encode())
            prefixes.append((tokens(chars), digest.hexdigest(), segment.ttl))
        breakpoints = [i for i, p in enumerate(prefixes) if p[2] is not None]
        if not breakpoints:
            return InputUsage(input_tokens=total)
        # Like the API, a breakpoint also finds hits at earlier block boundaries (up to LOOKBACK back).
        candidates = sorted({j for i in breakpoints for j in range(max(0, i - LOOKBACK_BLOCKS + 1), i + 1)})
        now = time.monotonic()
        with self._lock:
            hit = next((j for j in reversed(candidates) if self._expiry.get(prefixes[j][1], 0.0) > now), -1)
            read = prefixes[hit][0] if hit >= 0 else 0
            written = {"5m": 0, "1h": 0}
            previous = read
            for i in breakpoints:
                prefix_tokens, key, ttl = prefixes[i]
                if i > hit and ttl is not None:
                    written[ttl] += prefix_tokens - previous
                    previous = prefix_tokens
                self._expiry[key] = max(self._expiry.get(key, 0.0), now + TTL_SECONDS[ttl or "5m"])
        creation = written["5m"] + written["1h"]
        return InputUsage(
            input_tokens=total - read - creation,
            cache_creation_input_tokens=creation,
            cache_read_input_tokens=read,
            ephemeral_5m_input_tokens=written["5m"],
            ephemeral_1h_input_tokens=written["1h"],
        )
