"""Model tier routing: each call's model is chosen by the router and recorded on the result and spans."""

from __future__ import annotations

from agentwatch import Route, RouteContext, StopReason, TierRouter
from agentwatch.telemetry import names as n

from .support import CAPABLE, DEMO_TASK, MODEL, by_iteration, demo_agent, sync_client

ROUTER = TierRouter(fast=MODEL, capable=CAPABLE)


def test_a_compound_task_uses_the_fast_model_for_tools_and_the_capable_one_to_answer(sim, spans, logs) -> None:
    agent = demo_agent("tiers", router=ROUTER)
    result = agent.run(DEMO_TASK, client=sync_client(sim))

    assert result.stop_reason is StopReason.END_TURN and "8.1 billion" in result.answer
    assert result.models == [MODEL, CAPABLE]
    chats = by_iteration(spans.get_finished_spans())
    assert [s.name for s in chats] == [f"chat {MODEL}", f"chat {CAPABLE}", f"chat {CAPABLE}"]
    assert [s.attributes[n.GEN_AI_REQUEST_MODEL] for s in chats] == [MODEL, CAPABLE, CAPABLE]
    assert [s.attributes[n.GEN_AI_RESPONSE_MODEL] for s in chats] == [MODEL, CAPABLE, CAPABLE]
    assert [s.attributes[n.AW_MODEL_TIER] for s in chats] == ["fast", "capable", "capable"]
    assert chats[0].attributes[n.AW_MODEL_ROUTE_REASON] == "tool selection"
    assert chats[1].attributes[n.AW_MODEL_ROUTE_REASON] == "synthesis after tool results"
    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert list(root.attributes[n.AW_RUN_MODELS]) == [MODEL, CAPABLE]
    routes = logs.events("model_route")
    assert [(r["model"], r["tier"], r["iteration"]) for r in routes] == [
        (MODEL, "fast", 1),
        (CAPABLE, "capable", 2),
        (CAPABLE, "capable", 3),
    ]
    assert [r["models"] for r in logs.events("run_end")] == [[MODEL, CAPABLE]]
    # The cost is each call priced at its own model's rates.
    assert result.cost_usd == sum(s.attributes[n.AW_CALL_COST_USD] for s in chats)


def test_a_simple_task_stays_on_the_fast_model(sim, spans) -> None:
    agent = demo_agent("tiers-simple", router=ROUTER)
    result = agent.run("What is 1234 * 5678?", client=sync_client(sim))

    assert result.models == [MODEL]
    chats = by_iteration(spans.get_finished_spans())
    assert {s.attributes[n.GEN_AI_REQUEST_MODEL] for s in chats} == {MODEL}
    assert {s.attributes[n.AW_MODEL_ROUTE_REASON] for s in chats} == {"simple task"}


def test_a_custom_router_function_may_return_a_model_name_or_a_route(sim, spans) -> None:
    seen: list[RouteContext] = []

    def router(context: RouteContext) -> Route | str:
        seen.append(context)
        return CAPABLE if context.iteration == 1 else Route(MODEL, "small", "after the first call")

    result = demo_agent("custom-router", router=router).run("What is 1234 * 5678?", client=sync_client(sim))

    assert result.models == [CAPABLE, MODEL]
    assert [c.iteration for c in seen] == [1, 2]
    assert [c.has_tool_results for c in seen] == [False, True]
    chats = by_iteration(spans.get_finished_spans())
    assert n.AW_MODEL_TIER not in chats[0].attributes  # a bare model name has no tier
    assert chats[1].attributes[n.AW_MODEL_TIER] == "small"


def test_a_router_that_raises_stops_the_run_with_a_clear_error(sim, spans, logs) -> None:
    def broken(context: RouteContext) -> Route:
        raise LookupError("no tier for this task")

    result = demo_agent("tiers-broken", router=broken).run(DEMO_TASK, client=sync_client(sim))

    assert result.stop_reason is StopReason.ERROR and result.error == "LookupError"
    assert "the agent's router raised LookupError: no tier for this task" in result.answer
    assert "internally" not in result.answer  # the user's code failed, not agentwatch
    assert result.iterations == 0 and len(logs.events("run_end")) == 1


def test_a_router_that_returns_nonsense_stops_the_run(sim) -> None:
    result = demo_agent("tiers-nonsense", router=lambda context: 42).run(DEMO_TASK, client=sync_client(sim))
    assert result.stop_reason is StopReason.ERROR and "return a model id or a Route" in result.answer
