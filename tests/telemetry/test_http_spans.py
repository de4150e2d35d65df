"""HTTP client spans (``Agent(http_spans=True)`` / ``AGENTWATCH_HTTP_SPANS``): one per attempt under its
``chat`` span, tools' HTTP calls under ``execute_tool``; sync, async and streams, against the real simulator;
never two spans for one request when the application instruments httpx itself."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx2
import pytest
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

from agentwatch import Agent, tool
from agentwatch.sim import Fault, FaultPlan
from agentwatch.telemetry.http import HTTP_SPANS_ENV, _instrumentors
from runner.support import demo_agent, fast_limits, run_in_mode, sync_client

from .helpers import assert_one_http_span_per_attempt, trace_spans

TASK = "[[tool:health_check:{}]] Check."


def _all_off() -> None:
    for instrumentor in _instrumentors():
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


@pytest.fixture
def uninstrumented() -> Iterator[None]:
    """Each test starts and ends with httpx uninstrumented: the instrumentation is process-wide."""
    _all_off()
    yield
    _all_off()


def health_tools(base_url: str) -> list:
    """A sync and an async tool that call the simulator's /health with plain, uninstrumented clients."""

    @tool
    def health_check() -> str:
        """Check the service health over HTTP."""
        with httpx2.Client() as http:
            return http.get(f"{base_url}/health").text

    @tool(name="health_check")
    async def health_check_async() -> str:
        """Check the service health over HTTP."""
        async with httpx2.AsyncClient() as http:
            return (await http.get(f"{base_url}/health")).text

    return [health_check, health_check_async]


def agent_for(fresh_sim, mode: str, **overrides) -> Agent:
    sync_tool, async_tool = health_tools(fresh_sim.base_url)
    picked = sync_tool if mode in ("run", "stream") else async_tool
    return demo_agent("http-spans", tools=[picked], limits=fast_limits(max_retries=2), **overrides)


@pytest.mark.parametrize("mode", ["run", "arun", "stream", "astream"])
async def test_each_attempt_and_each_tool_request_is_a_span_of_its_own(fresh_sim, spans, uninstrumented, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[None, Fault.overloaded()])  # the 2nd call is retried once
    agent = agent_for(fresh_sim, mode, http_spans=True)
    _, result = await run_in_mode(mode, agent, TASK, fresh_sim)

    assert result.ok and '"status": "ok"' in result.tool_calls[0].output
    assert_one_http_span_per_attempt(trace_spans(spans, result.trace_id), agent)


@pytest.mark.parametrize("mode", ["run", "astream"])
async def test_the_environment_variable_turns_them_on(fresh_sim, spans, uninstrumented, monkeypatch, mode) -> None:
    monkeypatch.setenv(HTTP_SPANS_ENV, "true")
    fresh_sim.faults = FaultPlan(schedule=[None, Fault.overloaded()])
    agent = agent_for(fresh_sim, mode)
    _, result = await run_in_mode(mode, agent, TASK, fresh_sim)

    assert_one_http_span_per_attempt(trace_spans(spans, result.trace_id), agent)


async def test_off_by_default_and_when_the_argument_says_off(fresh_sim, spans, uninstrumented, monkeypatch) -> None:
    default = await run_in_mode("run", agent_for(fresh_sim, "run"), TASK, fresh_sim)
    monkeypatch.setenv(HTTP_SPANS_ENV, "true")
    off = await run_in_mode("arun", agent_for(fresh_sim, "arun", http_spans=False), TASK, fresh_sim)

    for _, result in (default, off):
        names = {s.name.split()[0] for s in trace_spans(spans, result.trace_id)}
        assert names == {"invoke_agent", "chat", "execute_tool"}


@pytest.mark.parametrize("mode", ["run", "astream"])
async def test_no_duplicates_when_the_application_instrumented_httpx2_itself(
    fresh_sim, spans, uninstrumented, mode
) -> None:
    HTTPX2ClientInstrumentor().instrument()
    fresh_sim.faults = FaultPlan(schedule=[None, Fault.overloaded()])
    agent = agent_for(fresh_sim, mode, http_spans=True)
    _, result = await run_in_mode(mode, agent, TASK, fresh_sim)

    assert_one_http_span_per_attempt(trace_spans(spans, result.trace_id), agent)


def test_no_duplicates_when_the_application_instrumented_the_sdks_client(fresh_sim, spans, uninstrumented) -> None:
    sdk_http = httpx2.Client()
    HTTPX2ClientInstrumentor.instrument_client(sdk_http)
    fresh_sim.faults = FaultPlan(schedule=[None, Fault.overloaded()])
    agent = agent_for(fresh_sim, "run", http_spans=True)
    try:
        result = agent.run(TASK, client=sync_client(fresh_sim, http_client=sdk_http))
    finally:
        HTTPX2ClientInstrumentor.uninstrument_client(sdk_http)

    assert_one_http_span_per_attempt(trace_spans(spans, result.trace_id), agent)


def test_asking_for_them_without_the_extra_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.httpx", None)  # as if not installed
    with pytest.raises(ValueError, match=r"pip install 'agentwatch\[httpx\]'"):
        demo_agent("no-extra", http_spans=True)
