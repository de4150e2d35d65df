"""agentwatch: an observability-first runtime for Claude agents.

``Agent.run`` turns a task into one trace (``invoke_agent`` → ``chat`` / ``execute_tool`` spans), metrics
and JSON logs, under hard budgets, with retries and tool errors handled. See README.md.
"""

from importlib.metadata import version as _version

# Written once, in pyproject.toml. Set before the imports below: the telemetry modules read it.
__version__ = _version("agentwatch")

from agentwatch.agent import Agent
from agentwatch.cost import Pricing
from agentwatch.limits import Limits
from agentwatch.result import RunResult, StopReason, ToolCall, Usage
from agentwatch.runner.drivers import RunHandle
from agentwatch.runner.events import (
    Retrying,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolFinished,
    ToolStarted,
)
from agentwatch.runner.guards import BudgetWarning
from agentwatch.runner.routing import Route, RouteContext, TierRouter
from agentwatch.tools import Tool, ToolInputError, TransientToolError, tool

__all__ = [
    "Agent",
    "BudgetWarning",
    "Limits",
    "Pricing",
    "Retrying",
    "Route",
    "RouteContext",
    "RunEvent",
    "RunFinished",
    "RunHandle",
    "RunResult",
    "StopReason",
    "TextDelta",
    "TierRouter",
    "Tool",
    "ToolCall",
    "ToolFinished",
    "ToolInputError",
    "ToolStarted",
    "TransientToolError",
    "Usage",
    "__version__",
    "tool",
]
