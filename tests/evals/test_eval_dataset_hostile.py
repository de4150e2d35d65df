"""Hostile datasets (alias bombs, self-referencing aliases, deep nesting, huge values) fail fast with a
``DatasetError`` naming the file and line, in bounded time and memory; ``agentwatch eval`` exits 2 on
them. The fuzz target: any YAML or JSONL text loads or raises ``DatasetError``, nothing else."""

from __future__ import annotations

import json
import string
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentwatch.evals.cli import EXIT_USAGE
from agentwatch.evals.dataset import MAX_DEPTH, MAX_MESSAGE_CHARS, DatasetError, load_dataset
from agentwatch.evals.scorers import SCORER_KINDS

from .test_eval_cli import AGENT
from .test_eval_cli import run as cli


def alias_bomb(levels: int) -> str:
    """The report's dataset: nested anchors inside one ``expect`` item, 9 ** levels values expanded."""
    lines = ["cases:", "  - id: bomb", "    task: t", "    expect:", "      - a: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    for level in range(1, levels):
        lines.append(f"        l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nested_yaml(depth: int) -> str:
    return "cases:\n  - id: deep\n    task: t\n    expect:\n      - contains_all: " + "[" * depth + "]" * depth + "\n"


def write(tmp_path: Path, text: str, name: str = "d.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_bounded(path: Path, max_mb: float = 64) -> DatasetError:
    """Load ``path``, expecting a DatasetError, and check the load's peak Python memory."""
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as caught:
            load_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < max_mb * 1e6, f"peak {peak / 1e6:.0f} MB"
    return caught.value


@pytest.mark.parametrize("levels", [7, 9])
def test_an_alias_bomb_is_refused_with_its_file_and_line(tmp_path: Path, levels: int) -> None:
    text = alias_bomb(levels)
    assert len(text.encode()) < 700  # the report's was 458 bytes
    error = load_bounded(write(tmp_path, text))

    message = str(error)
    assert message.startswith(f"{tmp_path / 'd.yaml'}:5: ") and "more than 100,000 values" in message
    assert "aliases" in message and len(message) < 500


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    text = "cases:\n  - id: loop\n    task: t\n    expect:\n      - contains_all: &me [a, *me]\n"
    message = str(load_bounded(write(tmp_path, text)))
    assert "levels deep" in message and "refers to itself" in message and "d.yaml:5:" in message


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    text = (
        "common: &common [{max_cost_usd: 0.05}, {max_iterations: 5}]\n"
        "cases:\n"
        "  - {id: a, task: t, expect: *common}\n"
        "  - {id: b, task: u, expect: *common}\n"
    )
    with pytest.raises(DatasetError, match="common: Extra inputs are not permitted"):
        load_dataset(write(tmp_path, text))  # the anchor's home key is still checked like any other
    text = text.replace("common: &common", "expect: &common").replace("expect: *common}", "expect: [{regex: x}]}")
    dataset = load_dataset(write(tmp_path, text))
    assert len(dataset.expect) == 2 and [c.id for c in dataset.cases] == ["a", "b"]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000])
def test_deep_yaml_nesting_is_a_clear_error(tmp_path: Path, depth: int) -> None:
    message = str(load_bounded(write(tmp_path, nested_yaml(depth))))
    assert message.startswith(f"{tmp_path / 'd.yaml'}:5: values nest more than {MAX_DEPTH} levels deep")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
def test_deep_jsonl_nesting_is_a_clear_error(tmp_path: Path, depth: int) -> None:
    good = json.dumps({"id": "a", "task": "t", "expect": [{"regex": "x"}]})
    deep = '{"id": "b", "task": "t", "expect": [{"contains_all": ' + "[" * depth + "]" * depth + "}]}"
    message = str(load_bounded(write(tmp_path, f"{good}\n{deep}\n", "d.jsonl")))
    assert message.startswith(f"{tmp_path / 'd.jsonl'}:2: values nest more than {MAX_DEPTH} levels deep")


def test_the_nesting_the_examples_need_is_allowed(tmp_path: Path) -> None:
    item = "{tool_called: {name: web_search, input: {query: {deep: {deeper: [[[x]]]}}}}}"
    dataset = load_dataset(write(tmp_path, f"cases:\n  - id: a\n    task: t\n    expect:\n      - {item}\n"))
    assert dataset.cases[0].expect[0].kind == "tool_called"


def test_error_messages_are_capped(tmp_path: Path) -> None:
    huge = "x" * 20_000
    text = f"cases:\n  - id: a\n    task: t\n    expect:\n      - [{huge}, {huge}]\n      - nope: {huge}\n"
    message = str(load_bounded(write(tmp_path, text)))
    assert "each expectation is a mapping" in message and "unknown scorer" in message
    assert len(message) < 3 * (MAX_MESSAGE_CHARS + 200)


@pytest.mark.parametrize(
    ("text", "name"),
    [(alias_bomb(9), "bomb.yaml"), (nested_yaml(5_000), "deep.yaml")],
)
def test_the_cli_exits_2_on_a_hostile_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str], text, name) -> None:
    status = cli(str(write(tmp_path, text, name)), "--agent", AGENT, "--sim")
    err = capsys.readouterr().err
    assert status == EXIT_USAGE, err
    assert err.startswith(f"agentwatch eval: {tmp_path / name}:5: ") and "Traceback" not in err


