"""Fixtures for the telemetry tests (the in-memory exporter and metric reader come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from runner.support import OpenSpans, open_spans
from secret_scan import SecretScan


@pytest.fixture
def tracker() -> OpenSpans:
    return open_spans()


@pytest.fixture(autouse=True)
def _no_secret_leaks(secret_scan: SecretScan) -> None:
    """Every test here fails if the planted API key reaches a span, metric, log record or written file."""
