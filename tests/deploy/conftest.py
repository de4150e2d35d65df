"""Fixtures for the deploy-kit checks: the repository root and the real binaries (see tests/e2e/binaries.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

_spec = importlib.util.spec_from_file_location(
    "agentwatch_e2e_binaries", Path(__file__).resolve().parents[1] / "e2e" / "binaries.py"
)
assert _spec and _spec.loader
binaries: ModuleType = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(binaries)

REPO: Path = binaries.REPO


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def otelcol() -> Path:
    return binaries.require_binary("otelcol-agentwatch")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return binaries.require_binary("promtool")


@pytest.fixture(scope="session")
def amtool() -> Path:
    return binaries.require_binary("amtool")


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    """versions.env, the one version table of the deploy kit."""
    return binaries.read_versions()
