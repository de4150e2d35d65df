"""Events a streaming run yields as they happen; the last one is always ``RunFinished``."""

from __future__ import annotations

from dataclasses import dataclass

from agentwatch.result import RunResult, ToolCall
from agentwatch.runner.guards import BudgetWarning


@dataclass(frozen=True)
class TextDelta:
    """A piece of the model's text, in order. After a ``Retrying`` the call's text starts again."""

    text: str
    iteration: int


@dataclass(frozen=True)
class ToolStarted:
    name: str
    call_id: str
    input: object


@dataclass(frozen=True)
class ToolFinished:
    call: ToolCall


@dataclass(frozen=True)
class Retrying:
    """An LLM call failed transiently and is retried after ``wait_s`` seconds."""

    attempt: int
    wait_s: float
    error_type: str


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


RunEvent = TextDelta | ToolStarted | ToolFinished | Retrying | BudgetWarning | RunFinished
