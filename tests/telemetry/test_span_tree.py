"""The exact span tree of a run: names, kinds, parents, key attributes and status, for each kind of run."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch import StopReason, tool
from agentwatch.sim import Fault, FaultPlan
from agentwatch.telemetry import names as n
from agentwatch.tools import calculator, web_search
from runner.support import (
    DEMO_TASK,
    DIRECT_TASK,
    MODEL,
    async_client,
    consume,
    demo_agent,
    fast_limits,
    sync_client,
)

from .helpers import named, the, trace_spans, tree

INTERNAL, CLIENT = SpanKind.INTERNAL, SpanKind.CLIENT
UNSET, ERROR = StatusCode.UNSET, StatusCode.ERROR


def no_usage_on(span) -> None:
    """Run totals live under agentwatch.*: gen_ai.usage.* on the parent would be double counted."""
    assert not [k for k in span.attributes if k.startswith("gen_ai.usage.")]


def test_direct_answer(sim, spans, tracker) -> None:
    agent = demo_agent("direct", tools=[], description="Answers questions")
    result = agent.run(DIRECT_TASK, client=sync_client(sim), conversation_id="conv-42")
    finished = trace_spans(spans, result.trace_id)

    assert tree(finished) == [(0, f"invoke_agent {agent.name}", INTERNAL), (1, f"chat {MODEL}", CLIENT)]
    root, chat = the(finished, "invoke_agent"), the(finished, "chat")
    assert root.parent is None
    assert root.status.status_code is UNSET and chat.status.status_code is UNSET
    assert dict(root.attributes) == {
        n.GEN_AI_OPERATION_NAME: "invoke_agent",
        n.GEN_AI_PROVIDER_NAME: "anthropic",
        n.GEN_AI_AGENT_NAME: agent.name,
        n.GEN_AI_AGENT_DESCRIPTION: "Answers questions",
        n.GEN_AI_CONVERSATION_ID: "conv-42",
        n.GEN_AI_REQUEST_MODEL: MODEL,
        n.AW_BUDGET_ITERATIONS_LIMIT: 10,
        n.AW_BUDGET_TIMEOUT_S: 20.0,
        n.AW_RUN_STOP_REASON: "end_turn",
        n.AW_RUN_ITERATIONS: 1,
        n.AW_RUN_TOOL_CALLS: 0,
        n.AW_RUN_INPUT_TOKENS: result.usage.total_input_tokens,
        n.AW_RUN_OUTPUT_TOKENS: result.usage.output_tokens,
        n.AW_RUN_CACHE_READ_TOKENS: 0,
        n.AW_RUN_CACHE_WRITE_TOKENS: 0,
        n.AW_RUN_MODELS: (MODEL,),
        n.AW_RUN_COST_USD: result.cost_usd,
    }
    assert dict(chat.attributes) == {
        n.GEN_AI_OPERATION_NAME: "chat",
        n.GEN_AI_PROVIDER_NAME: "anthropic",
        n.GEN_AI_REQUEST_MODEL: MODEL,
        n.GEN_AI_REQUEST_MAX_TOKENS: 4096,
        n.SERVER_ADDRESS: "127.0.0.1",
        n.SERVER_PORT: sim.port,
        n.AW_CALL_ITERATION: 1,
        n.AW_CALL_ATTEMPTS: 1,
        n.GEN_AI_RESPONSE_ID: chat.attributes[n.GEN_AI_RESPONSE_ID],
        n.GEN_AI_RESPONSE_MODEL: MODEL,
        n.GEN_AI_RESPONSE_FINISH_REASONS: ("end_turn",),
        n.GEN_AI_USAGE_INPUT_TOKENS: result.usage.total_input_tokens,
        n.GEN_AI_USAGE_OUTPUT_TOKENS: result.usage.output_tokens,
        n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
        n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 0,
        n.AW_CALL_COST_USD: result.cost_usd,
    }
    assert chat.attributes[n.GEN_AI_RESPONSE_ID].startswith("msg_")
    # What samplers need is there when the span starts.
    at_start = tracker.at_start[chat.context.span_id]
    for key in (n.GEN_AI_OPERATION_NAME, n.GEN_AI_PROVIDER_NAME, n.GEN_AI_REQUEST_MODEL, n.SERVER_ADDRESS):
        assert key in at_start
    assert at_start[n.SERVER_PORT] == sim.port
    root_start = tracker.at_start[root.context.span_id]
    assert root_start[n.GEN_AI_OPERATION_NAME] == "invoke_agent" and root_start[n.GEN_AI_AGENT_NAME] == agent.name
    assert root.start_time <= chat.start_time <= chat.end_time <= root.end_time


def test_multi_tool_run(sim, spans) -> None:
    agent = demo_agent("multi")
    result = agent.run(DEMO_TASK, client=sync_client(sim))
    finished = trace_spans(spans, result.trace_id)

    assert tree(finished) == [
        (0, f"invoke_agent {agent.name}", INTERNAL),
        (1, f"chat {MODEL}", CLIENT),
        (1, "execute_tool web_search", INTERNAL),
        (1, f"chat {MODEL}", CLIENT),
        (1, "execute_tool calculator", INTERNAL),
        (1, f"chat {MODEL}", CLIENT),
    ]
    chats, tools = named(finished, "chat"), named(finished, "execute_tool")
    assert [c.attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] for c in chats] == [
        ("tool_use",),
        ("tool_use",),
        ("end_turn",),
    ]
    assert [c.attributes[n.AW_CALL_ITERATION] for c in chats] == [1, 2, 3]
    for span, call, fn in zip(tools, result.tool_calls, [web_search, calculator], strict=True):
        assert dict(span.attributes) == {
            n.GEN_AI_OPERATION_NAME: "execute_tool",
            n.GEN_AI_TOOL_NAME: fn.name,
            n.GEN_AI_TOOL_CALL_ID: call.id,  # the Anthropic tool_use id
            n.GEN_AI_TOOL_TYPE: "function",
            n.GEN_AI_TOOL_DESCRIPTION: fn.description,
            n.AW_TOOL_OUTCOME: "ok",
            n.AW_TOOL_ATTEMPTS: 1,
        }
        assert call.id.startswith("toolu_") and span.status.status_code is UNSET
    root = the(finished, "invoke_agent")
    assert root.attributes[n.AW_RUN_TOOL_CALLS] == 2 and root.attributes[n.AW_RUN_ITERATIONS] == 3
    assert root.attributes[n.AW_RUN_INPUT_TOKENS] == sum(c.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] for c in chats)
    no_usage_on(root)
    assert all(s.status.status_code is UNSET for s in finished)


async def test_parallel_tools_in_one_turn_are_sibling_spans_that_overlap(sim, spans) -> None:
    agent = demo_agent("parallel")
    result = await agent.arun("[[parallel]] What is 12 * 12 and 7 + 8?", client=async_client(sim))
    finished = trace_spans(spans, result.trace_id)

    assert tree(finished) == [
        (0, f"invoke_agent {agent.name}", INTERNAL),
        (1, f"chat {MODEL}", CLIENT),
        (1, "execute_tool calculator", INTERNAL),
        (1, "execute_tool calculator", INTERNAL),
        (1, f"chat {MODEL}", CLIENT),
    ]
    first, second = named(finished, "execute_tool")
    assert second.start_time < first.end_time  # run concurrently
    assert {first.attributes[n.GEN_AI_TOOL_CALL_ID], second.attributes[n.GEN_AI_TOOL_CALL_ID]} == {
        c.id for c in result.tool_calls
    }


def test_streaming_run(sim, spans, tracker) -> None:
    agent = demo_agent("stream")
    _, result = consume(agent.stream(DEMO_TASK, client=sync_client(sim)))
    plain = demo_agent("not-stream").run(DEMO_TASK, client=sync_client(sim))
    finished = trace_spans(spans, result.trace_id)

    assert [name for _, name, _ in tree(finished)] == [
        f"invoke_agent {agent.name}",
        f"chat {MODEL}",
        "execute_tool web_search",
        f"chat {MODEL}",
        "execute_tool calculator",
        f"chat {MODEL}",
    ]
    assert result.usage == plain.usage  # streaming loses no tokens
    for chat in named(finished, "chat"):
        assert tracker.at_start[chat.context.span_id][n.GEN_AI_REQUEST_STREAM] is True
        first_chunk = chat.attributes[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        assert 0 < first_chunk <= (chat.end_time - chat.start_time) / 1e9
        assert chat.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert chat.attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
        assert chat.attributes[n.GEN_AI_RESPONSE_ID].startswith("msg_")
        assert chat.status.status_code is UNSET
    no_usage_on(the(finished, "invoke_agent"))


def test_non_streaming_chat_spans_have_no_stream_attributes(sim, spans) -> None:
    result = demo_agent("plain").run(DIRECT_TASK, client=sync_client(sim))
    chat = the(trace_spans(spans, result.trace_id), "chat")
    assert n.GEN_AI_REQUEST_STREAM not in chat.attributes
    assert n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in chat.attributes


def test_retried_call_is_one_chat_span_with_a_retry_event_per_failed_attempt(fresh_sim, spans) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_ms=20), Fault.overloaded()])
    agent = demo_agent("retried", tools=[], limits=fast_limits(max_retries=2))
    result = agent.run(DIRECT_TASK, client=sync_client(fresh_sim))
    finished = trace_spans(spans, result.trace_id)

    assert result.stop_reason is StopReason.END_TURN and len(fresh_sim.requests) == 3
    assert tree(finished) == [(0, f"invoke_agent {agent.name}", INTERNAL), (1, f"chat {MODEL}", CLIENT)]
    chat = the(finished, "chat")
    assert chat.status.status_code is UNSET and n.ERROR_TYPE not in chat.attributes
    assert chat.attributes[n.AW_CALL_ATTEMPTS] == 3
    first, second = chat.events
    assert first.name == second.name == n.EVENT_RETRY
    assert dict(first.attributes) == {
        n.AW_RETRY_ATTEMPT: 1,
        n.ERROR_TYPE: "RateLimitError",
        n.AW_RETRY_WAIT_S: 0.02,
        n.HTTP_RESPONSE_STATUS_CODE: 429,
    }
    assert second.attributes[n.AW_RETRY_ATTEMPT] == 2
    assert second.attributes[n.ERROR_TYPE] == "OverloadedError"
    assert second.attributes[n.HTTP_RESPONSE_STATUS_CODE] == 529
    assert 0.005 <= second.attributes[n.AW_RETRY_WAIT_S] <= 0.02
    assert (chat.end_time - chat.start_time) / 1e9 >= 0.02 + 0.005  # the span covers the waits too


def test_call_that_fails_for_good_marks_chat_and_run_as_errors(fresh_sim, spans) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.overloaded()] * 3)
    agent = demo_agent("failed", tools=[], limits=fast_limits(max_retries=2))
    result = agent.run(DIRECT_TASK, client=sync_client(fresh_sim))
    finished = trace_spans(spans, result.trace_id)

    assert result.stop_reason is StopReason.ERROR
    assert [name for _, name, _ in tree(finished)] == [f"invoke_agent {agent.name}", f"chat {MODEL}"]
    chat, root = the(finished, "chat"), the(finished, "invoke_agent")
    assert chat.status.status_code is ERROR and chat.attributes[n.ERROR_TYPE] == "OverloadedError"
    assert [e.name for e in chat.events] == [n.EVENT_RETRY, n.EVENT_RETRY, "exception"]
    assert chat.events[-1].attributes["exception.type"].endswith("OverloadedError")
    assert root.status.status_code is ERROR
    assert root.attributes[n.ERROR_TYPE] == "OverloadedError"
    assert "529" in root.status.description
    assert root.attributes[n.AW_RUN_STOP_REASON] == "error"


def test_budget_stop(sim, spans) -> None:
    limits = fast_limits(token_budget=1_500, max_tokens=128, budget_warning_fraction=0.5)
    agent = demo_agent("budget", limits=limits)
    result = agent.run("[[loop]] Keep adding.", client=sync_client(sim))
    finished = trace_spans(spans, result.trace_id)

    assert result.stop_reason is StopReason.TOKEN_BUDGET
    shape = [name for _, name, _ in tree(finished)]
    assert shape[0] == f"invoke_agent {agent.name}"
    assert shape[1:] == [f"chat {MODEL}", "execute_tool calculator"] * result.iterations
    root = the(finished, "invoke_agent")
    chats = named(finished, "chat")
    no_usage_on(root)
    attributes = root.attributes
    assert attributes[n.AW_RUN_STOP_REASON] == "token_budget"
    assert attributes[n.AW_RUN_STOP_DETAIL] == result.stop_detail
    assert attributes[n.AW_BUDGET_TOKENS_LIMIT] == 1_500
    assert attributes[n.AW_BUDGET_TOKENS_REMAINING] == 1_500 - result.usage.total_tokens >= 0
    assert attributes[n.AW_RUN_INPUT_TOKENS] == sum(c.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] for c in chats)
    assert attributes[n.AW_RUN_OUTPUT_TOKENS] == sum(c.attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] for c in chats)
    assert attributes[n.AW_RUN_ITERATIONS] == len(chats) == result.iterations
    assert attributes[n.AW_RUN_COST_USD] == pytest.approx(sum(c.attributes[n.AW_CALL_COST_USD] for c in chats))
    assert {e.name for e in root.events} == {n.EVENT_BUDGET_WARNING}
    assert "tokens" in [e.attributes[n.AW_BUDGET_KIND] for e in root.events]
    assert root.status.status_code is UNSET  # a budget stop is the guard working, not a failure


def test_cost_budget_stop_records_what_was_left(sim, spans) -> None:
    agent = demo_agent("cost-stop", limits=fast_limits(cost_budget_usd=0.002, max_tokens=128))
    result = agent.run("[[loop]] Keep adding.", client=sync_client(sim))
    root = the(trace_spans(spans, result.trace_id), "invoke_agent")

    assert root.attributes[n.AW_RUN_STOP_REASON] == "cost_budget"
    assert root.attributes[n.AW_BUDGET_COST_LIMIT_USD] == 0.002
    assert root.attributes[n.AW_BUDGET_COST_REMAINING_USD] == pytest.approx(0.002 - result.cost_usd, abs=1e-9)
    no_usage_on(root)


@tool
def broken(item: str) -> str:
    """Look an item up in a service that is down.

    Args:
        item: The item.
    """
    raise RuntimeError(f"inventory service down while fetching {item}")


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_tool_error(sim, spans, mode) -> None:
    agent = demo_agent("tool-error", tools=[broken])
    task = '[[tool:broken:{"item": "widgets"}]] Check stock.'
    if mode == "run":
        result = agent.run(task, client=sync_client(sim))
    else:
        result = await agent.arun(task, client=async_client(sim))
    finished = trace_spans(spans, result.trace_id)

    assert [name for _, name, _ in tree(finished)] == [
        f"invoke_agent {agent.name}",
        f"chat {MODEL}",
        "execute_tool broken",
        f"chat {MODEL}",
    ]
    span = the(finished, "execute_tool")
    assert span.status.status_code is ERROR
    assert "RuntimeError: inventory service down" in span.status.description
    assert span.attributes[n.ERROR_TYPE] == "RuntimeError"
    (exception,) = [e for e in span.events if e.name == "exception"]
    assert exception.attributes["exception.type"] == "RuntimeError"
    assert "inventory service down" in exception.attributes["exception.message"]
    assert span.attributes[n.AW_TOOL_OUTCOME] == "error"
    assert n.GEN_AI_PROVIDER_NAME not in span.attributes
    root = the(finished, "invoke_agent")
    assert root.status.status_code is UNSET and root.attributes[n.AW_RUN_STOP_REASON] == "end_turn"
    assert all(c.status.status_code is UNSET for c in named(finished, "chat"))


def test_timeout_in_a_tool(sim, spans) -> None:
    release = threading.Event()

    @tool
    def stuck() -> str:
        """Never returns."""
        release.wait(30)
        return "late"

    agent = demo_agent("timeout", tools=[stuck], limits=fast_limits(timeout_s=0.4, tool_timeout_s=None))
    try:
        result = agent.run("[[tool:stuck:{}]] Go.", client=sync_client(sim))
    finally:
        release.set()
    finished = trace_spans(spans, result.trace_id)

    assert tree(finished) == [
        (0, f"invoke_agent {agent.name}", INTERNAL),
        (1, f"chat {MODEL}", CLIENT),
        (1, "execute_tool stuck", INTERNAL),
    ]
    span, root = the(finished, "execute_tool"), the(finished, "invoke_agent")
    assert span.status.status_code is ERROR
    assert span.attributes[n.ERROR_TYPE] == "timeout" and span.attributes[n.AW_TOOL_OUTCOME] == "timeout"
    assert root.attributes[n.AW_RUN_STOP_REASON] == "timeout"
    assert root.attributes[n.AW_BUDGET_TIMEOUT_S] == 0.4
    assert root.status.status_code is UNSET


async def test_timeout_in_a_hung_http_call(fresh_sim, spans) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.hang()])
    agent = demo_agent("timeout-http", limits=fast_limits(timeout_s=0.4))
    result = await agent.arun(DIRECT_TASK, client=async_client(fresh_sim))
    finished = trace_spans(spans, result.trace_id)

    assert tree(finished) == [(0, f"invoke_agent {agent.name}", INTERNAL), (1, f"chat {MODEL}", CLIENT)]
    chat, root = the(finished, "chat"), the(finished, "invoke_agent")
    assert chat.status.status_code is ERROR
    assert chat.attributes[n.ERROR_TYPE] in ("TimeoutError", "APITimeoutError")
    assert root.attributes[n.AW_RUN_STOP_REASON] == "timeout"
