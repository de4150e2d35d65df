"""The run loop, twice: a sync generator and an async generator over the same ``RunState`` decisions.

Each yields ``RunEvent``s and ends with ``RunFinished``. ``Agent.run``/``arun`` consume them silently;
``Agent.stream``/``astream`` hand them to the caller. Whatever happens (API failure, budget stop,
cancellation, a bug), the run ends with exactly one ``end_run``: root span, metrics, ``run_end`` log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import anthropic

from agentwatch.result import RunResult, StopReason, Usage
from agentwatch.runner import gating, retry
from agentwatch.runner.events import Retrying, RunEvent, RunFinished, TextDelta, ToolFinished, ToolStarted
from agentwatch.runner.gate import Admission
from agentwatch.runner.guards import BudgetWarning, Stop
from agentwatch.runner.state import CallPlan, NeedCount, RunState, ToolUse
from agentwatch.telemetry.content import redact
from agentwatch.telemetry.recorder import CallObservation
from agentwatch.tools import ToolOutcome, aexecute_tool, execute_tool

Message = Any  # anthropic.types.Message


def _text_delta(event: Any) -> str | None:
    if getattr(event, "type", None) == "content_block_delta":
        delta = event.delta
        if getattr(delta, "type", None) == "text_delta":
            return str(delta.text)
    return None


def _start_call(state: RunState, plan: CallPlan, stream: bool) -> CallObservation | None:
    route = plan.route
    if route.tier or route.reason:
        state.recorder.route(model=route.model, tier=route.tier, reason=route.reason, iteration=plan.iteration)
    return state.recorder.start_call(
        model=route.model,
        max_tokens=plan.max_tokens,
        stream=stream,
        iteration=plan.iteration,
        tier=route.tier,
        route_reason=route.reason,
        system=state.agent.system,
        messages=state.messages,
    )


def _warnings(state: RunState, usage_warnings: list[BudgetWarning], iteration: int) -> list[BudgetWarning]:
    found = list(usage_warnings)
    iteration_warning = state.guards.iteration_warning(iteration)
    if iteration_warning is not None:
        found.append(iteration_warning)
    for warning in found:
        state.recorder.budget_warning(warning.kind, warning.used, warning.limit)
    return found


def _after_message(
    state: RunState, plan: CallPlan, call: CallObservation | None, message: Message
) -> tuple[list[ToolUse] | Stop | None, list[BudgetWarning]]:
    usage, cost, next_step = state.on_message(plan, message)
    state.recorder.end_call(
        call, message=message, usage=usage, cost_usd=cost, output_blocks=state.messages[-1]["content"]
    )
    return next_step, _warnings(state, state.guards.account(usage, cost), plan.iteration)


def _after_failure(
    state: RunState, plan: CallPlan, call: CallObservation | None, exc: BaseException, attempt: int
) -> Stop | tuple[Retrying, CallPlan]:
    """A failed attempt: the ``Stop`` that ends the run, or the ``Retrying`` to emit before waiting ``wait_s``
    and the plan of the next attempt (guarded again: a stream cut short was billed)."""
    decision = state.on_failure(exc, attempt)
    retry_plan = state.plan_retry(plan) if decision.retry else None
    if retry_plan is None or isinstance(retry_plan, Stop):
        state.recorder.end_call(call, exc=exc)
        return retry_plan if retry_plan is not None else state.failure_stop(exc, decision, attempt + 1)
    state.recorder.retry(call, attempt=attempt + 1, exc=exc, status=retry.status_of(exc), wait_s=decision.wait_s)
    return Retrying(attempt + 1, decision.wait_s, retry.error_type(exc)), retry_plan


def _account_cut_stream(state: RunState, plan: CallPlan, call: CallObservation | None, events: Any) -> None:
    """A stream that ended early (error, cancellation, a consumer that stopped reading) was still billed
    for what ``message_start`` reported: count it in the run, its budgets and the call's span. Never raises."""
    try:
        usage = Usage.from_api(events.current_message_snapshot.usage)
    except Exception:
        return  # no message_start yet: nothing was reported
    if usage.total_tokens:
        cost = state.account_usage(plan.route.model, usage)
        state.guards.account(usage, cost)
        state.recorder.cut_stream_usage(call, usage, cost)


