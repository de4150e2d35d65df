"""Run one tool call so that it cannot take the run down: errors, bad input, hangs and huge outputs all
become a ``ToolOutcome`` the model can read (``is_error``), never an exception.

Sync tools run in a daemon worker thread inside a copy of the caller's ``contextvars`` context: a hung
tool times out on schedule, never blocks interpreter exit, and OpenTelemetry spans it opens nest under
the caller's span. The timeout covers every attempt, backoff waits included.

Retries follow the one policy (:mod:`agentwatch.retry`): up to ``retries`` more attempts for an exception
in the tool's ``retry_on``, each after a jittered exponential backoff (``retry_backoff_s`` doubled per
attempt, a random 50-100% of it, at most 10 s; a ``retry-after`` on the exception's HTTP response wins,
capped the same), and never a wait that would outlast the tool's timeout: then the last error stands.

What a tool raises is decided by type: ``KeyboardInterrupt`` and ``SystemExit`` (the interpreter is
asked to stop) propagate; ``asyncio.CancelledError`` propagates only when the awaiting task is really
being cancelled (its own deadline, or the run's); everything else, ``GeneratorExit`` and a
``CancelledError`` a tool raises on its own included, is the tool's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import inspect
import logging
import queue
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pydantic
import pydantic_core

from agentwatch import retry
from agentwatch.telemetry import names
from agentwatch.tools.base import Tool, ToolInputError
from agentwatch.tools.workers import workers

T = TypeVar("T")
OnRetry = Callable[[int, float, BaseException], None]
AnyTool = Tool[..., Any]

_PROPAGATE = (KeyboardInterrupt, SystemExit)
_MAX_BACKOFF_S = 10.0
# An async tool that returns this long after its limit was not stopped by it: it blocked the event loop
# (or swallowed the cancellation). Below this, the lateness is ordinary scheduling delay.
_OVERRUN_SLACK_S = 0.1
logger = logging.getLogger(names.LOGGER_NAME)


@dataclass(frozen=True)
class ToolOutcome:
    """How one tool call ended, and the text that goes back to the model in its ``tool_result``.

    ``outcome`` is one of ``names.TOOL_OK``, ``TOOL_ERROR``, ``TOOL_TIMEOUT``, ``TOOL_INVALID_INPUT``,
    ``TOOL_UNKNOWN``; ``error_type`` is the exception class name, ``"timeout"``, ``"unknown_tool"`` or
    ``"invalid_input"`` (None when ok). ``attempts`` is 0 when the tool never ran. ``overran_limit_s``
    is the limit an async tool ran past because its timeout could not fire (it blocked the event loop).
    """

    content: str
    is_error: bool
    outcome: str
    error_type: str | None
    attempts: int
    duration_s: float
    overran_limit_s: float | None = None


def render_output(value: object) -> str:
    """A tool's return value as text: strings as they are, data as JSON, anything else ``str()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    if (
        value is None
        or isinstance(value, dict | list | tuple | bool | int | float)
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
    ):
        return pydantic_core.to_json(value, fallback=str).decode()
    return str(value)


def execute_tool(
    tools: Mapping[str, AnyTool],
    name: str,
    raw_input: object,
    *,
    timeout_s: float | None,
    max_output_chars: int,
    on_retry: OnRetry | None = None,
) -> ToolOutcome:
    """Validate, run (with timeout and retries) and render one tool call. Never raises.

    Only ``KeyboardInterrupt`` and ``SystemExit`` from the tool propagate.
    """
    call = _Call(tools, name, raw_input, timeout_s, max_output_chars, on_retry)
    if call.early is not None:
        return call.early
    tool, arguments = call.tool, call.arguments
    run = _run_inline if tool.inline else _run_in_worker
    while True:
        call.attempts += 1
        status, value = run(tool, arguments, call.remaining())
        if status == "timeout":
            return call.timed_out()
        if status == "ok":
            return call.checked_overrun(call.ok(value))
        wait = call.retry_wait(value)
        if wait is None:
            return call.checked_overrun(call.failed(value))
        call.notify_retry(wait, value)
        time.sleep(wait)


