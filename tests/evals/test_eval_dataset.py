"""Datasets load from YAML and JSONL; a bad one fails with the file, the line and what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.evals.dataset import DatasetError, load_dataset
from agentwatch.evals.scorers import ContainsAll, MaxCostUsd, ToolCalled

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "evals"

GOOD = """\
name: demo
description: two cases
judge_model: claude-haiku-4-5-20251001
expect:
  - max_cost_usd: 0.05
cases:
  - id: earth
    task: What is the population of Earth?
    tags: [facts]
    repeats: 3
    min_pass_rate: 0.66
    expect:
      - contains_all: ["8", "billion"]
      - tool_called: {name: web_search, input: {query: population}}
  - id: 42
    task: What is 6 * 7?
    expect:
      - number_close_to: 42
"""


def write(tmp_path: Path, text: str, name: str = "d.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_dataset(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path, GOOD))
    assert dataset.name == "demo" and dataset.judge_model == "claude-haiku-4-5-20251001"
    earth, other = dataset.cases
    assert (earth.id, earth.repeats, earth.min_pass_rate, earth.tags) == ("earth", 3, 0.66, ["facts"])
    assert isinstance(earth.expect[0], ContainsAll) and earth.expect[0].values == ["8", "billion"]
    assert isinstance(earth.expect[1], ToolCalled) and earth.expect[1].input == {"query": "population"}
    assert other.id == "42" and other.min_pass_rate == 1.0 and other.repeats is None
    scorers = dataset.scorers_for(earth)
    assert len(scorers) == 3 and isinstance(scorers[-1], MaxCostUsd)


def test_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    dataset = load_dataset(write(tmp_path, "cases:\n  - {id: a, task: t, expect: [{regex: x}]}\n", "smoke.yml"))
    assert dataset.name == "smoke" and dataset.path and dataset.path.endswith("smoke.yml")


def test_jsonl_dataset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{"id": "a", "task": "t", "expect": [{"contains_any": ["x", "y"]}]}\n\n'
        '{"id": "b", "task": "u", "expect": [{"stop_reason": "refusal"}], "repeats": 2}\n',
        "cases.jsonl",
    )
    dataset = load_dataset(path)
    assert dataset.name == "cases" and [c.id for c in dataset.cases] == ["a", "b"]
    assert dataset.cases[1].repeats == 2


@pytest.mark.parametrize("name", ["seed.yaml", "behaviour.yaml", "seed.jsonl"])
def test_shipped_examples_load(name: str) -> None:
    dataset = load_dataset(EXAMPLES / name)
    assert dataset.cases


def test_seed_has_the_three_seed_cases() -> None:
    tasks = [c.task for c in load_dataset(EXAMPLES / "seed.yaml").cases]
    assert tasks == [
        "What is the population of Earth?",
        "What is 1234 * 5678?",
        "What is the speed of light in m/s?",
    ]


BAD_YAML = [
    (
        "unknown scorer",
        "cases:\n  - id: a\n    task: t\n    expect:\n      - contains_alll: [x]\n",
        ":5: cases[0].expect[0]: unknown scorer 'contains_alll'; known scorers: contains_all",
    ),
    (
        "bad argument",
        "cases:\n  - id: a\n    task: t\n    expect:\n      - max_iterations: many\n",
        ":5: cases[0].expect[0].max_iterations.value: Input should be a valid integer",
    ),
    (
        "bad regex",
        "cases:\n  - id: a\n    task: t\n    expect:\n      - contains_all: x\n      - regex: '(('\n",
        ":6: cases[0].expect[1].regex.pattern: invalid regular expression",
    ),
    (
        "unknown argument",
        "cases:\n  - id: a\n    task: t\n    expect:\n      - tool_called: {name: x, times: 2}\n",
        ":5: cases[0].expect[0].tool_called.times: Extra inputs are not permitted",
    ),
    ("missing task", "cases:\n  - id: a\n    expect: [{regex: x}]\n", ":2: cases[0].task: Field required"),
    (
        "no expectations",
        "cases:\n  - id: a\n    task: t\n    expect: []\n",
        ":4: cases[0].expect: List should have at least 1",
    ),
    (
        "two keys",
        "cases:\n  - id: a\n    task: t\n    expect:\n      - {regex: x, contains_all: y}\n",
        ":5: cases[0].expect[0]: each expectation is a mapping with exactly one key",
    ),
    (
        "duplicate ids",
        "cases:\n  - {id: a, task: t, expect: [{regex: x}]}\n  - {id: a, task: u, expect: [{regex: y}]}\n",
        "case id 'a' is used twice",
    ),
    ("not yaml", "cases: [\n  - id: a\n", ":2: not valid YAML"),
    ("a list", "- id: a\n", ":1: a dataset is a mapping"),
    (
        "bad stop reason",
        "cases:\n  - {id: a, task: t, expect: [{stop_reason: finished}]}\n",
        "Input should be 'end_turn'",
    ),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD_YAML], ids=[b[0] for b in BAD_YAML])
def test_bad_yaml_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_bad_jsonl_names_the_line(tmp_path: Path) -> None:
    good = '{"id": "a", "task": "t", "expect": [{"regex": "x"}]}\n'
    path = write(tmp_path, good + '{"id": "b", "task": "t"\n', "d.jsonl")
    with pytest.raises(DatasetError, match=r"d\.jsonl:2: not valid JSON"):
        load_dataset(path)
    path = write(tmp_path, good + good.replace('"a"', '"b"') + '{"id": "c", "expect": [{"regex": "x"}]}\n', "e.jsonl")
    with pytest.raises(DatasetError, match=r"e\.jsonl:3: task: Field required"):
        load_dataset(path)


def test_custom_scorer_import_error_is_a_dataset_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cases:\n  - id: a\n    task: t\n    expect:\n      - custom: missing.py:check\n")
    with pytest.raises(DatasetError, match=r":5: cases\[0\]\.expect\[0\]\.custom: .*no such file 'missing.py'"):
        load_dataset(path)


def test_custom_scorer_path_is_relative_to_the_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "checks.py").write_text("def ok(result):\n    return True\n")
    path = write(tmp_path / "sub", "cases:\n  - {id: a, task: t, expect: [{custom: 'checks.py:ok'}]}\n")
    monkeypatch.chdir(tmp_path)
    assert load_dataset(path).cases[0].expect[0].kind == "custom"


@pytest.mark.parametrize(("name", "message"), [("missing.yaml", "cannot read"), ("d.csv", "unknown dataset format")])
def test_unreadable_or_unknown_format(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".csv"):
        write(tmp_path, "x", name)
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path / name)
