"""``agentwatch eval DATASET --agent module:attribute``: run a dataset, print a table, write reports,
and exit non-zero when the pass rate is below ``--threshold`` — a gate for CI. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the eval's traces, metrics and logs are exported over OTLP.

Exit status: 0 passed; 1 below the threshold (or, with ``--fail-on-regression``, a case regressed
against ``--baseline``); 2 the command could not run (bad dataset, agent reference or options).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentwatch.evals.baseline import BaselineDiff, compare, render_markdown, render_text
from agentwatch.evals.dataset import DatasetError, load_dataset
from agentwatch.evals.protocols import AsyncAgent
from agentwatch.evals.report import EvalReport, load_report, render_table, to_junit, to_markdown
from agentwatch.evals.runner import run_eval
from agentwatch.refs import LoadError, load_agent

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a pass rate between 0 and 1, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, got {text}")
    return value


def add_eval_parser(subparsers: Any) -> None:
    """Add the ``eval`` sub-command to an ``argparse`` sub-parsers object; its handler is
    ``args.func`` (``run_eval_command``)."""
    parser = subparsers.add_parser(
        "eval",
        help="run an eval dataset against an agent and gate on its pass rate",
        description="Run an eval dataset (YAML or JSONL) against an agent; print a table, write reports, "
        "and exit 1 when the pass rate is below --threshold.",
    )
    parser.add_argument("dataset", help="dataset file (.yaml, .yml or .jsonl)")
    parser.add_argument(
        "--agent",
        required=True,
        help="the agent: 'package.module:name' or 'path/to/file.py:name'; an Agent or a zero-argument "
        "factory returning one",
    )
    parser.add_argument("--concurrency", type=_positive, default=4, help="runs at once (default 4)")
    parser.add_argument("--repeats", type=_positive, default=1, help="trials per case (default 1)")
    parser.add_argument(
        "--threshold", type=_rate, default=1.0, help="minimum pass rate over all trials, 0..1 (default 1.0)"
    )
    parser.add_argument("--json", metavar="PATH", help="write the JSON report (schema: report.schema.json)")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML for CI")
    parser.add_argument("--markdown", metavar="PATH", help="write a Markdown summary")
    parser.add_argument("--baseline", metavar="REPORT", help="an earlier JSON report to compare with")
    parser.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a case that passed in --baseline fails"
    )
    parser.add_argument("--judge-model", help="model for judge scorers (default: the dataset's, else Haiku 4.5)")
    parser.add_argument("--sim", action="store_true", help="run against the in-process local simulator")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run_eval_command)


def resolve_agent(reference: str) -> AsyncAgent:
    """The agent a ``--agent`` reference names (an object with ``arun``: an Agent, Shadow or Canary)."""
    agent: AsyncAgent = load_agent(
        reference, lambda obj: isinstance(obj, AsyncAgent), "an agentwatch.Agent (or Shadow, Canary) with --agent"
    )
    return agent


@contextlib.contextmanager
def _client_source(use_sim: bool) -> Iterator[str | None]:
    """The simulator's base URL with ``--sim``; ``None``: the client comes from the environment."""
    if not use_sim:
        yield None
        return
    from agentwatch.sim import Simulator

    with Simulator() as sim:
        yield str(sim.base_url)


@contextlib.contextmanager
def _exporting() -> Iterator[None]:
    """With an OTLP endpoint in the environment, export the eval's traces, metrics and logs (flushed
    before exit); otherwise leave telemetry to whatever the process already has."""
    if not any(os.environ.get(f"OTEL_EXPORTER_OTLP{part}ENDPOINT") for part in ("_", "_TRACES_", "_METRICS_")):
        yield
        return
    from agentwatch.telemetry.setup import configure_telemetry

    telemetry = configure_telemetry(os.environ.get("OTEL_SERVICE_NAME", "agentwatch-eval"))
    try:
        yield
    finally:
        telemetry.shutdown()


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``agentwatch eval`` with parsed ``args``; returns the exit status."""
    try:
        dataset = load_dataset(args.dataset)
        agent = resolve_agent(args.agent)
        baseline = load_report(args.baseline) if args.baseline else None
    except (DatasetError, LoadError, ValueError) as exc:
        print(f"agentwatch eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.sim and not os.environ.get("ANTHROPIC_API_KEY"):
        print(
            "agentwatch eval: ANTHROPIC_API_KEY is not set. Set it to evaluate against the Anthropic API, "
            "or pass --sim to use the local simulator.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def main(base_url: str | None) -> EvalReport:
        client = None
        if base_url is not None:
            import anthropic

            client = anthropic.AsyncAnthropic(api_key="test", base_url=base_url, max_retries=0)
        return await run_eval(
            dataset,
            agent,
            client=client,
            concurrency=args.concurrency,
            repeats=args.repeats,
            threshold=args.threshold,
            judge_model=args.judge_model,
            progress=not args.no_progress,
        )

    with _exporting(), _client_source(args.sim) as base_url:
        report = asyncio.run(main(base_url))
    diff = compare(report, baseline) if baseline else None
    print(render_table(report))
    if diff:
        print(render_text(diff))
    try:
        _write_reports(args, report, diff)
    except OSError as exc:
        print(f"agentwatch eval: cannot write a report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not report.summary.passed:
        return EXIT_FAILED
    if diff and args.fail_on_regression and diff.regressions:
        return EXIT_FAILED
    return EXIT_PASSED


def _write_reports(args: argparse.Namespace, report: EvalReport, diff: BaselineDiff | None) -> None:
    outputs = (
        (args.json, report.to_json),
        (args.junit, lambda: to_junit(report)),
        (args.markdown, lambda: to_markdown(report, render_markdown(diff) if diff else None)),
    )
    for path, render in outputs:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(render(), encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
