"""The rollout tests use the same fixtures as the eval tests."""

from evals.conftest import metric_points

__all__ = ["metric_points"]
