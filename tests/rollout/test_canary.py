"""Canary guards over a sliding window, automatic rollback with event, log and metric, explicit promotion,
thread safety — and a rollback triggered by simulator faults injected into the candidate's model only."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch import Agent, Limits, StopReason
from agentwatch.rollout import Canary, CanaryGuards, CanaryState, Rollback, SlidingWindow
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import names as n
from agentwatch.telemetry.recorder import tracer
from agentwatch.tools import calculator, web_search
from evals.helpers import FakeAgent, make_result

ERROR = make_result("failed", stop=StopReason.ERROR)
OK = make_result("ok")


def canary(guards: CanaryGuards, *, min_runs: int = 5, window: SlidingWindow | None = None, **kw: Any) -> Canary:
    stable = FakeAgent(lambda task: OK, name="guarded", version="v1")
    candidate = FakeAgent(lambda task: OK, name="guarded", version="v2")
    return Canary(stable, candidate, share=1.0, guards=guards, min_runs=min_runs, window=window, **kw)


def test_error_rate_guard_waits_for_min_runs_then_rolls_back() -> None:
    c = canary(CanaryGuards(max_error_rate=0.5), min_runs=4)
    assert c.record(ERROR) is None and c.record(ERROR) is None and c.record(ERROR) is None  # 3 < min_runs
    rollback = c.record(OK)
    assert rollback is not None and rollback.guard == "error_rate" and rollback.observed == 0.75
    assert rollback.threshold == 0.5 and rollback.runs == 4
    assert c.state is CanaryState.ROLLED_BACK and c.rollback_info == rollback
    assert not c.is_candidate("anyone") and c.choose("anyone") is c.stable
    assert c.record(ERROR) is None  # recording after a rollback changes nothing


def test_a_raised_run_counts_as_an_error() -> None:
    c = canary(CanaryGuards(max_error_rate=0.0), min_runs=1)
    assert c.record(None) is not None


def test_cost_guard_uses_the_mean_of_known_costs() -> None:
    c = canary(CanaryGuards(max_cost_per_run_usd=0.01), min_runs=3)
    c.record(make_result(cost=0.005))
    c.record(make_result(cost=None))
    assert c.record(make_result(cost=0.014)) is None  # mean of known = 0.0095
    rollback = c.record(make_result(cost=0.02))
    assert rollback is not None and rollback.guard == "cost_per_run_usd"


def test_p95_latency_guard() -> None:
    c = canary(CanaryGuards(max_p95_latency_s=2.0), min_runs=20)
    for _ in range(19):
        assert c.record(make_result(duration=1.0)) is None
    assert c.record(make_result(duration=9.0)) is None  # 1 slow run in 20 is the p100, not the p95
    rollback = c.record(make_result(duration=9.0))
    assert rollback is not None and rollback.guard == "p95_latency_s" and rollback.observed == 9.0


async def test_eval_pass_rate_guard_with_an_evaluator() -> None:
    async def evaluator(task: str, result: Any) -> bool:
        return "7,006,652" in result.answer

    c = canary(CanaryGuards(min_eval_pass_rate=0.8), min_runs=5, evaluator=evaluator)
    for i in range(5):
        await c.arun("What is 1234 * 5678?", key=f"k{i}")
    assert c.state is CanaryState.ROLLED_BACK
    assert c.rollback_info and c.rollback_info.guard == "eval_pass_rate" and c.rollback_info.observed == 0.0


def test_record_eval_feeds_the_eval_guard() -> None:
    c = canary(CanaryGuards(min_eval_pass_rate=0.5), min_runs=4)
    for passed in (True, False, True):
        assert c.record_eval(passed) is None
    assert c.record_eval(True) is None
    assert c.stats().eval_pass_rate == 0.75 and c.stats().evaluated == 4
    c.record_eval(False)
    assert c.record_eval(False) is None  # 3 of 6: exactly at the threshold is not below it
    assert c.record_eval(False) is not None
    assert c.state is CanaryState.ROLLED_BACK


def test_window_by_size_forgets_old_runs() -> None:
    c = canary(CanaryGuards(max_error_rate=0.5), min_runs=4, window=SlidingWindow(size=4))
    for result in (ERROR, ERROR, OK, OK, OK, OK, ERROR, ERROR):
        assert c.record(result) is None  # never more than 2 errors in the last 4
    assert c.stats().runs == 4 and c.stats().error_rate == 0.5


def test_window_by_time_forgets_old_runs() -> None:
    now = [0.0]
    c = canary(
        CanaryGuards(max_error_rate=0.5), min_runs=3, window=SlidingWindow(size=None, seconds=60), clock=lambda: now[0]
    )
    c.record(ERROR)
    c.record(ERROR)
    now[0] = 61.0
    c.record(OK)
    c.record(OK)
    assert c.stats().runs == 2
    assert c.record(ERROR) is None  # 1 error in the 3 runs of the last minute
    assert c.state is CanaryState.ACTIVE


def test_promote_is_explicit_and_final() -> None:
    c = canary(CanaryGuards(max_error_rate=0.0), min_runs=1)
    c.promote()
    assert c.state is CanaryState.PROMOTED and c.choose("k") is c.candidate
    assert c.record(ERROR) is None and c.state is CanaryState.PROMOTED


def test_share_routes_only_a_share_to_the_candidate() -> None:
    stable = FakeAgent(lambda task: OK, version="v1")
    candidate = FakeAgent(lambda task: OK, version="v2")
    c = Canary(stable, candidate, share=0.05)
    for i in range(2000):
        c.run("t", key=f"user-{i}")
    assert 0.03 < len(candidate.calls) / 2000 < 0.07
    assert len(candidate.calls) + len(stable.calls) == 2000


async def test_a_candidate_that_raises_is_recorded_and_the_error_propagates() -> None:
    stable = FakeAgent(lambda task: OK, version="v1")
    candidate = FakeAgent(lambda task: RuntimeError("bug"), version="v2")
    c = Canary(stable, candidate, share=1.0, guards=CanaryGuards(max_error_rate=0.5), min_runs=2)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await c.arun("t", key="k")
    assert c.state is CanaryState.ROLLED_BACK
    assert (await c.arun("t", key="k")) is OK and stable.calls == ["t"]


def test_rollback_emits_event_log_and_metric(spans: InMemorySpanExporter, logs: Any, metric_points: Any) -> None:
    seen: list[Rollback] = []
    stable = FakeAgent(lambda task: OK, name="telemetry-agent", version="v1")
    candidate = FakeAgent(lambda task: ERROR, name="telemetry-agent", version="v9")
    c = Canary(
        stable, candidate, share=1.0, guards=CanaryGuards(max_error_rate=0.1), min_runs=2, on_rollback=seen.append
    )
    with tracer().start_as_current_span("request") as request:
        c.run("t", key="a")
        c.run("t", key="b")
    assert len(seen) == 1 and seen[0].guard == "error_rate"
    (finished,) = [s for s in spans.get_finished_spans() if s.name == "request"]
    (event,) = [e for e in finished.events if e.name == n.EVENT_ROLLBACK]
    assert dict(event.attributes or {}) == {
        n.GEN_AI_AGENT_NAME: "telemetry-agent",
        n.AW_ROLLOUT_GUARD: "error_rate",
        n.AW_ROLLOUT_STABLE_VERSION: "v1",
        n.AW_ROLLOUT_CANDIDATE_VERSION: "v9",
    }
    (record,) = logs.events(n.LOG_CANARY_ROLLBACK)
    assert record["level"] == "warning" and record["guard"] == "error_rate" and record["observed"] == 1.0
    assert record["trace_id"] == format(request.get_span_context().trace_id, "032x")
    points = metric_points(
        n.M_CANARY_ROLLBACKS[0], **{n.AW_ROLLOUT_CANDIDATE_VERSION: "v9", n.AW_ROLLOUT_GUARD: "error_rate"}
    )
    assert [p.value for p in points] == [1]


def test_rollback_without_a_current_span_gets_a_span_of_its_own(spans: InMemorySpanExporter) -> None:
    c = canary(CanaryGuards(max_error_rate=0.0), min_runs=1)
    c.record(ERROR)
    (span,) = [s for s in spans.get_finished_spans() if s.name == n.EVENT_ROLLBACK]
    assert [e.name for e in span.events] == [n.EVENT_ROLLBACK]


def test_manual_rollback() -> None:
    c = canary(CanaryGuards())
    c.rollback("operator saw bad answers")
    assert c.state is CanaryState.ROLLED_BACK and c.rollback_info and c.rollback_info.guard.startswith("operator")


def test_concurrent_records_roll_back_exactly_once() -> None:
    seen: list[Rollback] = []
    c = canary(CanaryGuards(max_error_rate=0.2), min_runs=50, window=SlidingWindow(size=100), on_rollback=seen.append)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(200):
            c.record(ERROR if i % 2 else OK)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 1 and c.state is CanaryState.ROLLED_BACK


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"share": 1.5}, "share is between 0 and 1"),
        ({"min_runs": 0}, "min_runs must be at least 1"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Canary(FakeAgent(lambda t: OK), FakeAgent(lambda t: OK), **kwargs)
    with pytest.raises(ValueError, match="rate between 0 and 1"):
        CanaryGuards(max_error_rate=2)
    with pytest.raises(ValueError, match="needs a size"):
        SlidingWindow(size=None, seconds=None)


# --- the real thing: the simulator fails the candidate's model only ---------------------------------

STABLE_MODEL = "claude-haiku-4-5-20251001"
CANDIDATE_MODEL = "claude-sonnet-4-6"


async def test_faults_in_the_candidate_model_roll_the_canary_back(fresh_sim: Simulator, logs: Any) -> None:
    fresh_sim.faults = FaultPlan(rates={Fault.server_error(): 1.0}, only_models=[CANDIDATE_MODEL])
    stable = Agent(
        name="research-assistant",
        model=STABLE_MODEL,
        tools=[calculator, web_search],
        limits=Limits(max_iterations=5, max_retries=0),
        version="v1",
    )
    candidate = stable.replace(model=CANDIDATE_MODEL, version="v2")
    rollbacks: list[Rollback] = []
    c = Canary(
        stable,
        candidate,
        share=0.3,
        guards=CanaryGuards(max_error_rate=0.2, max_p95_latency_s=30),
        window=SlidingWindow(size=20),
        min_runs=5,
        on_rollback=rollbacks.append,
    )
    client = anthropic.AsyncAnthropic(api_key="test", base_url=fresh_sim.base_url, max_retries=0)
    keys = [f"user-{i}" for i in range(60)]
    assigned = {k: c.is_candidate(k) for k in keys}
    assert sum(assigned.values()) >= 5  # enough candidate traffic to reach min_runs

    results = []
    for batch in range(0, len(keys), 10):
        results += await asyncio.gather(
            *(c.arun("What is 1234 * 5678?", key=k, client=client) for k in keys[batch : batch + 10])
        )

    assert c.state is CanaryState.ROLLED_BACK and len(rollbacks) == 1
    assert rollbacks[0].guard == "error_rate" and rollbacks[0].observed == 1.0
    candidate_results = [r for r in results if r.agent_version == "v2"]
    assert 5 <= len(candidate_results) < sum(assigned.values())  # traffic stopped going to v2 after the rollback
    assert all(r.stop_reason is StopReason.ERROR for r in candidate_results)
    stable_results = [r for r in results if r.agent_version == "v1"]
    assert all(r.stop_reason is StopReason.END_TURN and "7,006,652" in r.answer for r in stable_results)
    # After the rollback every key, including former canary keys, is served by stable and succeeds.
    after = await asyncio.gather(*(c.arun("What is 1234 * 5678?", key=k, client=client) for k in keys if assigned[k]))
    assert all(r.agent_version == "v1" and r.stop_reason is StopReason.END_TURN for r in after)
    sonnet = [r for r in fresh_sim.requests if r.model == CANDIDATE_MODEL]
    assert sonnet and all(r.status == 500 for r in sonnet)
    assert len(logs.events(n.LOG_CANARY_ROLLBACK)) == 1
