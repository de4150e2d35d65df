"""Reports: JSON valid against the shipped schema (and the schema itself stable), JUnit XML that
parses with the right counts, Markdown and the terminal table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from agentwatch.evals import Dataset, EvalReport, load_report, render_table, run_eval, to_junit, to_markdown
from agentwatch.evals.report import SCHEMA_VERSION, percentile, schema
from agentwatch.result import RunResult, StopReason

from .helpers import FakeAgent, make_result, tool_call


def respond(task: str) -> RunResult | Exception:
    if task == "boom":
        return ConnectionError("simulated outage")
    if task == "refuse":
        return make_result("I can't help with that.", stop=StopReason.REFUSAL, cost=None)
    return make_result(f"The answer is {task}.", tools=[tool_call("calculator", {"expression": task})], duration=0.2)


DATASET = Dataset.model_validate(
    {
        "name": "report-ds",
        "path": "evals/report.yaml",
        "cases": [
            {"id": "pass", "task": "42", "expect": [{"contains_all": "42"}, {"tool_called": "calculator"}]},
            {"id": "fail", "task": "41", "expect": [{"contains_all": "42"}, {"max_iterations": 5}]},
            {"id": "error", "task": "boom", "expect": [{"contains_all": "42"}]},
            {"id": "refusal", "task": "refuse", "expect": [{"stop_reason": "refusal"}], "tags": ["safety"]},
        ],
    }
)


@pytest.fixture(scope="module")
def report() -> EvalReport:
    import asyncio

    return asyncio.run(run_eval(DATASET, FakeAgent(respond, name="reporter", version="v3"), repeats=2, threshold=0.5))


def test_json_report_matches_the_shipped_schema(report: EvalReport) -> None:
    data = json.loads(report.to_json())
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.Draft202012Validator(schema()).validate(data)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["summary"]["trials"] == 8 and data["summary"]["trials_passed"] == 4
    assert data["summary"]["pass_rate"] == 0.5 and data["summary"]["passed"] is True
    assert data["cases"][2]["trials"][0]["error"] == "ConnectionError: simulated outage"


def test_the_schema_rejects_what_it_does_not_document(report: EvalReport) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    data = json.loads(report.to_json())
    data["surprise"] = 1
    assert not validator.is_valid(data)
    data = json.loads(report.to_json())
    data["cases"][0]["trials"][0]["scores"][0]["label"] = "maybe"
    assert not validator.is_valid(data)


def test_schema_is_stable() -> None:
    """Changing the report's shape must be deliberate: bump SCHEMA_VERSION and update this list."""
    s = schema()
    assert s["properties"]["schema_version"] == {"const": 1}
    assert s["required"] == [
        "schema_version",
        "agentwatch_version",
        "dataset",
        "agent",
        "started_at",
        "duration_s",
        "settings",
        "summary",
        "cases",
    ]
    assert s["$defs"]["case"]["required"] == [
        "id", "task", "tags", "passed", "pass_rate", "min_pass_rate", "mean_cost_usd", "mean_latency_s", "trials",
    ]  # fmt: skip
    assert s["$defs"]["trial"]["required"] == [
        "trial", "passed", "stop_reason", "answer", "iterations", "tool_calls", "cost_usd", "judge_cost_usd",
        "duration_s", "trace_id", "error", "scores",
    ]  # fmt: skip
    assert s["$defs"]["score"]["required"] == ["name", "passed", "score", "label", "explanation", "cost_usd"]
    # The pydantic model and the hand-kept schema describe the same fields.
    model = EvalReport.model_json_schema()
    assert set(model["properties"]) == set(s["properties"])
    for name in ("CaseReport", "TrialReport", "ScoreReport", "Summary"):
        ours = {"CaseReport": "case", "TrialReport": "trial", "ScoreReport": "score"}.get(name)
        documented = s["$defs"][ours]["properties"] if ours else s["properties"]["summary"]["properties"]
        assert set(model["$defs"][name]["properties"]) == set(documented), name


def test_json_round_trips(report: EvalReport, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(report.to_json())
    assert load_report(path) == report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a JSON report"),
        ('{"schema_version": 99}', "schema_version is 99"),
        ('{"schema_version": 1, "cases": []}', "not a valid eval report"),
    ],
)
def test_load_report_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_report(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_report(tmp_path / "missing.json")


def test_junit_xml_parses_with_the_right_counts(report: EvalReport) -> None:
    root = ET.fromstring(to_junit(report))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.attrib["name"] == "report-ds"
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["errors"]) == ("4", "1", "1")
    cases = {tc.attrib["name"]: tc for tc in suite.findall("testcase")}
    assert list(cases) == ["pass", "fail", "error", "refusal"]
    assert cases["pass"].find("failure") is None and cases["refusal"].find("failure") is None
    failure = cases["fail"].find("failure")
    assert failure is not None and "pass rate 0% below 100%" in failure.attrib["message"]
    assert failure.text and "trial 1: contains_all: answer lacks ['42']" in failure.text
    assert "trial 2: contains_all" in failure.text
    error = cases["error"].find("error")
    assert error is not None and error.text and "ConnectionError: simulated outage" in error.text
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["agent"] == "reporter" and props["agent_version"] == "v3" and props["pass_rate"] == "0.5000"
    assert all(tc.attrib["classname"] == "agentwatch.eval.report-ds" for tc in cases.values())


def test_markdown(report: EvalReport) -> None:
    md = to_markdown(report, "### Compared with the baseline\n\nbaseline text")
    assert md.startswith("## ✅ Eval `report-ds`: reporter `v3`")
    assert "**2/4 cases passed**, pass rate **50%** (threshold 50%)" in md
    assert "| `fail` | ❌ fail | 0% |" in md and "| `error` | ⚠️ error | 0% |" in md
    assert "### Failures" in md and "answer lacks ['42']" in md
    assert md.rstrip().endswith("baseline text")


def test_terminal_table(report: EvalReport) -> None:
    table = render_table(report)
    lines = table.splitlines()
    assert lines[0].split() == ["case", "result", "pass", "stop", "cost", "latency", "why"]
    rows = {line.split()[0]: line for line in lines[2:6]}
    assert "PASS" in rows["pass"] and "FAIL" in rows["fail"] and "ERROR" in rows["error"]
    assert "answer lacks ['42']" in rows["fail"] and "refusal" in rows["refusal"] and "n/a" in rows["refusal"]
    assert "report-ds · reporter v3: 2/4 cases passed, pass rate 50% (threshold 50%) PASSED" in lines[-1]


def test_percentile_nearest_rank() -> None:
    values = [float(i) for i in range(1, 21)]
    assert percentile(values, 0.95) == 19.0 and percentile(values, 0.5) == 10.0
    assert percentile([], 0.95) == 0.0 and percentile([3.0], 0.95) == 3.0
