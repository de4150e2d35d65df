"""The pytest integration: each case of a dataset becomes one parametrized test, run by one fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "evals"

TEST_FILE = f"""
import pytest
from agentwatch.refs import load_object
from agentwatch.evals.pytest_plugin import eval_cases

agent = load_object({str(EXAMPLES / "agent.py:agent")!r})


@pytest.mark.parametrize("case", eval_cases({str(EXAMPLES / "seed.yaml")!r}))
def test_seed(case, eval_case_runner):
    report = eval_case_runner(case, agent)
    assert report.passed


@pytest.mark.parametrize("case", eval_cases("wrong.yaml"))
def test_wrong(case, eval_case_runner):
    eval_case_runner(case, agent, repeats=2)


@pytest.mark.parametrize("case", eval_cases({str(EXAMPLES / "seed.yaml")!r})[:1])
async def test_async(case, eval_case_runner):
    await eval_case_runner.arun(case, agent)
"""

WRONG = "cases:\n  - {id: wrong-answer, task: 'What is 1234 * 5678?', expect: [{contains_all: '42'}]}\n"


def test_cases_run_as_parametrized_tests(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["agentwatch.evals.pytest_plugin"]\n')
    (tmp_path / "test_agent_evals.py").write_text(TEST_FILE)
    (tmp_path / "wrong.yaml").write_text(WRONG)
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout + done.stderr
    assert "test_seed[earth-population] PASSED" in out, out
    assert "test_seed[multiplication] PASSED" in out and "test_seed[speed-of-light] PASSED" in out
    assert "test_async[earth-population] PASSED" in out
    assert "test_wrong[wrong-answer] FAILED" in out
    assert "eval case 'wrong-answer' failed: pass rate 0% < 100%" in out
    assert "trial 2: contains_all: answer lacks ['42']" in out
    assert "1 failed, 4 passed" in out
    assert done.returncode == 1
