# The agentwatch package in a small image: the compose stack's traffic generator
# (`agentwatch demo --loop` against the built-in simulator), its alert-sink, the simulator and the queue worker.
FROM python:3.11-slim

# The runtime user (nobody) has no home directory, so the demo's JSON logs go to /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGENTWATCH_LOG_FILE=/tmp/agentwatch/agentwatch.jsonl

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[cli,grpc,queue]"
COPY scripts/alert_sink.py ./scripts/alert_sink.py

USER nobody
CMD ["agentwatch", "demo", "--loop"]
