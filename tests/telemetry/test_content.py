"""Content capture: off by default, opt-in via the standard switch, shaped per the conventions,
size-capped, and never carrying secrets; a scan of everything a run exports finds no key and no content."""

from __future__ import annotations

import json
import uuid

import pytest

from agentwatch import StopReason, tool
from agentwatch.sim import Fault, FaultPlan
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import CAPTURE_ENV, MAX_CHARS_ENV
from conftest import METRIC_READER
from runner.support import API_KEY, async_client, demo_agent, sync_client

from .helpers import named, the, trace_spans

PLANTED_KEY = "sk-ant-api03-" + "k3Y" * 13 + "x"  # 40 characters after the prefix


@tool
def leaky_config(service: str) -> str:
    """Read a service's configuration (which, carelessly, includes its API key).

    Args:
        service: The service name.
    """
    return f"service={service} region=eu-west-1 api_key={PLANTED_KEY} raw={PLANTED_KEY}"


def everything_exported(spans, logs, trace_id: str) -> str:
    """All span names, attributes, events, statuses of the run, every metric attribute, every log record."""
    parts = []
    for span in trace_spans(spans, trace_id):
        parts += [span.name, json.dumps(dict(span.attributes), default=str), span.status.description or ""]
        parts += [json.dumps([e.name, dict(e.attributes)], default=str) for e in span.events]
    data = METRIC_READER.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                parts += [json.dumps(dict(p.attributes), default=str) for p in metric.data.data_points]
    parts += [json.dumps(record, default=str) for record in logs.records]
    return "\n".join(parts)


def test_content_is_off_by_default(sim, spans, logs, monkeypatch) -> None:
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    agent = demo_agent("no-content", system="You are a terse assistant.")
    result = agent.run("What is 1234 * 5678?", client=sync_client(sim))

    for span in trace_spans(spans, result.trace_id):
        assert not set(span.attributes) & set(n.CONTENT_ATTRIBUTES), span.name
    assert logs.events("gen_ai.client.inference.operation.details") == []