async def aexecute_tool(
    tools: Mapping[str, AnyTool],
    name: str,
    raw_input: object,
    *,
    timeout_s: float | None,
    max_output_chars: int,
    on_retry: OnRetry | None = None,
) -> ToolOutcome:
    """Async form of :func:`execute_tool`; never blocks the event loop. Never raises.

    Async tools are awaited under ``asyncio.timeout``; sync tools run in a daemon thread with the
    caller's context, so a hung one is abandoned at the deadline without holding up the loop, unless they
    are ``inline`` (then they run on the loop). An async tool that blocks the loop, or an inline tool, cannot
    be stopped at its deadline: its outcome says it overran.
    Propagates ``KeyboardInterrupt``, ``SystemExit`` and the cancellation of the awaiting task.
    """
    call = _Call(tools, name, raw_input, timeout_s, max_output_chars, on_retry)
    if call.early is not None:
        return call.early
    tool, arguments = call.tool, call.arguments
    deadline = asyncio.timeout(call.limit)
    result: ToolOutcome | None = None
    try:
        async with deadline:
            while result is None:
                call.attempts += 1
                try:
                    if tool.is_async or tool.inline:  # on the loop (a sync inline tool may return an awaitable)
                        value = tool.invoke(arguments)
                        content = render_output(await value if inspect.isawaitable(value) else value)
                    else:
                        content = await _in_daemon_thread(lambda: _call_sync(tool, arguments, None)[1])
                except BaseException as exc:
                    if _must_propagate(exc):
                        raise
                    wait = call.retry_wait(exc)
                    if wait is None:
                        result = call.failed(exc)
                    else:
                        call.notify_retry(wait, exc)
                        await asyncio.sleep(wait)
                else:
                    result = call.ok(content)
    except TimeoutError:
        if not deadline.expired():
            raise  # pragma: no cover - tool errors are caught above; this is not our deadline
    if deadline.expired() or result is None:
        result = call.timed_out()
    return call.checked_overrun(result)


def _must_propagate(exc: BaseException) -> bool:
    """An interpreter-exit signal, or the cancellation of this task (its deadline, or the caller's);
    a ``CancelledError`` the tool raised on its own while nobody cancelled the task is the tool's error."""
    if isinstance(exc, _PROPAGATE):
        return True
    task = asyncio.current_task()
    return isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling() > 0


