"""``@tool``: a plain function becomes a ``Tool`` Claude can call, with its schema, limits and retries."""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

import pydantic

from agentwatch.tools._schema import build_input_model, parse_docstring, render_validation_error

P = ParamSpec("P")
R = TypeVar("R")

_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolInputError(ValueError):
    """The input Claude sent does not fit the tool's schema. The message lists each problem."""


class TransientToolError(Exception):
    """Raise from a tool to say "this may work if tried again" (a flaky backend, a busy resource).

    Tools with ``retries > 0`` retry it (and ``TimeoutError`` / ``ConnectionError``) by default.
    """


DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (TransientToolError, TimeoutError, ConnectionError)


class Tool(Generic[P, R]):
    """A function plus what Claude needs to call it: ``name``, ``description``, ``input_schema``.

    Calling the ``Tool`` calls the function unchanged, so tools stay unit-testable. The runner calls it
    through :func:`agentwatch.tools.execute_tool`, which validates input and enforces ``timeout_s`` and
    ``retries``. A sync tool runs on a worker thread, so a hung one is abandoned at its timeout; ``inline``
    runs it on the caller's thread instead (no thread hand-off: ``bench/tool_handoff.py`` measures it),
    for fast, bounded functions only: its timeout cannot stop it, and an overrun is reported afterwards.
    """

    __name__: str  # set by functools.update_wrapper, like __doc__ and __wrapped__
    __wrapped__: Callable[P, R]

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
        retry_backoff_s: float = 0.1,
        inline: bool = False,
    ) -> None:
        if isinstance(fn, Tool):  # decorated twice: wrap the original function
            fn = fn.fn
        tool_name = name if name is not None else getattr(fn, "__name__", "")
        if not _NAME_PATTERN.match(tool_name):
            raise ValueError(
                f"Tool name {tool_name!r} is not accepted by the Messages API: use 1-64 letters, digits, "
                "'_' or '-' (pass @tool(name=...) to choose one)."
            )
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"Tool {tool_name!r}: timeout_s must be a positive number or None; got {timeout_s!r}.")
        if retries < 0:
            raise ValueError(f"Tool {tool_name!r}: retries must be 0 or more; got {retries!r}.")
        if inline and inspect.iscoroutinefunction(fn):
            raise ValueError(
                f"Tool {tool_name!r}: inline=True is for sync functions; an async tool already runs on the "
                "caller's event loop. Drop inline=True."
            )
        if retry_backoff_s < 0:
            raise ValueError(f"Tool {tool_name!r}: retry_backoff_s must be 0 or more; got {retry_backoff_s!r}.")
        summary, param_docs = parse_docstring(inspect.getdoc(fn))
        model, schema, field_names, positional_only = build_input_model(fn, tool_name, param_docs)
        self.fn: Callable[P, R] = fn
        self.name: str = tool_name
        self.description: str = description if description is not None else summary
        self.timeout_s: float | None = timeout_s
        self.retries: int = retries
        self.retry_on: tuple[type[BaseException], ...] = tuple(retry_on)
        self.retry_backoff_s: float = retry_backoff_s
        self.is_async: bool = inspect.iscoroutinefunction(fn)
        self.inline: bool = inline
        self.input_model: type[pydantic.BaseModel] = model
        self.input_schema: dict[str, Any] = schema
        self._field_names = field_names
        self._positional_only = positional_only
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the underlying function directly (no validation, timeout or retries)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"Tool(name={self.name!r}, is_async={self.is_async}, timeout_s={self.timeout_s}, "
            f"retries={self.retries}, inline={self.inline})"
        )

    def to_api(self) -> dict[str, Any]:
        """The tool definition for the Messages API ``tools`` list."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    def validate(self, raw: object) -> dict[str, Any]:
        """Check Claude's input against the schema; return keyword arguments for the function.

        ``raw`` is the ``tool_use`` block's ``input`` (a dict; a JSON string or ``None`` is accepted too).
        Raises ``ToolInputError`` listing every problem.
        """
        if raw is None:
            raw = {}
        if isinstance(raw, str | bytes):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ToolInputError(f"Invalid input for tool {self.name!r}: not a JSON object ({exc}).") from None
        if not isinstance(raw, dict):
            raise ToolInputError(
                f"Invalid input for tool {self.name!r}: expected a JSON object of parameters, got {type(raw).__name__}."
            )
        try:
            parsed = self.input_model.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise ToolInputError(render_validation_error(self.name, exc)) from None
        return {param: getattr(parsed, field) for field, param in self._field_names.items()}

    def invoke(self, arguments: dict[str, Any]) -> R:
        """Call the function with validated ``arguments`` (from :meth:`validate`)."""
        args = [arguments[name] for name in self._positional_only]
        kwargs = {k: v for k, v in arguments.items() if k not in self._positional_only}
        return self.fn(*args, **kwargs)


@overload
def tool(fn: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
    retry_backoff_s: float = 0.1,
    inline: bool = False,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
    retry_backoff_s: float = 0.1,
    inline: bool = False,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a ``Tool`` from a sync or async function; use as ``@tool`` or ``@tool(name=..., ...)``.

    The description is the docstring's first paragraph; parameter descriptions come from its
    ``Args:`` (Google) or ``Parameters`` (NumPy) section; the input schema comes from the type hints.
    ``retries`` re-runs the tool after an exception in ``retry_on``, waiting ``retry_backoff_s``
    doubled each time with jitter (a random 50-100% of it, at most 10 s), never past ``timeout_s``: the
    runner's retry policy (:mod:`agentwatch.retry`). Each retry is a ``tool_retry`` log record and an
    ``agentwatch.tool.retries`` count. ``inline=True`` runs a sync tool on the caller's thread (see
    ``Tool``). Raises ``ValueError`` / ``TypeError`` at decoration time for a bad definition.
    """

    def decorate(func: Callable[P, R]) -> Tool[P, R]:
        return Tool(
            func,
            name=name,
            description=description,
            timeout_s=timeout_s,
            retries=retries,
            retry_on=retry_on,
            retry_backoff_s=retry_backoff_s,
            inline=inline,
        )

    return decorate if fn is None else decorate(fn)
