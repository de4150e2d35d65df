"""Tools Claude can call: the ``@tool`` decorator, a safe executor, and two offline demo tools."""

from agentwatch.tools.base import DEFAULT_RETRY_ON, Tool, ToolInputError, TransientToolError, tool
from agentwatch.tools.builtins import calculator, web_search
from agentwatch.tools.executor import ToolOutcome, aexecute_tool, execute_tool

__all__ = [
    "DEFAULT_RETRY_ON",
    "Tool",
    "ToolInputError",
    "ToolOutcome",
    "TransientToolError",
    "aexecute_tool",
    "calculator",
    "execute_tool",
    "tool",
    "web_search",
]
