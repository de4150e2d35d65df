"""The eval runner: repeats and pass rates, bounded concurrency, errors contained, telemetry emitted."""

from __future__ import annotations

import io
import itertools
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.evals import Dataset, run_eval
from agentwatch.evals.progress import Progress
from agentwatch.result import RunResult
from agentwatch.telemetry import names as n
from agentwatch.telemetry.recorder import tracer

from .helpers import FakeAgent, make_result


def dataset(*cases: dict[str, Any], name: str = "unit", expect: list[Any] | None = None) -> Dataset:
    return Dataset.model_validate({"name": name, "cases": list(cases), "expect": expect or []})


def case(case_id: str, task: str, *expect: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": case_id, "task": task, "expect": list(expect), **extra}


async def test_repeats_give_a_pass_rate_per_case() -> None:
    flips = itertools.cycle([True, False])
    agent = FakeAgent(lambda task: make_result("yes" if task != "flaky" or next(flips) else "no"))
    data = dataset(
        case("steady", "steady", {"contains_all": "yes"}),
        case("flaky", "flaky", {"contains_all": "yes"}),
        case("flaky-ok", "flaky", {"contains_all": "yes"}, min_pass_rate=0.5),
        case("once", "steady", {"contains_all": "yes"}, repeats=1),
    )
    report = await run_eval(data, agent, repeats=4)
    rates = {c.id: (c.pass_rate, c.passed, len(c.trials)) for c in report.cases}
    assert rates == {
        "steady": (1.0, True, 4),
        "flaky": (0.5, False, 4),
        "flaky-ok": (0.5, True, 4),
        "once": (1.0, True, 1),
    }
    s = report.summary
    assert (s.trials, s.trials_passed, s.cases_passed, s.cases_failed) == (13, 9, 3, 1)
    assert s.pass_rate == 9 / 13 and not s.passed
    assert [t.trial for t in report.cases[0].trials] == [1, 2, 3, 4]


async def test_threshold_decides_the_summary() -> None:
    agent = FakeAgent(lambda task: make_result(task))
    data = dataset(case("a", "yes", {"contains_all": "yes"}), case("b", "no", {"contains_all": "yes"}))
    assert (await run_eval(data, agent, threshold=0.5)).summary.passed
    assert not (await run_eval(data, agent, threshold=0.51)).summary.passed


async def test_concurrency_is_bounded() -> None:
    agent = FakeAgent(lambda task: make_result("ok"), delay_s=0.02)
    data = dataset(*(case(f"c{i}", "t", {"contains_all": "ok"}) for i in range(12)))
    report = await run_eval(data, agent, concurrency=3)
    assert agent.max_active == 3 and report.summary.passed


async def test_an_agent_that_raises_fails_its_trial_only() -> None:
    def respond(task: str) -> RunResult | Exception:
        return RuntimeError("api key sk-ant-abcdefghijklmnop rejected") if task == "boom" else make_result("ok")

    data = dataset(case("boom", "boom", {"contains_all": "ok"}), case("fine", "fine", {"contains_all": "ok"}))
    report = await run_eval(data, FakeAgent(respond))
    boom, fine = report.cases
    assert fine.passed and not boom.passed and boom.errored
    trial = boom.trials[0]
    assert trial.error and trial.error.startswith("RuntimeError") and "sk-ant-abcdefghijklmnop" not in trial.error
    assert trial.stop_reason is None and trial.scores == []


async def test_dataset_expectations_apply_to_every_case() -> None:
    agent = FakeAgent(lambda task: make_result("ok", cost=0.5))
    data = dataset(case("a", "t", {"contains_all": "ok"}), expect=[{"max_cost_usd": 0.1}])
    report = await run_eval(data, agent)
    assert [s.name for s in report.cases[0].trials[0].scores] == ["contains_all", "max_cost_usd"]
    assert not report.cases[0].passed


async def test_costs_and_latencies_are_reported() -> None:
    costs = iter([0.001, 0.003, None])
    agent = FakeAgent(lambda task: make_result("ok", cost=next(costs), duration=0.5))
    report = await run_eval(dataset(case("a", "t", {"contains_all": "ok"})), agent, repeats=3)
    c = report.cases[0]
    assert c.mean_cost_usd == 0.002 and c.mean_latency_s == 0.5
    assert report.summary.cost_usd == 0.004 and report.summary.trials_cost_unknown == 1
    assert report.summary.judge_cost_usd is None
    assert report.agent.model == "fake-model" and report.agent.version == "v1"


async def test_progress_bar_goes_to_its_stream() -> None:
    stream = io.StringIO()
    agent = FakeAgent(lambda task: make_result(task))
    data = dataset(case("a", "ok", {"contains_all": "ok"}), case("b", "no", {"contains_all": "ok"}))
    await run_eval(data, agent, progress=Progress(2, "eval unit", stream))
    lines = stream.getvalue().splitlines()
    assert lines[-1] == f"eval unit [{'#' * 30}] 2/2 trials · 1 passed · 1 failed"


async def test_metric_counts_trials_by_dataset_version_and_outcome(metric_points: Any) -> None:
    agent = FakeAgent(lambda task: make_result(task), name="metric-agent", version="v7")
    data = dataset(case("a", "ok", {"contains_all": "ok"}), case("b", "no", {"contains_all": "ok"}), name="metrics-ds")
    await run_eval(data, agent, repeats=2)
    base = {n.AW_EVAL_DATASET: "metrics-ds", n.GEN_AI_AGENT_NAME: "metric-agent", n.AW_AGENT_VERSION: "v7"}
    passed = metric_points(n.M_EVAL_RESULTS[0], **base, **{n.AW_EVAL_OUTCOME: "pass"})
    failed = metric_points(n.M_EVAL_RESULTS[0], **base, **{n.AW_EVAL_OUTCOME: "fail"})
    assert [p.value for p in passed] == [2] and [p.value for p in failed] == [2]


class SpanningAgent(FakeAgent):
    """Opens an ``invoke_agent`` span the way the runner does (child of the current span)."""

    async def arun(self, task: str, *, client: Any = None) -> RunResult:
        with tracer().start_as_current_span(n.agent_span_name(self.name)) as span:
            result = await super().arun(task, client=client)
            result.span_context = span.get_span_context()
            result.trace_id = format(result.span_context.trace_id, "032x")
            return result


async def test_each_score_is_an_evaluation_event_on_the_runs_parent(spans: InMemorySpanExporter, logs: Any) -> None:
    agent = SpanningAgent(lambda task: make_result("7,006,652"), name="span-agent")
    data = dataset(case("mult", "t", {"contains_all": "7,006,652"}, {"max_iterations": 0}), name="events")
    await run_eval(data, agent)
    finished = spans.get_finished_spans()
    evaluate = next(s for s in finished if s.name == "evaluate mult")
    run = next(s for s in finished if s.name == "invoke_agent span-agent")
    assert run.parent is not None and run.parent.span_id == evaluate.context.span_id
    assert evaluate.attributes is not None
    assert evaluate.attributes[n.GEN_AI_OPERATION_NAME] == n.OP_EVALUATE
    assert evaluate.attributes[n.AW_EVAL_DATASET] == "events" and evaluate.attributes[n.AW_EVAL_CASE] == "mult"
    assert evaluate.attributes[n.AW_EVAL_OUTCOME] == "fail"
    events = [e for e in evaluate.events if e.name == n.EVENT_EVALUATION_RESULT]
    assert [dict(e.attributes or {}) for e in events] == [
        {
            n.GEN_AI_EVALUATION_NAME: "contains_all",
            n.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
            n.GEN_AI_EVALUATION_SCORE_LABEL: "pass",
            n.GEN_AI_EVALUATION_EXPLANATION: "answer contains all of ['7,006,652']",
        },
        {
            n.GEN_AI_EVALUATION_NAME: "max_iterations",
            n.GEN_AI_EVALUATION_SCORE_VALUE: 0.0,
            n.GEN_AI_EVALUATION_SCORE_LABEL: "fail",
            n.GEN_AI_EVALUATION_EXPLANATION: "1 iteration(s), limit 0",
        },
    ]
    records = logs.events(n.LOG_EVAL_RESULT)
    assert [(r["evaluation"], r["label"]) for r in records] == [("contains_all", "pass"), ("max_iterations", "fail")]
    trace_id = format(evaluate.context.trace_id, "032x")
    assert all(r["trace_id"] == trace_id and r["span_id"] == format(evaluate.context.span_id, "016x") for r in records)
    assert all(r["run_trace_id"] == trace_id and r["dataset"] == "events" and r["case"] == "mult" for r in records)


async def test_content_quoting_explanations_stay_out_of_telemetry(spans: InMemorySpanExporter, logs: Any) -> None:
    agent = FakeAgent(lambda task: make_result("secret answer 4242424"))
    await run_eval(dataset(case("q", "t", {"number_close_to": 1})), agent)
    evaluate = next(s for s in spans.get_finished_spans() if s.name == "evaluate q")
    (event,) = evaluate.events
    assert n.GEN_AI_EVALUATION_EXPLANATION not in (event.attributes or {})
    assert all("4242424" not in str(r) for r in logs.records)
