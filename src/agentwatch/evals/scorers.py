"""Scorers: what an eval case expects of a run, each checked against the ``RunResult``.

Rule-based scorers are cheap and exact; ``judge`` asks a model for what rules cannot see; ``custom``
imports a Python function (``"module:function"`` or ``"file.py:function"``, never ``eval``).

In a dataset each expectation is a one-key mapping, ``{kind: arguments}``, with a short form where
one argument is enough::

    expect:
      - contains_all: ["8", "billion"]          # or {values: [...], case_sensitive: true}
      - number_close_to: {value: 8e9, rel_tolerance: 0.1}
      - tool_called: {name: calculator, input: {expression: "1234 * 5678"}}
      - max_iterations: 5
      - judge: 'Mentions "meters per second".'

Every scorer's ``score`` never raises: a failure to score is a failed ``Score`` whose explanation says why.
"""

from __future__ import annotations

import inspect
import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agentwatch.evals.judge import Judge, JudgeError
from agentwatch.refs import load_object
from agentwatch.result import RunResult, StopReason


@dataclass(frozen=True)
class Score:
    """One scorer's finding on one run. ``value`` is in [0, 1]; ``cost_usd`` is what scoring cost (judge).

    ``quotes_content`` marks an explanation that may quote the answer or tool arguments: telemetry
    records it only when content capture is on (reports always have it).
    """

    name: str
    passed: bool
    value: float
    explanation: str
    cost_usd: float | None = None
    quotes_content: bool = False

    @property
    def label(self) -> str:
        """``pass`` or ``fail``: the ``gen_ai.evaluation.score.label`` value."""
        return "pass" if self.passed else "fail"


@dataclass(frozen=True)
class ScoreContext:
    """What a scorer may need beyond the result: the case's id and task, and the judge to ask."""

    case_id: str
    task: str
    judge: Judge | None = None


class BaseScorer(BaseModel):
    """Common fields. ``label`` names the score (default: the kind). Subclasses implement ``check``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str
    label: str | None = None
    shorthand_field: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "__value__" in data:
            value = data["__value__"]
            if isinstance(value, dict):
                return {**value, "kind": data["kind"]}
            return {"kind": data["kind"], cls.shorthand_field: value}
        return data

    @property
    def display_name(self) -> str:
        """The name reported for this scorer's score (``gen_ai.evaluation.name``)."""
        return self.label or self.kind

    def _score(
        self, passed: bool, explanation: str, value: float | None = None, *, quotes_content: bool = False
    ) -> Score:
        value = (1.0 if passed else 0.0) if value is None else value
        return Score(self.display_name, passed, value, explanation, quotes_content=quotes_content)

    def check(self, result: RunResult) -> Score:
        raise NotImplementedError

    async def score(self, result: RunResult, context: ScoreContext) -> Score:
        """Score ``result``. Never raises."""
        try:
            return self.check(result)
        except Exception as exc:
            return self._score(False, f"scorer {self.display_name} raised {type(exc).__name__}: {exc}")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _TextScorer(BaseScorer):
    values: Annotated[list[str], Field(min_length=1)]
    case_sensitive: bool = False
    shorthand_field: ClassVar[str] = "values"

    @field_validator("values", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    def _found(self, answer: str) -> tuple[list[str], list[str]]:
        haystack = answer if self.case_sensitive else answer.casefold()
        found = [v for v in self.values if (v if self.case_sensitive else v.casefold()) in haystack]
        return found, [v for v in self.values if v not in found]


class ContainsAll(_TextScorer):
    """The answer contains every one of ``values`` (case-insensitive unless ``case_sensitive``)."""

    kind: Literal["contains_all"] = "contains_all"

    def check(self, result: RunResult) -> Score:
        found, missing = self._found(result.answer)
        if missing:
            return self._score(False, f"answer lacks {missing!r}", len(found) / len(self.values))
        return self._score(True, f"answer contains all of {self.values!r}")


class ContainsAny(_TextScorer):
    """The answer contains at least one of ``values``."""

    kind: Literal["contains_any"] = "contains_any"

    def check(self, result: RunResult) -> Score:
        found, _ = self._found(result.answer)
        if found:
            return self._score(True, f"answer contains {found[0]!r}")
        return self._score(False, f"answer contains none of {self.values!r}")


class NotContains(_TextScorer):
    """The answer contains none of ``values``."""

    kind: Literal["not_contains"] = "not_contains"

    def check(self, result: RunResult) -> Score:
        found, _ = self._found(result.answer)
        if found:
            return self._score(False, f"answer contains forbidden {found!r}")
        return self._score(True, f"answer contains none of {self.values!r}")


class Regex(BaseScorer):
    """``re.search(pattern, answer)`` finds a match. Inline flags such as ``(?s)`` work."""

    kind: Literal["regex"] = "regex"
    pattern: str
    ignore_case: bool = False
    shorthand_field: ClassVar[str] = "pattern"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return pattern

    def check(self, result: RunResult) -> Score:
        match = re.search(self.pattern, result.answer, re.IGNORECASE if self.ignore_case else 0)
        if match:
            return self._score(True, f"/{self.pattern}/ matched {match.group(0)[:80]!r}", quotes_content=True)
        return self._score(False, f"/{self.pattern}/ does not match the answer")


_SEPARATORS = ",_\u00a0\u202f\u2009"
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}


