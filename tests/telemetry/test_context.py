"""Context is never lost: tool spans nest, concurrent runs stay apart, callers' traces are continued."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind

from agentwatch import tool
from agentwatch.sim import Fault, FaultPlan
from runner.support import DEMO_TASK, DIRECT_TASK, EVAL_CASES, async_client, demo_agent, fast_limits, sync_client

from .helpers import assert_one_http_span_per_attempt, named, the, trace_spans, tree

test_tracer = trace.get_tracer("tests.telemetry")


@tool
def audited_lookup(item: str) -> str:
    """Look an item up, tracing the work with a span of its own.

    Args:
        item: What to look up.
    """
    with test_tracer.start_as_current_span("inventory.query") as span:
        span.set_attribute("inventory.item", item)
        with test_tracer.start_as_current_span("inventory.cache"):
            pass
    return f"{item}: 12 in stock"


@tool
async def audited_lookup_async(item: str) -> str:
    """The async form of audited_lookup.

    Args:
        item: What to look up.
    """
    with test_tracer.start_as_current_span("inventory.query"):
        await asyncio.sleep(0.001)
    return f"{item}: 7 in stock"


@pytest.mark.parametrize("mode", ["run", "stream", "arun", "arun-sync-tool"])
async def test_a_tools_own_spans_nest_under_its_execute_tool_span(sim, spans, mode) -> None:
    fn = audited_lookup_async if mode == "arun" else audited_lookup
    agent = demo_agent("nested", tools=[fn])
    task = f'[[tool:{fn.name}:{{"item": "bolts"}}]] Check.'
    if mode == "run":
        result = agent.run(task, client=sync_client(sim))
    elif mode == "stream":
        result = list(agent.stream(task, client=sync_client(sim)))[-1].result
    else:
        result = await agent.arun(task, client=async_client(sim))
    finished = trace_spans(spans, result.trace_id)

    shape = [(depth, name) for depth, name, _ in tree(finished)]
    expected_inner = (
        [(2, "inventory.query"), (3, "inventory.cache")] if fn is audited_lookup else [(2, "inventory.query")]
    )
    assert shape == [
        (0, f"invoke_agent {agent.name}"),
        (1, f"chat {agent.model}"),
        (1, f"execute_tool {fn.name}"),
        *expected_inner,
        (1, f"chat {agent.model}"),
    ]


def test_http_requests_are_traced_under_the_tool_and_under_the_chat_span(fresh_sim, spans) -> None:
    """HTTPX2ClientInstrumentor on the tool's client and on the SDK's client: every attempt nests right."""
    probe = httpx2.Client()
    HTTPX2ClientInstrumentor.instrument_client(probe)

    @tool
    def health_check() -> str:
        """Check the service health over HTTP."""
        return probe.get(f"{fresh_sim.base_url}/health").text

    sdk_http = httpx2.Client()
    HTTPX2ClientInstrumentor.instrument_client(sdk_http)
    fresh_sim.faults = FaultPlan(schedule=[None, Fault.overloaded()])  # the 2nd call is retried once
    agent = demo_agent("http", tools=[health_check], limits=fast_limits(max_retries=2))
    try:
        result = agent.run("[[tool:health_check:{}]] Check.", client=sync_client(fresh_sim, http_client=sdk_http))
    finally:
        HTTPX2ClientInstrumentor.uninstrument_client(probe)
        HTTPX2ClientInstrumentor.uninstrument_client(sdk_http)
    finished = trace_spans(spans, result.trace_id)

    assert result.ok and '"status": "ok"' in result.tool_calls[0].output
    assert_one_http_span_per_attempt(finished, agent)


async def test_50_runs_in_one_gather_give_50_separate_complete_traces(sim, spans) -> None:
    agent = demo_agent("gather")
    tasks = [DEMO_TASK if i % 2 else EVAL_CASES[i % 3][0] for i in range(50)]
    client = async_client(sim)
    results = await asyncio.gather(*(agent.arun(task, client=client) for task in tasks))

    assert len({r.trace_id for r in results}) == 50
    for result in results:
        finished = trace_spans(spans, result.trace_id)
        shape = tree(finished)  # exactly one root; every span reachable from it
        root = the(finished, "invoke_agent")
        assert root.parent is None
        assert sum(1 for _, name, _ in shape if name.startswith("chat")) == result.iterations
        assert sum(1 for _, name, _ in shape if name.startswith("execute_tool")) == len(result.tool_calls)
        assert all(depth == 1 for depth, _, _ in shape[1:])


@pytest.mark.parametrize("mode", ["run", "arun", "astream"])
async def test_a_run_inside_a_callers_span_is_its_child(sim, spans, mode) -> None:
    agent = demo_agent("caller")
    with test_tracer.start_as_current_span("POST /ask") as caller:
        if mode == "run":
            result = agent.run(DIRECT_TASK, client=sync_client(sim))
        elif mode == "arun":
            result = await agent.arun(DIRECT_TASK, client=async_client(sim))
        else:
            result = [e async for e in agent.astream(DIRECT_TASK, client=async_client(sim))][-1].result
    caller_context = caller.get_span_context()

    assert result.trace_id == format(caller_context.trace_id, "032x")
    root = the(trace_spans(spans, result.trace_id), "invoke_agent")
    assert root.parent is not None and root.parent.span_id == caller_context.span_id


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_an_incoming_w3c_traceparent_makes_the_run_part_of_the_callers_trace(sim, spans, mode) -> None:
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    token = otel_context.attach(extract(headers))
    try:
        agent = demo_agent("traceparent")
        if mode == "run":
            result = agent.run(DEMO_TASK, client=sync_client(sim))
        else:
            result = await agent.arun(DEMO_TASK, client=async_client(sim))
    finally:
        otel_context.detach(token)

    assert result.trace_id == "0af7651916cd43dd8448eb211c80319c"
    finished = trace_spans(spans, result.trace_id)
    root = the(finished, "invoke_agent")
    assert root.parent.span_id == 0xB7AD6B7169203331 and root.parent.is_remote
    assert len(finished) == 6  # root, 3 chats, 2 tools: all in the caller's trace


def test_the_sdk_span_is_off_by_default_and_a_child_of_chat_when_asked_for(sim, spans) -> None:
    plain = demo_agent("sdk-off").run("What is 1234 * 5678?", client=sync_client(sim))
    kept = demo_agent("sdk-on", sdk_spans=True).run("What is 1234 * 5678?", client=sync_client(sim))

    plain_names = {s.name for s in trace_spans(spans, plain.trace_id)}
    assert all(name.split()[0] in ("invoke_agent", "chat", "execute_tool") for name in plain_names)
    finished = trace_spans(spans, kept.trace_id)
    chats = named(finished, "chat")
    sdk = [s for s in finished if s.name.split()[0] not in ("invoke_agent", "chat", "execute_tool")]
    assert len(sdk) == len(chats) == 2  # one SDK span per call, never a duplicate at the same level
    assert {s.parent.span_id for s in sdk} == {c.context.span_id for c in chats}
    assert all(s.kind is SpanKind.CLIENT for s in sdk)


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_the_result_carries_the_root_spans_context_typed_and_as_hex(sim, spans, mode) -> None:
    agent = demo_agent("span-context")
    if mode == "run":
        result = agent.run(DIRECT_TASK, client=sync_client(sim))
    else:
        result = await agent.arun(DIRECT_TASK, client=async_client(sim))
    root = the(trace_spans(spans, result.trace_id), "invoke_agent")

    assert result.span_context == root.context and result.span_context.is_valid
    assert (result.trace_id, result.span_id) == (
        format(root.context.trace_id, "032x"),
        format(root.context.span_id, "016x"),
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(result.span_context))  # usable as it is
    with test_tracer.start_as_current_span("follow-up", context=parent) as follow_up:
        pass
    assert follow_up.parent is not None and follow_up.parent.span_id == root.context.span_id
