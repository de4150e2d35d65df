"""Every scorer passes what it should and fails what it should, with a message that says why."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from agentwatch.evals.judge import JUDGE_SYSTEM, Judge, parse_verdict
from agentwatch.evals.scorers import Score, ScoreContext, Scorer, expand_expectation, parse_numbers
from agentwatch.result import RunResult, StopReason

from .helpers import make_result, tool_call

ADAPTER: TypeAdapter[Any] = TypeAdapter(Scorer)  # type: ignore[arg-type]
CONTEXT = ScoreContext(case_id="c", task="What is 1234 * 5678?")


def scorer(item: dict[str, Any], base_dir: Path | None = None) -> Any:
    context = {"base_dir": str(base_dir)} if base_dir else None
    return ADAPTER.validate_python(expand_expectation(item), context=context)


async def score(item: dict[str, Any], result: RunResult, context: ScoreContext = CONTEXT) -> Score:
    found: Score = await scorer(item).score(result, context)
    return found


ANSWER = "1234 × 5678 = 7,006,652. Earth has about 8.1 billion people."
CALC = tool_call("calculator", {"expression": "1234 * 5678", "options": {"precise": True}})
SEARCH = tool_call("web_search", {"query": "population"})

# (expectation, result, passes)
CASES: list[tuple[str, dict[str, Any], RunResult, bool]] = [
    ("contains_all pass", {"contains_all": ["7,006,652", "BILLION"]}, make_result(ANSWER), True),
    ("contains_all fail", {"contains_all": ["7,006,652", "trillion"]}, make_result(ANSWER), False),
    (
        "contains_all case",
        {"contains_all": {"values": ["BILLION"], "case_sensitive": True}},
        make_result(ANSWER),
        False,
    ),
    ("contains_any pass", {"contains_any": ["nope", "billion"]}, make_result(ANSWER), True),
    ("contains_any fail", {"contains_any": ["nope", "never"]}, make_result(ANSWER), False),
    ("not_contains pass", {"not_contains": "I can't"}, make_result(ANSWER), True),
    ("not_contains fail", {"not_contains": ["billion"]}, make_result(ANSWER), False),
    ("regex pass", {"regex": r"7,?006,?652"}, make_result(ANSWER), True),
    ("regex fail", {"regex": r"^\d+$"}, make_result(ANSWER), False),
    ("regex ignore_case", {"regex": {"pattern": "EARTH", "ignore_case": True}}, make_result(ANSWER), True),
    ("number pass", {"number_close_to": 7006652}, make_result(ANSWER), True),
    ("number rel pass", {"number_close_to": {"value": 8e9, "rel_tolerance": 0.05}}, make_result(ANSWER), True),
    ("number abs fail", {"number_close_to": {"value": 7006600, "tolerance": 10}}, make_result(ANSWER), False),
    ("number none", {"number_close_to": 42}, make_result("no numbers here"), False),
    ("tool_called pass", {"tool_called": "calculator"}, make_result(tools=[CALC]), True),
    ("tool_called fail", {"tool_called": "calculator"}, make_result(tools=[SEARCH]), False),
    (
        "tool_called input subset pass",
        {"tool_called": {"name": "calculator", "input": {"options": {"precise": True}}}},
        make_result(tools=[CALC]),
        True,
    ),
    (
        "tool_called input subset fail",
        {"tool_called": {"name": "calculator", "input": {"expression": "1 + 1"}}},
        make_result(tools=[CALC]),
        False,
    ),
    (
        "tool_called min_times fail",
        {"tool_called": {"name": "calculator", "min_times": 2}},
        make_result(tools=[CALC]),
        False,
    ),
    ("tool_not_called pass", {"tool_not_called": "web_search"}, make_result(tools=[CALC]), True),
    ("tool_not_called fail", {"tool_not_called": ["web_search", "x"]}, make_result(tools=[CALC, SEARCH]), False),
    ("max_iterations pass", {"max_iterations": 3}, make_result(iterations=3), True),
    ("max_iterations fail", {"max_iterations": 3}, make_result(iterations=4), False),
    ("max_cost pass", {"max_cost_usd": 0.01}, make_result(cost=0.0099), True),
    ("max_cost fail", {"max_cost_usd": 0.01}, make_result(cost=0.02), False),
    ("max_cost unknown fails", {"max_cost_usd": 0.01}, make_result(cost=None), False),
    ("max_seconds pass", {"max_seconds": 1}, make_result(duration=0.5), True),
    ("max_seconds fail", {"max_seconds": 1}, make_result(duration=1.5), False),
    ("stop_reason pass", {"stop_reason": "max_iterations"}, make_result(stop=StopReason.MAX_ITERATIONS), True),
    ("stop_reason any of", {"stop_reason": ["refusal", "end_turn"]}, make_result(), True),
    ("stop_reason fail", {"stop_reason": "end_turn"}, make_result(stop=StopReason.TIMEOUT, detail="slow"), False),
]


@pytest.mark.parametrize(("expectation", "result", "passes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_rule_scorers(expectation: dict[str, Any], result: RunResult, passes: bool) -> None:
    found = await score(expectation, result)
    assert found.passed is passes, found.explanation
    assert found.name == next(iter(expectation))
    assert found.label == ("pass" if passes else "fail")
    assert found.explanation
    assert 0.0 <= found.value <= 1.0


async def test_failure_messages_say_why() -> None:
    missing = await score({"contains_all": ["7,006,652", "trillion"]}, make_result(ANSWER))
    assert "trillion" in missing.explanation and missing.value == 0.5
    tool = await score({"tool_called": "calculator"}, make_result(tools=[SEARCH]))
    assert "web_search" in tool.explanation and "0 time" in tool.explanation
    stop = await score({"stop_reason": "end_turn"}, make_result(stop=StopReason.TIMEOUT, detail="slow"))
    assert "timeout" in stop.explanation and "slow" in stop.explanation


async def test_label_renames_the_score() -> None:
    found = await score({"contains_all": {"values": ["8"], "label": "mentions eight"}}, make_result("8"))
    assert found.name == "mentions eight"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7,006,652", [7006652.0]),
        ("299 792 458 m/s", [299.0, 792.0, 458.0, 299792458.0]),
        ("299\u202f792\u202f458", [299792458.0]),
        ("about 8.1 billion people", [8.1e9]),
        ("3e8 and -2.5", [3e8, -2.5]),
        ("1,000.5 and 12,34", [1000.5, 12.0]),
        ("version claude-3", [3.0]),
        ("none", []),
    ],
)
def test_parse_numbers(text: str, expected: list[float]) -> None:
    assert parse_numbers(text) == expected


# --- judge -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "passed", "value"),
    [
        ('{"verdict": "pass", "score": 1, "reason": "ok"}', True, 1.0),
        ('```json\n{"verdict": "FAIL", "score": 0.25, "reason": "missing"}\n```', False, 0.25),
        ('Sure! Here is my verdict: {"verdict": "pass"} Hope that helps {', True, 1.0),
        ('{"pass": true, "score": "80%"}', True, 0.8),
        ('{"score": 85}', True, 0.85),
        ('{"score": 0.2}', False, 0.2),
        ('{"note": "x"} then {"result": "failed", "explanation": "no units"}', False, 0.0),
        ("Verdict: PASS", True, 1.0),
        ("The answer FAILED the rubric.", False, 0.0),
    ],
)
def test_parse_verdict(reply: str, passed: bool, value: float) -> None:
    verdict = parse_verdict(reply)
    assert verdict is not None
    assert (verdict.passed, verdict.score) == (passed, value)


@pytest.mark.parametrize("reply", ["", "I cannot decide.", "pass or fail, who knows", '{"note": 1}'])
def test_parse_verdict_without_a_verdict(reply: str) -> None:
    assert parse_verdict(reply) is None


class FakeMessages:
    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []

    async def create(self, **request: Any) -> Any:
        self.requests.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        usage = {"input_tokens": 1000, "output_tokens": 100}
        return SimpleNamespace(content=[SimpleNamespace(type="text", text=self.reply)], usage=usage)


def fake_judge(reply: str | Exception, model: str = "claude-haiku-4-5-20251001") -> tuple[Judge, FakeMessages]:
    messages = FakeMessages(reply)
    return Judge(SimpleNamespace(messages=messages), model), messages


async def test_judge_pass_reports_its_cost_and_sends_the_rubric() -> None:
    judge, messages = fake_judge('{"verdict": "pass", "score": 0.9, "reason": "has units"}')
    context = ScoreContext("c", "What is c?", judge)
    found = await scorer({"judge": 'Says "m/s".'}).score(make_result("299,792,458 m/s"), context)
    assert found.passed and found.value == 0.9 and "has units" in found.explanation
    assert found.cost_usd == pytest.approx(1000 * 1e-6 + 100 * 5e-6)  # Haiku 4.5: $1 / $5 per MTok
    request = messages.requests[0]
    assert request["system"] == JUDGE_SYSTEM and request["system"].startswith("You are an evaluation judge")
    prompt = request["messages"][0]["content"]
    assert 'Rubric: Says "m/s".' in prompt and prompt.rstrip().endswith("Answer: 299,792,458 m/s")


async def test_judge_fail_threshold_and_model_override() -> None:
    judge, messages = fake_judge('{"verdict": "pass", "score": 0.6}')
    context = ScoreContext("c", "t", judge)
    found = await scorer({"judge": {"rubric": "r", "threshold": 0.7, "model": "claude-sonnet-4-6"}}).score(
        make_result("x"), context
    )
    assert not found.passed and found.value == 0.6
    assert messages.requests[0]["model"] == "claude-sonnet-4-6"
    judge, _ = fake_judge('{"verdict": "fail", "score": 0, "reason": "no units"}')
    found = await scorer({"judge": "r"}).score(make_result("x"), ScoreContext("c", "t", judge))
    assert not found.passed and "no units" in found.explanation


async def test_judge_errors_fail_the_score_without_raising() -> None:
    judge, _ = fake_judge(RuntimeError("connection refused"))
    found = await scorer({"judge": "r"}).score(make_result("x"), ScoreContext("c", "t", judge))
    assert not found.passed and "connection refused" in found.explanation
    judge, _ = fake_judge("I refuse to grade this.")
    found = await scorer({"judge": "r"}).score(make_result("x"), ScoreContext("c", "t", judge))
    assert not found.passed and "no verdict" in found.explanation and found.cost_usd is not None


async def test_judge_unknown_model_cost_is_none() -> None:
    judge, _ = fake_judge('{"verdict": "pass"}', model="some-unpriced-model")
    found = await scorer({"judge": "r"}).score(make_result("x"), ScoreContext("c", "t", judge))
    assert found.passed and found.cost_usd is None


# --- custom ----------------------------------------------------------------------------------------

CUSTOM = """
from agentwatch.evals import Score