class _Call:
    """The bookkeeping one tool call shares between the sync and async forms."""

    def __init__(
        self,
        tools: Mapping[str, AnyTool],
        name: str,
        raw_input: object,
        timeout_s: float | None,
        max_output_chars: int,
        on_retry: OnRetry | None,
    ) -> None:
        self.start = time.monotonic()
        self.name = name
        self.max_output_chars = max_output_chars
        self.on_retry = on_retry
        self.attempts = 0
        self.early: ToolOutcome | None = None
        self.limit: float | None = None
        self.deadline: float | None = None
        try:
            found = tools.get(name)
        except Exception:  # an unhashable name, a broken mapping
            found = None
        if found is None:
            try:
                available = ", ".join(sorted(tools)) or "(none)"
            except Exception:
                available = "(unknown)"
            self.early = self._outcome(
                f"ToolError: unknown tool {name!r}. Available tools: {available}.",
                names.TOOL_UNKNOWN,
                "unknown_tool",
            )
            return
        self.tool: AnyTool = found
        try:
            self.arguments = found.validate(raw_input)
        except Exception as exc:
            message = str(exc) if isinstance(exc, ToolInputError) else _describe(exc)
            self.early = self._outcome(
                f"ToolError: {message}\nFix the input to match the tool's input_schema and call it again.",
                names.TOOL_INVALID_INPUT,
                "invalid_input",
            )
            return
        limits = [t for t in (timeout_s, found.timeout_s) if t is not None]
        self.limit = min(limits) if limits else None
        self.deadline = None if self.limit is None else self.start + self.limit

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def retry_wait(self, exc: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None when this error is final."""
        tool = self.tool
        retry_on = tool.retry_on
        policy = retry.RetryPolicy(
            tool.retries, tool.retry_backoff_s, _MAX_BACKOFF_S, lambda failure: isinstance(failure, retry_on)
        )
        decision = policy.decide(exc, attempt=self.attempts - 1, time_left_s=retry.time_left(self.deadline))
        return decision.wait_s if decision.retry else None

    def notify_retry(self, wait: float, exc: BaseException) -> None:
        if self.on_retry is None:
            return
        try:
            self.on_retry(self.attempts, wait, exc)
        except Exception:
            logger.warning("on_retry callback for tool %r failed; ignored", self.name, exc_info=True)

    def checked_overrun(self, outcome: ToolOutcome) -> ToolOutcome:
        """``outcome``, marked when the tool finished well past its limit although its timeout never fired."""
        if self.limit is None or outcome.duration_s <= self.limit + _OVERRUN_SLACK_S:
            return outcome
        return dataclasses.replace(outcome, overran_limit_s=self.limit)

    def ok(self, content: str) -> ToolOutcome:
        return self._outcome(content, names.TOOL_OK, None)

    def failed(self, exc: BaseException) -> ToolOutcome:
        return self._outcome(f"ToolError: {_describe(exc)}", names.TOOL_ERROR, type(exc).__name__)

    def timed_out(self) -> ToolOutcome:
        tries = f" ({self.attempts} attempts)" if self.attempts > 1 else ""
        return self._outcome(
            f"ToolError: timeout: tool {self.name!r} did not finish within {self.limit:g} s{tries}.",
            names.TOOL_TIMEOUT,
            "timeout",
        )

    def _outcome(self, content: str, outcome: str, error_type: str | None) -> ToolOutcome:
        return ToolOutcome(
            content=_truncate(content, self.max_output_chars),
            is_error=outcome != names.TOOL_OK,
            outcome=outcome,
            error_type=error_type,
            attempts=self.attempts,
            duration_s=time.monotonic() - self.start,
        )


def _describe(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        message = ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n[truncated {len(text) - max_chars} chars]"


def _call_sync(tool: AnyTool, arguments: dict[str, Any], timeout: float | None) -> tuple[str, str]:
    """Run a tool to completion in the current thread: (status, rendered output).

    An awaitable result (an async tool) is run with ``asyncio.run`` under ``timeout``; status is
    ``"timeout"`` when that deadline cut it off.
    """
    value = tool.invoke(arguments)
    if inspect.isawaitable(value):
        status, value = asyncio.run(_await_within(value, timeout))
        if status == "timeout":
            return status, ""
    return "ok", render_output(value)


async def _await_within(awaitable: Awaitable[T], timeout: float | None) -> tuple[str, T | None]:
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return "ok", await awaitable
    except TimeoutError:
        if deadline.expired():
            return "timeout", None
        raise


def _attempt(tool: AnyTool, arguments: dict[str, Any], timeout: float | None) -> tuple[str, Any]:
    """``_call_sync``, with whatever it raises returned as ("error", exception) (checked by ``_reraised``)."""
    try:
        return _call_sync(tool, arguments, timeout)
    except BaseException as exc:
        return "error", exc


def _reraised(outcome: tuple[str, Any]) -> tuple[str, Any]:
    """``outcome``, unless it is an exception that must propagate: then that exception is raised."""
    status, value = outcome
    if status == "error" and isinstance(value, _PROPAGATE):
        raise value
    return outcome


def _run_inline(tool: AnyTool, arguments: dict[str, Any], timeout: float | None) -> tuple[str, Any]:
    """Run an ``inline`` tool on this thread, like ``_run_in_worker`` but with nothing to stop it (``timeout``
    bounds only an awaitable it returns)."""
    return _reraised(_attempt(tool, arguments, timeout))


def _run_in_worker(tool: AnyTool, arguments: dict[str, Any], timeout: float | None) -> tuple[str, Any]:
    """Run the tool in a daemon thread; wait at most ``timeout``.

    Returns ("ok", text), ("error", exception) or ("timeout", None). Re-raises the exceptions that must
    propagate. The outcome comes back through a ``SimpleQueue`` (one C-level lock: a shorter hand-off
    than an ``Event``'s condition variable; ``bench/tool_handoff.py`` measures it).
    """
    box: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    context = contextvars.copy_context()
    workers.submit(lambda: box.put(context.run(_attempt, tool, arguments, timeout)))
    try:
        return _reraised(box.get(timeout=timeout))
    except queue.Empty:
        return "timeout", None


async def _in_daemon_thread(fn: Callable[[], T]) -> T:
    """Like ``asyncio.to_thread`` (context included) but on a daemon thread of its own.

    The default executor's threads are joined at loop shutdown and interpreter exit, so one hung tool
    would hold both up; a daemon thread is simply abandoned when its caller stops waiting. What ``fn``
    raises comes back as a value and is raised here: an exception set on the future would be thrown
    into the task, and a thrown ``GeneratorExit`` closes the task's whole coroutine chain.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[BaseException | None, Any]] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(error: BaseException | None, value: Any) -> None:
        if not future.done():
            future.set_result((error, value))

    def target() -> None:
        error: BaseException | None = None
        value: Any = None
        try:
            value = context.run(fn)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(deliver, error, value)

    workers.submit(target)
    error, value = await future
    if error is not None:
        raise error
    return cast(T, value)
