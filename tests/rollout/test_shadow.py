"""Shadow mode: the primary's result, latency and budget are untouched by the candidate — whether it
agrees, raises, hangs or overspends — and the divergence is recorded on a linked span and in metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch import Agent, Limits, RunResult, StopReason, Tool, tool
from agentwatch.rollout import Shadow, ShadowOutcome, answer_similarity, compare_runs
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from agentwatch.telemetry.recorder import tracer
from agentwatch.tools import calculator, web_search
from evals.helpers import FakeAgent, make_result, tool_call

TASK = "What is 1234 * 5678?"


# --- divergence ------------------------------------------------------------------------------------


def test_answer_similarity() -> None:
    assert answer_similarity("The answer is 7,006,652.", "the ANSWER is 7,006,652") == 1.0
    assert answer_similarity("", "") == 1.0
    assert answer_similarity("alpha beta", "gamma delta") == 0.0
    assert 0.4 < answer_similarity("the answer is 42", "the answer is 43") < 1.0


def test_compare_runs() -> None:
    primary = make_result("7,006,652", tools=[tool_call("calculator")], cost=0.001, duration=1.0)
    candidate = make_result(
        "7,006,652", tools=[tool_call("web_search"), tool_call("calculator")], cost=0.004, duration=0.5,
        stop=StopReason.MAX_ITERATIONS,
    )  # fmt: skip
    d = compare_runs(primary, candidate)
    assert d.answer_similarity == 1.0 and not d.tools_match and not d.stop_reason_match
    assert d.primary_tools == ("calculator",) and d.candidate_tools == ("web_search", "calculator")
    assert d.cost_delta_usd == 0.003 and d.latency_delta_s == -0.5
    assert compare_runs(primary, make_result(cost=None)).cost_delta_usd is None


# --- unit: the contract with a fake agent --------------------------------------------------------


async def test_returns_the_primary_result_object_and_shadows_the_same_input() -> None:
    primary_result = make_result("primary")
    primary = FakeAgent(lambda task: primary_result, version="v1")
    candidate = FakeAgent(lambda task: make_result("candidate"), version="v2")
    outcomes: list[ShadowOutcome] = []
    shadow = Shadow(primary, candidate, on_outcome=outcomes.append)
    assert (await shadow.arun(TASK)) is primary_result
    assert await shadow.drain(30)
    assert candidate.calls == [TASK] and primary.calls == [TASK]
    (outcome,) = outcomes
    assert outcome.primary is primary_result and outcome.candidate and outcome.candidate.answer == "candidate"
    assert outcome.divergence and outcome.divergence.answer_similarity == 0.0


async def test_sample_rate_and_stable_sampling_by_key() -> None:
    primary = FakeAgent(lambda task: make_result("p"))
    candidate = FakeAgent(lambda task: make_result("c"), version="v2")
    shadow = Shadow(primary, candidate, sample_rate=0.0)
    await shadow.arun(TASK)
    assert await shadow.drain(1) and candidate.calls == []
    shadow = Shadow(primary, candidate, sample_rate=0.3, max_in_flight=1000)
    for i in range(200):
        await shadow.arun(TASK, key=f"user-{i % 20}")
    await shadow.drain(30)
    per_key = len(candidate.calls) / 10  # each of the 20 keys was asked 10 times: all or nothing
    assert per_key == int(per_key) and 2 <= per_key <= 10


async def test_at_capacity_calls_are_not_shadowed(metric_points: Any) -> None:
    primary = FakeAgent(lambda task: make_result("p"))
    candidate = FakeAgent(lambda task: make_result("c"), version="v2", delay_s=0.2)
    shadow = Shadow(primary, candidate, max_in_flight=2)
    for _ in range(5):
        await shadow.arun(TASK)
    assert shadow.in_flight == 2
    assert await shadow.drain(30)
    assert len(candidate.calls) == 2 and shadow.in_flight == 0
    points = metric_points(n.M_SHADOW_RUNS[0], **{n.ERROR_TYPE: "shadow_capacity"})
    assert points and points[0].value >= 3


async def test_a_failing_outcome_callback_is_contained() -> None:
    def explode(outcome: ShadowOutcome) -> None:
        raise RuntimeError("callback bug")

    shadow = Shadow(FakeAgent(lambda t: make_result("p")), FakeAgent(lambda t: make_result("c")), on_outcome=explode)
    assert (await shadow.arun(TASK)).answer == "p"
    assert await shadow.drain(30) and len(shadow.outcomes) == 1


def test_sync_run_shadows_in_a_thread() -> None:
    primary_result = make_result("primary")
    release = threading.Event()

    def held_back(task: str) -> RunResult:
        release.wait(10)  # a run that waited for the candidate would take these 10 s, then fail below
        return make_result("candidate")

    candidate = FakeAgent(held_back, version="v2")
    shadow = Shadow(FakeAgent(lambda task: primary_result), candidate)
    assert shadow.run(TASK) is primary_result
    assert shadow.in_flight == 1  # returned while the candidate is still held back
    release.set()
    assert shadow.drain_sync(30) and candidate.calls == [TASK] and shadow.in_flight == 0
    shadow.close()


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        Shadow(FakeAgent(lambda t: make_result()), FakeAgent(lambda t: make_result()), sample_rate=2)


# --- integration: the real Agent against the simulator ---------------------------------------------


def research_agent(**changes: Any) -> Agent:
    base = Agent(
        name="research-assistant",
        model="claude-haiku-4-5-20251001",
        tools=[calculator, web_search],
        limits=Limits(max_iterations=6, timeout_s=30, cost_budget_usd=0.05),
        version="v1",
    )
    return base.replace(**changes) if changes else base


@pytest.fixture
def aclient(sim: Simulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test", base_url=sim.base_url, max_retries=0)


async def alone(agent: Agent, task: str, client: anthropic.AsyncAnthropic, times: int = 3) -> list[RunResult]:
    return [await agent.arun(task, client=client) for _ in range(times)]


def same_run(a: RunResult, b: RunResult) -> bool:
    """Same answer, stop, usage, cost, iterations and tools: the budget the primary used is unchanged."""
    return (a.answer, a.stop_reason, a.usage, a.cost_usd, a.iterations, [c.name for c in a.tool_calls]) == (
        b.answer,
        b.stop_reason,
        b.usage,
        b.cost_usd,
        b.iterations,
        [c.name for c in b.tool_calls],
    )


def latency_ok(shadowed: list[RunResult], baseline: list[RunResult]) -> bool:
    """No shadowed run is much slower than the slowest run alone: room for a busy machine (the candidate
    shares the process), not for waiting on the candidate (its hang, its budget of runs, its timeout)."""
    slowest_alone = max(r.duration_s for r in baseline)
    return max(r.duration_s for r in shadowed) <= 3 * slowest_alone + 0.5


async def test_agreeing_candidate_divergence_span_link_and_metrics(
    aclient: anthropic.AsyncAnthropic, spans: InMemorySpanExporter, logs: Any, metric_points: Any
) -> None:
    primary = research_agent()
    baseline = await alone(primary, TASK, aclient, times=1)
    shadow = Shadow(primary, research_agent(version="v2-agree"))
    with tracer().start_as_current_span("request") as request:
        result = await shadow.arun(TASK, client=aclient)
    assert same_run(result, baseline[0]) and result.agent_version == "v1"
    assert await shadow.drain(30)

    finished = spans.get_finished_spans()
    (span,) = [s for s in finished if s.name == "shadow research-assistant"]
    attrs = dict(span.attributes or {})
    assert attrs[n.AW_SHADOW_ANSWER_SIMILARITY] == 1.0 and attrs[n.AW_SHADOW_TOOLS_MATCH] is True
    assert attrs[n.AW_SHADOW_STOP_REASON_MATCH] is True and attrs[n.AW_SHADOW_COST_DELTA_USD] == 0
    assert n.AW_SHADOW_LATENCY_DELTA_S in attrs and attrs[n.AW_ROLLOUT_CANDIDATE_VERSION] == "v2-agree"
    assert span.parent is None  # a trace of its own: the candidate never holds the request's trace open
    request_ctx = request.get_span_context()
    runs = [s for s in finished if s.name == "invoke_agent research-assistant"]
    (candidate_run,) = [s for s in runs if s.attributes and s.attributes[n.AW_AGENT_VERSION] == "v2-agree"]
    (primary_run,) = [s for s in runs if s.attributes and s.attributes[n.AW_AGENT_VERSION] == "v1" and s.parent]
    assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
        (request_ctx.trace_id, request_ctx.span_id),  # the caller's span, at start
        (primary_run.context.trace_id, primary_run.context.span_id),  # the primary run itself
    ]
    assert result.span_id == format(primary_run.context.span_id, "016x")
    assert candidate_run.parent is not None and candidate_run.parent.span_id == span.context.span_id
    assert primary_run.parent is not None and primary_run.parent.span_id == request_ctx.span_id
    assert format(primary_run.context.trace_id, "032x") == result.trace_id

    version = {n.AW_ROLLOUT_CANDIDATE_VERSION: "v2-agree"}
    (runs_point,) = metric_points(n.M_SHADOW_RUNS[0], **version)
    assert runs_point.value == 1 and runs_point.attributes[n.AW_SHADOW_TOOLS_MATCH] is True
    assert runs_point.attributes[n.AW_RUN_STOP_REASON] == "end_turn"
    (spend,) = metric_points(n.M_SHADOW_SPEND[0], **version)
    assert spend.value == pytest.approx(baseline[0].cost_usd)
    (similarity,) = metric_points(n.M_SHADOW_SIMILARITY[0], **version)
    assert similarity.count == 1 and similarity.sum == 1.0
    (record,) = logs.events(n.LOG_SHADOW_RESULT)
    assert record["answer_similarity"] == 1.0 and record["primary_trace_id"] == result.trace_id
    assert record["trace_id"] == format(span.context.trace_id, "032x")


async def test_candidate_that_raises_leaves_the_primary_untouched(
    aclient: anthropic.AsyncAnthropic, sim: Simulator, spans: InMemorySpanExporter, metric_points: Any
) -> None:
    primary = research_agent()
    baseline = await alone(primary, TASK, aclient)
    # A sync client for an async run: the real Agent raises TypeError before any call.
    shadow = Shadow(primary, research_agent(version="v2-raises"))
    bad_client = anthropic.Anthropic(api_key="test", base_url=sim.base_url)
    shadowed = [await shadow.arun(TASK, client=aclient, candidate_client=bad_client) for _ in range(3)]
    assert await shadow.drain(30)
    assert all(same_run(r, baseline[0]) for r in shadowed) and latency_ok(shadowed, baseline)
    assert all(o.error_type == "TypeError" and o.candidate is None for o in shadow.outcomes)
    (span, *_) = [s for s in spans.get_finished_spans() if s.name == "shadow research-assistant"]
    assert span.status.status_code.name == "ERROR" and dict(span.attributes or {})[n.ERROR_TYPE] == "TypeError"
    (point,) = metric_points(n.M_SHADOW_RUNS[0], **{n.AW_ROLLOUT_CANDIDATE_VERSION: "v2-raises"})
    assert point.value == 3 and point.attributes[n.ERROR_TYPE] == "TypeError"


def hanging_calculator(started: asyncio.Event | None = None) -> Tool:
    """A calculator tool that never answers; sets ``started`` when it is first called."""

    @tool(name="calculator")
    async def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression (this one never answers)."""
        if started is not None:
            started.set()
        await asyncio.sleep(3600)
        return "never"

    return calculator


