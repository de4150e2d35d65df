"""Rate limits like the API's: anthropic-ratelimit-* headers on every reply, 429 with retry-after when a
bucket is short, a refilling one-minute window, limits per model, and the ``--rate-limit`` flag."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anthropic
import httpx2
import pytest

from agentwatch.sim import RateLimit, Simulator
from agentwatch.sim.ratelimit import RateLimiter

from . import wire
from .conftest import MODEL

HI = [{"role": "user", "content": "hi"}]
KINDS = ("requests", "tokens", "input-tokens", "output-tokens")


def _limits(headers: httpx2.Headers, kind: str) -> tuple[int, int, datetime]:
    reset = datetime.strptime(headers[f"anthropic-ratelimit-{kind}-reset"], "%Y-%m-%dT%H:%M:%S%z")
    return (
        int(headers[f"anthropic-ratelimit-{kind}-limit"]),
        int(headers[f"anthropic-ratelimit-{kind}-remaining"]),
        reset,
    )


def _client(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=sim.base_url, max_retries=0)


def test_every_reply_carries_the_headers_and_the_request_limit_is_enforced(
    client_factory: Callable[..., Simulator],
) -> None:
    sim = client_factory(rate_limits={"*": RateLimit(3, 100_000, 50_000)})
    with _client(sim) as client:
        remaining = []
        for stream in (False, True, False):
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=HI, stream=stream)
            for kind in KINDS:
                limit, left, reset = _limits(raw.headers, kind)
                assert 0 <= left < limit and reset >= datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
            remaining.append(_limits(raw.headers, "requests")[1])
        assert remaining == [2, 1, 0]
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=MODEL, max_tokens=100, messages=HI)
    headers = caught.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 20  # one request refills in 60 s / 3
    assert _limits(headers, "requests")[:2] == (3, 0)
    assert "3 requests per minute" in caught.value.message
    wire.error(caught.value.body, headers["request-id"])
    assert sim.requests[-1].status == 429
    sim.reset()  # refills the buckets
    with _client(sim) as client:
        assert client.messages.create(model=MODEL, max_tokens=100, messages=HI).stop_reason == "end_turn"


def test_output_tokens_are_reserved_at_max_tokens_then_the_unused_part_returned(
    client_factory: Callable[..., Simulator],
) -> None:
    sim = client_factory(rate_limits={"*": RateLimit(1000, 100_000, 10_000)})
    with _client(sim) as client:
        first = client.messages.with_raw_response.create(model=MODEL, max_tokens=8_000, messages=HI)
        assert _limits(first.headers, "output-tokens")[1] == 2_000  # reserved at the start
        used = first.parse().usage.output_tokens
        second = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=HI)
        left = _limits(second.headers, "output-tokens")[1]
        assert 10_000 - used - 100 <= left <= 10_000 - 100  # the unused 8,000 - used came back
        with pytest.raises(anthropic.RateLimitError, match="10,000 output tokens per minute"):
            client.messages.create(model=MODEL, max_tokens=20_000, messages=HI)


def test_input_tokens_limit_and_the_tightest_token_limit_in_tokens_headers(
    client_factory: Callable[..., Simulator],
) -> None:
    sim = client_factory(rate_limits={"*": RateLimit(1000, 2_000, 50_000)})
    with _client(sim) as client:
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x" * 6000}]
        )
        assert _limits(raw.headers, "input-tokens")[1] < 600  # 2,000 - 1,504 (a refill of 1,504 takes 45 s)
        assert _limits(raw.headers, "tokens")[:2] == _limits(raw.headers, "input-tokens")[:2]
        with pytest.raises(anthropic.RateLimitError, match="2,000 input tokens per minute"):
            client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x" * 6000}])


def test_limits_are_per_model_by_prefix_and_unlisted_models_are_unlimited(
    client_factory: Callable[..., Simulator],
) -> None:
    sim = client_factory(rate_limits={"claude-haiku-4-5": RateLimit(1, 100_000, 50_000)})
    with _client(sim) as client:
        client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=10, messages=HI)
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HI)  # same bucket
        raw = client.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=10, messages=HI)
    assert "anthropic-ratelimit-requests-limit" not in raw.headers


def test_the_window_refills_continuously() -> None:
    """A unit test of the bucket arithmetic with an injected clock (the server test above covers the wire)."""
    now = [1000.0]
    limiter = RateLimiter({"*": RateLimit(60, 6_000, 6_000)}, clock=lambda: now[0])
    for _ in range(60):
        admitted = limiter.admit("m", 10, 10)
        assert admitted is not None and admitted.refused is None
    refused = limiter.admit("m", 10, 10)
    assert refused is not None and refused.refused and refused.retry_after_s == 1
    now[0] += 1.0  # one request's worth (60 per minute)
    again = limiter.admit("m", 10, 10)
    assert (
        again is not None and again.refused is None and again.headers["anthropic-ratelimit-requests-remaining"] == "0"
    )
    now[0] += 60.0
    full = limiter.admit("m", 10, 10)
    assert full is not None and full.headers["anthropic-ratelimit-requests-remaining"] == "59"
    never = limiter.admit("m", 10, 7_000)  # more than a whole minute's output: can never fit
    assert never is not None and never.refused and never.retry_after_s == 60


def test_bad_limits_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="positive whole number"):
        RateLimit(0, 1, 1)
    with pytest.raises(ValueError, match=r"expected \[MODEL=\]RPM,ITPM,OTPM"):
        RateLimit.from_spec("fast")
    assert RateLimit.from_spec("claude-haiku-4-5=50,50_000,10000") == (
        "claude-haiku-4-5",
        RateLimit(50, 50_000, 10_000),
    )
    assert RateLimit.from_spec("5,6,7") == ("*", RateLimit(5, 6, 7))


def test_rate_limit_flag() -> None:
    command = [sys.executable, "-m", "agentwatch.sim", "--port", "0", "--rate-limit", "1,100000,50000"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().split()[-1]
            with anthropic.Anthropic(api_key="k", base_url=base_url, max_retries=0) as client:
                client.messages.create(model=MODEL, max_tokens=10, messages=HI)
                with pytest.raises(anthropic.RateLimitError):
                    client.messages.create(model=MODEL, max_tokens=10, messages=HI)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()
