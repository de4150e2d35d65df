"""Property: whatever goes wrong on the wire, a run ends well (issue 11, "make the suite find the next one").

Hypothesis draws a fault schedule for ``/v1/messages`` (mid-stream errors, overloads, drops, malformed
bodies, 429s with hostile ``retry-after`` values), one for ``/v1/messages/count_tokens``, a run form
(run, arun, stream, astream), budgets, retries and a task, and runs it over real HTTP against the
simulator. Every run must end with exactly one root span and no span left open, return a ``RunResult``
that is not an internal error, and stay within its budgets as measured from what the simulator billed
(read off the wire), which must also be what the run accounted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentwatch import Agent, RunResult, StopReason
from agentwatch.sim import Fault, FaultPlan, Simulator
from conftest import SPAN_EXPORTER

from .billing import Meter
from .support import DEMO_TASK, DIRECT_TASK, MODEL, aconsume, consume, demo_agent, fast_limits, of_trace, open_spans

HOSTILE_RETRY_AFTER = ["nan", "inf", "-inf", 1e12, -5, "1e999", "soon", "Fri, 31 Dec 9999 23:59:59 GMT"]
HOSTILE_RETRY_AFTER += ["Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 99 Foo 2026 99:99:99 GMT", 0.01]
CALL_FAULTS = st.one_of(
    st.none(),
    st.just(Fault.midstream_error()),  # a stream cut short: billed, then retried
    st.sampled_from([Fault.overloaded(), Fault.server_error(), Fault.drop(), Fault.malformed()]),
    st.sampled_from(HOSTILE_RETRY_AFTER).map(lambda value: Fault.rate_limit(retry_after_s=value)),
    st.sampled_from(["nan", "-1", "1e15", "x"]).map(lambda value: Fault.rate_limit(retry_after_ms=value)),
)
# Faults come in bursts (the same fault several times in a row), as they do on a bad day: a burst of cut
# streams is what overshot the budgets in issue 11.
SCHEDULES = st.lists(st.tuples(CALL_FAULTS, st.integers(1, 5)), max_size=3).map(
    lambda bursts: [fault for fault, times in bursts for _ in range(times)]
)
COUNT_FAULTS = st.sampled_from(
    [None, Fault.not_found(), Fault.drop(), Fault.server_error(), Fault.malformed(), Fault.overloaded()]
)
TASKS = [DEMO_TASK, DIRECT_TASK, "[[loop]] Keep checking the population.", "[[long:600]] Tell me a story."]
ENDINGS = {
    StopReason.END_TURN,
    StopReason.TOKEN_BUDGET,
    StopReason.COST_BUDGET,
    StopReason.MAX_ITERATIONS,
    StopReason.MAX_TOKENS,
    StopReason.ERROR,  # the API failed for good (retries exhausted): allowed, an internal error is not
}


@pytest.fixture(scope="module")
def prop_sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def run(mode: str, agent: Agent, task: str, meter: Meter, sim: Simulator) -> RunResult:
    if mode == "run":
        return agent.run(task, client=meter.client(sim))
    if mode == "stream":
        return consume(agent.stream(task, client=meter.client(sim)))[1]
    if mode == "arun":
        return asyncio.run(asyncio.wait_for(agent.arun(task, client=meter.async_client(sim)), 60))
    return asyncio.run(asyncio.wait_for(aconsume(agent.astream(task, client=meter.async_client(sim))), 60))[1]


ISSUE_11 = {"mode": "stream", "task": DEMO_TASK, "max_tokens": 256, "max_retries": 4, "timeout_s": 30.0}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The cases issue 11 found, always tried first; the drawn ones look for the next.
@example(schedule=[Fault.midstream_error()] * 4, counts=[], token_budget=700, cost_budget=None, **ISSUE_11)
@example(schedule=[Fault.midstream_error()] * 4, counts=[], token_budget=None, cost_budget=0.0009, **ISSUE_11)
@example(schedule=[], counts=[Fault.not_found()] * 4, token_budget=700, cost_budget=None, **{**ISSUE_11, "mode": "run"})
@example(
    schedule=[Fault.rate_limit(retry_after_s="inf")],
    counts=[],
    token_budget=None,
    cost_budget=None,
    **{**ISSUE_11, "mode": "arun", "timeout_s": None},
)
@given(
    schedule=SCHEDULES,
    counts=st.lists(COUNT_FAULTS, max_size=4),
    mode=st.sampled_from(["run", "arun", "stream", "astream"]),
    task=st.sampled_from(TASKS),
    token_budget=st.one_of(st.none(), st.integers(200, 2500)),
    cost_budget=st.one_of(st.none(), st.floats(0.0002, 0.003)),
    max_tokens=st.sampled_from([64, 256, 1024]),
    max_retries=st.integers(0, 5),
    timeout_s=st.sampled_from([None, 30.0]),
)
def test_any_fault_schedule_ends_the_run_well(
    prop_sim, schedule, counts, mode, task, token_budget, cost_budget, max_tokens, max_retries, timeout_s
) -> None:
    prop_sim.faults = FaultPlan(schedule=schedule, count_tokens=counts)
    limits = fast_limits(
        token_budget=token_budget,
        cost_budget_usd=cost_budget,
        max_tokens=max_tokens,
        max_retries=max_retries,
        timeout_s=timeout_s,
        max_iterations=6,
    )
    agent = demo_agent("prop-faults", limits=limits)
    meter = Meter()
    result = run(mode, agent, task, meter, prop_sim)

    assert isinstance(result, RunResult)
    assert result.stop_reason in ENDINGS, result.answer
    assert "failed internally" not in result.answer, result.answer
    finished = of_trace(SPAN_EXPORTER.get_finished_spans(), result.trace_id)
    assert [s.name for s in finished].count(f"invoke_agent {agent.name}") == 1
    assert open_spans().open_in(result.trace_id) == []
    billed = meter.usage()
    if token_budget is not None:
        assert billed.total_tokens <= token_budget, (billed, result.answer)
    if cost_budget is not None:
        assert meter.cost(MODEL) <= cost_budget + 1e-12, (meter.cost(MODEL), result.answer)
    assert result.usage == billed  # the run accounted exactly what the simulator reported
