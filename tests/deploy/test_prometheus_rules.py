"""promtool and amtool accept the shipped rules and configs; the rule unit tests pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_check_rules(promtool: Path, repo: Path) -> None:
    rules = sorted((repo / "prometheus" / "rules").glob("*.yml"))
    assert rules
    result = run(promtool, "check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: Path, repo: Path) -> None:
    tests = sorted((repo / "prometheus" / "tests").glob("*.yml"))
    assert tests
    result = run(promtool, "test", "rules", *tests, cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_config(promtool: Path, repo: Path) -> None:
    result = run(promtool, "check", "config", "--syntax-only", repo / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_check_config(amtool: Path, repo: Path) -> None:
    result = run(amtool, "check-config", repo / "prometheus" / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
