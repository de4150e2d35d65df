"""``RunState``: the decisions of one run (no I/O, no telemetry here).

The run core (``core.py``) sequences a run and asks this object what to do next: plan the next call
(routing + guards), react to a response (usage, cost, stop reasons, tools to run), decide about a
failed attempt (retry or stop), and compose the final answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

import anthropic

from agentwatch.result import StopReason, ToolCall, Usage
from agentwatch.runner import retry
from agentwatch.runner.guards import Allowance, Guards, Stop
from agentwatch.runner.routing import Route, RouteContext
from agentwatch.runner.spec import RunSpec
from agentwatch.telemetry.content import redact
from agentwatch.tools import ToolOutcome

# Per-block overhead added to byte-based input estimates (role markers, block framing).
_BLOCK_OVERHEAD_TOKENS = 16
MAX_TASK_CHARS = 2_000_000


@dataclass(frozen=True)
class CallPlan:
    """One LLM call the guards allowed."""

    iteration: int
    route: Route
    max_tokens: int
    input_estimate: int


@dataclass(frozen=True)
class NeedCount:
    """The byte estimate is too coarse near a budget: count the input tokens, then plan again.

    ``estimate`` is the byte estimate, the count to plan with when counting fails.
    """

    route: Route
    estimate: int


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: Any


def _utf8_len(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return len(text.encode("utf-8"))


def block_to_param(block: Any) -> dict[str, Any]:
    """An SDK response content block as a request block for the next turn."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return {"type": "text", "text": block.text}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if kind == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    dumped: dict[str, Any] = block.model_dump(mode="json", exclude_none=True)
    return dumped


