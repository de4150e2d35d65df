"""The function the Lambda tests run under the Runtime Interface Emulator (``lambda_app.handler``)."""

from __future__ import annotations

import os

from agentwatch import Agent, Limits
from agentwatch.serverless import lambda_handler
from agentwatch.tools.builtins import calculator

agent = Agent(
    name="lambda-calc",
    model="claude-haiku-4-5-20251001",
    tools=[calculator],
    limits=Limits(timeout_s=60, max_retries=0),
)
handler = lambda_handler(agent, flush_margin_s=float(os.environ.get("AGENTWATCH_FLUSH_MARGIN_S", "1.0")))
