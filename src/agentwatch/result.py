"""What a run gives back: ``RunResult``, its ``Usage`` and the ``StopReason`` that says why it ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags


class StopReason(StrEnum):
    """Why a run ended. ``END_TURN`` is the only complete finish; every other reason returns partial work."""

    END_TURN = "end_turn"
    MAX_ITERATIONS = "max_iterations"
    TOKEN_BUDGET = "token_budget"
    COST_BUDGET = "cost_budget"
    TIMEOUT = "timeout"
    MAX_TOKENS = "max_tokens"
    REFUSAL = "refusal"
    CANCELLED = "cancelled"
    ERROR = "error"
    TENANT_BUDGET = "tenant_budget"  # a fleet-wide spend budget (agentwatch.fleet) is spent
    CIRCUIT_OPEN = "circuit_open"  # the model's circuit is open and no fallback tier could serve


BUDGET_STOPS = frozenset(
    {
        StopReason.MAX_ITERATIONS,
        StopReason.TOKEN_BUDGET,
        StopReason.COST_BUDGET,
        StopReason.TIMEOUT,
        StopReason.TENANT_BUDGET,
    }
)


@dataclass
class Usage:
    """Token counts in Anthropic's terms: ``input_tokens`` is UNCACHED input only.

    ``cache_write_tokens`` counts all cache writes; ``cache_write_1h_tokens`` is the part of them
    written with the 1-hour TTL (priced higher). ``total_input_tokens`` is what the GenAI conventions
    call ``gen_ai.usage.input_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        """Uncached + cache read + cache write: the conventions' input-token rule for Anthropic."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        """All input (cached or not) plus output: what a token budget counts."""
        return self.total_input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """From an SDK ``Usage`` object (or its dict). Missing or null fields count as 0. Never raises."""

        if usage is None:
            return cls()
        if isinstance(usage, dict):
            values = [usage.get(key) for key in _USAGE_KEYS]
            breakdown = usage.get("cache_creation")
        else:
            values = [getattr(usage, key, None) for key in _USAGE_KEYS]
            breakdown = getattr(usage, "cache_creation", None)
        if breakdown is None:
            values.append(None)
        elif isinstance(breakdown, dict):
            values.append(breakdown.get("ephemeral_1h_input_tokens"))
        else:
            values.append(getattr(breakdown, "ephemeral_1h_input_tokens", None))
        return cls(*[value if isinstance(value, int) and value > 0 else 0 for value in values])


# The SDK usage fields of Usage's first four fields, in order (the fifth is in ``cache_creation``).
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


@dataclass(frozen=True)
class ToolCall:
    """One tool call the run made: what was asked, and how it ended."""

    id: str
    name: str
    input: Any
    output: str
    is_error: bool
    outcome: str
    duration_s: float


@dataclass
class RunResult:
    """The outcome of one agent run.

    ``answer`` is always a readable string: the model's final text, or for a run that stopped early,
    the work so far followed by one sentence saying why it stopped. ``cost_usd`` is ``None`` when any
    model used has no known price (never a silent $0). ``trace_id`` (32 hex) and ``span_id`` (16 hex)
    identify the run's root span (all zeros when no tracer provider is configured); ``span_context`` is
    the same span as an OpenTelemetry ``SpanContext``, to link or parent other spans without parsing hex
    (``is_valid`` is False when no tracer provider is configured).
    """

    answer: str
    stop_reason: StopReason
    usage: Usage
    cost_usd: float | None
    iterations: int
    tool_calls: list[ToolCall]
    trace_id: str
    duration_s: float
    stop_detail: str = ""
    span_id: str = ""
    models: list[str] = field(default_factory=list)
    agent_version: str | None = None
    error: str | None = None
    span_context: SpanContext = INVALID_SPAN_CONTEXT
    retry_after_s: float | None = None  # a fleet guard's stop: when trying again could succeed

    @property
    def ok(self) -> bool:
        """True when the model finished its turn on its own."""
        return self.stop_reason is StopReason.END_TURN

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain types only), for queues and HTTP; ``from_dict`` reads it back.

        The span context travels as the hex ``trace_id``/``span_id`` it is made of."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "span_context"}
        data["usage"] = asdict(self.usage)
        data["tool_calls"] = [asdict(call) for call in self.tool_calls]
        data["models"] = list(self.models)
        data["stop_reason"] = self.stop_reason.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """The ``RunResult`` ``to_dict`` wrote. Keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["stop_reason"] = StopReason(values["stop_reason"])
        usage_fields = {f.name for f in fields(Usage)}
        values["usage"] = Usage(**{k: v for k, v in values["usage"].items() if k in usage_fields})
        values["tool_calls"] = [ToolCall(**call) for call in values["tool_calls"]]
        values.pop("span_context", None)
        result = cls(**values)
        result.span_context = _remote_span_context(result.trace_id, result.span_id)
        return result


def _remote_span_context(trace_id: str, span_id: str) -> SpanContext:
    """The root span another process reported by its hex ids (invalid ids: the invalid context)."""
    try:
        context = SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
    except (TypeError, ValueError):
        return INVALID_SPAN_CONTEXT
    return context if context.is_valid else INVALID_SPAN_CONTEXT
