"""The runner's names for the one retry policy, which lives in :mod:`agentwatch.retry` (shared with the
tool executor and the LLM judge; the reasons for an in-house module are written there).

The runner owns retries of model calls (its client runs with ``max_retries=0``) so every attempt is
visible on the ``chat`` span and every wait counts against the run's wall clock: it calls
``decide(exc, attempt=..., max_retries=..., base_s=..., max_s=..., time_left_s=...)`` with the run's
``Limits`` and the time left in the run.
"""

from __future__ import annotations

from agentwatch.retry import (
    ATTEMPT_ERRORS,
    RETRYABLE_STATUSES,
    RETRYABLE_STREAM_ERRORS,
    RetryDecision,
    RetryPolicy,
    backoff_s,
    decide,
    error_type,
    is_retryable,
    retry_after_s,
    status_of,
    time_left,
)

__all__ = [
    "ATTEMPT_ERRORS",
    "RETRYABLE_STATUSES",
    "RETRYABLE_STREAM_ERRORS",
    "RetryDecision",
    "RetryPolicy",
    "backoff_s",
    "decide",
    "error_type",
    "is_retryable",
    "retry_after_s",
    "status_of",
    "time_left",
]
