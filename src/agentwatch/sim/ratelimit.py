"""Rate limits like the Messages API's: requests, input tokens and output tokens per minute, per model.

Each limit is a token bucket that holds one minute's allowance and refills continuously (the API's own
algorithm), so ``-reset`` is the moment the bucket is full again and ``retry-after`` the wait until the
request would fit. As the API does, output tokens are reserved at ``max_tokens`` when a request starts and
the unused part is returned when it ends; input tokens count uncached input and cache writes, not reads.
Every ``/v1/messages`` reply (429s included) carries the ``anthropic-ratelimit-*`` headers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_KINDS = ("requests", "input-tokens", "output-tokens")
_NOUNS = {"requests": "requests", "input-tokens": "input tokens", "output-tokens": "output tokens"}


@dataclass(frozen=True)
class RateLimit:
    """Per-minute limits for one model (or, under the key ``"*"``, for every model without its own)."""

    requests_per_minute: int
    input_tokens_per_minute: int
    output_tokens_per_minute: int

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RateLimit.{name} must be a positive whole number, got {value!r}")

    @classmethod
    def from_spec(cls, spec: str) -> tuple[str, RateLimit]:
        """``"[MODEL=]RPM,ITPM,OTPM"`` (``"claude-haiku-4-5=50,50000,10000"``) → (model prefix or ``"*"``, limit).

        Raises ValueError saying the expected form when ``spec`` is not of it.
        """
        model, _, numbers = spec.rpartition("=")
        parts = numbers.split(",")
        try:
            rpm, itpm, otpm = (int(p.replace("_", "")) for p in parts)
        except ValueError:
            raise ValueError(
                f"expected [MODEL=]RPM,ITPM,OTPM (e.g. claude-haiku-4-5=50,50000,10000), got {spec!r}"
            ) from None
        return model.strip() or "*", cls(rpm, itpm, otpm)

    def per_minute(self, kind: str) -> int:
        return {
            "requests": self.requests_per_minute,
            "input-tokens": self.input_tokens_per_minute,
            "output-tokens": self.output_tokens_per_minute,
        }[kind]


@dataclass
class _Bucket:
    capacity: float
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / 60.0)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (infinite when it never can)."""
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.level) * 60.0 / self.capacity)

    def full_in(self) -> float:
        return (self.capacity - self.level) * 60.0 / self.capacity


@dataclass(frozen=True)
class Admission:
    """The outcome of ``RateLimiter.admit``: headers to send, and the 429 to answer with when refused."""

    headers: dict[str, str]
    refused: str | None = None  # the 429 message
    retry_after_s: int | None = None
    key: str = ""
    reserved_output: int = 0


def _rfc3339(unix: float) -> str:
    return datetime.fromtimestamp(math.ceil(unix), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RateLimiter:
    """Token buckets per (model rule, kind). Thread-safe; ``clock`` is injectable for tests of the window."""

    def __init__(self, limits: Mapping[str, RateLimit], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def rule(self, model: str) -> str | None:
        """The key of the limit that applies to ``model``: the longest matching prefix, else ``"*"``."""
        matches = [k for k in self.limits if k != "*" and model.startswith(k)]
        return max(matches, key=len) if matches else "*" if "*" in self.limits else None

    def _bucket(self, key: str, kind: str, now: float) -> _Bucket:
        bucket = self._buckets.get((key, kind))
        if bucket is None:
            capacity = float(self.limits[key].per_minute(kind))
            bucket = self._buckets[(key, kind)] = _Bucket(capacity, capacity, now)
        bucket.refill(now)
        return bucket

    def admit(self, model: str, input_tokens: int, max_tokens: int) -> Admission | None:
        """Take one request, its input and ``max_tokens`` of output from ``model``'s buckets, or refuse it
        when one of them lacks room. None when no limit applies to ``model``."""
        key = self.rule(model)
        if key is None:
            return None
        wanted = {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}
        with self._lock:
            now = self._clock()
            buckets = {kind: self._bucket(key, kind, now) for kind in _KINDS}
            waits = {kind: buckets[kind].wait_for(wanted[kind]) for kind in _KINDS}
            short = max(_KINDS, key=lambda kind: waits[kind])
            if waits[short] > 0:
                limit = self.limits[key].per_minute(short)
                message = (
                    f"This request would exceed the rate limit for your organization of {limit:,} "
                    f"{_NOUNS[short]} per minute (model: {model}). Please wait, reduce the prompt length or the "
                    "maximum tokens requested, and try again. See the anthropic-ratelimit-* response headers."
                )
                retry = math.ceil(waits[short]) if math.isfinite(waits[short]) else 60
                return Admission(self._headers(buckets), message, max(1, retry), key)
            for kind in _KINDS:
                buckets[kind].level -= wanted[kind]
            return Admission(self._headers(buckets), key=key, reserved_output=max_tokens)

    def settle(self, admission: Admission, cache_read_tokens: int, output_tokens: int) -> None:
        """Return what the request did not use: its cache reads and the unused part of ``max_tokens``."""
        with self._lock:
            now = self._clock()
            refunds = {"input-tokens": cache_read_tokens, "output-tokens": admission.reserved_output - output_tokens}
            for kind, amount in refunds.items():
                bucket = self._bucket(admission.key, kind, now)
                bucket.level = min(bucket.capacity, bucket.level + max(0, amount))

    def _headers(self, buckets: dict[str, _Bucket]) -> dict[str, str]:
        wall = time.time()
        headers: dict[str, str] = {}
        for kind, bucket in buckets.items():
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(int(bucket.capacity))
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(max(0, math.floor(bucket.level)))
            headers[f"anthropic-ratelimit-{kind}-reset"] = _rfc3339(wall + bucket.full_in())
        # tokens-*: the most restrictive of the input and output token limits in effect right now
        tightest = min(("input-tokens", "output-tokens"), key=lambda kind: buckets[kind].level)
        for field in ("limit", "remaining", "reset"):
            headers[f"anthropic-ratelimit-tokens-{field}"] = headers[f"anthropic-ratelimit-{tightest}-{field}"]
        return headers