def _tool_description(state: RunState, name: str) -> str | None:
    tool = state.agent._tools_by_name.get(name)
    return tool.description if tool is not None else None


def _finish(state: RunState, stop: Stop, error_type: str | None = None) -> RunResult:
    if stop.kind is not None and stop.reason is not StopReason.END_TURN:
        state.recorder.budget_exceeded(stop.kind, stop.detail)
    result = state.finish(stop, error_type or stop.error_type)
    state.recorder.end_run(result, state.guards.tokens_left(), state.guards.cost_left())
    return result


def _internal_error(exc: Exception) -> Stop:
    detail = f"agentwatch failed internally ({type(exc).__name__}: {redact(str(exc))[:300]})"
    return Stop(StopReason.ERROR, detail, error_type=type(exc).__name__)


# --- sync -----------------------------------------------------------------------------------------
def _count_sync(state: RunState, client: anthropic.Anthropic, plan: NeedCount) -> int:
    """The counted input tokens; when counting fails, the byte estimate (conservative, so budgets hold)."""
    try:
        with state.recorder.activate():
            counted = client.messages.count_tokens(**state.count_request(plan.route), timeout=state.call_timeout())
        return int(counted.input_tokens)
    except Exception as exc:
        state.recorder.count_tokens_failed(exc)
        return plan.estimate


def _call_sync(
    state: RunState, client: anthropic.Anthropic, plan: CallPlan, stream: bool, admission: Admission | None = None
) -> Generator[RunEvent, None, tuple[CallObservation | None, CallPlan, Message | Stop]]:
    """One LLM call with retries: its observation, the plan of its last attempt, the message or a ``Stop``."""
    call = _start_call(state, plan, stream)
    gating.waited(call, admission)
    span = call.span if call else None
    attempt = 0
    while True:
        request = state.request(plan)
        events = None
        try:
            if not stream:
                with state.recorder.activate(span):
                    if admission is None:
                        return call, plan, client.messages.create(**request, timeout=state.call_timeout())
                    raw = client.messages.with_raw_response.create(**request, timeout=state.call_timeout())
                    created = raw.parse()
                gating.settle(state, admission, plan, message=created, headers=raw.headers)
                return call, plan, created
            with state.recorder.activate(span):
                manager = client.messages.stream(**request, timeout=state.call_timeout())
                events = manager.__enter__()
            message = None
            try:
                iterator = iter(events)
                while True:
                    with state.recorder.activate(span):
                        event = next(iterator, None)
                    if event is None:
                        break
                    state.recorder.first_chunk(call)
                    text = _text_delta(event)
                    if text:
                        yield TextDelta(text, plan.iteration)
                with state.recorder.activate(span):
                    message = events.get_final_message()
            finally:
                if message is None:
                    _account_cut_stream(state, plan, call, events)
                manager.__exit__(None, None, None)
            gating.settle(state, admission, plan, message=message, headers=gating.response_headers(events))
            return call, plan, message
        except retry.ATTEMPT_ERRORS as exc:
            gating.settle(state, admission, plan, error=exc, usage=gating.cut_usage(events) if events else None)
            failed = _after_failure(state, plan, call, exc, attempt)
            if isinstance(failed, Stop):
                return call, plan, failed
            retrying, plan = failed
            yield retrying
            time.sleep(retrying.wait_s)
            attempt += 1
            admitted = gating.admit(state, plan)
            if isinstance(admitted, Stop):
                state.recorder.end_call(call, exc=exc)
                return call, plan, admitted
            plan, admission = admitted
            gating.waited(call, admission)
        except BaseException as exc:
            gating.settle(state, admission, plan, error=exc, usage=gating.cut_usage(events) if events else None)
            state.recorder.end_call(call, exc=exc)
            raise


