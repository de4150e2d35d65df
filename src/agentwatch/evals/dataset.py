"""Eval datasets: YAML or JSONL files of cases, each a task with expectations, validated by pydantic.

YAML::

    name: seed                        # default: the file name without extension
    description: The three seed cases.
    judge_model: claude-haiku-4-5-20251001   # optional default for judge scorers
    expect:                           # optional: checked on every case, after its own expectations
      - max_cost_usd: 0.05
    cases:
      - id: earth-population          # unique, stable: reports and baselines match cases by id
        task: What is the population of Earth?
        expect:
          - contains_all: ["8", "billion"]
          - tool_called: web_search
        repeats: 3                    # optional: trials of this case (default: the run's --repeats)
        min_pass_rate: 0.66           # optional: share of trials that must pass (default 1.0)
        tags: [facts]

JSONL: one case object per line (the ``cases`` entries above); the dataset is named after the file.
A bad file raises ``DatasetError`` whose message names the file and line and says what is wrong; so
does a hostile one: nesting past ``MAX_DEPTH`` levels, or YAML aliases expanding past ``MAX_VALUES``
values (an "alias bomb"), is refused before anything walks or prints the expanded data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agentwatch.evals.scorers import Scorer, expand_expectation

MAX_DEPTH = 32  # nesting levels (a case with tool inputs needs about six)
MAX_VALUES = 100_000  # values after YAML aliases are expanded
MAX_MESSAGE_CHARS = 300  # per problem in a DatasetError


class DatasetError(ValueError):
    """A dataset that cannot be used; the message has ``file:line: what is wrong``."""


def _check_list(items: Any) -> Any:
    if not isinstance(items, list):
        raise ValueError("'expect' is a list of expectations, e.g. '- contains_all: [\"8\", \"billion\"]'")
    return items


Expectation = Annotated[Scorer, BeforeValidator(expand_expectation)]


class EvalCase(BaseModel):
    """One task and what its run must satisfy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(min_length=1, pattern=r"^[^\s].*$")]
    task: Annotated[str, Field(min_length=1)]
    expect: Annotated[list[Expectation], Field(min_length=1)]
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    repeats: Annotated[int, Field(ge=1)] | None = None
    min_pass_rate: Annotated[float, Field(ge=0, le=1)] = 1.0

    @field_validator("expect", mode="before")
    @classmethod
    def _expand_expect(cls, items: Any) -> Any:
        return _check_list(items)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class Dataset(BaseModel):
    """A named set of eval cases. ``expect`` applies to every case, after the case's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    judge_model: str | None = None
    expect: list[Expectation] = Field(default_factory=list)
    cases: Annotated[list[EvalCase], Field(min_length=1)]
    path: str | None = None

    @field_validator("expect", mode="before")
    @classmethod
    def _expand_expect(cls, items: Any) -> Any:
        return _check_list(items)

    @model_validator(mode="after")
    def _unique_ids(self) -> Dataset:
        seen: set[str] = set()
        for case in self.cases:
            if case.id in seen:
                raise ValueError(f"case id {case.id!r} is used twice; ids must be unique")
            seen.add(case.id)
        return self

    def scorers_for(self, case: EvalCase) -> list[Expectation]:
        """The case's expectations followed by the dataset-wide ones."""
        return [*case.expect, *self.expect]