def _number_pattern(separators: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<![\w.,])(-)?(\d{{1,3}}(?:[{separators}]\d{{3}})+|\d+)(\.\d+)?(?:[eE]([+-]?\d+))?"
        r"(?:\s*(thousand|million|billion|trillion)\b)?",
        re.IGNORECASE,
    )


_NUMBER = _number_pattern(_SEPARATORS)
_NUMBER_SPACED = _number_pattern(_SEPARATORS + " ")


def parse_numbers(text: str) -> list[float]:
    """Every number written in ``text``: thousands separators (``7,006,652``; ``299 792 458`` with
    plain, thin or no-break spaces — read both as one number and as three), decimals, exponents and
    scale words (``8.1 billion``). Never raises."""
    numbers: list[float] = []
    for pattern in (_NUMBER, _NUMBER_SPACED):
        for sign, whole, fraction, exponent, scale in pattern.findall(text):
            value = float(re.sub(f"[{_SEPARATORS} ]", "", whole) + (fraction or ""))
            if exponent:
                value *= 10.0 ** int(exponent)
            if scale:
                value *= _SCALE[scale.lower()]
            value = -value if sign else value
            if value not in numbers:
                numbers.append(value)
    return numbers


class NumberCloseTo(BaseScorer):
    """Some number in the answer is within ``tolerance`` (absolute) or ``rel_tolerance`` (relative)
    of ``value``; with neither, it must be equal."""

    kind: Literal["number_close_to"] = "number_close_to"
    value: float
    tolerance: Annotated[float, Field(ge=0)] = 0.0
    rel_tolerance: Annotated[float, Field(ge=0)] = 0.0
    shorthand_field: ClassVar[str] = "value"

    def check(self, result: RunResult) -> Score:
        numbers = parse_numbers(result.answer)
        for number in numbers:
            if math.isclose(number, self.value, rel_tol=self.rel_tolerance, abs_tol=self.tolerance):
                return self._score(True, f"answer has {number:g}, close to {self.value:g}")
        seen = ", ".join(f"{x:g}" for x in numbers[:10]) or "none"
        return self._score(
            False,
            f"no number in the answer is close to {self.value:g} (numbers found: {seen})",
            quotes_content=True,
        )


def _is_subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _is_subset(value, actual[key]) for key, value in expected.items()
        )
    return bool(expected == actual)


