"""Fixtures for the simulator tests: a running simulator, a real SDK client, tool definitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from agentwatch.sim import Simulator

MODEL = "claude-haiku-4-5-20251001"
CALCULATOR = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression.",
    "input_schema": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
}
WEB_SEARCH = {
    "name": "web_search",
    "description": "Search a small local corpus.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
CORPUS = {
    "population": "The world population reached about 8.1 billion (8,100,000,000) people in 2024, according "
    "to the UN. Growth has slowed since the 1960s.",
    "light": "Light is fast. The speed of light in vacuum is exactly 299,792,458 metres per second (m/s).",
}
DEMO_TASK = (
    "What is the population of Earth, and how many people is that per square kilometre of land area? "
    "Land area = 148,940,000 km²"
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as running:
        yield running


@pytest.fixture
def client(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="test", base_url=sim.base_url, max_retries=0) as made:
        yield made


def run_tools(block: Any) -> tuple[str, bool]:
    """The test's own tools: a calculator and a corpus search keyed by the first matching word."""
    if block.name == "calculator":
        left, op, right = block.input["expression"].split()
        a, b = float(left), float(right)
        value = {"*": a * b, "/": a / b, "+": a + b, "-": a - b}[op]
        return (str(int(value)) if value.is_integer() else str(value)), False
    if block.name == "web_search":
        query = block.input["query"].lower()
        return next((text for key, text in CORPUS.items() if key in query), "No results."), False
    return f"unknown tool {block.name}", True


Loop = Callable[..., tuple[anthropic.types.Message, list[Any]]]


@pytest.fixture
def agent_loop(client: anthropic.Anthropic) -> Loop:
    """A minimal agent loop over the real SDK: returns the final message and every tool call made."""

    def loop(task: str, tools: list[dict[str, Any]], max_turns: int = 6, **kwargs: Any) -> Any:
        messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
        calls: list[Any] = []
        for _ in range(max_turns):
            message = client.messages.create(model=MODEL, max_tokens=1024, messages=messages, tools=tools, **kwargs)
            if message.stop_reason != "tool_use":
                return message, calls
            messages.append(
                {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}
            )
            results = []
            for block in message.content:
                if block.type == "tool_use":
                    calls.append(block)
                    text, failed = run_tools(block)
                    results.append(
                        {"type": "tool_result", "tool_use_id": block.id, "content": text, "is_error": failed}
                    )
            messages.append({"role": "user", "content": results})
        raise AssertionError(f"no final answer after {max_turns} turns")

    return loop


@pytest.fixture
def client_factory() -> Iterator[Callable[..., Simulator]]:
    """Start simulators with custom settings; all are stopped after the test."""
    started: list[Simulator] = []

    def make(**settings: Any) -> Simulator:
        started.append(Simulator(**settings).start())
        return started[-1]

    yield make
    for running in started:
        running.stop()
