"""Opt-in capture of prompt/response content, size-capped and passed through a redaction hook.

Content is off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says otherwise
(``NO_CONTENT`` default, ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``). The redactor also runs
over every error message the telemetry records, content capture or not, so secrets that an exception
carries never reach a span or a log.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_CHARS_ENV = "AGENTWATCH_CONTENT_MAX_CHARS"
DEFAULT_MAX_CHARS = 8192

# API-key-like strings: Anthropic keys, bearer tokens, and generic long secrets after "key"/"token".
_SECRET_PATTERNS = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{16,}"
    r"|(?i:(?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{8,}"
)
MASK = "[REDACTED]"


def mask_secrets(text: str) -> str:
    """The default redactor: replaces API-key-like substrings with ``[REDACTED]``. Never raises."""
    return _SECRET_PATTERNS.sub(MASK, text)


_redactor: Callable[[str], str] = mask_secrets


def set_redactor(redactor: Callable[[str], str]) -> None:
    """Install a redaction hook for all recorded content and error messages (default: ``mask_secrets``)."""
    global _redactor
    _redactor = redactor


def redact(text: str) -> str:
    """Apply the installed redactor; if it fails, mask everything rather than leak. Never raises."""
    try:
        return _redactor(text)
    except Exception:
        return MASK


class CaptureMode(StrEnum):
    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"


@dataclass(frozen=True)
class ContentPolicy:
    """Where content goes (if anywhere) and how much of it."""

    mode: CaptureMode = CaptureMode.NO_CONTENT
    max_chars: int = DEFAULT_MAX_CHARS

    @property
    def on_spans(self) -> bool:
        return self.mode in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def in_events(self) -> bool:
        return self.mode in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def enabled(self) -> bool:
        return self.mode is not CaptureMode.NO_CONTENT

    @classmethod
    def from_env(cls) -> ContentPolicy:
        """Read the capture switch (per run, so it can change at runtime); unknown means NO_CONTENT."""
        return _policy(os.environ.get(CAPTURE_ENV, ""), os.environ.get(MAX_CHARS_ENV, ""))

    def render(self, value: Any) -> str:
        """JSON of ``value``, redacted and cut to ``max_chars``. Never raises."""
        try:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        except Exception:
            text = repr(value)
        text = redact(text)
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"…[truncated {len(text) - self.max_chars} chars]"
        return text


def _part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "content": block.get("text", "")}
    if kind == "tool_use":
        return {"type": "tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": block.get("input")}
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": block.get("tool_use_id"), "response": block.get("content")}
    return {"type": str(kind)}


def to_semconv_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic messages in the GenAI conventions' shape ``[{role, parts:[...]}]``."""
    out = []
    for message in messages:
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        out.append({"role": message.get("role"), "parts": [_part(b) for b in blocks if isinstance(b, dict)]})
    return out


@functools.lru_cache(maxsize=8)
def _policy(raw_mode: str, raw_max_chars: str) -> ContentPolicy:
    """The policy for these raw environment values (parsed once per distinct pair). Never raises."""
    mode_name = raw_mode.strip().upper()
    mode = CaptureMode(mode_name) if mode_name in CaptureMode.__members__ else CaptureMode.NO_CONTENT
    try:
        max_chars = max(int(raw_max_chars or DEFAULT_MAX_CHARS), 16)
    except ValueError:
        max_chars = DEFAULT_MAX_CHARS
    return ContentPolicy(mode, max_chars)
