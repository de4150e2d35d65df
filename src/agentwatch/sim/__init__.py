"""A local Anthropic Messages API simulator: the embedded default when there is no API key.

``Simulator`` serves ``POST /v1/messages`` (JSON and named SSE events) and
``POST /v1/messages/count_tokens`` on 127.0.0.1 with a deterministic scripted model that calls
tools, realistic token and prompt-cache usage, and injectable faults (``Fault``, ``FaultPlan``).
``serve()`` / ``python -m agentwatch.sim`` runs one in the foreground.
"""

from agentwatch.sim.faults import Fault, FaultPlan
from agentwatch.sim.serve import serve
from agentwatch.sim.server import RequestRecord, Simulator

__all__ = ["Fault", "FaultPlan", "RequestRecord", "Simulator", "serve"]