async def test_candidate_that_hangs_never_delays_the_primary(aclient: anthropic.AsyncAnthropic) -> None:
    primary = research_agent()
    baseline = await alone(primary, TASK, aclient)
    hanging = research_agent(version="v2-hangs", tools=[hanging_calculator(), web_search])
    # The shadow's own timeout is far longer than three primary runs take even on a busy machine,
    # so the candidates are certainly still hanging when the primaries have returned.
    shadow = Shadow(primary, hanging, candidate_limits=Limits(timeout_s=60, tool_timeout_s=60), timeout_s=2.0)
    shadowed = [await shadow.arun(TASK, client=aclient) for _ in range(3)]
    assert all(same_run(r, baseline[0]) for r in shadowed) and latency_ok(shadowed, baseline)
    assert shadow.in_flight == 3  # returned while all three candidates still hang
    assert await shadow.drain(30)  # the shadow's own timeout ends them
    assert [o.error_type for o in shadow.outcomes] == ["timeout"] * 3 and shadow.in_flight == 0


@tool(name="calculator")
def blocking_calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (this one blocks its thread)."""
    time.sleep(3600)
    return "never"


def test_sync_candidate_that_hangs_never_delays_the_primary(sim: Simulator) -> None:
    client = anthropic.Anthropic(api_key="test", base_url=sim.base_url, max_retries=0)
    primary = research_agent()
    baseline = [primary.run(TASK, client=client) for _ in range(2)]
    hanging = research_agent(version="v2-blocks", tools=[blocking_calculator, web_search])
    # The candidate's tool times out after 2 s: far longer than two primary runs take on a busy machine.
    shadow = Shadow(primary, hanging, candidate_limits=Limits(timeout_s=10, tool_timeout_s=2))
    shadowed = [shadow.run(TASK, client=client) for _ in range(2)]
    assert all(same_run(r, baseline[0]) for r in shadowed) and latency_ok(shadowed, baseline)
    assert shadow.in_flight == 2  # both primaries returned while their candidates were blocked
    assert shadow.drain_sync(30)
    outcomes = list(shadow.outcomes)
    assert len(outcomes) == 2 and all(o.candidate and o.candidate.tool_calls[0].outcome == "timeout" for o in outcomes)
    assert all(o.divergence and o.divergence.answer_similarity < 1.0 for o in outcomes)
    shadow.close()


async def test_candidate_that_overspends_is_stopped_by_its_own_budget(
    aclient: anthropic.AsyncAnthropic, metric_points: Any
) -> None:
    task = "[[loop]] keep calculating"
    primary = research_agent()
    baseline = await alone(primary, task, aclient, times=2)
    assert baseline[0].stop_reason is StopReason.MAX_ITERATIONS
    budget = 0.0008
    shadow = Shadow(
        primary,
        research_agent(version="v2-spends", limits=Limits(max_iterations=50)),
        candidate_limits=Limits(max_iterations=50, cost_budget_usd=budget),
    )
    shadowed = [await shadow.arun(task, client=aclient) for _ in range(2)]
    assert await shadow.drain(30)
    assert all(same_run(r, baseline[0]) for r in shadowed) and latency_ok(shadowed, baseline)
    candidates = [o.candidate for o in shadow.outcomes]
    assert all(
        c and c.stop_reason is StopReason.COST_BUDGET and c.cost_usd and c.cost_usd <= budget for c in candidates
    )
    (spend,) = metric_points(n.M_SHADOW_SPEND[0], **{n.AW_ROLLOUT_CANDIDATE_VERSION: "v2-spends"})
    assert spend.value == pytest.approx(sum(c.cost_usd for c in candidates if c and c.cost_usd))
    assert all(o.divergence and not o.divergence.stop_reason_match for o in shadow.outcomes)


async def test_close_cancels_running_candidates(aclient: anthropic.AsyncAnthropic) -> None:
    hanging_started = asyncio.Event()
    hanging = research_agent(version="v2-closed", tools=[hanging_calculator(hanging_started), web_search])
    shadow = Shadow(research_agent(), hanging, candidate_limits=Limits(timeout_s=60, tool_timeout_s=60))
    await shadow.arun(TASK, client=aclient)
    await asyncio.wait_for(hanging_started.wait(), 30)  # the candidate is inside its hanging tool
    shadow.close()
    assert await shadow.drain(30)
    assert [o.error_type for o in shadow.outcomes] == ["CancelledError"] and shadow.in_flight == 0
