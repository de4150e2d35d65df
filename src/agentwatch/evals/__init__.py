"""Evals: datasets of tasks with expectations, scored runs, reports, baselines — changes gated in CI.

``load_dataset`` reads YAML/JSONL cases, ``run_eval`` runs them against an agent (traced, with
``gen_ai.evaluation.result`` events and the ``agentwatch.eval.results`` metric), and the report
renders as a table, JSON (``report.schema.json``), JUnit XML or Markdown; ``compare`` diffs two reports.
"""

from agentwatch.evals.baseline import BaselineDiff, CaseDiff, Change, compare
from agentwatch.evals.dataset import Dataset, DatasetError, EvalCase, load_dataset
from agentwatch.evals.judge import DEFAULT_JUDGE_MODEL, Judge, Verdict, parse_verdict
from agentwatch.evals.report import EvalReport, load_report, render_table, to_junit, to_markdown
from agentwatch.evals.runner import run_eval, run_eval_sync
from agentwatch.evals.scorers import Score, ScoreContext, parse_numbers

__all__ = [
    "DEFAULT_JUDGE_MODEL",
    "BaselineDiff",
    "CaseDiff",
    "Change",
    "Dataset",
    "DatasetError",
    "EvalCase",
    "EvalReport",
    "Judge",
    "Score",
    "ScoreContext",
    "Verdict",
    "compare",
    "load_dataset",
    "load_report",
    "parse_numbers",
    "parse_verdict",
    "render_table",
    "run_eval",
    "run_eval_sync",
    "to_junit",
    "to_markdown",
]
