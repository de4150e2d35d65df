"""Fixtures for the fleet-guard tests: a real redis-server, fleet worker processes."""

from queue_fixtures import redis_server  # noqa: F401

from .fleet_support import fleet  # noqa: F401
