"""The ``CallGate`` seam: a run consults its agent's gate around every LLM call and attempt.

An in-process gate records what it was asked and answers as each test scripts it: a fallback route, a
lower ``max_tokens``, a ``Stop``, a rate-limit wait. Every mode (run, arun, stream, astream) must settle
each admitted attempt exactly once, failed, retried and cut-short ones included, with the headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentwatch import Agent, RunResult, StopReason
from agentwatch.runner.gate import Admission, CallRequest, Settlement
from agentwatch.runner.guards import Stop
from agentwatch.runner.routing import Route
from agentwatch.sim import Fault, FaultPlan, RateLimit, Simulator
from agentwatch.telemetry import names as n
from polling import await_until

from .support import CAPABLE, DEMO_TASK, MODEL, aconsume, async_client, consume, demo_agent, of_trace, sync_client

MODES = ["run", "arun", "stream", "astream"]
TENANT = "tenant-a"


@dataclass
class ScriptedGate:
    """A ``CallGate`` in memory: records every call; ``admit_with`` decides each admission."""

    fallback: dict[str, str] = field(default_factory=dict)
    admit_with: Callable[[CallRequest, int], Admission | Stop] = lambda request, _: Admission(request.max_tokens)
    routes: list[tuple[Route, CallRequest]] = field(default_factory=list)
    admits: list[CallRequest] = field(default_factory=list)
    settles: list[Settlement] = field(default_factory=list)

    def route(self, route: Route, request: CallRequest) -> Route | Stop:
        self.routes.append((route, request))
        model = self.fallback.get(route.model)
        return Route(model, "fallback", "circuit open") if model else route

    def admit(self, request: CallRequest) -> Admission | Stop:
        self.admits.append(request)
        return self.admit_with(request, len(self.admits))

    def settle(self, settlement: Settlement) -> None:
        self.settles.append(settlement)

    async def aroute(self, route: Route, request: CallRequest) -> Route | Stop:
        return self.route(route, request)

    async def aadmit(self, request: CallRequest) -> Admission | Stop:
        return self.admit(request)

    async def asettle(self, settlement: Settlement) -> None:
        self.settle(settlement)


async def run_in(mode: str, agent: Agent, task: str, sim: Simulator) -> RunResult:
    if mode == "run":
        return agent.run(task, client=sync_client(sim), tenant=TENANT)
    if mode == "arun":
        return await agent.arun(task, client=async_client(sim), tenant=TENANT)
    if mode == "stream":
        return consume(agent.stream(task, client=sync_client(sim), tenant=TENANT))[1]
    return (await aconsume(agent.astream(task, client=async_client(sim), tenant=TENANT)))[1]


def gated(gate: ScriptedGate, **overrides: Any) -> Agent:
    return demo_agent("gate", gate=gate, **overrides)


@pytest.mark.parametrize("mode", MODES)
async def test_route_moves_every_call_to_the_fallback_model(sim, spans, mode) -> None:
    gate = ScriptedGate(fallback={MODEL: CAPABLE})
    result = await run_in(mode, gated(gate), DEMO_TASK, sim)

    assert result.stop_reason == "end_turn" and result.models == [CAPABLE]
    assert [route.model for route, _ in gate.routes] == [MODEL] * result.iterations
    assert all(request.tenant == TENANT and request.agent.startswith("gate") for _, request in gate.routes)
    chats = [s for s in of_trace(spans.get_finished_spans(), result.trace_id) if s.name.startswith(n.OP_CHAT)]
    assert {s.attributes[n.GEN_AI_REQUEST_MODEL] for s in chats} == {CAPABLE}
    assert {s.attributes[n.AW_MODEL_TIER] for s in chats} == {"fallback"}


@pytest.mark.parametrize("mode", MODES)
async def test_admit_lowers_max_tokens_and_a_wait_is_a_span_event(fresh_sim, spans, mode) -> None:
    gate = ScriptedGate(admit_with=lambda request, _: Admission(min(request.max_tokens, 300), waited_s=0.25))
    result = await run_in(mode, gated(gate), DEMO_TASK, fresh_sim)

    assert result.stop_reason == "end_turn"
    assert [r.body["max_tokens"] for r in fresh_sim.requests if r.path.startswith("/v1/messages")] == [300] * len(
        gate.admits
    )
    chats = [s for s in of_trace(spans.get_finished_spans(), result.trace_id) if s.name.startswith(n.OP_CHAT)]
    assert [s.attributes[n.GEN_AI_REQUEST_MAX_TOKENS] for s in chats] == [300] * result.iterations
    for chat in chats:
        (wait,) = [e for e in chat.events if e.name == n.EVENT_RATE_LIMIT_WAIT]
        assert wait.attributes[n.AW_RATE_LIMIT_WAIT_S] == 0.25


@pytest.mark.parametrize("mode", MODES)
async def test_an_admit_stop_ends_the_run_with_its_reason_and_the_work_so_far(sim, spans, mode) -> None:
    def second_call_over_budget(request: CallRequest, count: int) -> Admission | Stop:
        if count == 1:
            return Admission(request.max_tokens)
        return Stop(StopReason.TENANT_BUDGET, f"tenant {TENANT} spent its budget", "tenant", retry_after_s=30.0)

    gate = ScriptedGate(admit_with=second_call_over_budget)
    result = await run_in(mode, gated(gate), DEMO_TASK, sim)

    assert result.stop_reason == StopReason.TENANT_BUDGET and result.retry_after_s == 30.0
    assert result.iterations == 1 and result.tool_calls  # the first call's tool ran: partial work is kept
    assert f"tenant {TENANT} spent its budget" in result.answer and result.usage.total_input_tokens > 0
    assert len(gate.settles) == 1  # the refused attempt was never admitted, so never settled
    (root,) = [s for s in of_trace(spans.get_finished_spans(), result.trace_id) if s.name.startswith("invoke_agent")]
    assert root.attributes[n.AW_RUN_STOP_REASON] == "tenant_budget"


@pytest.mark.parametrize("mode", MODES)
async def test_every_admitted_attempt_is_settled_once_with_its_usage_error_and_headers(mode) -> None:
    limits = {"*": RateLimit(10_000, 10_000_000, 10_000_000)}  # never reached: the replies carry the headers
    with Simulator(rate_limits=limits) as simulator:
        simulator.faults = FaultPlan(schedule=[Fault.overloaded(), Fault.midstream_error()])
        gate = ScriptedGate()
        result = await run_in(mode, gated(gate), DEMO_TASK, simulator)

    assert result.stop_reason == "end_turn"
    assert len(gate.settles) == len(gate.admits) == result.iterations + 2  # two attempts failed and were retried
    assert [s.request for s in gate.settles] == gate.admits
    failed, cut = gate.settles[0], gate.settles[1]
    assert type(failed.error).__name__ == "OverloadedError" and failed.usage is None
    assert failed.headers is not None and "request-id" in failed.headers  # an injected fault: no rate-limit headers
    ok = [s for s in gate.settles if s.error is None]
    assert len(ok) == result.iterations
    assert all(s.headers is not None and "anthropic-ratelimit-requests-remaining" in s.headers for s in ok)
    assert all(s.usage is not None and s.usage.total_tokens > 0 and s.cost_usd for s in ok)
    if mode in ("stream", "astream"):  # the cut stream was billed for its input, and the gate hears of it
        assert cut.error is not None and cut.usage is not None and cut.usage.total_input_tokens > 0
        billed = sum(s.usage.total_tokens for s in gate.settles if s.usage is not None)
        assert billed == result.usage.total_tokens
    else:  # a JSON call's midstream_error is a plain overloaded reply
        assert type(cut.error).__name__ == "OverloadedError"


async def test_a_cancelled_run_settles_its_attempt_and_its_handle_keeps_the_result(slow_stream_sim, spans) -> None:
    gate = ScriptedGate()
    handle = gated(gate).astart(DEMO_TASK, client=async_client(slow_stream_sim), tenant=TENANT, stream=True)
    seen: list[object] = []

    async def reader() -> None:
        async for event in handle:
            seen.append(event)

    task = asyncio.create_task(reader())
    await await_until(lambda: seen, "the stream's first event")
    handle.cancel_detail = "the test cancelled it"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    result = handle.result
    assert result is not None and result.stop_reason == "cancelled" and result.stop_detail == "the test cancelled it"
    assert result.usage.total_input_tokens > 0  # the cut stream was billed, and the result says so
    assert len(gate.settles) == len(gate.admits) == 1
    assert type(gate.settles[0].error).__name__ == "CancelledError" and gate.settles[0].usage is not None
    (root,) = [s for s in of_trace(spans.get_finished_spans(), result.trace_id) if s.name.startswith("invoke_agent")]
    assert root.attributes[n.AW_RUN_STOP_DETAIL] == "the test cancelled it"


@pytest.fixture
def slow_stream_sim() -> Iterator[Simulator]:
    with Simulator(latency_s=0.3) as simulator:
        yield simulator