def _tools_sync(state: RunState, uses: list[ToolUse]) -> Generator[RunEvent, None, None]:
    results: list[tuple[ToolUse, ToolOutcome]] = []
    for use in uses:
        yield ToolStarted(use.name, use.id, use.input)
        observation = state.recorder.start_tool(
            name=use.name, call_id=use.id, description=_tool_description(state, use.name), arguments=use.input
        )
        try:
            with state.recorder.activate(observation.span if observation else None):
                outcome = execute_tool(
                    state.agent._tools_by_name, use.name, use.input, **_tool_options(state, observation)
                )
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: they propagate, the span ends first
            _end_tool(state, observation, _interrupted(exc))
            raise
        _end_tool(state, observation, outcome)
        results.append((use, outcome))
        yield ToolFinished(state.record_tool(use, outcome))
    state.add_tool_results(results)


def _tool_options(state: RunState, observation: Any) -> dict[str, Any]:
    """The executor's keyword arguments for the next tool call (the same for both loops)."""
    return {
        "timeout_s": state.tool_timeout(),
        "max_output_chars": state.agent.limits.max_tool_output_chars,
        "on_retry": functools.partial(state.recorder.tool_retry, observation),
    }


def _interrupted(exc: BaseException) -> ToolOutcome:
    """The outcome recorded on a tool's span when the run is interrupted while the tool runs."""
    return ToolOutcome("cancelled", True, "cancelled", type(exc).__name__, 1, 0.0)


def _end_tool(state: RunState, observation: Any, outcome: ToolOutcome) -> None:
    if outcome.overran_limit_s is not None:
        state.recorder.tool_overrun(observation, limit_s=outcome.overran_limit_s, duration_s=outcome.duration_s)
    state.recorder.end_tool(
        observation,
        content=outcome.content,
        is_error=outcome.is_error,
        outcome=outcome.outcome,
        error_type=outcome.error_type,
        attempts=outcome.attempts,
        duration_s=outcome.duration_s,
    )


def _loop_sync(state: RunState, client: anthropic.Anthropic, stream: bool) -> Generator[RunEvent, None, Stop]:
    stop = state.check_task()
    while stop is None:
        route = state.route()
        if not isinstance(route, Stop):
            route = gating.route(state, route)
        if isinstance(route, Stop):
            return route
        planned = state.plan(route)
        if isinstance(planned, NeedCount):
            planned = state.plan(route, counted_input=_count_sync(state, client, planned))
        if isinstance(planned, Stop):
            return planned
        assert isinstance(planned, CallPlan)
        admitted = gating.admit(state, planned)
        if isinstance(admitted, Stop):
            state.iterations -= 1  # planned, never made
            return admitted
        planned, admission = admitted
        call, planned, outcome = yield from _call_sync(state, client, planned, stream, admission)
        if isinstance(outcome, Stop):
            return outcome
        next_step, warnings = _after_message(state, planned, call, outcome)
        yield from warnings
        if isinstance(next_step, Stop):
            return gating.relabel(state, planned, next_step)
        if next_step:
            yield from _tools_sync(state, next_step)
    return stop


def drive_sync(state: RunState, client: anthropic.Anthropic, stream: bool) -> Generator[RunEvent, None, RunResult]:
    """Run to the end, yielding events; always ends the run's telemetry exactly once."""
    state.recorder.start_run(state.task)
    stop = Stop(StopReason.CANCELLED, "the run was interrupted")
    try:
        stop = yield from _loop_sync(state, client, stream)
    except GeneratorExit:
        stop = Stop(StopReason.CANCELLED, "the caller stopped reading the run's stream")
        raise
    except Exception as exc:
        stop = _internal_error(exc)
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: end the run's telemetry, then propagate
        stop = Stop(StopReason.CANCELLED, f"the run was interrupted ({type(exc).__name__})")
        raise
    finally:
        result = _finish(state, stop)
    yield RunFinished(result)
    return result


# --- async ----------------------------------------------------------------------------------------
_background: set[asyncio.Future[None]] = set()  # settlements of cancelled calls, kept alive until done


