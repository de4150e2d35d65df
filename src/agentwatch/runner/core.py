"""``RunCore``: one run's sequencing as a generator of effects, with no I/O (sans-I/O).

``steps()`` yields effects (``effects.py``) and receives their outcomes by ``send``; an effect that
failed is ``throw``n back in at the ``yield`` that asked for it, so retries and clean-up read as plain
``try``/``except``. The core owns the retries, the ledger (``guards.ledger``), the ``CallGate`` calls,
every telemetry call and the ``RunResult``; the drivers (``drivers.py``) only perform effects. Whatever
happens (API failure, budget stop, cancellation, a bug) the run's telemetry ends exactly once and
``result`` is set before ``steps()`` ends, also when it ends by an exception.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Generator
from dataclasses import replace
from typing import Any

from agentwatch.result import RunResult, StopReason, Usage
from agentwatch.runner import retry
from agentwatch.runner.effects import CallModel, CountTokens, Effect, Emit, Gate, Reply, RunTools, Sleep, ToolJob
from agentwatch.runner.events import Retrying, RunFinished, ToolFinished, ToolStarted
from agentwatch.runner.gate import Admission, CallRequest, Settlement
from agentwatch.runner.guards import BudgetWarning, Stop
from agentwatch.runner.spec import RunSpec
from agentwatch.runner.state import CallPlan, NeedCount, RunState, ToolUse
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import redact
from agentwatch.telemetry.recorder import CallObservation, RunRecorder, ToolObservation
from agentwatch.tools import ToolOutcome

Steps = Generator[Effect, Any, Any]


def _interrupted_detail(exc: BaseException) -> str:
    if isinstance(exc, GeneratorExit):
        return "the caller stopped reading the run's stream"
    if type(exc).__name__ == "CancelledError":  # asyncio's, without importing asyncio here
        return "the run was cancelled"
    return f"the run was interrupted ({type(exc).__name__})"


def _internal_error(exc: Exception) -> Stop:
    detail = f"agentwatch failed internally ({type(exc).__name__}: {redact(str(exc))[:300]})"
    return Stop(StopReason.ERROR, detail, error_type=type(exc).__name__)


def _interrupted(exc: BaseException) -> ToolOutcome:
    """The outcome recorded on a tool's span when the run is interrupted while the tool runs."""
    return ToolOutcome("cancelled", True, "cancelled", type(exc).__name__, 1, 0.0)


def _headers(exc: BaseException) -> Any:
    """The response headers of a failed attempt, when there was a response."""
    return getattr(getattr(exc, "response", None), "headers", None)


class _Ticket:
    """One attempt the gate admitted: settled exactly once (``settle`` drops it)."""

    def __init__(self, admission: Admission, request: CallRequest) -> None:
        self.admission, self.request = admission, request
        self.cut: tuple[Usage, float | None] | None = None  # what a stream cut short was billed


