"""Safe rollout of new agent versions: ``Shadow`` (run a candidate on live input, never return its
output) and ``Canary`` (route a sticky share of keys to it, roll back automatically on a guard)."""

from agentwatch.rollout.canary import Canary, CanaryGuards, CanaryState, Rollback, SlidingWindow, WindowStats
from agentwatch.rollout.hashing import bucket, in_share
from agentwatch.rollout.shadow import Divergence, Shadow, ShadowOutcome, answer_similarity, compare_runs

__all__ = [
    "Canary",
    "CanaryGuards",
    "CanaryState",
    "Divergence",
    "Rollback",
    "Shadow",
    "ShadowOutcome",
    "SlidingWindow",
    "WindowStats",
    "answer_similarity",
    "bucket",
    "compare_runs",
    "in_share",
]
