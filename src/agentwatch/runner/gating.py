"""The minimal wiring of an ``Agent(gate=...)`` into the current drivers (see ``runner.gate``).

Per call: ``route`` after the run's own routing; per attempt: ``admit`` after the run's own guards
planned it (its ``max_tokens`` may be lowered, its wait is a span event) and ``settle`` exactly once
with the attempt's usage, cost, error and response headers. Without a gate every function here is a
no-op, so a run behaves exactly as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agentwatch.result import StopReason, Usage
from agentwatch.runner.gate import Admission, CallRequest, Settlement
from agentwatch.runner.guards import Stop
from agentwatch.runner.routing import Route
from agentwatch.runner.state import CallPlan, RunState
from agentwatch.telemetry import names as n


def _request(state: RunState, model: str, input_tokens: int, max_tokens: int) -> CallRequest:
    agent = state.agent
    rates = agent.pricing.prices_for(model, input_tokens=input_tokens)
    worst: float | None = None
    if rates is not None:
        input_rate = rates.dearest_input if agent.cache_prompt else rates.input
        worst = (input_tokens * input_rate + max_tokens * rates.output) / 1e6
    return CallRequest(
        agent=agent.name,
        tenant=state.tenant,
        model=model,
        base_url=state.base_url,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        worst_case_usd=worst,
        time_left_s=state.guards.time_left(),
    )


def plan_request(state: RunState, plan: CallPlan) -> CallRequest:
    return _request(state, plan.route.model, plan.input_estimate, plan.max_tokens)


def route_request(state: RunState, route: Route) -> CallRequest:
    return _request(state, route.model, state.input_estimate(), state.agent.limits.max_tokens)


def route(state: RunState, chosen: Route) -> Route | Stop:
    gate = state.agent.gate
    return chosen if gate is None else gate.route(chosen, route_request(state, chosen))


async def aroute(state: RunState, chosen: Route) -> Route | Stop:
    gate = state.agent.gate
    return chosen if gate is None else await gate.aroute(chosen, route_request(state, chosen))


def _admitted(state: RunState, plan: CallPlan, admission: Admission | Stop) -> tuple[CallPlan, Admission] | Stop:
    state.gate_max_tokens = None
    if isinstance(admission, Stop):
        return admission
    if admission.max_tokens < plan.max_tokens:
        plan = replace(plan, max_tokens=max(admission.max_tokens, 1))
        state.gate_max_tokens = plan.max_tokens
    return plan, admission


def relabel(state: RunState, plan: CallPlan, stop: Stop) -> Stop:
    """A reply cut at the ``max_tokens`` the gate lowered: the fleet budget stopped it, not the run's own."""
    if state.gate_max_tokens is None or plan.max_tokens != state.gate_max_tokens:
        return stop
    if stop.reason not in (StopReason.TOKEN_BUDGET, StopReason.COST_BUDGET):
        return stop
    return Stop(
        StopReason.TENANT_BUDGET,
        f"the reply was cut at {plan.max_tokens:,} tokens to stay within the fleet budget of tenant {state.tenant!r}",
        "tenant_budget",
    )


def admit(state: RunState, plan: CallPlan) -> tuple[CallPlan, Admission | None] | Stop:
    gate = state.agent.gate
    if gate is None:
        return plan, None
    request = plan_request(state, plan)
    return _admitted(state, plan, gate.admit(request))


async def aadmit(state: RunState, plan: CallPlan) -> tuple[CallPlan, Admission | None] | Stop:
    gate = state.agent.gate
    if gate is None:
        return plan, None
    request = plan_request(state, plan)
    return _admitted(state, plan, await gate.aadmit(request))


def waited(call: Any, admission: Admission | None) -> None:
    """The admission's rate-limit wait, as an event on the call's span."""
    if admission is None or admission.waited_s <= 0 or call is None:
        return
    with contextlib.suppress(Exception):
        call.span.add_event(n.EVENT_RATE_LIMIT_WAIT, {n.AW_RATE_LIMIT_WAIT_S: round(admission.waited_s, 4)})


def settlement(
    state: RunState,
    plan: CallPlan,
    admission: Admission,
    *,
    message: Any = None,
    usage: Usage | None = None,
    error: BaseException | None = None,
    headers: Mapping[str, str] | None = None,
) -> Settlement:
    if message is not None and usage is None:
        usage = Usage.from_api(getattr(message, "usage", None))
    cost = state.agent.pricing.cost(plan.route.model, usage) if usage is not None else None
    return Settlement(
        admission=admission,
        request=plan_request(state, plan),
        usage=usage,
        cost_usd=cost,
        error=error,
        headers=dict(headers) if headers is not None else None,
    )


def settle(state: RunState, admission: Admission | None, plan: CallPlan, **outcome: Any) -> None:
    gate = state.agent.gate
    if gate is None or admission is None:
        return
    with contextlib.suppress(Exception):
        gate.settle(settlement(state, plan, admission, **outcome))


async def asettle(state: RunState, admission: Admission | None, plan: CallPlan, **outcome: Any) -> None:
    gate = state.agent.gate
    if gate is None or admission is None:
        return
    with contextlib.suppress(Exception):
        await gate.asettle(settlement(state, plan, admission, **outcome))


def cut_usage(events: Any) -> Usage | None:
    try:
        return Usage.from_api(events.current_message_snapshot.usage)
    except Exception:
        return None


def response_headers(obj: Any) -> Mapping[str, str] | None:
    response = getattr(obj, "response", None) or getattr(obj, "http_response", None)
    headers = getattr(response, "headers", None)
    return dict(headers) if headers is not None else None
