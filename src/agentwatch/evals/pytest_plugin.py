"""pytest integration: each eval case is one parametrized test, run through one fixture.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["agentwatch.evals.pytest_plugin"]``, then::

    from agentwatch.evals.pytest_plugin import eval_cases
    from myproject.agents import agent

    @pytest.mark.parametrize("case", eval_cases("evals/seed.yaml"))
    def test_seed(case, eval_case_runner):
        eval_case_runner(case, agent)            # fails with every scorer's message

    async def test_seed_async(case, eval_case_runner):   # in async tests
        await eval_case_runner.arun(case, agent)

Runs go to the Anthropic API when ``ANTHROPIC_API_KEY`` is set, else to the in-process local
simulator (started once per session). Override the ``eval_client_factory`` fixture to choose the client.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentwatch.evals.dataset import Dataset, EvalCase, load_dataset
from agentwatch.evals.protocols import AsyncAgent
from agentwatch.evals.report import CaseReport
from agentwatch.evals.runner import run_eval

ClientFactory = Callable[[], Any]


@dataclass(frozen=True)
class EvalCaseParam:
    """A case with the dataset it belongs to (dataset-wide expectations apply too)."""

    dataset: Dataset
    case: EvalCase

    def __str__(self) -> str:
        return self.case.id


def eval_cases(path: str | Path) -> list[Any]:
    """The cases of a dataset as ``pytest.param`` values with the case ids as test ids, for
    ``@pytest.mark.parametrize("case", eval_cases(path))``. Relative paths are from the current directory."""
    dataset = load_dataset(path)
    return [pytest.param(EvalCaseParam(dataset, case), id=case.id) for case in dataset.cases]


class EvalCaseRunner:
    """Runs one case against an agent and fails the test when it does not pass."""

    def __init__(self, client_factory: ClientFactory) -> None:
        self.client_factory = client_factory

    async def arun(self, case: EvalCaseParam, agent: AsyncAgent, *, repeats: int = 1) -> CaseReport:
        """Run ``case`` ``repeats`` times; its report, or the test fails with the scorers' messages."""
        dataset = case.dataset.model_copy(update={"cases": [case.case]})
        report = await run_eval(dataset, agent, client=self.client_factory(), repeats=repeats, concurrency=repeats)
        result = report.cases[0]
        if not result.passed:
            rates = f"pass rate {result.pass_rate:.0%} < {result.min_pass_rate:.0%}"
            lines = [f"eval case {result.id!r} failed: {rates}"]
            lines += [f"  {line}" for line in result.failure_messages()]
            lines += [f"  trace_id {t.trace_id}: answer {t.answer[:200]!r}" for t in result.trials if not t.passed]
            pytest.fail("\n".join(lines), pytrace=False)
        return result

    def __call__(self, case: EvalCaseParam, agent: AsyncAgent, *, repeats: int = 1) -> CaseReport:
        """The synchronous form (not inside a running event loop: use ``await runner.arun(...)`` there)."""
        return asyncio.run(self.arun(case, agent, repeats=repeats))


@pytest.fixture(scope="session")
def agentwatch_simulator_url() -> Iterator[str | None]:
    """The base URL of a session-wide local simulator, or ``None`` when ``ANTHROPIC_API_KEY`` is set."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        yield None
        return
    from agentwatch.sim import Simulator

    with Simulator() as sim:
        yield str(sim.base_url)


@pytest.fixture
def eval_client_factory(agentwatch_simulator_url: str | None) -> ClientFactory:
    """Makes the async client each case runs with (a new one per case, on the case's event loop)."""

    def factory() -> Any:
        import anthropic

        if agentwatch_simulator_url is None:
            return anthropic.AsyncAnthropic()
        return anthropic.AsyncAnthropic(api_key="test", base_url=agentwatch_simulator_url, max_retries=0)

    return factory


@pytest.fixture
def eval_case_runner(eval_client_factory: ClientFactory) -> EvalCaseRunner:
    """Run an eval case as a test: ``eval_case_runner(case, agent)``."""
    return EvalCaseRunner(eval_client_factory)
