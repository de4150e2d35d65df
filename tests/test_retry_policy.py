"""The one retry policy (agentwatch.retry) that model calls, tools and the judge share."""

from __future__ import annotations

import random
import types

import anthropic
import httpx2
import pytest

from agentwatch import retry
from agentwatch.runner import retry as runner_retry


def overloaded(headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    response = httpx2.Response(529, headers=headers or {}, request=request)
    return anthropic.APIStatusError("overloaded", response=response, body=None)


def test_the_runner_names_are_the_shared_policy() -> None:
    for name in ("decide", "ATTEMPT_ERRORS", "status_of", "error_type", "retry_after_s", "RetryDecision"):
        assert getattr(runner_retry, name) is getattr(retry, name)


def test_backoff_is_jittered_within_its_bounds_and_seedable() -> None:
    policy = retry.RetryPolicy(max_retries=5, base_s=0.1, max_s=0.5)
    rng = random.Random(7)
    attempts = (0, 0, 0, 3, 3)
    waits = [policy.decide(overloaded(), attempt=a, time_left_s=None, rng=rng).wait_s for a in attempts]
    assert len(set(waits[:3])) == 3  # the same attempt, three different waits
    assert all(0.05 <= w <= 0.1 for w in waits[:3]) and all(0.25 <= w <= 0.5 for w in waits[3:])
    again = random.Random(7)
    assert waits == [policy.decide(overloaded(), attempt=a, time_left_s=None, rng=again).wait_s for a in attempts]


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    policy = retry.RetryPolicy(max_retries=3, base_s=0.1, max_s=2.0)
    assert policy.decide(overloaded({"retry-after-ms": "750"}), attempt=0, time_left_s=None).wait_s == 0.75
    capped = policy.decide(overloaded({"retry-after": "3600"}), attempt=0, time_left_s=None)
    assert capped.retry and capped.wait_s == 2.0


def test_a_wait_past_the_deadline_is_refused_as_out_of_time() -> None:
    policy = retry.RetryPolicy(max_retries=3, base_s=0.1, max_s=20.0)
    decision = policy.decide(overloaded({"retry-after": "5"}), attempt=0, time_left_s=4.0)
    assert (decision.retry, decision.out_of_time, decision.wait_s) == (False, True, 5.0)
    assert policy.decide(overloaded({"retry-after": "5"}), attempt=0, time_left_s=6.0).retry


def test_attempts_are_bounded_and_only_transient_failures_are_retried() -> None:
    policy = retry.RetryPolicy(max_retries=2, base_s=0.0, max_s=0.0)
    assert policy.decide(overloaded(), attempt=1, time_left_s=None).retry
    assert not policy.decide(overloaded(), attempt=2, time_left_s=None).retry
    assert not policy.decide(ValueError("bad input"), attempt=0, time_left_s=None).retry


def test_a_custom_classifier_decides_and_one_that_raises_makes_the_error_final() -> None:
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("classifier bug")

    assert (
        retry.RetryPolicy(1, 0.0, 0.0, lambda e: isinstance(e, KeyError))
        .decide(KeyError("k"), attempt=0, time_left_s=None)
        .retry
    )
    assert not retry.RetryPolicy(1, 0.0, 0.0, broken).decide(KeyError("k"), attempt=0, time_left_s=None).retry


@pytest.mark.parametrize("response", [None, types.SimpleNamespace(), types.SimpleNamespace(headers=42)])
def test_retry_after_never_raises_on_a_foreign_exception(response: object) -> None:
    exc = RuntimeError("x")
    exc.response = response  # type: ignore[attr-defined]
    assert retry.retry_after_s(exc) is None


def test_time_left_counts_down_to_zero() -> None:
    assert retry.time_left(None) is None
    assert retry.time_left(10.0, now=4.0) == 6.0 and retry.time_left(10.0, now=12.0) == 0.0
