"""The eval report: one pydantic model, rendered as a terminal table, JSON, JUnit XML or Markdown.

The JSON form is a stable, documented contract (``report.schema.json`` beside this module, draft
2020-12) with ``schema_version``; a field is only ever added with a version bump and a schema update.
Baselines (``--baseline``) read earlier JSON reports with ``load_report``.
"""

from __future__ import annotations

import json
import math
import statistics
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentwatch.telemetry.content import redact

SCHEMA_VERSION = 1


class _Model(BaseModel):
    """Every report model: its strings (answers, errors, explanations, tasks…) pass through the redactor,
    so no rendering of a report (JSON, JUnit, Markdown, table) can carry a key an error quoted."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _redacted(cls, value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, list) and any(isinstance(item, str) for item in value):
            return [redact(item) if isinstance(item, str) else item for item in value]
        return value


class ScoreReport(_Model):
    """One scorer's finding on one trial."""

    name: str
    passed: bool
    score: float
    label: str
    explanation: str
    cost_usd: float | None = None


class TrialReport(_Model):
    """One run of a case. ``error`` is set when the agent raised instead of returning a result."""

    trial: int
    passed: bool
    stop_reason: str | None
    answer: str
    iterations: int
    tool_calls: list[str]
    cost_usd: float | None
    judge_cost_usd: float | None
    duration_s: float
    trace_id: str | None
    error: str | None = None
    scores: list[ScoreReport]


class CaseReport(_Model):
    """A case over its trials: it passes when ``pass_rate >= min_pass_rate``."""

    id: str
    task: str
    tags: list[str] = Field(default_factory=list)
    passed: bool
    pass_rate: float
    min_pass_rate: float
    mean_cost_usd: float | None
    mean_latency_s: float
    trials: list[TrialReport]

    @property
    def errored(self) -> bool:
        """Every trial raised: the agent never produced a result to score."""
        return bool(self.trials) and all(t.error is not None for t in self.trials)

    def failure_messages(self) -> list[str]:
        """One line per failed scorer or error, per trial."""
        lines = []
        for trial in self.trials:
            if trial.error:
                lines.append(f"trial {trial.trial}: error: {trial.error}")
            lines.extend(f"trial {trial.trial}: {s.name}: {s.explanation}" for s in trial.scores if not s.passed)
        return lines


class Summary(_Model):
    """Totals. ``pass_rate`` is passed trials over all trials; ``passed`` is it against ``threshold``."""

    cases: int
    cases_passed: int
    cases_failed: int
    trials: int
    trials_passed: int
    pass_rate: float
    threshold: float
    passed: bool
    cost_usd: float | None
    trials_cost_unknown: int
    judge_cost_usd: float | None
    mean_latency_s: float
    p95_latency_s: float


class EvaluatedAgent(_Model):
    """The agent under evaluation, as the report names it."""

    name: str
    version: str | None
    model: str | None


class DatasetInfo(_Model):
    name: str
    path: str | None
    cases: int


class Settings(_Model):
    repeats: int
    concurrency: int
    judge_model: str | None


class EvalReport(_Model):
    """Everything an eval run found. ``to_json`` writes the documented, versioned form."""

    schema_version: int = SCHEMA_VERSION
    agentwatch_version: str
    dataset: DatasetInfo
    agent: EvaluatedAgent
    started_at: str
    duration_s: float
    settings: Settings
    summary: Summary
    cases: list[CaseReport]

    def to_json(self) -> str:
        """The report as indented JSON, valid against ``report.schema.json``."""
        return self.model_dump_json(indent=2)

    def case(self, case_id: str) -> CaseReport | None:
        return next((c for c in self.cases if c.id == case_id), None)


