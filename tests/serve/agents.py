"""Agents the serve tests serve (also by reference, ``tests/serve/agents.py:slow_agent``, in a subprocess)."""

from __future__ import annotations

import asyncio

from agentwatch import Agent, Limits, tool
from agentwatch.demo import demo_agent
from agentwatch.tools import calculator


@tool(timeout_s=600)
async def wait(seconds: float) -> str:
    """Wait this many seconds, then say so (a slow tool: runs that stay in flight)."""
    await asyncio.sleep(seconds)
    return f"waited {seconds} s"


def wait_task(seconds: float) -> str:
    """A task whose run calls ``wait`` for ``seconds`` (the simulator's tool trigger), then answers."""
    return f'Take your time [[tool:wait:{{"seconds": {seconds}}}]]'


def slow_agent() -> Agent:
    return demo_agent().replace(name="serve-test", tools=[calculator, wait])


def loop_agent() -> Agent:
    """Stops on its iteration budget for a ``[[loop]]`` task."""
    return slow_agent().replace(limits=Limits(max_iterations=2))
