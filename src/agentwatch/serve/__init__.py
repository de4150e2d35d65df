"""The agent as an HTTP service: JSON and SSE runs, reconnect, auth, limits and graceful drain.

``create_app(agent)`` returns the ASGI app; ``agentwatch serve MODULE:ATTR`` runs it under uvicorn. Needs the
``serve`` extra (Starlette, sse-starlette, uvicorn, the OpenTelemetry ASGI instrumentation).
"""

from agentwatch.serve.app import create_app
from agentwatch.serve.auth import ApiKeys
from agentwatch.serve.settings import ServeSettings

__all__ = ["ApiKeys", "ServeSettings", "create_app"]
