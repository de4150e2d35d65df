"""Model tier routing: choose the model for each LLM call (a small one where it suffices)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteContext:
    """What a router may look at before call number ``iteration`` (1-based)."""

    iteration: int
    task: str
    has_tool_results: bool
    tool_calls_so_far: int


@dataclass(frozen=True)
class Route:
    """The model for one call, the tier it belongs to, and why (recorded on the chat span and logs)."""

    model: str
    tier: str | None = None
    reason: str | None = None


Router = Callable[[RouteContext], Route | str]


@dataclass(frozen=True)
class TierRouter:
    """Fast model for simple questions and tool selection; capable model for synthesis after tools.

    A task is simple when it is short and asks one thing (at most ``simple_max_chars`` characters and at
    most one question mark). Simple tasks stay on ``fast`` throughout; other tasks use ``fast`` to pick
    tools and ``capable`` once tool results are in, to write the answer.
    """

    fast: str
    capable: str
    simple_max_chars: int = 200

    @property
    def models(self) -> Sequence[str]:
        return (self.fast, self.capable)

    def is_simple(self, task: str) -> bool:
        return len(task) <= self.simple_max_chars and task.count("?") <= 1 and " and " not in task.lower()

    def __call__(self, context: RouteContext) -> Route:
        if self.is_simple(context.task):
            return Route(self.fast, "fast", "simple task")
        if context.has_tool_results:
            return Route(self.capable, "capable", "synthesis after tool results")
        return Route(self.fast, "fast", "tool selection")


def router_models(router: Router | None) -> Sequence[str]:
    """The models a router may choose, when it declares them (``models`` attribute); else none known."""
    models = getattr(router, "models", ())
    return tuple(models) if isinstance(models, list | tuple) else ()
