"""The two drivers of a ``RunCore``: they perform its effects with an anthropic client, nothing else.

``drive`` is sync (tools one after another); ``adrive`` is asyncio (one turn's tools concurrently,
each attempt bounded by the run's deadline). Streaming is theirs: they iterate the SSE events and
yield ``TextDelta``s as they arrive. A failed effect, a closed stream or a cancellation is thrown
into the core, which ends the run's telemetry before the exception leaves here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

import anthropic

from agentwatch.result import RunResult
from agentwatch.runner.core import RunCore
from agentwatch.runner.effects import CallModel, CountTokens, Effect, Emit, Gate, Reply, RunTools, Sleep, ToolJob
from agentwatch.runner.events import RunEvent, TextDelta
from agentwatch.tools import ToolOutcome, aexecute_tool, execute_tool


class _Steps:
    """A core's effects, one per ``next``: set ``outcome`` (or ``failure``) of the last one before the next."""

    def __init__(self, core: RunCore) -> None:
        self._steps = core.steps()
        self.outcome: Any = None
        self.failure: BaseException | None = None

    def __iter__(self) -> _Steps:
        return self

    def __next__(self) -> Effect:  # StopIteration when the run is over
        outcome, failure, self.outcome, self.failure = self.outcome, self.failure, None, None
        return self._steps.throw(failure) if failure is not None else self._steps.send(outcome)


def _delta(effect: CallModel, event: Any) -> TextDelta | None:
    """A stream's SSE ``event`` seen: its text as a ``TextDelta``, if it carries text."""
    effect.on_chunk()
    if getattr(event, "type", None) == "content_block_delta" and getattr(event.delta, "type", None) == "text_delta":
        return TextDelta(str(event.delta.text), effect.iteration)
    return None


def _reply(effect: CallModel, events: Any, message: Any) -> Reply:
    """The ``Reply`` of a stream that ended with ``message``; without one the stream was cut short."""
    if message is None:
        effect.on_cut(events)
    return Reply(message, events.response.headers if effect.headers and message is not None else None)


# --- sync -----------------------------------------------------------------------------------------
def drive(core: RunCore, client: anthropic.Anthropic) -> Generator[RunEvent, None, None]:
    """Perform ``core``'s effects in order, yielding its events; the last is ``RunFinished``."""
    steps = _Steps(core)
    for effect in steps:
        try:
            if isinstance(effect, Emit):
                yield effect.event
            elif isinstance(effect, CallModel) and effect.stream:
                steps.outcome = yield from _stream(client, effect)
            else:
                steps.outcome = _perform(client, effect)
        except BaseException as exc:  # GeneratorExit included: the core ends the run, then re-raises it
            steps.failure = exc


def _perform(client: anthropic.Anthropic, effect: Effect) -> Any:
    if isinstance(effect, CallModel):
        with effect.scope:
            if effect.headers:
                raw = client.messages.with_raw_response.create(**effect.request, timeout=effect.timeout_s)
                return Reply(raw.parse(), raw.headers)
            return Reply(client.messages.create(**effect.request, timeout=effect.timeout_s))
    if isinstance(effect, CountTokens):
        with effect.scope:
            return client.messages.count_tokens(**effect.request, timeout=effect.timeout_s)
    if isinstance(effect, RunTools):
        return [_tool(effect, job) for job in effect.jobs]
    if isinstance(effect, Gate):
        with effect.scope:
            return getattr(effect.gate, effect.method)(*effect.args)
    assert isinstance(effect, Sleep)
    time.sleep(effect.seconds)
    return None


def _tool(effect: RunTools, job: ToolJob) -> ToolOutcome:
    with job.scope:
        return execute_tool(effect.tools, job.name, job.input, **job.options)


def _stream(client: anthropic.Anthropic, effect: CallModel) -> Generator[RunEvent, None, Reply]:
    with effect.scope:
        manager = client.messages.stream(**effect.request, timeout=effect.timeout_s)
        events = manager.__enter__()
    message = None
    try:
        for event in _scoped(iter(events), effect):
            if delta := _delta(effect, event):
                yield delta
        with effect.scope:
            message = events.get_final_message()
    finally:
        reply = _reply(effect, events, message)
        manager.__exit__(None, None, None)
    return reply