@pytest.mark.parametrize("value", ["SPAN_ONLY", "span_and_event"])
def test_span_content_in_the_conventions_shape(sim, spans, monkeypatch, value) -> None:
    monkeypatch.setenv(CAPTURE_ENV, value)
    agent = demo_agent("content", system="You are a terse assistant.")
    result = agent.run("What is 1234 * 5678?", client=sync_client(sim))
    finished = trace_spans(spans, result.trace_id)
    first, second = named(finished, "chat")
    tool_span = the(finished, "execute_tool")
    call = result.tool_calls[0]

    assert first.attributes[n.GEN_AI_SYSTEM_INSTRUCTIONS] == "You are a terse assistant."
    assert json.loads(first.attributes[n.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is 1234 * 5678?"}]}
    ]
    assert json.loads(first.attributes[n.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "I'll calculate that."},
                {"type": "tool_call", "id": call.id, "name": "calculator", "arguments": {"expression": "1234 * 5678"}},
            ],
        }
    ]
    second_input = json.loads(second.attributes[n.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in second_input] == ["user", "assistant", "user"]
    assert second_input[-1]["parts"] == [{"type": "tool_call_response", "id": call.id, "response": "7006652"}]
    output = json.loads(second.attributes[n.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == result.answer
    assert json.loads(tool_span.attributes[n.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"expression": "1234 * 5678"}
    assert tool_span.attributes[n.GEN_AI_TOOL_CALL_RESULT] == "7006652"
    the(finished, "invoke_agent")  # the root carries totals, not content
    assert not set(the(finished, "invoke_agent").attributes) & set(n.CONTENT_ATTRIBUTES)


def test_event_only_puts_content_in_log_events_not_spans(sim, spans, logs, monkeypatch) -> None:
    monkeypatch.setenv(CAPTURE_ENV, "EVENT_ONLY")
    result = demo_agent("events-only", tools=[]).run("Say hello.", client=sync_client(sim))

    for span in trace_spans(spans, result.trace_id):
        assert not set(span.attributes) & set(n.CONTENT_ATTRIBUTES)
    (record,) = logs.events(n.LOG_INFERENCE_DETAILS)
    assert "direct answer" in record[n.GEN_AI_OUTPUT_MESSAGES] and record["trace_id"] == result.trace_id
    assert json.loads(record[n.GEN_AI_INPUT_MESSAGES])[0] == {
        "role": "user",
        "parts": [{"type": "text", "content": "Say hello."}],
    }


def test_content_is_capped(sim, spans, monkeypatch) -> None:
    monkeypatch.setenv(CAPTURE_ENV, "SPAN_ONLY")
    monkeypatch.setenv(MAX_CHARS_ENV, "300")
    long_task = "Please consider this carefully. " * 200  # ~6,400 characters
    result = demo_agent("capped", tools=[]).run(long_task, client=sync_client(sim))
    chat = the(trace_spans(spans, result.trace_id), "chat")

    recorded = chat.attributes[n.GEN_AI_INPUT_MESSAGES]
    assert len(recorded) < 360
    assert recorded.startswith('[{"role": "user"') and "…[truncated " in recorded


@pytest.mark.parametrize("mode", ["run", "arun"])
async def test_an_api_key_in_a_tool_result_is_masked(sim, spans, logs, monkeypatch, mode) -> None:
    monkeypatch.setenv(CAPTURE_ENV, "SPAN_AND_EVENT")
    agent = demo_agent("leak", tools=[leaky_config])
    task = '[[tool:leaky_config:{"service": "billing"}]] Show the config.'
    if mode == "run":
        result = agent.run(task, client=sync_client(sim))
    else:
        result = await agent.arun(task, client=async_client(sim))
    finished = trace_spans(spans, result.trace_id)

    assert PLANTED_KEY in result.tool_calls[0].output  # the tool did leak it...
    tool_result = the(finished, "execute_tool").attributes[n.GEN_AI_TOOL_CALL_RESULT]
    assert "service=billing region=eu-west-1" in tool_result and "[REDACTED]" in tool_result
    second_input = named(finished, "chat")[1].attributes[n.GEN_AI_INPUT_MESSAGES]
    assert "[REDACTED]" in second_input
    exported = everything_exported(spans, logs, result.trace_id)
    assert "sk-ant-api03-" not in exported  # ...but no span, metric or log carries it
    assert PLANTED_KEY[20:40] not in exported


@pytest.mark.parametrize("fault", [None, Fault.auth_error(), Fault.overloaded()])
def test_with_capture_off_nothing_exported_holds_the_key_or_any_content(fresh_sim, spans, logs, monkeypatch, fault):
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    marker = f"zebrafish-{uuid.uuid4().hex[:8]}"
    fresh_sim.faults = FaultPlan(schedule=[None, fault] if fault else [])
    agent = demo_agent("scan", tools=[leaky_config], system=f"Secret system prompt {marker}-system.")
    task = f'[[tool:leaky_config:{{"service": "{marker}-arg"}}]] Tell me about {marker}-task.'
    result = agent.run(task, client=sync_client(fresh_sim, api_key=API_KEY, max_retries=0))

    auth_failure = fault is not None and fault.kind == "auth_error"
    assert result.stop_reason is (StopReason.ERROR if auth_failure else StopReason.END_TURN)  # 529: retried
    assert result.tool_calls and marker in result.tool_calls[0].output
    exported = everything_exported(spans, logs, result.trace_id)
    assert trace_spans(spans, result.trace_id) and logs.records  # the scan looked at something
    assert API_KEY not in exported and API_KEY[13:33] not in exported
    assert "sk-ant-" not in exported
    assert marker not in exported  # no task, system prompt, tool argument, tool result or answer
