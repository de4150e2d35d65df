"""What a Lambda event asks for: the trigger, and one task per run with the trace context that parents it.

- API Gateway HTTP API (2.0) and function URLs: ``requestContext.http``; REST API (1.0): ``httpMethod``.
  Body: JSON ``{"task": "..."}`` (base64 when ``isBase64Encoded``); ``traceparent`` from the headers.
- SQS: ``Records[]`` with ``eventSource`` ``aws:sqs``; each body is ``{"task": "..."}``; ``traceparent``
  from the message attributes (``{"traceparent": {"stringValue": ..., "dataType": "String"}}``).
- Anything else with a ``task`` key is a direct invocation (``faas.trigger`` ``other``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from agentwatch.telemetry import names as n


@dataclass(frozen=True)
class Item:
    """One run an event asks for. ``task`` is None when the input is unusable; ``problem`` then says why."""

    task: str | None
    problem: str = ""
    carrier: dict[str, str] = field(default_factory=dict)  # W3C trace context (traceparent, tracestate)
    message_id: str = ""  # SQS messageId
    source: str = ""  # SQS queue name


@dataclass(frozen=True)
class Invocation:
    trigger: str
    items: list[Item]
    http_method: str = ""
    path: str = ""


def _task_from(body: Any) -> tuple[str | None, str]:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None, 'the body is not JSON: send {"task": "..."}'
    task = body.get("task") if isinstance(body, dict) else None
    if not isinstance(task, str) or not task.strip():
        return None, 'the body needs a non-empty string "task": send {"task": "..."}'
    return task, ""


def _http(event: dict[str, Any]) -> Invocation:
    body: Any = event.get("body") or ""
    if event.get("isBase64Encoded") and isinstance(body, str):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            body = "not json"
    task, problem = _task_from(body)
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method") or event.get("httpMethod") or ""
    path = event.get("rawPath") or event.get("path") or ""
    return Invocation(n.TRIGGER_HTTP, [Item(task, problem, headers)], method, path)


def _sqs_record(record: dict[str, Any]) -> Item:
    attributes = record.get("messageAttributes") or {}
    carrier = {
        key.lower(): str(value.get("stringValue"))
        for key, value in attributes.items()
        if isinstance(value, dict) and value.get("stringValue") is not None
    }
    task, problem = _task_from(record.get("body") or "")
    source = str(record.get("eventSourceARN", "")).rsplit(":", 1)[-1]
    return Item(task, problem, carrier, str(record.get("messageId", "")), source)


def parse(event: Any) -> Invocation:
    """The invocation ``event`` describes. Never raises: unusable input becomes an ``Item`` with a problem."""
    if not isinstance(event, dict):
        return Invocation(n.TRIGGER_OTHER, [Item(None, 'the event must be a JSON object such as {"task": "..."}')])
    records = event.get("Records")
    if isinstance(records, list) and records and all(r.get("eventSource") == "aws:sqs" for r in records):
        return Invocation(n.TRIGGER_PUBSUB, [_sqs_record(r) for r in records])
    if "requestContext" in event or "httpMethod" in event:
        return _http(event)
    task, problem = _task_from(event)
    return Invocation(n.TRIGGER_OTHER, [Item(task, problem)])
