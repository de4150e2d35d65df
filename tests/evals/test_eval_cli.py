"""``agentwatch eval``: the real Agent against the in-process simulator, reports, exit statuses."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from agentwatch.evals.cli import EXIT_FAILED, EXIT_PASSED, EXIT_USAGE, add_eval_parser, resolve_agent
from agentwatch.evals.report import schema
from agentwatch.refs import LoadError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "evals"
AGENT = f"{EXAMPLES / 'agent.py'}:agent"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="agentwatch")
    add_eval_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", *argv])
    status: int = args.func(args)
    return status


def test_seed_passes_and_writes_every_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    status = run(
        str(EXAMPLES / "seed.yaml"),
        "--agent", AGENT, "--sim", "--concurrency", "3",
        "--json", str(out / "r.json"), "--junit", str(out / "r.xml"), "--markdown", str(out / "r.md"),
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == EXIT_PASSED, captured.out + captured.err
    assert "seed · research-assistant v1: 3/3 cases passed, pass rate 100%" in captured.out
    assert "eval seed [" in captured.err and "3/3 trials" in captured.err
    data = json.loads((out / "r.json").read_text())
    jsonschema.validate(data, schema())
    assert [c["id"] for c in data["cases"]] == ["earth-population", "multiplication", "speed-of-light"]
    assert all(len(t["trace_id"] or "x" * 32) == 32 for c in data["cases"] for t in c["trials"])
    assert ET.parse(out / "r.xml").getroot().find("testsuite").attrib["failures"] == "0"  # type: ignore[union-attr]
    assert (out / "r.md").read_text().startswith("## ✅ Eval `seed`")


def test_below_threshold_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "hard.yaml"
    dataset.write_text(
        "cases:\n"
        "  - {id: ok, task: 'What is 1234 * 5678?', expect: [{contains_all: '7,006,652'}]}\n"
        "  - {id: wrong, task: 'What is 1234 * 5678?', expect: [{contains_all: '42'}]}\n"
    )
    assert run(str(dataset), "--agent", AGENT, "--sim", "--no-progress") == EXIT_FAILED
    assert run(str(dataset), "--agent", AGENT, "--sim", "--no-progress", "--threshold", "0.5") == EXIT_PASSED
    out = capsys.readouterr().out
    assert "FAILED" in out and "answer lacks ['42']" in out


def test_baseline_comparison_and_fail_on_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "d.yaml"
    dataset.write_text("cases:\n  - {id: mult, task: 'What is 1234 * 5678?', expect: [{contains_all: '7,006,652'}]}\n")
    baseline = tmp_path / "before.json"
    assert run(str(dataset), "--agent", AGENT, "--sim", "--no-progress", "--json", str(baseline)) == EXIT_PASSED
    # The case now expects something else: it regresses against the baseline.
    dataset.write_text("cases:\n  - {id: mult, task: 'What is 1234 * 5678?', expect: [{contains_all: 'seven'}]}\n")
    args = (str(dataset), "--agent", AGENT, "--sim", "--no-progress", "--baseline", str(baseline), "--threshold", "0")
    md = tmp_path / "r.md"
    assert run(*args, "--markdown", str(md)) == EXIT_PASSED
    assert run(*args, "--fail-on-regression") == EXIT_FAILED
    out = capsys.readouterr().out
    assert "baseline: 1 regression(s), 0 fix(es); pass rate 100% → 0%" in out and "REGRESSION mult" in out
    assert "| `mult` | regression | 100% → 0% |" in md.read_text()


def test_factory_and_module_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert resolve_agent("examples.evals.agent:agent").version == "v1"
    assert resolve_agent(f"{EXAMPLES / 'agent.py'}:candidate").version == "v2"
    with pytest.raises(LoadError, match="not an agent"):
        resolve_agent("examples.evals.agent:Limits")  # a class whose call returns a Limits


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.yaml", "--agent", AGENT, "--sim"], "cannot read the dataset"),
        ([str(EXAMPLES / "seed.yaml"), "--agent", "nowhere_xyz:agent", "--sim"], "cannot import module 'nowhere_xyz'"),
        ([str(EXAMPLES / "seed.yaml"), "--agent", f"{EXAMPLES / 'agent.py'}:nope", "--sim"], "has no attribute 'nope'"),
        (
            [str(EXAMPLES / "seed.yaml"), "--agent", AGENT, "--sim", "--baseline", "missing.json"],
            "cannot read the report",
        ),
        ([str(EXAMPLES / "seed.yaml"), "--agent", AGENT], "ANTHROPIC_API_KEY is not set"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert run(*argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_threshold_must_be_a_rate() -> None:
    with pytest.raises(SystemExit):
        run("d.yaml", "--agent", AGENT, "--threshold", "90")
