"""Compare an eval report with an earlier one: which cases regressed or were fixed, and what cost and
latency did. Cases are matched by id."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agentwatch.evals.report import CaseReport, EvalReport


class Change(StrEnum):
    REGRESSION = "regression"  # passed before, fails now
    FIX = "fix"  # failed before, passes now
    STILL_PASSING = "still_passing"
    STILL_FAILING = "still_failing"
    NEW = "new"  # not in the baseline
    REMOVED = "removed"  # only in the baseline


@dataclass(frozen=True)
class CaseDiff:
    """One case, before and after. Deltas are ``now - before``; ``None`` where either side is unknown."""

    id: str
    change: Change
    pass_rate_before: float | None
    pass_rate_now: float | None
    cost_delta_usd: float | None
    latency_delta_s: float | None


@dataclass(frozen=True)
class BaselineDiff:
    """The whole comparison. Totals compare the two summaries; cost is the mean per trial."""

    cases: list[CaseDiff]
    pass_rate_before: float
    pass_rate_now: float
    cost_per_trial_before: float | None
    cost_per_trial_now: float | None
    mean_latency_before_s: float
    mean_latency_now_s: float

    def of(self, change: Change) -> list[CaseDiff]:
        return [c for c in self.cases if c.change is change]

    @property
    def regressions(self) -> list[CaseDiff]:
        return self.of(Change.REGRESSION)

    @property
    def fixes(self) -> list[CaseDiff]:
        return self.of(Change.FIX)

    @property
    def cost_delta_per_trial_usd(self) -> float | None:
        return _delta(self.cost_per_trial_now, self.cost_per_trial_before)

    @property
    def latency_delta_s(self) -> float:
        return self.mean_latency_now_s - self.mean_latency_before_s


def _delta(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else round(now - before, 10)


def _cost_per_trial(report: EvalReport) -> float | None:
    s = report.summary
    known = s.trials - s.trials_cost_unknown
    return None if s.cost_usd is None or known == 0 else s.cost_usd / known


def _case_diff(case_id: str, before: CaseReport | None, now: CaseReport | None) -> CaseDiff:
    if before is None:
        change = Change.NEW
    elif now is None:
        change = Change.REMOVED
    elif before.passed:
        change = Change.STILL_PASSING if now.passed else Change.REGRESSION
    else:
        change = Change.FIX if now.passed else Change.STILL_FAILING
    return CaseDiff(
        id=case_id,
        change=change,
        pass_rate_before=before.pass_rate if before else None,
        pass_rate_now=now.pass_rate if now else None,
        cost_delta_usd=_delta(now.mean_cost_usd, before.mean_cost_usd) if now and before else None,
        latency_delta_s=now.mean_latency_s - before.mean_latency_s if now and before else None,
    )


def compare(now: EvalReport, before: EvalReport) -> BaselineDiff:
    """Diff ``now`` against the baseline ``before``: current cases in order, then removed ones."""
    ids = [c.id for c in now.cases] + [c.id for c in before.cases if now.case(c.id) is None]
    return BaselineDiff(
        cases=[_case_diff(i, before.case(i), now.case(i)) for i in ids],
        pass_rate_before=before.summary.pass_rate,
        pass_rate_now=now.summary.pass_rate,
        cost_per_trial_before=_cost_per_trial(before),
        cost_per_trial_now=_cost_per_trial(now),
        mean_latency_before_s=before.summary.mean_latency_s,
        mean_latency_now_s=now.summary.mean_latency_s,
    )


def _signed_money(value: float | None) -> str:
    return "n/a" if value is None else f"{'+' if value >= 0 else '-'}${abs(value):.6f}"


def _signed_seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}s"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _headline(diff: BaselineDiff) -> str:
    return (
        f"{len(diff.regressions)} regression(s), {len(diff.fixes)} fix(es); pass rate "
        f"{_pct(diff.pass_rate_before)} → {_pct(diff.pass_rate_now)}; cost per trial "
        f"{_signed_money(diff.cost_delta_per_trial_usd)}; "
        f"mean latency {_signed_seconds(diff.latency_delta_s)}"
    )


_NOTABLE = (Change.REGRESSION, Change.FIX, Change.NEW, Change.REMOVED)


def render_text(diff: BaselineDiff) -> str:
    """Plain text for the terminal: the headline, then every case that changed status."""
    lines = [f"baseline: {_headline(diff)}"]
    for case in diff.cases:
        if case.change in _NOTABLE:
            lines.append(
                f"  {case.change.value.upper():<10} {case.id}: {_pct(case.pass_rate_before)} → "
                f"{_pct(case.pass_rate_now)}, cost {_signed_money(case.cost_delta_usd)}, "
                f"latency {_signed_seconds(case.latency_delta_s)}"
            )
    return "\n".join(lines)


def render_markdown(diff: BaselineDiff) -> str:
    """A Markdown section: the headline and a table of every case."""
    out = [
        "### Compared with the baseline",
        "",
        _headline(diff) + ".",
        "",
        "| case | change | pass rate | cost Δ | latency Δ |",
        "|---|---|---|---|---|",
    ]
    for case in diff.cases:
        out.append(
            f"| `{case.id}` | {case.change.value.replace('_', ' ')} | {_pct(case.pass_rate_before)} → "
            f"{_pct(case.pass_rate_now)} | {_signed_money(case.cost_delta_usd)} | "
            f"{_signed_seconds(case.latency_delta_s)} |"
        )
    return "\n".join(out)
