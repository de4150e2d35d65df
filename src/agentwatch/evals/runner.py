"""Run a dataset against an agent: trials in parallel (bounded), scored, traced, counted, reported.

Each trial is an ``evaluate {case}`` span that is current while the agent runs, so the run's
``invoke_agent`` span is its child; each score is a ``gen_ai.evaluation.result`` event on that span
and an ``eval_result`` JSON log record carrying its trace context. ``agentwatch.eval.results``
counts trials by dataset, agent, version and outcome, so the pass rate by version is one PromQL ratio:
``sum by (agentwatch_agent_version) (rate(agentwatch_eval_results_total{agentwatch_eval_outcome="pass"}[1h]))
/ sum by (agentwatch_agent_version) (rate(agentwatch_eval_results_total[1h]))``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from opentelemetry.metrics import Counter
from opentelemetry.trace import Span, SpanKind

from agentwatch import __version__
from agentwatch.evals.dataset import Dataset, EvalCase
from agentwatch.evals.judge import DEFAULT_JUDGE_MODEL, Judge
from agentwatch.evals.progress import Progress
from agentwatch.evals.protocols import AsyncAgent
from agentwatch.evals.report import (
    CaseReport,
    DatasetInfo,
    EvalReport,
    EvaluatedAgent,
    ScoreReport,
    Settings,
    TrialReport,
    summarize,
)
from agentwatch.evals.scorers import Score, ScoreContext
from agentwatch.result import RunResult
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import ContentPolicy, mark_span_error, redact
from agentwatch.telemetry.instruments import counter
from agentwatch.telemetry.logs import logger
from agentwatch.telemetry.recorder import tracer

MAX_EXPLANATION_CHARS = 1024


@cache
def _results_counter() -> Counter:
    return counter(n.M_EVAL_RESULTS, "Eval trials by dataset, agent, version and outcome (pass/fail)")


async def run_eval(
    dataset: Dataset,
    agent: AsyncAgent,
    *,
    client: Any = None,
    concurrency: int = 4,
    repeats: int = 1,
    threshold: float = 1.0,
    judge_client: Any = None,
    judge_model: str | None = None,
    progress: Progress | bool = False,
) -> EvalReport:
    """Run every case of ``dataset`` ``repeats`` times (a case's own ``repeats`` wins) with at most
    ``concurrency`` runs at once, and report. ``client`` goes to ``agent.arun``; the judge uses
    ``judge_client`` or else ``client``. An agent that raises fails that trial; nothing else stops the eval.
    """
    if concurrency < 1 or repeats < 1:
        raise ValueError("concurrency and repeats must be at least 1.")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold is a pass rate between 0 and 1; got {threshold!r}.")
    model = judge_model or dataset.judge_model or DEFAULT_JUDGE_MODEL
    judge = Judge(judge_client if judge_client is not None else client, model)
    plan = [(case, trial) for case in dataset.cases for trial in range(1, (case.repeats or repeats) + 1)]
    bar = progress if isinstance(progress, Progress) else Progress(len(plan), f"eval {dataset.name}")
    show = progress is not False
    semaphore = asyncio.Semaphore(concurrency)
    policy = ContentPolicy.from_env()
    started_at = datetime.now(UTC)
    start = time.perf_counter()

    async def one(case: EvalCase, trial: int) -> TrialReport:
        async with semaphore:
            report = await _run_trial(dataset, case, trial, agent, client, judge, policy)
        if show:
            bar.advance(report.passed)
        return report

    trials = await asyncio.gather(*(one(case, trial) for case, trial in plan))
    if show:
        bar.close()
    by_case: dict[str, list[TrialReport]] = {}
    for (case, _), trial_report in zip(plan, trials, strict=True):
        by_case.setdefault(case.id, []).append(trial_report)
    cases = [_case_report(case, by_case[case.id]) for case in dataset.cases]
    return EvalReport(
        agentwatch_version=__version__,
        dataset=DatasetInfo(name=dataset.name, path=dataset.path, cases=len(dataset.cases)),
        agent=EvaluatedAgent(name=agent.name, version=agent.version, model=_agent_model(agent)),
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_s=time.perf_counter() - start,
        settings=Settings(repeats=repeats, concurrency=concurrency, judge_model=model),
        summary=summarize(cases, threshold),
        cases=cases,
    )


def run_eval_sync(dataset: Dataset, agent: AsyncAgent, **options: Any) -> EvalReport:
    """``run_eval`` from synchronous code (not from inside a running event loop)."""
    return asyncio.run(run_eval(dataset, agent, **options))


def _agent_model(agent: AsyncAgent) -> str | None:
    model = getattr(agent, "model", None)
    return model if isinstance(model, str) else None


async def _run_trial(
    dataset: Dataset,
    case: EvalCase,
    trial: int,
    agent: AsyncAgent,
    client: Any,
    judge: Judge,
    policy: ContentPolicy,
) -> TrialReport:
    attributes: dict[str, Any] = {
        n.GEN_AI_OPERATION_NAME: n.OP_EVALUATE,
        n.GEN_AI_AGENT_NAME: agent.name,
        n.AW_EVAL_DATASET: dataset.name,
        n.AW_EVAL_CASE: case.id,
    }
    if agent.version:
        attributes[n.AW_AGENT_VERSION] = agent.version
    with tracer().start_as_current_span(
        n.evaluate_span_name(case.id), kind=SpanKind.INTERNAL, attributes=attributes, record_exception=False
    ) as span:
        started = time.perf_counter()
        try:
            result = await agent.arun(case.task, client=client)
        except Exception as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            mark_span_error(span, type(exc).__name__, error, exc)
            _record_outcome(span, dataset, agent, passed=False)
            return TrialReport(
                trial=trial,
                passed=False,
                stop_reason=None,
                answer="",
                iterations=0,
                tool_calls=[],
                cost_usd=None,
                judge_cost_usd=None,
                duration_s=time.perf_counter() - started,
                trace_id=None,
                error=error,
                scores=[],
            )
        context = ScoreContext(case_id=case.id, task=case.task, judge=judge)
        scores = await asyncio.gather(*(scorer.score(result, context) for scorer in dataset.scorers_for(case)))
        passed = all(score.passed for score in scores)
        for score in scores:
            _emit_score(span, dataset, case, trial, agent, result, score, policy)
        _record_outcome(span, dataset, agent, passed=passed)
    judge_costs = [s.cost_usd for s in scores if s.cost_usd is not None]
    return TrialReport(
        trial=trial,
        passed=passed,
        stop_reason=result.stop_reason.value,
        answer=result.answer,
        iterations=result.iterations,
        tool_calls=[call.name for call in result.tool_calls],
        cost_usd=result.cost_usd,
        judge_cost_usd=sum(judge_costs) if judge_costs else None,
        duration_s=result.duration_s,
        trace_id=result.trace_id if result.span_context.is_valid else None,
        scores=[
            ScoreReport(
                name=s.name,
                passed=s.passed,
                score=min(1.0, max(0.0, s.value)),
                label=s.label,
                explanation=s.explanation,
                cost_usd=s.cost_usd,
            )
            for s in scores
        ],
    )


def _emit_score(
    span: Span,
    dataset: Dataset,
    case: EvalCase,
    trial: int,
    agent: AsyncAgent,
    result: RunResult,
    score: Score,
    policy: ContentPolicy,
) -> None:
    """The ``gen_ai.evaluation.result`` event on the evaluate span, and its JSON log record. Never raises."""
    try:
        explanation = None
        if policy.enabled or not score.quotes_content:
            explanation = redact(score.explanation)[:MAX_EXPLANATION_CHARS]
        attributes: dict[str, Any] = {
            n.GEN_AI_EVALUATION_NAME: score.name,
            n.GEN_AI_EVALUATION_SCORE_VALUE: float(score.value),
            n.GEN_AI_EVALUATION_SCORE_LABEL: score.label,
        }
        if explanation is not None:
            attributes[n.GEN_AI_EVALUATION_EXPLANATION] = explanation
        span.add_event(n.EVENT_EVALUATION_RESULT, attributes)
        logger.info(
            "eval_result %s %s %s: %s",
            dataset.name,
            case.id,
            score.name,
            score.label,
            extra={
                "event": n.LOG_EVAL_RESULT,
                "dataset": dataset.name,
                "case": case.id,
                "trial": trial,
                "agent": agent.name,
                "version": agent.version,
                "run_trace_id": result.trace_id,
                "evaluation": score.name,
                "score": float(score.value),
                "label": score.label,
                "explanation": explanation,
                "cost_usd": score.cost_usd,
            },
        )
    except Exception:
        logger.debug("could not record an evaluation result", exc_info=True)


def _record_outcome(span: Span, dataset: Dataset, agent: AsyncAgent, *, passed: bool) -> None:
    """The trial's outcome on its span and in ``agentwatch.eval.results``. Never raises."""
    outcome = "pass" if passed else "fail"
    try:
        span.set_attribute(n.AW_EVAL_OUTCOME, outcome)
        attributes = {
            n.AW_EVAL_DATASET: dataset.name,
            n.GEN_AI_AGENT_NAME: agent.name,
            n.AW_EVAL_OUTCOME: outcome,
        }
        if agent.version:
            attributes[n.AW_AGENT_VERSION] = agent.version
        _results_counter().add(1, attributes)
    except Exception:
        logger.debug("could not record an eval outcome", exc_info=True)


def _case_report(case: EvalCase, trials: list[TrialReport]) -> CaseReport:
    pass_rate = sum(t.passed for t in trials) / len(trials)
    costs = [t.cost_usd for t in trials if t.cost_usd is not None]
    return CaseReport(
        id=case.id,
        task=case.task,
        tags=case.tags,
        passed=pass_rate >= case.min_pass_rate,
        pass_rate=pass_rate,
        min_pass_rate=case.min_pass_rate,
        mean_cost_usd=statistics.fmean(costs) if costs else None,
        mean_latency_s=statistics.fmean(t.duration_s for t in trials),
        trials=trials,
    )
