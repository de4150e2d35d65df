"""The one retry policy: whether a failed attempt is tried again, how long to wait first, and whether
that wait still fits before a deadline. The runner (model calls), the tool executor and the LLM judge
all decide with it; each owns its own loop, because each sleeps differently (the run's sans-I/O core
yields a sleep effect, the executor sleeps under the tool's timeout, the judge awaits).

The rule, the same for all three:

- Only transient failures are retried: for API errors the 408/409/429/5xx/529 statuses, connection
  errors, timeouts, a malformed body and an SSE ``overloaded_error``-like event (``x-should-retry``
  wins when the server sends it); a tool says what is transient with ``retry_on``.
- The wait is exponential backoff with jitter, ``min(base * 2**attempt, max)`` scaled by a random
  0.5-1.0. The jitter spreads clients that failed together; the floor keeps a retry from hammering an
  overloaded API at once, and the runner's tests and README pin it.
- A server's ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date) replaces the backoff, parsed
  defensively (``nan``, negatives and garbage are ignored) and capped at ``max`` like every wait.
- Every wait is weighed against the time left before the deadline (the run's ``timeout_s``, the tool's
  timeout, the judge's own): a wait that would outlast it is refused at once with ``out_of_time``, so
  the caller stops with its own clear reason instead of sleeping past its deadline.

Why one small in-house module and not a library. Tenacity was considered first: its decorator owns
the control flow, but here the loop must weigh each wait against the time left and record it.
stamina (a well-kept wrapper around tenacity) comes closer with ``retry_context``, a plain ``for``
loop with a backoff hook that may return the ``retry-after`` wait, but it does not fit the deadline
rule: its ``timeout`` is tenacity's ``stop_after_delay``, checked after an attempt against the time
since the loop began, so a long wait is slept even when the run's deadline falls inside it, and giving
up for time is indistinguishable from giving up for attempts (the runner must stop with ``timeout``,
not ``error``); a wait returned by the hook bypasses ``wait_max``, so the cap is ours to apply anyway;
it sleeps itself (``time.sleep`` / the event loop), where the run core must yield the sleep as an
effect and the executor must sleep under the tool's timeout; its jitter is additive, drawn from the
global ``random`` (unseedable per call), and its test mode is process-global. It would also bring
tenacity into the lean core (``tests/test_lean_core.py``) for what is ~60 lines of arithmetic here.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic

# Statuses the API documents as transient. 400/401/403/404/413/422 are the caller's to fix.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# Error types sent inside an SSE `error` event (HTTP status 200) that are transient.
RETRYABLE_STREAM_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})

# What an API attempt can fail with that the retry policy judges. The SDK raises a bare JSONDecodeError for a
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

    ``out_of_time``: the failure was worth retrying, but the wait would outlast the deadline.
    """

    retry: bool
    wait_s: float
    reason: str
    out_of_time: bool = False


def error_type(exc: BaseException) -> str:
    """The low-cardinality name used for ``error.type``: the exception class name."""
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

    Read from any exception with ``response.headers`` (the SDK's, or an HTTP client's raised in a tool).
    ``nan``, negative numbers and garbage are ignored (``None``: the caller's own backoff applies); huge
    values and ``inf`` are returned as they are, and ``decide`` caps them. Never raises.
    """
    try:
        headers = getattr(getattr(exc, "response", None), "headers", None)
        if headers is None:
            return None
        ms = _seconds(headers.get("retry-after-ms"), 0.001)
        if ms is not None:
            return ms
        value = headers.get("retry-after")
    except Exception:  # a foreign exception with an odd `response`
        return None
    if not isinstance(value, str):
        return None
    seconds = _seconds(value)
    return seconds if seconds is not None else _http_date_s(value, now)


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``min(base * 2**attempt, max)`` scaled by a random 0.5-1.0."""
    ceiling: float = min(base_s * (2.0 ** min(attempt, 64)), max_s)  # 2.0**1024 would overflow
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def time_left(deadline: float | None, now: float | None = None) -> float | None:
    """Seconds until the ``time.monotonic()`` ``deadline`` (``None``: no deadline), never negative."""
    if deadline is None:
        return None
    return max(0.0, deadline - (time.monotonic() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: at most ``max_retries`` retries after the first attempt, backoff
    from ``base_s`` doubling up to ``max_s`` (which caps a ``retry-after`` too), for the failures
    ``retryable`` accepts (default: transient API failures, :func:`is_retryable`)."""

    max_retries: int
    base_s: float
    max_s: float
    retryable: Callable[[BaseException], bool] = is_retryable

    def decide(
        self, exc: BaseException, *, attempt: int, time_left_s: float | None, rng: random.Random | None = None
    ) -> RetryDecision:
        """Whether to retry attempt ``attempt`` (0-based) that failed with ``exc``. Never raises.

        Every wait is capped at ``max_s``, a server's ``retry-after`` included. A wait as long as the time
        left or longer is refused with ``out_of_time``: the caller stops instead of sleeping past its deadline.
        """
        try:
            retryable = self.retryable(exc)
        except Exception:  # a user predicate that fails: the error is final
            retryable = False
        if not retryable:
            return RetryDecision(False, 0.0, "not retryable")
        if attempt >= self.max_retries:
            return RetryDecision(False, 0.0, f"gave up after {attempt + 1} attempts")
        requested = retry_after_s(exc)
        wait = backoff_s(attempt, self.base_s, self.max_s, rng) if requested is None else min(requested, self.max_s)
        if time_left_s is not None and wait >= time_left_s:
            return RetryDecision(
                False, wait, f"retry wait {wait:.2f}s exceeds the {max(time_left_s, 0):.2f}s left", out_of_time=True
            )
        return RetryDecision(True, wait, "retry-after" if requested is not None else "backoff")


def decide(
    exc: BaseException,
    *,
    attempt: int,
    max_retries: int,
    base_s: float,
    max_s: float,
    time_left_s: float | None,
    rng: random.Random | None = None,
) -> RetryDecision:
    """:meth:`RetryPolicy.decide` for a transient-API-failure policy given field by field (the runner's form)."""
    return RetryPolicy(max_retries, base_s, max_s).decide(exc, attempt=attempt, time_left_s=time_left_s, rng=rng)