def _api_message(exc: BaseException) -> str:
    """The API's own error message (``error.message`` of the body) when there is one."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(getattr(exc, "message", "") or exc)


def describe_api_error(exc: BaseException, base_url: str) -> str:
    """One sentence saying what failed and what to do about it. Never includes credentials."""
    status = retry.status_of(exc)
    message = _api_message(exc)
    if isinstance(exc, anthropic.AuthenticationError):
        return "the API rejected the credentials (401): check that ANTHROPIC_API_KEY (or the client's api_key) is valid"
    if isinstance(exc, anthropic.PermissionDeniedError):
        return f"the API key may not use this resource (403): {message}"
    if isinstance(exc, anthropic.NotFoundError):
        return f"not found (404), check the model name: {message}"
    if isinstance(exc, anthropic.BadRequestError | anthropic.UnprocessableEntityError):
        return f"the API rejected the request ({status}): {message}"
    if status == 413:
        return f"the request is too large for the API (413): shorten the task or tool output. {message}"
    if isinstance(exc, anthropic.APITimeoutError):
        return f"the API at {base_url} did not answer in time"
    if isinstance(exc, anthropic.APIConnectionError):
        return f"could not reach the API at {base_url}: {message}"
    if status is not None:
        return f"the API failed with status {status}: {message}"
    return f"{type(exc).__name__}: {message}"


@dataclass
class RunState:
    """Everything one run knows (its usage and cost are in ``guards.ledger``); mutated only by its core."""

    spec: RunSpec
    task: str
    base_url: str
    tenant: str | None = None  # whose fleet budget the run is charged to (Agent(gate=...))
    gate_max_tokens: int | None = None  # the output cap the gate set on the current attempt, when it lowered it
    guards: Guards = field(init=False)
    messages: list[dict[str, Any]] = field(init=False)
    iterations: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    final_text: str | None = None
    started: float = field(default_factory=time.perf_counter)
    _known_input: int | None = None  # input tokens of the conversation as of the last response
    _pending_bytes: int = 0  # bytes appended since then

    def __post_init__(self) -> None:
        self.guards = Guards(self.spec.limits, self.spec.pricing)
        self.messages = [{"role": "user", "content": self.task}]
        self._pending_bytes = _utf8_len(self.task) + self.spec.prompt_bytes

    # --- before a call -------------------------------------------------------------------------------
    def check_task(self) -> Stop | None:
        """A clear stop for a task that cannot be run; ``None`` when it can."""
        if not isinstance(self.task, str) or not self.task.strip():
            return Stop(StopReason.ERROR, "the task is empty: pass the question or instruction as a non-empty string")
        if len(self.task) > MAX_TASK_CHARS:
            return Stop(
                StopReason.ERROR,
                f"the task is {len(self.task):,} characters, over the {MAX_TASK_CHARS:,} this runner accepts: "
                "send a summary or split the work",
            )
        return None

    def input_estimate(self) -> int:
        """An upper bound on the next call's input tokens: known count plus bytes added since. Never raises."""
        blocks = sum(len(m["content"]) if isinstance(m["content"], list) else 1 for m in self.messages)
        overhead = _BLOCK_OVERHEAD_TOKENS * (blocks + 1)
        if self._known_input is None:
            return self._pending_bytes + overhead
        return self._known_input + self._pending_bytes + _BLOCK_OVERHEAD_TOKENS * 4

    def route(self) -> Route | Stop:
        """The model for the next call; a router that fails or answers nonsense stops the run clearly."""
        router = self.spec.router
        if router is None:
            return Route(self.spec.model)
        context = RouteContext(
            iteration=self.iterations + 1,
            task=self.task,
            has_tool_results=bool(self.tool_calls),
            tool_calls_so_far=len(self.tool_calls),
        )
        try:
            choice = router(context)
        except Exception as exc:
            return Stop(
                StopReason.ERROR,
                f"the agent's router raised {type(exc).__name__}: {exc}",
                error_type=type(exc).__name__,
            )
        if isinstance(choice, str) and choice:
            return Route(choice)
        if isinstance(choice, Route):
            return choice
        return Stop(StopReason.ERROR, f"the agent's router returned {choice!r}: return a model id or a Route")

    def plan(self, route: Route, counted_input: int | None = None) -> CallPlan | NeedCount | Stop:
        """Guard the next call (it counts as an iteration once its first attempt starts). Near a budget,
        ask for an exact count before deciding."""
        estimate = counted_input if counted_input is not None else self.input_estimate()
        decision = self.guards.before_call(
            iteration=self.iterations + 1, model=route.model, input_tokens=estimate, cached=self.spec.cache_prompt
        )
        near_budget = isinstance(decision, Stop) and decision.kind in ("tokens", "cost")
        if isinstance(decision, Allowance) and decision.max_tokens < self.spec.limits.max_tokens:
            near_budget = True
        if near_budget and counted_input is None and self.spec.count_tokens_near_budget:
            return NeedCount(route, estimate)
        if isinstance(decision, Stop):
            return decision
        return CallPlan(self.iterations + 1, route, decision.max_tokens, estimate)

    def plan_retry(self, plan: CallPlan) -> CallPlan | Stop:
        """Guard a retry of ``plan`` like its first attempt, against what has been billed since.

        An attempt cut short mid-stream was billed, so a retry's worst case may no longer fit: its
        ``max_tokens`` is lowered to what still fits, or the run stops on the budget.
        """
        decision = self.guards.before_call(
            iteration=plan.iteration,
            model=plan.route.model,
            input_tokens=plan.input_estimate,
            cached=self.spec.cache_prompt,
        )
        if isinstance(decision, Stop):
            return decision
        return plan if decision.max_tokens >= plan.max_tokens else replace(plan, max_tokens=decision.max_tokens)

    def request(self, plan: CallPlan) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` / ``messages.stream`` for ``plan``."""
        spec = self.spec
        kwargs: dict[str, Any] = {
            "model": plan.route.model,
            "max_tokens": plan.max_tokens,
            "messages": self.messages,
        }
        if spec.system_param is not None:
            kwargs["system"] = spec.system_param
        if spec.tool_params:
            kwargs["tools"] = list(spec.tool_params)
        if spec.stop_sequences:
            kwargs["stop_sequences"] = list(spec.stop_sequences)
        return kwargs

    def count_request(self, route: Route) -> dict[str, Any]:
        """The keyword arguments of ``messages.count_tokens`` for the next call."""
        kwargs = self.request(CallPlan(self.iterations + 1, route, 1, 0))
        kwargs.pop("max_tokens")
        kwargs.pop("stop_sequences", None)
        return kwargs

    def call_timeout(self) -> float:
        """The HTTP timeout for the next attempt: the time left in the run, capped at 10 minutes."""
        left = self.guards.time_left()
        return 600.0 if left is None else max(min(left, 600.0), 0.001)

    # --- after a call --------------------------------------------------------------------------------
    def on_failure(self, exc: BaseException, attempt: int) -> retry.RetryDecision:
        limits = self.spec.limits
        return retry.decide(
            exc,
            attempt=attempt,
            max_retries=limits.max_retries,
            base_s=limits.retry_base_delay_s,
            max_s=limits.retry_max_delay_s,
            time_left_s=self.guards.time_left(),
        )

    def failure_stop(self, exc: BaseException, decision: retry.RetryDecision, attempts: int) -> Stop:
        """The stop for a call that failed for good."""
        if decision.out_of_time or isinstance(exc, TimeoutError | anthropic.APITimeoutError):
            left = self.guards.time_left()
            if left is not None and (left <= decision.wait_s or left <= 0.01):
                timeout = f"{self.spec.limits.timeout_s:g}s timeout"
                if decision.wait_s > 0 and retry.retry_after_s(exc) is not None:
                    why = (
                        f"the API asked to wait {decision.wait_s:.2f}s before retrying "
                        f"but the run's {timeout} leaves less"
                    )
                elif isinstance(exc, TimeoutError | anthropic.APITimeoutError):
                    why = f"the run hit its {timeout} while waiting for the API"
                else:
                    failed = retry.error_type(exc)
                    why = f"the API call failed ({failed}) and the run's {timeout} leaves no time to retry"
                return Stop(StopReason.TIMEOUT, why, "timeout")
        detail = redact(describe_api_error(exc, self.base_url))  # API errors may quote the key back
        if attempts > 1:
            detail += f" (after {attempts} attempts)"
        return Stop(StopReason.ERROR, detail, error_type=retry.error_type(exc))

    def on_message(self, plan: CallPlan, message: Any) -> tuple[Usage, float | None, list[ToolUse] | Stop | None]:
        """Account a response; return its usage and cost, and what comes next.

        Next is a list of tool uses to run, a ``Stop`` (the run is over), or ``None`` (call again, e.g.
        after ``pause_turn``).
        """
        usage = Usage.from_api(getattr(message, "usage", None))
        cost = self.guards.ledger.add(plan.route.model, usage)
        content = [block_to_param(b) for b in getattr(message, "content", None) or []]
        text = "".join(b["text"] for b in content if b["type"] == "text").strip()
        if text:
            self.texts.append(text)
        self.messages.append({"role": "assistant", "content": content})
        self._known_input = usage.total_input_tokens + usage.output_tokens
        self._pending_bytes = 0
        stop_reason = getattr(message, "stop_reason", None)
        if stop_reason == "tool_use":
            uses = [ToolUse(b["id"], b["name"], b["input"]) for b in content if b["type"] == "tool_use"]
            if uses:
                return usage, cost, uses
        if stop_reason in ("end_turn", "stop_sequence", "tool_use", None):
            self.final_text = text
            detail = ""
            if stop_reason == "stop_sequence":
                detail = f"the model stopped at stop sequence {getattr(message, 'stop_sequence', '')!r}"
            return usage, cost, Stop(StopReason.END_TURN, detail)
        if stop_reason == "pause_turn":
            return usage, cost, None
        if stop_reason == "max_tokens":
            limits = self.spec.limits
            if plan.max_tokens < limits.max_tokens:
                kind = "cost" if self.guards.cost_left() is not None and limits.token_budget is None else "tokens"
                reason = StopReason.COST_BUDGET if kind == "cost" else StopReason.TOKEN_BUDGET
                return (
                    usage,
                    cost,
                    Stop(reason, f"the reply was cut at {plan.max_tokens:,} tokens to stay within the budget", kind),
                )
            return (
                usage,
                cost,
                Stop(
                    StopReason.MAX_TOKENS,
                    f"the reply was cut off at max_tokens={plan.max_tokens:,}: "
                    "raise Limits.max_tokens for longer answers",
                ),
            )
        if stop_reason == "refusal":
            return usage, cost, Stop(StopReason.REFUSAL, "the model declined to continue (stop_reason=refusal)")
        if stop_reason == "model_context_window_exceeded":
            return usage, cost, Stop(StopReason.ERROR, "the conversation no longer fits the model's context window")
        return usage, cost, Stop(StopReason.ERROR, f"the API returned an unknown stop_reason {stop_reason!r}")

    def tool_timeout(self) -> float | None:
        """The timeout for the next tool call: the per-tool limit, never past the run's deadline."""
        limit = self.spec.limits.tool_timeout_s
        left = self.guards.time_left()
        if left is None:
            return limit
        return max(min(limit, left) if limit is not None else left, 0.0)

    def record_tool(self, use: ToolUse, outcome: ToolOutcome) -> ToolCall:
        call = ToolCall(
            id=use.id,
            name=use.name,
            input=use.input,
            output=outcome.content,
            is_error=outcome.is_error,
            outcome=outcome.outcome,
            duration_s=outcome.duration_s,
        )
        self.tool_calls.append(call)
        return call

    def add_tool_results(self, results: list[tuple[ToolUse, ToolOutcome]]) -> None:
        """Send every tool result back in one user turn, in the order the model asked."""
        blocks: list[dict[str, Any]] = []
        for use, outcome in results:
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": use.id, "content": outcome.content}
            if outcome.is_error:
                block["is_error"] = True
            blocks.append(block)
        self.messages.append({"role": "user", "content": blocks})
        self._pending_bytes += _utf8_len(blocks)

    # --- the end -------------------------------------------------------------------------------------
    def compose_answer(self, stop: Stop) -> str:
        if stop.reason is StopReason.END_TURN:
            return self.final_text or (self.texts[-1] if self.texts else "")
        parts: list[str] = []
        if self.texts:
            parts.append("Work so far: " + " ".join(self.texts))
        if self.tool_calls:
            shown = "; ".join(
                f"{c.name} → {'error: ' if c.is_error else ''}{c.output[:200]}" for c in self.tool_calls[-5:]
            )
            parts.append(f"Tool results so far: {shown}")
        parts.append(f"Stopped early ({stop.reason.value}): {stop.detail}.")
        return "\n".join(parts)
