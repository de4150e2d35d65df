"""The demo agent, its task and the three seed eval cases (shared by the CLI, examples and tests)."""

from __future__ import annotations

from dataclasses import dataclass

from agentwatch.agent import Agent
from agentwatch.limits import Limits
from agentwatch.tools import calculator, web_search

DEMO_MODEL = "claude-haiku-4-5-20251001"
DEMO_TASK = (
    "What is the population of Earth, and how many people is that per square kilometre of land area? "
    "Land area = 148,940,000 km²"
)
DEMO_SYSTEM = (
    "You are a careful research assistant. Use web_search for facts and calculator for arithmetic; "
    "answer in one or two sentences with the numbers you used."
)


@dataclass(frozen=True)
class SeedCase:
    """A demo eval case: the task and the strings a correct answer contains."""

    name: str
    task: str
    expect: tuple[str, ...]


SEED_CASES = (
    SeedCase("earth-population", "What is the population of Earth?", ("8", "billion")),
    SeedCase("multiplication", "What is 1234 * 5678?", ("7,006,652",)),
    SeedCase("speed-of-light", "What is the speed of light in m/s?", ("299,792,458",)),
)


def demo_agent(model: str = DEMO_MODEL, version: str | None = "demo-1") -> Agent:
    """The research assistant the demo runs: calculator + web_search, modest budgets."""
    return Agent(
        name="research-assistant",
        model=model,
        system=DEMO_SYSTEM,
        tools=[calculator, web_search],
        limits=Limits(max_iterations=10, token_budget=20_000, cost_budget_usd=0.05, timeout_s=120),
        version=version,
        description="Answers factual and arithmetic questions with web_search and calculator.",
    )


def passes(case: SeedCase, answer: str) -> bool:
    return all(expected.lower() in answer.lower() for expected in case.expect)
