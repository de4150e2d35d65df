"""The shipped example datasets pass with the real Agent against the simulator, and every eval run is
traced: ``evaluate {case}`` spans parent the runs' ``invoke_agent`` spans and carry the scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch import Agent
from agentwatch.evals import load_dataset, run_eval
from agentwatch.refs import load_object
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "evals"


@pytest.fixture(scope="module")
def demo_agent() -> Agent:
    agent: Agent = load_object(f"{EXAMPLES / 'agent.py'}:agent")
    return agent


@pytest.mark.parametrize("name", ["seed.yaml", "behaviour.yaml", "seed.jsonl"])
async def test_example_dataset_passes(name: str, demo_agent: Agent, sim: Simulator) -> None:
    client = anthropic.AsyncAnthropic(api_key="test", base_url=sim.base_url, max_retries=0)
    report = await run_eval(load_dataset(EXAMPLES / name), demo_agent, client=client, concurrency=4)
    failures = [line for c in report.cases for line in c.failure_messages()]
    assert report.summary.passed and report.summary.pass_rate == 1.0, failures
    assert report.summary.cost_usd and report.summary.cost_usd > 0
    if name == "behaviour.yaml":
        stops = {c.id: c.trials[0].stop_reason for c in report.cases}
        assert stops["runaway-loop-stops-at-iteration-budget"] == "max_iterations"
        assert stops["refusal-is-reported"] == "refusal"
        judged = report.case("judge-checks-units")
        assert judged and judged.trials[0].judge_cost_usd and report.summary.judge_cost_usd


async def test_judge_fails_an_answer_missing_the_rubric_phrases(demo_agent: Agent, sim: Simulator) -> None:
    dataset = load_dataset(EXAMPLES / "behaviour.yaml").model_copy(deep=True)
    case = dataset.cases[-1].model_copy(update={"task": "What is 1234 * 5678?"})
    client = anthropic.AsyncAnthropic(api_key="test", base_url=sim.base_url, max_retries=0)
    report = await run_eval(dataset.model_copy(update={"cases": [case], "expect": []}), demo_agent, client=client)
    (score,) = report.cases[0].trials[0].scores
    assert not score.passed and score.name == "judge" and "299,792,458" in score.explanation


async def test_evaluation_events_are_parented_to_the_run(
    demo_agent: Agent, sim: Simulator, spans: InMemorySpanExporter, logs: Any
) -> None:
    client = anthropic.AsyncAnthropic(api_key="test", base_url=sim.base_url, max_retries=0)
    report = await run_eval(load_dataset(EXAMPLES / "seed.yaml"), demo_agent, client=client, repeats=2)
    finished = spans.get_finished_spans()
    evaluates = [s for s in finished if s.name.startswith(f"{n.OP_EVALUATE} ")]
    runs = [s for s in finished if s.name == n.agent_span_name(demo_agent.name)]
    assert len(evaluates) == len(runs) == 6
    by_id = {s.context.span_id: s for s in evaluates}
    for run in runs:
        assert run.parent is not None and run.parent.span_id in by_id  # the run is a child of its eval span
        parent = by_id[run.parent.span_id]
        assert run.context.trace_id == parent.context.trace_id
        assert run.attributes and run.attributes[n.AW_AGENT_VERSION] == "v1"
    trace_ids = {t.trace_id for c in report.cases for t in c.trials}
    assert trace_ids == {format(s.context.trace_id, "032x") for s in evaluates}
    for span in evaluates:
        events = [e for e in span.events if e.name == n.EVENT_EVALUATION_RESULT]
        assert len(events) == 3 and all(
            e.attributes and e.attributes[n.GEN_AI_EVALUATION_SCORE_LABEL] == "pass" for e in events
        )
        assert span.attributes and span.attributes[n.AW_EVAL_OUTCOME] == "pass"
    records = logs.events(n.LOG_EVAL_RESULT)
    assert len(records) == 18
    assert {r["trace_id"] for r in records} == trace_ids  # log records carry the eval span's trace context
