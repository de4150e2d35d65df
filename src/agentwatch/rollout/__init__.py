"""Safe rollout of new agent versions: ``Shadow`` (run a candidate on live input, never return its
output) and ``Canary`` (route a sticky share of keys to it, ramp it up, roll back automatically on a
guard), with its state in this process or, with ``agentwatch.rollout.redis_state.RedisCanaryStore``,
shared by every replica in Redis."""

from agentwatch.rollout.canary import (
    Canary,
    CanaryGuards,
    CanaryState,
    Ramp,
    Rollback,
    SlidingWindow,
    StoreDownPolicy,
    WindowStats,
)
from agentwatch.rollout.hashing import bucket, in_share
from agentwatch.rollout.shadow import Divergence, Shadow, ShadowOutcome, answer_similarity, compare_runs
from agentwatch.rollout.state import CanaryStore, InProcessCanaryStore, StoreUnavailable

__all__ = [
    "Canary",
    "CanaryGuards",
    "CanaryState",
    "CanaryStore",
    "Divergence",
    "InProcessCanaryStore",
    "Ramp",
    "Rollback",
    "Shadow",
    "ShadowOutcome",
    "SlidingWindow",
    "StoreDownPolicy",
    "StoreUnavailable",
    "WindowStats",
    "answer_similarity",
    "bucket",
    "compare_runs",
    "in_share",
]
