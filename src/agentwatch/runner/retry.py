"""Which API failures are worth another attempt, and how long to wait first.

The runner owns retries (its client runs with ``max_retries=0``) so every attempt is visible on the
``chat`` span and every wait counts against the run's wall clock. Tenacity was considered: its
decorator owns the control flow, but here the loop must weigh each wait against the time left in the
run and record it; a pure ``decide(...)`` function keeps that in one place for the sync and async forms.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import anthropic

# Statuses the API documents as transient. 400/401/403/404/413/422 are the caller's to fix.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Error types sent inside an SSE `error` event (HTTP status 200) that are transient.
RETRYABLE_STREAM_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


# What an attempt can fail with that the retry policy judges. The SDK raises a bare JSONDecodeError for a
# malformed body (JSON or SSE): a garbled response, worth another attempt.
ATTEMPT_ERRORS: tuple[type[BaseException], ...] = (
    anthropic.APIError,
    TimeoutError,
    ConnectionError,
    json.JSONDecodeError,
)


@dataclass(frozen=True)
class RetryDecision:
    """``retry`` with ``wait_s`` seconds first, or give up (``retry=False``) for ``reason``.

    ``out_of_time``: the call was worth retrying, but the wait would outlast the run's deadline.
    """

    retry: bool
    wait_s: float
    reason: str
    out_of_time: bool = False


def error_type(exc: BaseException) -> str:
    """The low-cardinality name used for ``error.type``: the SDK exception class name."""
    return type(exc).__name__


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an API error, if it has one. Never raises."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _stream_error_type(exc: anthropic.APIStatusError) -> str | None:
    body: Any = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def is_retryable(exc: BaseException) -> bool:
    """True for transient API failures: 408/409/429/5xx/529, connection errors, timeouts, SSE overloads."""
    if isinstance(exc, anthropic.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, anthropic.APIStatusError):
        headers = exc.response.headers if exc.response is not None else {}
        should = headers.get("x-should-retry")
        if should == "false":
            return False
        if should == "true":
            return True
        if exc.status_code == 200:  # an `error` event in the middle of a stream
            return _stream_error_type(exc) in RETRYABLE_STREAM_ERRORS
        return exc.status_code in RETRYABLE_STATUSES
    return isinstance(exc, TimeoutError | ConnectionError | json.JSONDecodeError)


def _seconds(text: str | None, scale: float = 1.0) -> float | None:
    """A non-negative number of seconds (``inf`` included) from header ``text`` times ``scale``; else ``None``."""
    try:
        value = float(text) * scale if text is not None else math.nan
    except ValueError:
        return None
    return value if value >= 0 else None  # nan compares false: refused too


def _http_date_s(text: str, now: float | None) -> float | None:
    """Seconds until the HTTP-date ``text`` (0 when it has passed); ``None`` when it is not a date."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def retry_after_s(exc: BaseException, now: float | None = None) -> float | None:
    """The server's requested wait from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    ``nan``, negative numbers and garbage are ignored (``None``: the caller's own backoff applies); huge
    values and ``inf`` are returned as they are, and ``decide`` caps them.
    """
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = _seconds(headers.get("retry-after-ms"), 0.001)
    if ms is not None:
        return ms
    value = headers.get("retry-after")
    if not isinstance(value, str):
        return None
    seconds = _seconds(value)
    return seconds if seconds is not None else _http_date_s(value, now)


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``min(base * 2**attempt, max)`` scaled by a random 0.5–1.0."""
    ceiling: float = min(base_s * (2.0 ** min(attempt, 64)), max_s)  # 2.0**1024 would overflow
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def decide(
    exc: BaseException,
    *,
    attempt: int,
    max_retries: int,
    base_s: float,
    max_s: float,
    time_left_s: float | None,
) -> RetryDecision:
    """Whether to retry attempt ``attempt`` (0-based) that failed with ``exc``. Never raises.

    Every wait is capped at ``max_s``, a server's ``retry-after`` included. A wait longer than the time
    left in the run is refused: the run stops with ``timeout`` instead of sleeping past its deadline.
    """
    if not is_retryable(exc):
        return RetryDecision(False, 0.0, "not retryable")
    if attempt >= max_retries:
        return RetryDecision(False, 0.0, f"gave up after {attempt + 1} attempts")
    requested = retry_after_s(exc)
    wait = min(requested, max_s) if requested is not None else backoff_s(attempt, base_s, max_s)
    if time_left_s is not None and wait >= time_left_s:
        return RetryDecision(
            False, wait, f"retry wait {wait:.2f}s exceeds the {max(time_left_s, 0):.2f}s left", out_of_time=True
        )
    return RetryDecision(True, wait, "retry-after" if requested is not None else "backoff")
