"""Agent runs as serverless functions: ``lambda_handler(agent)`` for AWS Lambda (README "Serverless").

Needs the ``lambda`` extra for the runtime client used in tests and container images
(``pip install 'agentwatch[lambda]'``); the handler itself needs only the core and the ``otlp`` extra.
"""

from agentwatch.serverless.aws import faas_resource, flush_telemetry, lambda_handler

__all__ = ["faas_resource", "flush_telemetry", "lambda_handler"]
