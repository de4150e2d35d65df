"""Fixtures for the queue tests (shared with tests/serve): redis-server, workers, an OTLP receiver."""

from queue_fixtures import otlp, redis_server, start_worker  # noqa: F401
