"""A tool retry is visible to on-call: a ``tool_retry`` log record and an ``agentwatch.tool.retries`` count
beside the ``agentwatch.retry`` span event, naming the tool and the error type but never the tool's input."""

from __future__ import annotations

import json

import pytest

from agentwatch import StopReason, TransientToolError, tool
from agentwatch.telemetry import names as n
from conftest import metric_points, metric_unit

from .support import async_client, demo_agent, sync_client

SECRET_QUERY = "account 4417-1234-5678-9113"  # what the model sent: input content, never telemetry


def flaky_lookup_tool(failures: int):
    calls = {"n": 0}

    @tool(retries=3, retry_backoff_s=0.01)
    def flaky_lookup(query: str) -> str:
        """Look a record up in a backend that is sometimes busy.

        Args:
            query: What to look up.
        """
        calls["n"] += 1
        if calls["n"] <= failures:
            raise TransientToolError(f"backend busy while looking up {query}")  # the message quotes the input
        return f"found {query}"

    return flaky_lookup


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_a_tool_retry_is_logged_and_counted_without_its_input(fresh_sim, logs, spans, mode) -> None:
    agent = demo_agent("tool-retry", tools=[flaky_lookup_tool(2)])
    task = f"[[tool:flaky_lookup:{json.dumps({'query': SECRET_QUERY})}]] Look it up."
    if mode == "run":
        result = agent.run(task, client=sync_client(fresh_sim))
    else:
        result = await agent.arun(task, client=async_client(fresh_sim))

    assert result.stop_reason is StopReason.END_TURN
    (call,) = result.tool_calls
    assert call.outcome == "ok"

    records = logs.events(n.LOG_TOOL_RETRY)
    assert [r["attempt"] for r in records] == [1, 2]
    for record in records:
        assert record["tool"] == "flaky_lookup" and record["error_type"] == "TransientToolError"
        assert record["call_id"] == call.id and record["trace_id"] == result.trace_id
        assert record["level"] == "warning"
        assert 0 < record["wait_s"] <= 0.02
        assert SECRET_QUERY not in json.dumps(record)
    tool_span = next(s for s in spans.get_finished_spans() if s.name == n.tool_span_name("flaky_lookup"))
    assert [r["span_id"] for r in records] == [format(tool_span.context.span_id, "016x")] * 2
    events = [e for e in tool_span.events if e.name == n.EVENT_RETRY]
    assert [e.attributes[n.AW_RETRY_WAIT_S] for e in events] == [r["wait_s"] for r in records]

    attributes = {n.GEN_AI_AGENT_NAME: agent.name, n.GEN_AI_TOOL_NAME: "flaky_lookup"}
    (point,) = metric_points(n.M_TOOL_RETRIES[0], **attributes)
    assert point.value == 2 and point.attributes[n.ERROR_TYPE] == "TransientToolError"
    assert metric_unit(n.M_TOOL_RETRIES[0]) == n.M_TOOL_RETRIES[1] == "{retry}"
    assert SECRET_QUERY not in json.dumps(dict(point.attributes))
    # The model-call retry counter is for LLM calls only.
    assert metric_points(n.M_RETRIES[0], **{n.GEN_AI_AGENT_NAME: agent.name}) == []


def test_a_tool_that_succeeds_first_time_records_no_retry(fresh_sim, logs) -> None:
    agent = demo_agent("tool-no-retry", tools=[flaky_lookup_tool(0)])
    result = agent.run('[[tool:flaky_lookup:{"query": "x"}]] Look it up.', client=sync_client(fresh_sim))

    assert result.stop_reason is StopReason.END_TURN
    assert logs.events(n.LOG_TOOL_RETRY) == []
    assert metric_points(n.M_TOOL_RETRIES[0], **{n.GEN_AI_AGENT_NAME: agent.name}) == []