def summarize(cases: list[CaseReport], threshold: float) -> Summary:
    """Totals over ``cases``. Cost sums are over trials with a known cost."""
    trials = [t for c in cases for t in c.trials]
    passed = sum(t.passed for t in trials)
    costs = [t.cost_usd for t in trials if t.cost_usd is not None]
    judge_costs = [t.judge_cost_usd for t in trials if t.judge_cost_usd is not None]
    latencies = sorted(t.duration_s for t in trials)
    pass_rate = passed / len(trials) if trials else 0.0
    return Summary(
        cases=len(cases),
        cases_passed=sum(c.passed for c in cases),
        cases_failed=sum(not c.passed for c in cases),
        trials=len(trials),
        trials_passed=passed,
        pass_rate=pass_rate,
        threshold=threshold,
        passed=bool(trials) and pass_rate >= threshold,
        cost_usd=sum(costs) if costs else None,
        trials_cost_unknown=len(trials) - len(costs),
        judge_cost_usd=sum(judge_costs) if judge_costs else None,
        mean_latency_s=statistics.fmean(latencies) if latencies else 0.0,
        p95_latency_s=percentile(latencies, 0.95),
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values; 0.0 for none."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


def schema() -> dict[str, Any]:
    """The JSON schema of the report (``report.schema.json``)."""
    text = resources.files("agentwatch.evals").joinpath("report.schema.json").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def load_report(path: str | Path) -> EvalReport:
    """Read a JSON report written by ``to_json``. Raises ``ValueError`` with the file and the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the report: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not a JSON report: {exc.msg}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: report schema_version is {version!r}; this agentwatch reads version {SCHEMA_VERSION}."
        )
    try:
        return EvalReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: not a valid eval report: {where}: {first['msg']}") from None


# --- renderings ------------------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.4f}"


def _rate(value: float) -> str:
    return f"{value * 100:.0f}%"


def _first_failure(case: CaseReport, limit: int = 70) -> str:
    messages = case.failure_messages()
    if not messages:
        return ""
    text = messages[0].split(": ", 1)[1] if ": " in messages[0] else messages[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_table(report: EvalReport) -> str:
    """A plain-text table for the terminal: one row per case, then the totals."""
    header = ("case", "result", "pass", "stop", "cost", "latency", "why")
    rows = []
    for case in report.cases:
        stops = sorted({t.stop_reason or "error" for t in case.trials})
        rows.append(
            (
                case.id,
                "PASS" if case.passed else ("ERROR" if case.errored else "FAIL"),
                _rate(case.pass_rate),
                ",".join(stops),
                _money(case.mean_cost_usd),
                f"{case.mean_latency_s:.2f}s",
                _first_failure(case),
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    s = report.summary
    verdict = "PASSED" if s.passed else "FAILED"
    lines.append("")
    lines.append(
        f"{report.dataset.name} · {report.agent.name}"
        + (f" {report.agent.version}" if report.agent.version else "")
        + f": {s.cases_passed}/{s.cases} cases passed, pass rate {_rate(s.pass_rate)} "
        f"(threshold {_rate(s.threshold)}) {verdict} · cost {_money(s.cost_usd)}"
        + (f" + judge {_money(s.judge_cost_usd)}" if s.judge_cost_usd is not None else "")
        + f" · mean {s.mean_latency_s:.2f}s, p95 {s.p95_latency_s:.2f}s"
    )
    return "\n".join(lines)


def to_junit(report: EvalReport) -> str:
    """JUnit XML: one ``testsuite`` per dataset, one ``testcase`` per case; a failed case carries its
    scorer messages, a case whose every trial raised is an ``error``."""
    s = report.summary
    errors = sum(c.errored for c in report.cases)
    suites = ET.Element("testsuites", name="agentwatch eval", tests=str(s.cases), time=f"{report.duration_s:.3f}")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=report.dataset.name,
        tests=str(s.cases),
        failures=str(s.cases_failed - errors),
        errors=str(errors),
        skipped="0",
        time=f"{report.duration_s:.3f}",
        timestamp=report.started_at,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("agent", report.agent.name),
        ("agent_version", report.agent.version or ""),
        ("model", report.agent.model or ""),
        ("pass_rate", f"{s.pass_rate:.4f}"),
        ("threshold", f"{s.threshold:.4f}"),
        ("cost_usd", "" if s.cost_usd is None else f"{s.cost_usd:.6f}"),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    for case in report.cases:
        testcase = ET.SubElement(
            suite,
            "testcase",
            classname=f"agentwatch.eval.{report.dataset.name}",
            name=case.id,
            time=f"{sum(t.duration_s for t in case.trials):.3f}",
        )
        if not case.passed:
            tag = "error" if case.errored else "failure"
            summary = f"pass rate {_rate(case.pass_rate)} below {_rate(case.min_pass_rate)}"
            element = ET.SubElement(testcase, tag, message=f"{summary}: {_first_failure(case, 200)}", type=tag)
            element.text = "\n".join(case.failure_messages())
        traces = [f"trial {t.trial}: trace_id={t.trace_id} stop={t.stop_reason}" for t in case.trials]
        ET.SubElement(testcase, "system-out").text = "\n".join(traces)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(report: EvalReport, baseline_markdown: str | None = None) -> str:
    """A Markdown summary (for a PR comment or a CI job summary), with the baseline diff if given."""
    s = report.summary
    icon = "✅" if s.passed else "❌"
    version = f" `{report.agent.version}`" if report.agent.version else ""
    out = [
        f"## {icon} Eval `{report.dataset.name}`: {report.agent.name}{version}",
        "",
        f"**{s.cases_passed}/{s.cases} cases passed**, pass rate **{_rate(s.pass_rate)}** "
        f"(threshold {_rate(s.threshold)}); cost {_money(s.cost_usd)}"
        + (f" + judge {_money(s.judge_cost_usd)}" if s.judge_cost_usd is not None else "")
        + f"; latency mean {s.mean_latency_s:.2f}s, p95 {s.p95_latency_s:.2f}s.",
        "",
        "| case | result | pass rate | cost | latency |",
        "|---|---|---|---|---|",
    ]
    for case in report.cases:
        result = "✅ pass" if case.passed else ("⚠️ error" if case.errored else "❌ fail")
        out.append(
            f"| `{_md(case.id)}` | {result} | {_rate(case.pass_rate)} | {_money(case.mean_cost_usd)} "
            f"| {case.mean_latency_s:.2f}s |"
        )
    failed = [c for c in report.cases if not c.passed]
    if failed:
        out += ["", "### Failures", ""]
        for case in failed:
            out.append(f"- `{_md(case.id)}`: {_md(case.task)[:120]}")
            out.extend(f"  - {_md(line)[:300]}" for line in case.failure_messages()[:10])
    if baseline_markdown:
        out += ["", baseline_markdown]
    return "\n".join(out) + "\n"