def as_bool(result):
    return "8" in result.answer

def as_tuple(result, word="billion"):
    return word in result.answer, f"looked for {word}"

def as_score(result):
    return Score("mine", True, 0.7, "custom score")

async def as_async(result, context):
    return context.case_id == "c", "saw the context"

def raises(result):
    raise KeyError("boom")

def wrong_type(result):
    return 0.5

not_callable = 3
"""


@pytest.fixture
def custom_dir(tmp_path: Path) -> Path:
    (tmp_path / "checks.py").write_text(CUSTOM)
    return tmp_path


@pytest.mark.parametrize(
    ("function", "args", "passed", "explanation"),
    [
        ("as_bool", {}, True, "returned True"),
        ("as_tuple", {"word": "trillion"}, False, "looked for trillion"),
        ("as_score", {}, True, "custom score"),
        ("as_async", {}, True, "saw the context"),
        ("raises", {}, False, "raised KeyError"),
        ("wrong_type", {}, False, "expected bool"),
    ],
)
async def test_custom_scorers(
    custom_dir: Path, function: str, args: dict[str, Any], passed: bool, explanation: str
) -> None:
    item = {"custom": {"function": f"checks.py:{function}", "args": args}}
    found = await scorer(item, custom_dir).score(make_result(ANSWER), CONTEXT)
    assert found.passed is passed
    assert explanation in found.explanation


async def test_custom_scorer_by_module_reference(custom_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(custom_dir))
    found = await scorer({"custom": "checks:as_bool"}).score(make_result(ANSWER), CONTEXT)
    assert found.passed and found.name == "as_bool"


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("checks.py:missing", "has no attribute 'missing'"),
        ("checks.py:not_callable", "not callable"),
        ("nope.py:f", "no such file"),
        ("no_such_module_xyz:f", "cannot import module"),
        ("no-colon", "is not a reference"),
    ],
)
def test_custom_scorer_reference_errors(custom_dir: Path, function: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        scorer({"custom": function}, custom_dir)


def test_custom_scorer_is_imported_never_evaluated(custom_dir: Path) -> None:
    with pytest.raises(ValidationError, match="cannot import module"):
        scorer({"custom": "__import__('os').system('true'):x"}, custom_dir)
