"""Baseline comparison: regressions and fixes per case, cost and latency deltas."""

from __future__ import annotations

import asyncio

from agentwatch.evals import Change, Dataset, EvalReport, compare, run_eval
from agentwatch.evals.baseline import render_markdown, render_text

from .helpers import FakeAgent, make_result


def report(answers: dict[str, str], *, cost: float, duration: float) -> EvalReport:
    dataset = Dataset.model_validate(
        {"name": "b", "cases": [{"id": k, "task": k, "expect": [{"contains_all": "ok"}]} for k in answers]}
    )
    agent = FakeAgent(lambda task: make_result(answers[task], cost=cost, duration=duration))
    return asyncio.run(run_eval(dataset, agent, threshold=0))


BEFORE = report(
    {"steady": "ok", "regressed": "ok", "fixed": "no", "broken": "no", "dropped": "ok"}, cost=0.002, duration=1.0
)
NOW = report(
    {"steady": "ok", "regressed": "no", "fixed": "ok", "broken": "no", "added": "ok"}, cost=0.003, duration=0.75
)


def test_changes_per_case() -> None:
    diff = compare(NOW, BEFORE)
    assert {c.id: c.change for c in diff.cases} == {
        "steady": Change.STILL_PASSING,
        "regressed": Change.REGRESSION,
        "fixed": Change.FIX,
        "broken": Change.STILL_FAILING,
        "added": Change.NEW,
        "dropped": Change.REMOVED,
    }
    assert [c.id for c in diff.regressions] == ["regressed"] and [c.id for c in diff.fixes] == ["fixed"]
    assert [c.id for c in diff.cases][-1] == "dropped"


def test_deltas() -> None:
    diff = compare(NOW, BEFORE)
    steady = diff.cases[0]
    assert steady.cost_delta_usd is not None and abs(steady.cost_delta_usd - 0.001) < 1e-12
    assert steady.latency_delta_s == -0.25
    assert (steady.pass_rate_before, steady.pass_rate_now) == (1.0, 1.0)
    added = next(c for c in diff.cases if c.id == "added")
    assert (added.pass_rate_before, added.cost_delta_usd, added.latency_delta_s) == (None, None, None)
    assert diff.pass_rate_before == 0.6 and diff.pass_rate_now == 0.6
    assert diff.cost_delta_per_trial_usd is not None and abs(diff.cost_delta_per_trial_usd - 0.001) < 1e-12
    assert diff.latency_delta_s == -0.25


def test_renderings() -> None:
    diff = compare(NOW, BEFORE)
    text = render_text(diff)
    assert text.startswith("baseline: 1 regression(s), 1 fix(es); pass rate 60% → 60%; cost per trial +$0.001000")
    assert "REGRESSION regressed: 100% → 0%" in text and "FIX" in text and "NEW" in text and "REMOVED" in text
    assert "steady" not in text  # unchanged cases are not listed
    md = render_markdown(diff)
    assert "| `regressed` | regression | 100% → 0% | +$0.001000 | -0.25s |" in md
    assert "| `dropped` | removed | 100% → — | n/a | n/a |" in md


def test_same_report_has_no_changes() -> None:
    diff = compare(BEFORE, BEFORE)
    assert not diff.regressions and not diff.fixes and diff.cost_delta_per_trial_usd == 0
