"""Opt-in capture of prompt/response content, size-capped and passed through a redaction hook.

Content is off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says otherwise
(``NO_CONTENT`` default, ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``). The redactor also runs
over every error message, stack trace, status, log record, metric attribute and eval report agentwatch
writes, content capture or not, so secrets that an exception carries never reach telemetry or a report.
"""

from __future__ import annotations

import functools
import json
import os
import re
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from agentwatch.telemetry import names as n

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_CHARS_ENV = "AGENTWATCH_CONTENT_MAX_CHARS"
DEFAULT_MAX_CHARS = 8192
MAX_STATUS_CHARS = 512
MAX_MESSAGE_CHARS = 2048
MAX_STACKTRACE_CHARS = 16384

# API-key-like strings in every form they turn up in: raw, before a newline or inside a bytes repr
# (``b'Bearer sk-ant-…\\n'``), URL-encoded (``-`` as ``%2D``, a space as ``%20`` or ``+``), after
# ``Bearer``, and as the value of anything named like a key, token, secret or password.
_DASH = r"(?:-|%2[dD])"
_KEY_CHAR = r"(?:[A-Za-z0-9_]|-|%2[dD]|%5[fF])"
_SECRET_SHAPES = (
    rf"sk{_DASH}ant{_DASH}{_KEY_CHAR}{{8,}}"
    r"|(?i:bearer)(?:\s|%20|\+)+[A-Za-z0-9._~+/=%\-]{16,}"
    r"|(?i:(?:api[_-]?key|auth[_-]?token|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{8,}"
)
MIN_SECRET_CHARS = 8  # no shape above, and no masked credential value, is shorter
MASK = "[REDACTED]"
# Environment variables whose values are credentials: masked wherever they appear, whatever their shape.
SECRET_ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def mask_secrets(text: str) -> str:
    """The default redactor: replaces API-key-like substrings, and the values of ``SECRET_ENV_VARS`` (raw
    or URL-encoded), with ``[REDACTED]``. Never raises."""
    if len(text) < MIN_SECRET_CHARS:
        return text
    environ = os.environ
    data = getattr(environ, "_data", None)  # os._Environ's store: read as it is, a dict lookup per variable
    if type(data) is dict:
        values: tuple[Any, ...] = tuple([data.get(key) for key in _secret_env_keys(environ.encodekey)])
    else:
        values = tuple([environ.get(name, "") for name in SECRET_ENV_VARS])
    return _secrets_pattern(values).sub(MASK, text)


@functools.lru_cache(maxsize=4)
def _secret_env_keys(encodekey: Callable[[str], Any]) -> tuple[Any, ...]:
    """``SECRET_ENV_VARS`` as ``os.environ`` stores them (bytes on POSIX, upper case on Windows)."""
    return tuple(encodekey(name) for name in SECRET_ENV_VARS)


@functools.lru_cache(maxsize=64)
def _env_key(encodekey: Callable[[str], Any], name: str) -> Any:
    return encodekey(name)


def getenv(name: str) -> str:
    """``os.environ.get(name, "")``, read from os.environ's store: no ``KeyError`` raised and caught inside
    ``os.environ`` when the variable is unset (read per run for the switches that can change at runtime)."""
    environ = os.environ
    data = getattr(environ, "_data", None)
    if type(data) is dict:
        return _env_text(data.get(_env_key(environ.encodekey, name)))
    return environ.get(name, "")


def _env_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else os.environ.decodevalue(value)


@functools.lru_cache(maxsize=8)
def _secrets_pattern(values: tuple[Any, ...]) -> re.Pattern[str]:
    """The secret shapes, and these credential values (as read from the environment: ``str``, or the raw
    stored ``bytes``, or None when unset) in their raw and URL-encoded forms, as one pattern."""
    forms: set[str] = set()
    for value in (_env_text(v).strip() for v in values):
        if len(value) >= MIN_SECRET_CHARS:  # shorter values ("test", "k") would mask ordinary words
            forms.update((value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)))
    known = [re.escape(form) for form in sorted(forms, key=len, reverse=True)]
    return re.compile("|".join([*known, _SECRET_SHAPES]))


_redactor: Callable[[str], str] = mask_secrets
# Caches of values that went through the redactor (metric attribute sets): emptied when it changes.
_redacted_caches: list[Callable[[], None]] = []


def set_redactor(redactor: Callable[[str], str]) -> None:
    """Install a redaction hook for all recorded content and error messages (default: ``mask_secrets``)."""
    global _redactor
    _redactor = redactor
    redact_label.cache_clear()
    for clear in _redacted_caches:
        clear()


def on_redactor_change(clear: Callable[[], None]) -> None:
    """Call ``clear`` whenever ``set_redactor`` installs another redactor (for caches of redacted values)."""
    _redacted_caches.append(clear)


def redact(text: str) -> str:
    """Apply the installed redactor; if it fails, mask everything rather than leak. Never raises."""
    try:
        return _redactor(text)
    except Exception:
        return MASK


@functools.lru_cache(maxsize=4096)
def redact_label(value: str) -> str:
    """``redact`` for metric attribute values, which repeat: each distinct value is redacted once."""
    return redact(value)


def exception_attributes(exc: BaseException) -> dict[str, str]:
    """The conventions' ``exception`` event attributes for ``exc``: its type, message and stack trace
    (chained causes and contexts included), each redacted, then size-capped. Never raises."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    try:
        message = str(exc)
        stacktrace = "".join(traceback.format_exception(exc))
    except Exception:
        message, stacktrace = "<unprintable exception>", ""
    stacktrace = redact(stacktrace)
    if len(stacktrace) > MAX_STACKTRACE_CHARS:  # the end names the exception that was raised last
        cut = len(stacktrace) - MAX_STACKTRACE_CHARS
        stacktrace = f"…[truncated {cut} chars]" + stacktrace[cut:]
    return {
        n.EXCEPTION_TYPE: redact(name),
        n.EXCEPTION_MESSAGE: redact(message)[:MAX_MESSAGE_CHARS],
        n.EXCEPTION_STACKTRACE: stacktrace,
    }


def mark_span_error(span: Span, error_type: str, message: str, exc: BaseException | None = None) -> None:
    """Mark ``span`` failed: ``error.type``, an ERROR status with the redacted ``message`` and, for an
    exception, the redacted ``exception`` event (never the SDK's ``record_exception``, which writes the
    stack trace raw)."""
    span.set_attribute(n.ERROR_TYPE, redact(error_type))
    span.set_status(Status(StatusCode.ERROR, redact(message)[:MAX_STATUS_CHARS]))
    if exc is not None:
        span.add_event(n.EVENT_EXCEPTION, exception_attributes(exc))


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
        return _policy(getenv(CAPTURE_ENV), getenv(MAX_CHARS_ENV))

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
