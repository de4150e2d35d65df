"""A local Anthropic Messages API simulator: the embedded default when there is no API key.

``Simulator`` serves ``POST /v1/messages`` (JSON and named SSE events) and
``POST /v1/messages/count_tokens`` on 127.0.0.1 with a deterministic scripted model that calls
tools, realistic token and prompt-cache usage, injectable faults (``Fault``, ``FaultPlan``) and
optional per-model rate limits with the API's headers (``RateLimit``).
``serve()`` / ``python -m agentwatch.sim`` runs one in the foreground.
"""

from agentwatch.sim.faults import Fault, FaultPlan
from agentwatch.sim.ratelimit import RateLimit
from agentwatch.sim.serve import serve
from agentwatch.sim.server import RequestRecord, Simulator

__all__ = ["Fault", "FaultPlan", "RateLimit", "RequestRecord", "Simulator", "serve"]