def _scoped(events: Iterator[Any], effect: CallModel) -> Iterator[Any]:
    """``events``, each read in the call's telemetry context (never across the caller's code)."""
    while True:
        with effect.scope:
            event = next(events, None)
        if event is None:
            return
        yield event


# --- async ----------------------------------------------------------------------------------------
async def adrive(core: RunCore, client: anthropic.AsyncAnthropic) -> AsyncGenerator[RunEvent, None]:
    """``drive`` for asyncio. A stream's text deltas are yielded as they arrive."""
    steps = _Steps(core)
    for effect in steps:
        try:
            if isinstance(effect, Emit):
                yield effect.event
                continue
            if not (isinstance(effect, CallModel) and effect.stream):
                steps.outcome = await _aperform(client, effect)
                continue
            replies: list[Reply] = []
            async with contextlib.aclosing(_astream(client, effect, replies)) as deltas:
                async for delta in deltas:
                    yield delta
            steps.outcome = replies[0]
        except BaseException as exc:  # cancellation and aclose() included: the core ends the run, then re-raises
            steps.failure = exc


def _deadline(time_left_s: float | None) -> float | None:
    return None if time_left_s is None else asyncio.get_running_loop().time() + max(time_left_s, 0.0)


async def _aperform(client: anthropic.AsyncAnthropic, effect: Effect) -> Any:
    if isinstance(effect, CallModel | CountTokens):
        with effect.scope:
            async with asyncio.timeout_at(_deadline(effect.time_left_s)):
                if isinstance(effect, CountTokens):
                    return await client.messages.count_tokens(**effect.request, timeout=effect.timeout_s)
                if effect.headers:
                    raw = await client.messages.with_raw_response.create(**effect.request, timeout=effect.timeout_s)
                    return Reply(await raw.parse(), raw.headers)
                return Reply(await client.messages.create(**effect.request, timeout=effect.timeout_s))
    if isinstance(effect, RunTools):
        return await asyncio.gather(*(_atool(effect, job) for job in effect.jobs))
    if isinstance(effect, Gate):
        with effect.scope:
            return await getattr(effect.gate, "a" + effect.method)(*effect.args)
    assert isinstance(effect, Sleep)
    await asyncio.sleep(effect.seconds)
    return None


async def _atool(effect: RunTools, job: ToolJob) -> ToolOutcome:
    with job.scope:
        return await aexecute_tool(effect.tools, job.name, job.input, **job.options)


async def _astream(
    client: anthropic.AsyncAnthropic, effect: CallModel, replies: list[Reply]
) -> AsyncGenerator[TextDelta, None]:
    """The stream's text deltas; its ``Reply`` goes into ``replies``. Each await is bounded by the deadline."""
    deadline = _deadline(effect.time_left_s)
    with effect.scope:
        async with asyncio.timeout_at(deadline):
            manager = client.messages.stream(**effect.request, timeout=effect.timeout_s)
            events = await manager.__aenter__()
    message = None
    try:
        iterator = aiter(events)
        while True:
            with effect.scope:
                async with asyncio.timeout_at(deadline):
                    event = await anext(iterator, None)
            if event is None:
                break
            if delta := _delta(effect, event):
                yield delta
        with effect.scope:
            async with asyncio.timeout_at(deadline):
                message = await events.get_final_message()
    finally:
        replies.append(_reply(effect, events, message))
        await manager.__aexit__(None, None, None)


class RunHandle:
    """An async run, iterated for its events; ``result`` is set when it ends, also when it was cancelled.

    A service that cancels the task iterating it reads the cancelled run's ``result`` (usage so far)
    here; ``cancel_detail``, set before cancelling, becomes the run's stop detail.
    """

    def __init__(self, core: RunCore, client: anthropic.AsyncAnthropic) -> None:
        self._core = core
        self._events = adrive(core, client)

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self

    async def __anext__(self) -> RunEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        await self._events.aclose()

    @property
    def result(self) -> RunResult | None:
        return self._core.result

    @property
    def cancel_detail(self) -> str | None:
        return self._core.cancel_detail

    @cancel_detail.setter
    def cancel_detail(self, detail: str | None) -> None:
        self._core.cancel_detail = detail