class ToolCalled(BaseScorer):
    """The run called tool ``name`` at least ``min_times``, with ``input`` a subset of its arguments
    when given (nested mappings compared key by key, other values by equality)."""

    kind: Literal["tool_called"] = "tool_called"
    name: str
    input: dict[str, Any] | None = None
    min_times: Annotated[int, Field(ge=1)] = 1
    shorthand_field: ClassVar[str] = "name"

    def check(self, result: RunResult) -> Score:
        calls = [c for c in result.tool_calls if c.name == self.name]
        matching = [c for c in calls if self.input is None or _is_subset(self.input, c.input)]
        if len(matching) >= self.min_times:
            return self._score(True, f"{self.name} called {len(matching)} time(s) as expected")
        called = [c.name for c in result.tool_calls] or "no tools"
        if calls and self.input is not None:
            inputs = [c.input for c in calls][:5]
            return self._score(
                False,
                f"{self.name} was called, but never with input {self.input!r}; inputs were {inputs!r}",
                quotes_content=True,
            )
        return self._score(
            False,
            f"{self.name} called {len(calls)} time(s), expected at least {self.min_times}; calls: {called}",
        )


class ToolNotCalled(BaseScorer):
    """The run called none of the tools in ``tools``."""

    kind: Literal["tool_not_called"] = "tool_not_called"
    tools: Annotated[list[str], Field(min_length=1)]
    shorthand_field: ClassVar[str] = "tools"

    @field_validator("tools", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    def check(self, result: RunResult) -> Score:
        called = sorted({c.name for c in result.tool_calls} & set(self.tools))
        if called:
            return self._score(False, f"forbidden tool(s) called: {called}")
        return self._score(True, f"none of {self.tools} called")


class MaxIterations(BaseScorer):
    """The run made at most ``value`` LLM calls."""

    kind: Literal["max_iterations"] = "max_iterations"
    value: Annotated[int, Field(ge=0)]
    shorthand_field: ClassVar[str] = "value"

    def check(self, result: RunResult) -> Score:
        ok = result.iterations <= self.value
        return self._score(ok, f"{result.iterations} iteration(s), limit {self.value}")


class MaxCostUsd(BaseScorer):
    """The run cost at most ``value`` US dollars. An unknown cost (no price for the model) fails."""

    kind: Literal["max_cost_usd"] = "max_cost_usd"
    value: Annotated[float, Field(ge=0)]
    shorthand_field: ClassVar[str] = "value"

    def check(self, result: RunResult) -> Score:
        if result.cost_usd is None:
            return self._score(False, "the run's cost is unknown (a model has no price), so it cannot be checked")
        return self._score(result.cost_usd <= self.value, f"cost ${result.cost_usd:.6f}, limit ${self.value:.6f}")


class MaxSeconds(BaseScorer):
    """The run took at most ``value`` seconds of wall clock."""

    kind: Literal["max_seconds"] = "max_seconds"
    value: Annotated[float, Field(gt=0)]
    shorthand_field: ClassVar[str] = "value"

    def check(self, result: RunResult) -> Score:
        return self._score(result.duration_s <= self.value, f"took {result.duration_s:.3f}s, limit {self.value:g}s")


class ExpectedStopReason(BaseScorer):
    """The run stopped for one of ``reasons`` (``end_turn``, ``max_iterations``, ``refusal``, …)."""

    kind: Literal["stop_reason"] = "stop_reason"
    reasons: Annotated[list[StopReason], Field(min_length=1)]
    shorthand_field: ClassVar[str] = "reasons"

    @field_validator("reasons", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    def check(self, result: RunResult) -> Score:
        expected = [r.value for r in self.reasons]
        ok = result.stop_reason in self.reasons
        detail = f" ({result.stop_detail})" if result.stop_detail and not ok else ""
        return self._score(ok, f"stopped with {result.stop_reason.value}{detail}, expected {' or '.join(expected)}")


class JudgeScorer(BaseScorer):
    """A judge model reads the answer against ``rubric``. Passes on a ``pass`` verdict, or when
    ``threshold`` is set, on a score at or above it. The judge's cost is part of the score."""

    kind: Literal["judge"] = "judge"
    rubric: Annotated[str, Field(min_length=1)]
    model: str | None = None
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    shorthand_field: ClassVar[str] = "rubric"

    async def score(self, result: RunResult, context: ScoreContext) -> Score:
        judge = context.judge or Judge()
        try:
            verdict = await judge.judge(rubric=self.rubric, task=context.task, answer=result.answer, model=self.model)
        except JudgeError as exc:
            return Score(self.display_name, False, 0.0, str(exc), exc.cost_usd, quotes_content=True)
        except Exception as exc:
            return Score(self.display_name, False, 0.0, f"judge failed: {type(exc).__name__}: {exc}")
        passed = verdict.passed if self.threshold is None else verdict.score >= self.threshold
        reason = verdict.reason or ("pass" if verdict.passed else "fail")
        return Score(self.display_name, passed, verdict.score, f"judge: {reason}", verdict.cost_usd, True)


CustomFunction = Callable[..., Any]


class Custom(BaseScorer):
    """A Python function, imported from ``function`` (``"module:function"`` or ``"file.py:function"``,
    file paths relative to the dataset first). It is called as ``function(result, **args)``, plus
    ``context=ScoreContext`` when it has a ``context`` parameter; sync or async. It returns ``bool``,
    ``(bool, explanation)`` or a ``Score``. An exception fails the score with the exception as reason."""

    kind: Literal["custom"] = "custom"
    function: str
    args: dict[str, Any] = Field(default_factory=dict)
    shorthand_field: ClassVar[str] = "function"
    _fn: CustomFunction = PrivateAttr()

    @property
    def display_name(self) -> str:
        return self.label or self.function.rpartition(":")[2]

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> Custom:
        base_dir = info.context.get("base_dir") if isinstance(info.context, dict) else None
        fn = load_object(self.function, base_dir=Path(base_dir) if base_dir else None)
        if not callable(fn):
            raise ValueError(f"custom scorer {self.function!r} is not callable")
        self._fn = fn
        return self

    async def score(self, result: RunResult, context: ScoreContext) -> Score:
        try:
            kwargs = dict(self.args)
            if "context" in inspect.signature(self._fn).parameters:
                kwargs["context"] = context
            outcome = self._fn(result, **kwargs)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception as exc:
            return self._score(False, f"{self.function} raised {type(exc).__name__}: {exc}", quotes_content=True)
        if isinstance(outcome, Score):
            return outcome
        if isinstance(outcome, bool):
            return self._score(outcome, f"{self.function} returned {outcome}")
        if isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[0], bool):
            return self._score(outcome[0], str(outcome[1]), quotes_content=True)
        return self._score(
            False, f"{self.function} returned {type(outcome).__name__}; expected bool, (bool, str) or Score"
        )


Scorer = Annotated[
    ContainsAll
    | ContainsAny
    | NotContains
    | Regex
    | NumberCloseTo
    | ToolCalled
    | ToolNotCalled
    | MaxIterations
    | MaxCostUsd
    | MaxSeconds
    | ExpectedStopReason
    | JudgeScorer
    | Custom,
    Field(discriminator="kind"),
]

SCORER_KINDS: tuple[str, ...] = (
    "contains_all",
    "contains_any",
    "not_contains",
    "regex",
    "number_close_to",
    "tool_called",
    "tool_not_called",
    "max_iterations",
    "max_cost_usd",
    "max_seconds",
    "stop_reason",
    "judge",
    "custom",
)


_BRIEF = reprlib.Repr()  # a repr of bounded size for any value (keyword arguments need Python 3.12)
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxdict, _BRIEF.maxstring, _BRIEF.maxother = 3, 4, 4, 60, 60


def expand_expectation(item: Any) -> Any:
    """Turn a dataset's ``{kind: arguments}`` item into the tagged mapping the ``Scorer`` union reads."""
    if isinstance(item, BaseScorer):
        return item
    if not isinstance(item, dict) or len(item) != 1:
        raise ValueError(
            "each expectation is a mapping with exactly one key, the scorer kind, e.g. "
            f'\'- contains_all: ["8", "billion"]\'; got {_BRIEF.repr(item)}'
        )
    ((kind, value),) = item.items()
    if kind not in SCORER_KINDS:
        raise ValueError(f"unknown scorer {kind!r}; known scorers: {', '.join(SCORER_KINDS)}")
    return {"kind": kind, "__value__": value}
