"""The ``agentwatch`` command as a user runs it: a real subprocess, the simulator, the real SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentwatch.demo import SEED_CASES


def agentwatch(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "agentwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        check=False,
    )


def test_demo_runs_the_task_and_passes_the_seed_cases(tmp_path: Path) -> None:
    logs = tmp_path / "demo.jsonl"
    done = agentwatch("demo", "--logs", str(logs))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "local simulator at http://127.0.0.1:" in out
    assert "about 54 people per km²" in out  # the demo task's answer, from web_search + calculator
    for case in SEED_CASES:
        assert f"eval {case.name}: PASS" in out
    assert out.count("stop reason : end_turn") == 4
    assert "invoke_agent research-assistant" in out and "execute_tool calculator" in out  # the span tree
    assert "All seed cases passed." in out and f"JSON logs: {logs}" in out
    records = [json.loads(line) for line in logs.read_text().splitlines()]
    run_ends = [r for r in records if r["event"] == "run_end"]
    assert len(run_ends) == 4 and all(len(r["trace_id"]) == 32 for r in run_ends)
    assert all(r["cost_usd"] > 0 for r in run_ends)
    assert "demo-key" not in logs.read_text()  # the client's API key never reaches the logs


def test_run_uses_the_simulator_without_an_api_key(tmp_path: Path) -> None:
    done = agentwatch("run", "What is 1234 * 5678?", "--logs", str(tmp_path / "run.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "local simulator" in done.stdout and "7,006,652" in done.stdout


@pytest.mark.parametrize("args", [[], ["nonsense"]])
def test_bad_command_lines_get_usage_help(args: list[str]) -> None:
    done = agentwatch(*args)
    assert done.returncode == 2 and "usage: agentwatch" in done.stderr
