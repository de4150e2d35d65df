"""Fixtures for these tests: the session's metric reader, reached through the root conftest's plugin
(``from conftest import ...`` is ambiguous when several test folders have a conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secret_scan import SecretScan

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture
def metric_points(pytestconfig: pytest.Config) -> Callable[..., list[Any]]:
    """``metric_points(name, **attributes)``: the data points of a metric in the session's reader."""
    root = pytestconfig.pluginmanager.get_plugin(str(ROOT_CONFTEST))
    assert root is not None, f"{ROOT_CONFTEST} is not loaded"
    points: Callable[..., list[Any]] = root.metric_points
    return points


@pytest.fixture(autouse=True)
def _no_secret_leaks(secret_scan: SecretScan) -> None:
    """Every test here fails if the planted API key reaches a span, metric, log record or written file."""
