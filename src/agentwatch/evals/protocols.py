"""The agent shapes evals and rollout need, as protocols: ``agentwatch.Agent`` satisfies them, and so
does any object with the same methods (a test double, a wrapper)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from agentwatch.result import RunResult


@runtime_checkable
class AsyncAgent(Protocol):
    """Something with a name and version that runs a task asynchronously and returns a ``RunResult``."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    async def arun(self, task: str, *, client: Any = None) -> RunResult: ...


@runtime_checkable
class RolloutAgent(AsyncAgent, Protocol):
    """An agent that also runs synchronously and can be copied with changes (``Agent.replace``)."""

    def run(self, task: str, *, client: Any = None) -> RunResult: ...

    def replace(self, **changes: Any) -> Any: ...
