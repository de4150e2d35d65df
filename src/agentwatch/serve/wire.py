"""What goes over the wire: the request body, a ``RunResult`` as JSON, and one SSE event per runner event."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentwatch.result import RunResult
from agentwatch.runner.events import Retrying, RunEvent, RunFinished, TextDelta, ToolFinished, ToolStarted
from agentwatch.runner.guards import BudgetWarning

MAX_METADATA_ITEMS = 32
MAX_METADATA_CHARS = 512


class RunRequest(BaseModel):
    """``POST /v1/runs``: strict types, no unknown fields (a typo is an error, not silently ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task: str = Field(min_length=1)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=MAX_METADATA_ITEMS)
    # "async" hands the run to a queue (issue 9); the service answers it only when one is configured.
    mode: Literal["sync", "async"] = "sync"


class BadRequest(ValueError):
    """A request body that cannot run: ``status`` (400 or 422) and a message naming the field."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type = status, error_type


def parse_run_request(body: bytes, max_task_chars: int) -> RunRequest:
    """The validated request, or ``BadRequest``: 400 for malformed JSON, 422 for a wrong field."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(400, "invalid_json", f"the body is not valid JSON ({exc}); send a JSON object.") from None
    if not isinstance(raw, dict):
        raise BadRequest(422, "invalid_request", 'the body must be a JSON object such as {"task": "..."}.')
    try:
        request = RunRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(422, "invalid_request", f"field {where!r}: {first['msg']}.") from None
    if len(request.task) > max_task_chars:
        raise BadRequest(
            422, "task_too_long", f"field 'task' has {len(request.task)} characters; the limit is {max_task_chars}."
        )
    for key, value in request.metadata.items():
        if len(key) > MAX_METADATA_CHARS or len(value) > MAX_METADATA_CHARS:
            raise BadRequest(422, "invalid_request", f"field 'metadata.{key[:40]}' is over {MAX_METADATA_CHARS} chars.")
    return request


def result_json(result: RunResult, run_id: str) -> dict[str, Any]:
    """Every ``RunResult`` field, plus the derived ones a client wants without recomputing them."""
    out = result.to_dict()
    out["ok"] = result.ok
    out["usage"]["total_input_tokens"] = result.usage.total_input_tokens
    out["usage"]["total_tokens"] = result.usage.total_tokens
    out["run_id"] = run_id
    return out


def event_payload(event: RunEvent, run_id: str) -> tuple[str, dict[str, Any]]:
    """(SSE event name, data object) for one runner event; every data object carries ``run_id``."""
    data: dict[str, Any]
    if isinstance(event, TextDelta):
        name, data = "text_delta", {"text": event.text, "iteration": event.iteration}
    elif isinstance(event, ToolStarted):
        name, data = "tool_started", {"name": event.name, "call_id": event.call_id, "input": event.input}
    elif isinstance(event, ToolFinished):
        name, data = "tool_finished", dataclasses.asdict(event.call)
    elif isinstance(event, Retrying):
        name, data = "retrying", {"attempt": event.attempt, "wait_s": event.wait_s, "error_type": event.error_type}
    elif isinstance(event, BudgetWarning):
        name, data = "budget_warning", {"kind": event.kind, "used": event.used, "limit": event.limit}
    elif isinstance(event, RunFinished):
        name, data = "run_finished", {"result": result_json(event.result, run_id)}
    else:  # pragma: no cover - the RunEvent union is closed
        raise TypeError(f"unknown run event {event!r}")
    return name, {"run_id": run_id, **data}


def dumps(data: Any) -> str:
    """Compact JSON; anything the model sent that JSON cannot hold becomes its string."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
