"""The effects a run core asks its driver to perform, and what the driver sends back for each.

An effect is plain data. The driver performs it and ``send``s the outcome named on each class; when
performing it fails, the driver ``throw``s the exception back into the core at the same point. The sync
driver performs each one in order; the async driver awaits them and runs a ``RunTools`` batch concurrently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from agentwatch.runner.events import RunEvent
from agentwatch.runner.gate import CallGate
from agentwatch.tools import Tool


@dataclass(frozen=True)
class Emit:
    """Hand ``event`` to the caller (a stream yields it; ``run`` drops it). Outcome: ``None``."""

    event: RunEvent


@dataclass(frozen=True)
class CountTokens:
    """``messages.count_tokens(**request)``. Outcome: the SDK's ``MessageTokensCount``."""

    request: dict[str, Any]
    timeout_s: float  # the HTTP timeout
    time_left_s: float | None  # the run's wall clock left: an async driver's deadline
    scope: AbstractContextManager[None]  # the telemetry context to perform it in


@dataclass(frozen=True)
class CallModel:
    """One attempt of ``messages.create`` (or ``messages.stream`` when ``stream``). Outcome: a ``Reply``.

    A streaming driver yields each text delta as a ``TextDelta`` of ``iteration``, calls ``on_chunk`` for
    every SSE event, and, when the stream ends without its final message (an error, a consumer that left),
    calls ``on_cut`` with the SDK's stream object before the failure is thrown into the core.
    """

    request: dict[str, Any]
    timeout_s: float
    time_left_s: float | None
    stream: bool
    iteration: int
    headers: bool  # the caller wants the response headers (a ``CallGate`` reads the rate-limit ones)
    scope: AbstractContextManager[None]
    on_chunk: Callable[[], None]
    on_cut: Callable[[Any], None]


@dataclass(frozen=True)
class Reply:
    """A successful ``CallModel``: the SDK's ``Message`` and, when asked for, the response headers."""

    message: Any
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next attempt. Outcome: ``None``."""

    seconds: float


@dataclass(frozen=True)
class ToolJob:
    """One tool call, with the executor's options (``execute_tool``/``aexecute_tool`` keywords)."""

    name: str
    input: Any
    options: dict[str, Any]
    scope: AbstractContextManager[None]


@dataclass(frozen=True)
class RunTools:
    """Run ``jobs`` (concurrently when the driver can). Outcome: their ``ToolOutcome``s, in order."""

    tools: Mapping[str, Tool[..., Any]]
    jobs: tuple[ToolJob, ...]


@dataclass(frozen=True)
class Gate:
    """Call ``gate.<method>(*args)`` (the sync form) or ``await gate.a<method>(*args)`` in ``scope`` (the call's
    span, so what the gate records lands on it). Outcome: its answer."""

    gate: CallGate
    method: Literal["route", "admit", "settle"]
    args: tuple[Any, ...]
    scope: AbstractContextManager[None]


Effect = Emit | CountTokens | CallModel | Sleep | RunTools | Gate