def load_dataset(path: str | Path) -> Dataset:
    """Load and validate a ``.yaml``/``.yml`` or ``.jsonl`` dataset. Raises ``DatasetError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the dataset: {exc.strerror or exc}") from None
    context = {"base_dir": str(path.parent)}
    if path.suffix.lower() == ".jsonl":
        return _load_jsonl(path, text, context)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return _load_yaml(path, text, context)
    raise DatasetError(f"{path}: unknown dataset format {path.suffix!r}; use .yaml, .yml or .jsonl.")


def _load_yaml(path: Path, text: str, context: dict[str, Any]) -> Dataset:
    try:
        _check_nesting(path, yaml.parse(text, Loader=yaml.SafeLoader))  # before compose, which recurses
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.SafeLoader("").construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DatasetError(f"{path}:{line} not valid YAML: {_clip(problem)}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}:1: a dataset is a mapping with 'cases: [...]' at the top level.")
    _check_size(path, data, lambda loc: _yaml_line(root, loc))
    data = {"name": path.stem, **data, "path": str(path)}
    try:
        return Dataset.model_validate(data, context=context)
    except ValidationError as exc:
        raise DatasetError(_describe(exc, path, lambda loc: _yaml_line(root, loc))) from None


def _load_jsonl(path: Path, text: str, context: dict[str, Any]) -> Dataset:
    cases: list[EvalCase] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise DatasetError(f"{path}:{number}: {_TOO_DEEP}") from None
        _check_size(path, raw, _at(number))
        try:
            cases.append(EvalCase.model_validate(raw, context=context))
        except ValidationError as exc:
            raise DatasetError(_describe(exc, path, _at(number))) from None
    try:
        return Dataset.model_validate({"name": path.stem, "cases": cases, "path": str(path)}, context=context)
    except ValidationError as exc:
        raise DatasetError(_describe(exc, path, lambda _loc: None)) from None


def _at(line: int) -> Callable[[tuple[int | str, ...]], int]:
    """A ``line_of`` for a JSONL case: every location is on its line."""
    return lambda _loc: line


_TOO_DEEP = f"values nest more than {MAX_DEPTH} levels deep; a dataset needs a handful, flatten this one"


def _check_nesting(path: Path, events: Iterator[yaml.Event]) -> None:
    """Refuse YAML nested deeper than ``MAX_DEPTH`` (read as a stream of events: nothing recurses)."""
    depth = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark is not None else ""
                raise DatasetError(f"{path}:{line}: {_TOO_DEEP}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_size(path: Path, data: Any, line_of: Callable[[tuple[int | str, ...]], int | None]) -> None:
    """Refuse data that expands to more than ``MAX_VALUES`` values or ``MAX_DEPTH`` levels, as YAML
    aliases (``&a [*b, *b, …]``) or a self-referencing alias can: the walk stops at the limit, so
    checking costs at most ``MAX_VALUES`` steps, however large the expansion."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    count = 0
    while stack:
        value, loc = stack.pop()
        count += 1
        if count > MAX_VALUES or len(loc) > MAX_DEPTH:
            line = line_of(tuple(p for p in loc if isinstance(p, int | str)))
            where = f"{path}:{line if line is not None else ''}"
            if len(loc) > MAX_DEPTH:
                raise DatasetError(f"{where}: {_TOO_DEEP} (a YAML alias that refers to itself?)")
            raise DatasetError(
                f"{where}: the dataset expands to more than {MAX_VALUES:,} values; YAML aliases (*name) "
                "repeating nested anchors multiply, write the values out instead"
            )
        if isinstance(value, dict):
            stack.extend((v, (*loc, k if isinstance(k, str | int) else repr(k)[:40])) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*loc, i)) for i, v in enumerate(value))


def _clip(text: str) -> str:
    """``text`` cut to ``MAX_MESSAGE_CHARS``: an error message never carries a whole hostile value."""
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + f"… ({len(text):,} chars)"


def _describe(exc: ValidationError, path: Path, line_of: Any) -> str:
    """``file:line: where: what`` for each error (at most five)."""
    lines = []
    for error in exc.errors()[:5]:
        loc = _clean_loc(error["loc"])
        line = line_of(loc)
        where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        message = _clip(error["msg"].removeprefix("Value error, "))
        lines.append(f"{path}:{line if line is not None else ''}: {where or 'dataset'}: {message}")
    more = len(exc.errors()) - 5
    return "\n".join(lines) + (f"\n… and {more} more error(s)" if more > 0 else "")


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's internal steps (union tags, validator names) that are not in the file."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p.startswith("function-") or p == "__value__")))


def _yaml_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None and len(node.value) == 1 and isinstance(part, str):
                child = node.value[0][1]  # the {kind: arguments} of an expectation
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