# --- fuzz -----------------------------------------------------------------------------------------
# Fragments a dataset is made of, so generated text reaches past the YAML parser into validation;
# no `custom` scorer: it imports the module it names, which is the dataset author's own code to run.
KINDS = [kind for kind in SCORER_KINDS if kind != "custom"]
WORDS = [*KINDS, "cases", "id", "task", "expect", "repeats", "min_pass_rate", "tags", "name", "judge_model", "input"]
SYNTAX = [": ", "- ", "\n", "  ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b", "!!str ", "!!binary ", "? "]
SCALARS = ["'", '"', "#", "|", ">", "~", "null", "1e309", "-1", "0.5", "true", "2024-01-01", "\t", "%YAML 1.1\n", "---"]
TOKENS = st.sampled_from([*WORDS, *SYNTAX, *SCALARS])
YAML_TEXT = st.one_of(
    st.lists(TOKENS, max_size=60).map("".join),
    st.text(alphabet=string.printable, max_size=300),
    st.text(max_size=200),
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(KINDS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10) | st.sampled_from(KINDS), inner),
    max_leaves=30,
)
CASES = st.fixed_dictionaries(
    {},
    optional={"id": VALUES, "task": VALUES, "expect": VALUES, "repeats": VALUES, "min_pass_rate": VALUES},
)
JSONL_TEXT = st.lists(st.one_of(CASES.map(json.dumps), VALUES.map(json.dumps), st.text(max_size=80)), max_size=5)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def loads_or_says_why(path: Path) -> None:
    try:
        load_dataset(path)
    except DatasetError as error:
        message = str(error)
        assert message.startswith(str(path)) and len(message) < 5 * (MAX_MESSAGE_CHARS + 200), message


@FUZZ
@given(text=YAML_TEXT)
def test_fuzz_yaml_loads_or_raises_dataset_error(tmp_path: Path, text: str) -> None:
    loads_or_says_why(write(tmp_path, text))


@FUZZ
@given(lines=JSONL_TEXT)
def test_fuzz_jsonl_loads_or_raises_dataset_error(tmp_path: Path, lines: list[str]) -> None:
    loads_or_says_why(write(tmp_path, "\n".join(lines), "d.jsonl"))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(levels=st.integers(2, 12), width=st.integers(2, 12))
def test_fuzz_alias_expansion_is_bounded(tmp_path: Path, levels: int, width: int) -> None:
    lines = ["cases:", "  - id: a", "    task: t", "    expect:", "      - a: &l0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"        l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        loads_or_says_why(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64e6