def _deadline(state: RunState) -> float | None:
    left = state.guards.time_left()
    return None if left is None else asyncio.get_running_loop().time() + max(left, 0.0)


async def _count_async(state: RunState, client: anthropic.AsyncAnthropic, plan: NeedCount) -> int:
    """``_count_sync`` for asyncio."""
    try:
        with state.recorder.activate():
            async with asyncio.timeout_at(_deadline(state)):
                counted = await client.messages.count_tokens(
                    **state.count_request(plan.route), timeout=state.call_timeout()
                )
        return int(counted.input_tokens)
    except Exception as exc:
        state.recorder.count_tokens_failed(exc)
        return plan.estimate


async def _call_async(
    state: RunState,
    client: anthropic.AsyncAnthropic,
    plan: CallPlan,
    stream: bool,
    emit: Callable[[RunEvent], None],
    admission: Admission | None = None,
) -> tuple[CallObservation | None, CallPlan, Message | Stop]:
    """``_call_sync`` for asyncio; text deltas and retries go to ``emit`` for the generator to yield."""
    call = _start_call(state, plan, stream)
    gating.waited(call, admission)
    span = call.span if call else None
    attempt = 0
    while True:
        request = state.request(plan)
        streams: list[Any] = []  # the attempt's stream, once opened (a cut stream was billed)
        try:
            with state.recorder.activate(span):
                async with asyncio.timeout_at(_deadline(state)):
                    if not stream:
                        if admission is None:
                            return call, plan, await client.messages.create(**request, timeout=state.call_timeout())
                        raw = await client.messages.with_raw_response.create(**request, timeout=state.call_timeout())
                        message, headers = await raw.parse(), raw.headers
                    else:
                        message, headers = await _stream_async(state, client, plan, request, call, emit, streams)
        except retry.ATTEMPT_ERRORS as exc:
            cut = gating.cut_usage(streams[-1]) if streams else None
            await gating.asettle(state, admission, plan, error=exc, usage=cut)
            failed = _after_failure(state, plan, call, exc, attempt)
            if isinstance(failed, Stop):
                return call, plan, failed
            retrying, plan = failed
            emit(retrying)
            await asyncio.sleep(retrying.wait_s)
            attempt += 1
            admitted = await gating.aadmit(state, plan)
            if isinstance(admitted, Stop):
                state.recorder.end_call(call, exc=exc)
                return call, plan, admitted
            plan, admission = admitted
            gating.waited(call, admission)
            continue
        except BaseException as exc:
            if admission is not None:  # cancelled: settle off the cancelled task, never blocking the loop
                cut = gating.cut_usage(streams[-1]) if streams else None
                settling = asyncio.ensure_future(gating.asettle(state, admission, plan, error=exc, usage=cut))
                _background.add(settling)
                settling.add_done_callback(_background.discard)
            state.recorder.end_call(call, exc=exc)
            raise
        await gating.asettle(state, admission, plan, message=message, headers=headers)
        return call, plan, message


async def _stream_async(
    state: RunState,
    client: anthropic.AsyncAnthropic,
    plan: CallPlan,
    request: dict[str, Any],
    call: CallObservation | None,
    emit: Callable[[RunEvent], None],
    streams: list[Any],
) -> tuple[Message, Any]:
    """One streamed attempt: its final message and its response headers."""
    async with client.messages.stream(**request, timeout=state.call_timeout()) as events:
        streams.append(events)
        message = None
        try:
            async for event in events:
                state.recorder.first_chunk(call)
                text = _text_delta(event)
                if text:
                    emit(TextDelta(text, plan.iteration))
            message = await events.get_final_message()
        finally:
            if message is None:
                _account_cut_stream(state, plan, call, events)
    return message, gating.response_headers(events)


