"""The rollout tests use the same fixtures as the eval tests, and a real redis-server for shared canaries."""

from evals.conftest import metric_points
from queue_fixtures import redis_server

__all__ = ["metric_points", "redis_server"]
