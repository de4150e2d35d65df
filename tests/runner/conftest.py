"""Fixtures for the runner tests (the simulator, clients and telemetry fixtures come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from secret_scan import SecretScan

from .support import OpenSpans, open_spans


@pytest.fixture
def tracker() -> OpenSpans:
    return open_spans()


@pytest.fixture(autouse=True)
def _no_secret_leaks(secret_scan: SecretScan) -> None:
    """Every test here fails if the planted API key reaches a span, metric, log record or written file."""
