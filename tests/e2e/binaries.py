"""Where the real binaries the deploy tests run come from, and what happens when one is missing.

`scripts/e2e-binaries.sh` builds or installs them into ``$AGENTWATCH_BIN_CACHE`` (default
``~/.cache/agentwatch/bin``). In CI (``CI`` set) a missing binary is a failure, because CI installs
them first; on a developer machine the test is skipped with the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = (
    "run `scripts/e2e-binaries.sh` (builds the collector, Jaeger, Prometheus and Alertmanager at the versions in "
    "versions.env; cached)"
)

# name in the cache -> names to look for on PATH
_NAMES = {
    "otelcol-agentwatch": ("otelcol-agentwatch",),
    "jaeger": ("jaeger",),
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("alertmanager",),
    "amtool": ("amtool",),
}


def read_versions() -> dict[str, str]:
    """versions.env (KEY=value lines, # comments): what compose ships and the tests build."""
    found = {}
    for line in (REPO / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTWATCH_BIN_CACHE") or Path.home() / ".cache" / "agentwatch" / "bin")


def find_binary(name: str) -> Path | None:
    candidate = cache_dir() / name
    if candidate.exists() and os.access(candidate, os.X_OK):
        return candidate
    for alias in _NAMES.get(name, (name,)):
        found = shutil.which(alias)
        if found:
            return Path(found)
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_binary(name: str) -> Path:
    """The binary's path; fails in CI and skips elsewhere when it is missing."""
    path = find_binary(name)
    if path is not None:
        return path
    message = f"binary `{name}` not found in {cache_dir()} or on PATH: {INSTALL_HINT}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
