"""Fixtures for the runner tests (the simulator, clients and telemetry fixtures come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from .support import OpenSpans, open_spans


@pytest.fixture
def tracker() -> OpenSpans:
    return open_spans()
