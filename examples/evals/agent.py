"""The demo agent the example datasets run against.

    agentwatch eval examples/evals/seed.yaml --agent examples/evals/agent.py:agent --sim
    agentwatch eval examples/evals/behaviour.yaml --agent examples.evals.agent:agent --sim   # from the repo root

``candidate`` is a second version of the same agent (a different system prompt), for trying
``--baseline`` comparisons and the shadow / canary rollout examples.
"""

from agentwatch import Agent, Limits
from agentwatch.tools import calculator, web_search

agent = Agent(
    name="research-assistant",
    model="claude-haiku-4-5-20251001",
    system="You are a research assistant. Use the calculator for arithmetic and web_search for facts; "
    "answer in one or two sentences and give numbers with their units.",
    tools=[calculator, web_search],
    limits=Limits(max_iterations=6, timeout_s=60, cost_budget_usd=0.05),
    version="v1",
)


def candidate() -> Agent:
    """A zero-argument factory (``--agent examples/evals/agent.py:candidate``): version v2 of the agent."""
    return agent.replace(
        version="v2",
        system="You are a concise research assistant. Always use a tool before you answer.",
    )
