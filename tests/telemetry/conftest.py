"""Fixtures for the telemetry tests (the in-memory exporter and metric reader come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from runner.support import OpenSpans, open_spans


@pytest.fixture
def tracker() -> OpenSpans:
    return open_spans()