async def _tool_async(state: RunState, use: ToolUse) -> ToolOutcome:
    observation = state.recorder.start_tool(
        name=use.name, call_id=use.id, description=_tool_description(state, use.name), arguments=use.input
    )
    try:
        with state.recorder.activate(observation.span if observation else None):
            options = _tool_options(state, observation)
            outcome = await aexecute_tool(state.agent._tools_by_name, use.name, use.input, **options)
    except BaseException as exc:  # cancellation, KeyboardInterrupt, SystemExit: the span ends first
        _end_tool(state, observation, _interrupted(exc))
        raise
    _end_tool(state, observation, outcome)
    return outcome


async def _loop_async(
    state: RunState, client: anthropic.AsyncAnthropic, stream: bool
) -> AsyncGenerator[RunEvent | Stop, None]:
    """Yields events, and finally the ``Stop`` that ends the run (async generators cannot return values)."""
    stop = state.check_task()
    while stop is None:
        route = state.route()
        if not isinstance(route, Stop):
            route = await gating.aroute(state, route)
        if isinstance(route, Stop):
            yield route
            return
        planned = state.plan(route)
        if isinstance(planned, NeedCount):
            planned = state.plan(route, counted_input=await _count_async(state, client, planned))
        if isinstance(planned, Stop):
            yield planned
            return
        assert isinstance(planned, CallPlan)
        admitted = await gating.aadmit(state, planned)
        if isinstance(admitted, Stop):
            state.iterations -= 1  # planned, never made
            yield admitted
            return
        planned, admission = admitted
        pending: list[RunEvent] = []
        if stream:  # the call runs as its own task so its text deltas are yielded as they arrive
            queue: asyncio.Queue[RunEvent] = asyncio.Queue()
            call_task = asyncio.ensure_future(_call_async(state, client, planned, stream, queue.put_nowait, admission))
            getter: asyncio.Future[RunEvent] | None = None
            try:
                while not call_task.done() or not queue.empty():
                    if not queue.empty():
                        yield queue.get_nowait()
                        continue
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait([call_task, getter], return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield getter.result()
                    else:
                        getter.cancel()
            finally:
                if getter is not None and not getter.done():
                    getter.cancel()
                if not call_task.done():  # the consumer left mid-stream, or the run was cancelled
                    call_task.cancel()
                    await asyncio.wait([call_task])  # its chat span ends before the run's span does
            call, planned, outcome = call_task.result()
        else:
            call, planned, outcome = await _call_async(state, client, planned, stream, pending.append, admission)
        for event in pending:
            yield event
        if isinstance(outcome, Stop):
            yield outcome
            return
        next_step, warnings = _after_message(state, planned, call, outcome)
        for warning in warnings:
            yield warning
        if isinstance(next_step, Stop):
            yield gating.relabel(state, planned, next_step)
            return
        if next_step:
            for use in next_step:
                yield ToolStarted(use.name, use.id, use.input)
            outcomes = await asyncio.gather(*(_tool_async(state, use) for use in next_step))
            for use, outcome in zip(next_step, outcomes, strict=True):
                yield ToolFinished(state.record_tool(use, outcome))
            state.add_tool_results(list(zip(next_step, outcomes, strict=True)))
    yield stop


async def drive_async(
    state: RunState, client: anthropic.AsyncAnthropic, stream: bool
) -> AsyncGenerator[RunEvent, None]:
    """Run to the end, yielding events and finally ``RunFinished``; telemetry ends exactly once."""
    state.recorder.start_run(state.task)
    stop = Stop(StopReason.CANCELLED, "the run was cancelled")
    loop = _loop_async(state, client, stream)
    try:
        async for item in loop:
            if isinstance(item, Stop):
                stop = item
            else:
                yield item
    except GeneratorExit:
        stop = Stop(StopReason.CANCELLED, "the caller stopped reading the run's stream")
        raise
    except asyncio.CancelledError:
        stop = Stop(StopReason.CANCELLED, "the run was cancelled")
        raise
    except Exception as exc:
        stop = _internal_error(exc)
    finally:
        with contextlib.suppress(Exception):
            await loop.aclose()  # cancels an in-flight call and ends open tool spans
        result = _finish(state, stop)
    yield RunFinished(result)
