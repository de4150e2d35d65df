# The agentwatch image. By default it runs the agent service (`agentwatch serve`: HTTP + SSE, auth,
# limits, graceful drain on SIGTERM) with the demo agent on the embedded simulator; the compose stack
# also runs its traffic generator, alert-sink, simulator and queue worker (`agentwatch worker`) from it.
FROM python:3.11.14-slim-bookworm

# The runtime user (nobody) has no home directory, so JSON logs go to /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGENTWATCH_LOG_FILE=/tmp/agentwatch/agentwatch.jsonl

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[serve,grpc,queue]"
COPY scripts/alert_sink.py scripts/serve_traffic.py ./scripts/

USER nobody
EXPOSE 8000
# Liveness only: readiness (/readyz) is for the load balancer and turns 503 while draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# An orchestrator's stop: /readyz 503, in-flight runs finish (AGENTWATCH_SERVE_DRAIN_TIMEOUT_S), exit 0.
# Give the container a stop grace period longer than the drain timeout.
STOPSIGNAL SIGTERM
# Binding 0.0.0.0 needs API keys (AGENTWATCH_API_KEYS or AGENTWATCH_API_KEYS_FILE): without them it refuses to start.
CMD ["agentwatch", "serve", "agentwatch.demo:demo_agent", "--sim", "--host", "0.0.0.0", "--port", "8000"]