class RunCore:
    """One run of ``spec`` on ``task``. ``steps()`` is its sequence; ``result`` is set when it ends.

    ``concurrent_tools``: one turn's tool calls are asked for as one ``RunTools`` batch (the async
    driver runs them concurrently) instead of one batch per tool call.
    """

    def __init__(
        self,
        spec: RunSpec,
        task: str,
        recorder: RunRecorder,
        *,
        base_url: str,
        stream: bool,
        concurrent_tools: bool,
        tenant: str | None = None,
    ) -> None:
        self.spec, self.task, self.recorder = spec, task, recorder
        self.stream, self.concurrent_tools, self.tenant = stream, concurrent_tools, tenant
        self.state = RunState(spec, task, base_url)
        self.result: RunResult | None = None
        self.cancel_detail: str | None = None  # why the caller cancelled the run, when it says so
        self._ticket: _Ticket | None = None

    # --- the run -------------------------------------------------------------------------------------
    def steps(self) -> Generator[Effect, Any, RunResult]:
        """The whole run; ends its telemetry exactly once, then emits ``RunFinished`` (unless interrupted)."""
        self.recorder.start_run(self.task)
        stop = Stop(StopReason.CANCELLED, "the run was interrupted")
        try:
            stop = yield from self._loop()
        except Exception as exc:
            stop = _internal_error(exc)
        except BaseException as exc:  # cancellation, a closed stream, KeyboardInterrupt: end, then propagate
            stop = Stop(StopReason.CANCELLED, self.cancel_detail or _interrupted_detail(exc))
            raise
        finally:
            self.result = self._finish(stop)
        yield Emit(RunFinished(self.result))
        return self.result

    def _loop(self) -> Generator[Effect, Any, Stop]:
        state = self.state
        stop = state.check_task()
        while stop is None:
            route = state.route()
            if isinstance(route, Stop):
                return route
            if self.spec.gate is not None:
                route = yield Gate(
                    self.spec.gate, "route", (route, self._gate_request(route.model)), self.recorder.activate()
                )
                if isinstance(route, Stop):
                    return route
            planned = state.plan(route)
            if isinstance(planned, NeedCount):
                planned = state.plan(route, counted_input=(yield from self._count(planned)))
            if isinstance(planned, Stop):
                return planned
            assert isinstance(planned, CallPlan)
            next_step = yield from self._call(planned)
            if isinstance(next_step, Stop):
                return next_step
            if next_step:
                yield from self._tools(next_step)
        return stop

    def _finish(self, stop: Stop) -> RunResult:
        state, recorder, ledger = self.state, self.recorder, self.state.guards.ledger
        if stop.kind is not None and stop.reason is not StopReason.END_TURN:
            recorder.budget_exceeded(stop.kind, stop.detail)
        result = RunResult(
            answer=state.compose_answer(stop),
            stop_reason=stop.reason,
            usage=ledger.usage,
            cost_usd=ledger.cost_usd,
            iterations=state.iterations,
            tool_calls=list(state.tool_calls),
            trace_id=recorder.trace_id(),
            span_id=recorder.span_id(),
            span_context=recorder.span_context(),
            duration_s=time.perf_counter() - state.started,
            stop_detail=stop.detail,
            models=list(ledger.models) or [self.spec.model],
            agent_version=self.spec.version,
            error=stop.error_type,
            retry_after_s=stop.retry_after_s,
        )
        recorder.end_run(result, state.guards.tokens_left(), state.guards.cost_left())
        return result

    # --- one LLM call --------------------------------------------------------------------------------
    def _count(self, need: NeedCount) -> Generator[Effect, Any, int]:
        """The counted input tokens; when counting fails, the byte estimate (conservative, so budgets hold)."""
        state = self.state
        try:
            request = state.count_request(need.route)
            counted = yield CountTokens(
                request, state.call_timeout(), state.guards.time_left(), self.recorder.activate()
            )
            return int(counted.input_tokens)
        except Exception as exc:
            self.recorder.count_tokens_failed(exc)
            return need.estimate

    def _call(self, plan: CallPlan) -> Generator[Effect, Any, list[ToolUse] | Stop | None]:
        """One LLM call with its retries; what comes next (tools to run, a ``Stop``, or ``None``: call again)."""
        state, recorder = self.state, self.recorder
        call: CallObservation | None = None
        failure: BaseException | None = None
        attempt = 0
        while True:
            admitted = yield from self._admit(plan, call)
            if isinstance(admitted, Stop):
                recorder.end_call(call, exc=failure)
                return admitted
            plan = admitted
            if call is None:
                state.iterations = plan.iteration
                call = self._start_call(plan)
            if self._ticket is not None and self._ticket.admission.waited_s > 0:
                recorder.rate_limit_wait(call, self._ticket.admission.waited_s)
            try:
                reply: Reply = yield CallModel(
                    state.request(plan),
                    state.call_timeout(),
                    state.guards.time_left(),
                    self.stream,
                    plan.iteration,
                    self._ticket is not None,
                    recorder.activate(call.span if call else None),
                    functools.partial(recorder.first_chunk, call),
                    functools.partial(self._cut, plan, call),
                )
            except retry.ATTEMPT_ERRORS as exc:
                yield from self._settle(call, error=exc, headers=_headers(exc))
                decision = state.on_failure(exc, attempt)
                retry_plan = state.plan_retry(plan) if decision.retry else None
                if retry_plan is None or isinstance(retry_plan, Stop):
                    recorder.end_call(call, exc=exc)
                    return retry_plan if retry_plan is not None else state.failure_stop(exc, decision, attempt + 1)
                wait_s = decision.wait_s
                recorder.retry(call, attempt=attempt + 1, exc=exc, status=retry.status_of(exc), wait_s=wait_s)
                yield Emit(Retrying(attempt + 1, wait_s, retry.error_type(exc)))
                yield Sleep(wait_s)
                plan, failure, attempt = retry_plan, exc, attempt + 1
                continue
            except BaseException as exc:
                yield from self._settle(call, error=exc, headers=_headers(exc))
                recorder.end_call(call, exc=exc)
                raise
            usage, cost, next_step = state.on_message(plan, reply.message)
            if self._ticket is not None and self._ticket.admission.max_tokens < self._ticket.request.max_tokens:
                next_step = self._fleet_cut(next_step, plan)
            recorder.end_call(
                call, message=reply.message, usage=usage, cost_usd=cost, output_blocks=state.messages[-1]["content"]
            )
            yield from self._settle(call, usage=usage, cost_usd=cost, headers=reply.headers)
            for warning in self._warnings(plan.iteration):
                yield Emit(warning)
            return next_step

    def _start_call(self, plan: CallPlan) -> CallObservation | None:
        route = plan.route
        if route.tier or route.reason:
            self.recorder.route(model=route.model, tier=route.tier, reason=route.reason, iteration=plan.iteration)
        return self.recorder.start_call(
            model=route.model,
            max_tokens=plan.max_tokens,
            stream=self.stream,
            iteration=plan.iteration,
            tier=route.tier,
            route_reason=route.reason,
            system=self.spec.system,
            messages=self.state.messages,
        )

    def _cut(self, plan: CallPlan, call: CallObservation | None, events: Any) -> None:
        """A stream that ended early (error, cancellation, a consumer that stopped reading) was still billed
        for what ``message_start`` reported: count it in the run, its budgets and the call's span. Never raises."""
        try:
            usage = Usage.from_api(events.current_message_snapshot.usage)
            if not usage.total_tokens:
                return
            cost = self.state.guards.ledger.add(plan.route.model, usage)
            self.recorder.cut_stream_usage(call, usage, cost)
            if self._ticket is not None:
                self._ticket.cut = (usage, cost)
        except Exception:
            return  # no message_start yet: nothing was reported

    def _warnings(self, iteration: int) -> list[BudgetWarning]:
        found = self.state.guards.warnings()
        iteration_warning = self.state.guards.iteration_warning(iteration)
        if iteration_warning is not None:
            found.append(iteration_warning)
        for warning in found:
            self.recorder.budget_warning(warning.kind, warning.used, warning.limit)
        return found

    # --- the gate ------------------------------------------------------------------------------------
    def _gate_request(self, model: str, input_tokens: int | None = None, max_tokens: int | None = None) -> CallRequest:
        """The gate's view of a call (defaults: the input estimate so far and the full ``max_tokens``)."""
        state, spec = self.state, self.spec
        estimate = state.input_estimate() if input_tokens is None else input_tokens
        ceiling = spec.limits.max_tokens if max_tokens is None else max_tokens
        return CallRequest(
            agent=spec.name,
            tenant=self.tenant,
            model=model,
            base_url=state.base_url,
            input_tokens=estimate,
            max_tokens=ceiling,
            worst_case_usd=state.guards.worst_case_usd(model, estimate, ceiling, spec.cache_prompt),
            time_left_s=state.guards.time_left(),
        )

    def _admit(self, plan: CallPlan, call: CallObservation | None) -> Generator[Effect, Any, CallPlan | Stop]:
        """The attempt as the gate admits it (``max_tokens`` never raised), or the gate's ``Stop``."""
        gate = self.spec.gate
        if gate is None:
            return plan
        request = self._gate_request(plan.route.model, plan.input_estimate, plan.max_tokens)
        admission = yield Gate(gate, "admit", (request,), self.recorder.activate(call.span if call else None))
        if isinstance(admission, Stop):
            return admission
        self._ticket = _Ticket(admission, request)
        return plan if admission.max_tokens >= plan.max_tokens else replace(plan, max_tokens=admission.max_tokens)

    def _fleet_cut(self, next_step: list[ToolUse] | Stop | None, plan: CallPlan) -> list[ToolUse] | Stop | None:
        """A reply cut at the ``max_tokens`` the gate lowered: the fleet budget stopped it, not the run's own."""
        if not isinstance(next_step, Stop) or next_step.reason not in (StopReason.TOKEN_BUDGET, StopReason.COST_BUDGET):
            return next_step
        return Stop(
            StopReason.TENANT_BUDGET,
            f"the reply was cut at {plan.max_tokens:,} tokens to stay within the fleet budget "
            f"of tenant {self.tenant!r}",
            n.GUARD_TENANT_BUDGET,
        )

    def _settle(
        self,
        call: CallObservation | None,
        *,
        usage: Usage | None = None,
        cost_usd: float | None = None,
        error: BaseException | None = None,
        headers: Any = None,
    ) -> Generator[Effect, Any, None]:
        """Tell the gate how the admitted attempt ended; once per admission."""
        ticket, self._ticket = self._ticket, None
        if ticket is None or self.spec.gate is None:
            return
        if error is not None and ticket.cut is not None:
            usage, cost_usd = ticket.cut
        settlement = Settlement(ticket.admission, ticket.request, usage, cost_usd, error, headers)
        yield Gate(self.spec.gate, "settle", (settlement,), self.recorder.activate(call.span if call else None))

    # --- tools ---------------------------------------------------------------------------------------
    def _tools(self, uses: list[ToolUse]) -> Steps:
        """Run one turn's tool calls and send every result back in one user turn, in the model's order."""
        results: list[tuple[ToolUse, ToolOutcome]] = []
        for batch in [uses] if self.concurrent_tools else [[use] for use in uses]:
            for use in batch:
                yield Emit(ToolStarted(use.name, use.id, use.input))
            observations = [self._start_tool(use) for use in batch]
            jobs = tuple(self._job(use, observation) for use, observation in zip(batch, observations, strict=True))
            try:
                outcomes: list[ToolOutcome] = yield RunTools(self.spec.tools, jobs)
            except BaseException as exc:  # cancellation, KeyboardInterrupt: the spans end first
                for observation in observations:
                    self._end_tool(observation, _interrupted(exc))
                raise
            for observation, outcome in zip(observations, outcomes, strict=True):
                self._end_tool(observation, outcome)
            for use, outcome in zip(batch, outcomes, strict=True):
                results.append((use, outcome))
                yield Emit(ToolFinished(self.state.record_tool(use, outcome)))
        self.state.add_tool_results(results)

    def _start_tool(self, use: ToolUse) -> ToolObservation | None:
        tool = self.spec.tools.get(use.name)
        return self.recorder.start_tool(
            name=use.name, call_id=use.id, description=tool.description if tool else None, arguments=use.input
        )

    def _job(self, use: ToolUse, observation: ToolObservation | None) -> ToolJob:
        options = {
            "timeout_s": self.state.tool_timeout(),
            "max_output_chars": self.spec.limits.max_tool_output_chars,
            "on_retry": functools.partial(self.recorder.tool_retry, observation),
        }
        return ToolJob(use.name, use.input, options, self.recorder.activate(observation.span if observation else None))

    def _end_tool(self, observation: ToolObservation | None, outcome: ToolOutcome) -> None:
        recorder = self.recorder
        if outcome.overran_limit_s is not None:
            recorder.tool_overrun(observation, limit_s=outcome.overran_limit_s, duration_s=outcome.duration_s)
        recorder.end_tool(
            observation,
            content=outcome.content,
            is_error=outcome.is_error,
            outcome=outcome.outcome,
            error_type=outcome.error_type,
            attempts=outcome.attempts,
            duration_s=outcome.duration_s,
        )
