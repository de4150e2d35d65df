"""SSE: one event per runner event with ids, heartbeats, reconnect with Last-Event-ID, disconnect with and
without cancel, and one trace from the caller through the server span to the run."""

from __future__ import annotations

import contextlib
import json

import httpx
from httpx_sse import EventSource, connect_sse
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import names as n
from runner.support import OpenSpans, open_spans

from .agents import slow_agent, wait_task
from .conftest import Served, serve, wait_for

TASK = "What is 1234 * 5678?"
SSE = {"Accept": "text/event-stream"}


def events_of(response: httpx.Response) -> list[tuple[int, str, dict]]:
    return [(int(e.id), e.event, json.loads(e.data)) for e in EventSource(response).iter_sse()]


def result_when_done(c: httpx.Client, run_id: str) -> dict:
    return wait_for(lambda: (r := c.get(f"/v1/runs/{run_id}")).status_code == 200 and r.json(), "the run to end")


def test_a_streamed_run_sends_one_event_per_runner_event_ending_with_run_finished(served: Served) -> None:
    with served.client() as c, connect_sse(c, "POST", "/v1/runs", json={"task": TASK}) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        run_id = source.response.headers["X-Run-Id"]
        got = events_of(source.response)
    assert [i for i, _, _ in got] == list(range(1, len(got) + 1))
    names = [name for _, name, _ in got]
    assert names[-1] == "run_finished" and names.count("run_finished") == 1
    assert {"text_delta", "tool_started", "tool_finished"} <= set(names)
    assert all(data["run_id"] == run_id for _, _, data in got)
    result = got[-1][2]["result"]
    assert result["stop_reason"] == "end_turn" and "7,006,652" in result["answer"]
    finished = next(data for _, name, data in got if name == "tool_finished")
    assert finished["name"] == "calculator" and finished["output"] == "7006652"


def test_heartbeats_are_comment_lines_while_a_tool_is_silent(sim: Simulator) -> None:
    with (
        serve(slow_agent(), sim, heartbeat_s=0.2) as s,
        s.client() as c,
        c.stream("POST", "/v1/runs", json={"task": wait_task(1.5)}, headers=SSE) as response,
    ):
        lines = list(response.iter_lines())
    assert any(line.startswith(":") for line in lines), lines[:20]
    assert any(line == "event: run_finished" for line in lines)


def test_reconnect_with_last_event_id_loses_and_duplicates_nothing(served: Served) -> None:
    with served.client() as c:
        with connect_sse(c, "POST", "/v1/runs", json={"task": wait_task(1)}) as source:
            run_id = source.response.headers["X-Run-Id"]
            first = []
            for event in source.iter_sse():
                first.append((int(event.id), event.event, json.loads(event.data)))
                if event.event == "tool_started":
                    break  # the connection drops mid-run
        headers = {"Last-Event-ID": str(first[-1][0])}
        with connect_sse(c, "GET", f"/v1/runs/{run_id}/events", headers=headers) as source:
            rest = events_of(source.response)
        with connect_sse(c, "GET", f"/v1/runs/{run_id}/events") as source:  # a full replay, for comparison
            everything = events_of(source.response)
    assert first + rest == everything
    assert [i for i, _, _ in everything] == list(range(1, len(everything) + 1))
    assert everything[-1][2]["result"]["stop_reason"] == "end_turn"  # disconnecting did not cancel the run


def test_last_event_id_errors(sim: Simulator) -> None:
    with serve(slow_agent(), sim, event_buffer=3) as s, s.client() as c:
        run_id = c.post("/v1/runs", json={"task": TASK}, headers=SSE).headers["X-Run-Id"]  # read to the end
        expired = c.get(f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "0"})
        assert expired.status_code == 410 and expired.json()["error"]["type"] == "events_expired"
        assert f"GET /v1/runs/{run_id}" in expired.json()["error"]["message"]
        for bad in ("abc", "999"):
            response = c.get(f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": bad})
            assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_last_event_id"
        with connect_sse(c, "GET", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "5"}) as source:
            tail = events_of(source.response)
        assert [name for _, name, _ in tail][-1] == "run_finished"


def _root(spans, trace_id: str):
    return wait_for(
        lambda: next(
            (
                s
                for s in spans.get_finished_spans()
                if s.name.startswith(n.OP_INVOKE_AGENT) and format(s.context.trace_id, "032x") == trace_id
            ),
            None,
        ),
        "the run's invoke_agent span",
    )


def test_disconnect_with_cancel_ends_the_run_cancelled_billed_and_closed(served: Served, spans, logs) -> None:
    tracker: OpenSpans = open_spans()
    with served.client() as c:
        url = "/v1/runs?cancel_on_disconnect=true"
        with connect_sse(c, "POST", url, json={"task": wait_task(60)}) as source:
            run_id = source.response.headers["X-Run-Id"]
            for event in source.iter_sse():
                if event.event == "tool_started":
                    break
        result = result_when_done(c, run_id)
    assert result["stop_reason"] == "cancelled" and "cancel_on_disconnect" in result["stop_detail"]
    assert result["usage"]["input_tokens"] > 0 and result["cost_usd"] > 0  # the first call was billed
    root = _root(spans, result["trace_id"])
    assert root.attributes[n.AW_RUN_STOP_REASON] == "cancelled"
    assert root.attributes[n.AW_RUN_INPUT_TOKENS] == result["usage"]["total_input_tokens"]
    assert tracker.open_in(result["trace_id"]) == []
    ends = [r for r in logs.events("run_end") if r.get("run_id") == run_id]
    assert len(ends) == 1 and ends[0]["stop_reason"] == "cancelled" and ends[0]["tenant"] == "alpha"


def test_a_json_run_keeps_only_its_run_finished_event(served: Served) -> None:
    with served.client() as c:
        run_id = c.post("/v1/runs", json={"task": TASK}).json()["run_id"]
        with connect_sse(c, "GET", f"/v1/runs/{run_id}/events") as source:
            assert [(i, name) for i, name, _ in events_of(source.response)] == [(1, "run_finished")]


def test_disconnect_without_cancel_keeps_the_run_going(served: Served) -> None:
    with served.client() as c:
        with connect_sse(c, "POST", "/v1/runs", json={"task": wait_task(0.5)}) as source:
            run_id = source.response.headers["X-Run-Id"]
            next(source.iter_sse())
        assert result_when_done(c, run_id)["stop_reason"] == "end_turn"


def test_a_json_client_that_disconnects_with_cancel_cancels_the_run(served: Served, logs) -> None:
    with served.client(timeout=0.5) as c, contextlib.suppress(httpx.ReadTimeout):  # we walk away mid-run
        c.post("/v1/runs?cancel_on_disconnect=true", json={"task": wait_task(60)})
    end = wait_for(lambda: logs.events("run_end"), "the abandoned run to end")[0]
    assert end["stop_reason"] == "cancelled" and end["tenant"] == "alpha" and end["run_id"]
    assert httpx.get(served.url + "/readyz").json()["runs"] == 0


def test_one_trace_from_the_caller_through_the_server_span_to_chat_and_tools(served: Served, spans) -> None:
    tracer = trace.get_tracer("caller")
    with tracer.start_as_current_span("caller operation") as caller:
        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers)
        with served.client() as c:
            response = c.post("/v1/runs", json={"task": TASK}, headers=headers)
    body = response.json()
    caller_ctx = caller.get_span_context()
    assert body["trace_id"] == format(caller_ctx.trace_id, "032x")
    assert response.headers["traceparent"].split("-")[1] == body["trace_id"]
    root = _root(spans, body["trace_id"])
    (server,) = wait_for(  # the server span ends once the response is sent, maybe after the client has it
        lambda: [
            s
            for s in spans.get_finished_spans()
            if s.name == "POST /v1/runs" and s.context.trace_id == caller_ctx.trace_id
        ],
        "the server span",
    )
    in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == caller_ctx.trace_id]
    assert server.kind is trace.SpanKind.SERVER and server.parent.span_id == caller_ctx.span_id
    assert root.parent.span_id == server.context.span_id
    assert server.attributes[n.AW_TENANT] == "alpha" and server.attributes[n.AW_SERVE_RUN_ID] == body["run_id"]
    children = {s.name.split(" ")[0] for s in in_trace if s.parent and s.parent.span_id == root.context.span_id}
    assert {n.OP_CHAT, n.OP_EXECUTE_TOOL} <= children
    assert not [s for s in in_trace if s.name.endswith(("http send", "http receive"))]


def test_a_retried_call_streams_a_retrying_event(fresh_sim: Simulator) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_ms=50)])
    with (
        serve(slow_agent(), fresh_sim) as s,
        s.client() as c,
        connect_sse(c, "POST", "/v1/runs", json={"task": TASK}) as source,
    ):
        got = events_of(source.response)
    retrying = [data for _, name, data in got if name == "retrying"]
    assert retrying and retrying[0]["attempt"] == 1 and retrying[0]["error_type"] == "RateLimitError"
    assert got[-1][2]["result"]["stop_reason"] == "end_turn"


def test_only_allow_listed_metadata_reaches_the_server_span(sim: Simulator, spans) -> None:
    with serve(slow_agent(), sim, metadata_attributes=("team",)) as s, s.client() as c:
        body = c.post("/v1/runs", json={"task": TASK, "metadata": {"team": "search", "email": "a@b.c"}}).json()
    (server,) = wait_for(
        lambda: [x for x in spans.get_finished_spans() if x.attributes.get(n.AW_SERVE_RUN_ID) == body["run_id"]],
        "the server span",
    )
    assert server.attributes[n.AW_REQUEST_METADATA_PREFIX + "team"] == "search"
    every_value = [str(v) for x in spans.get_finished_spans() for v in (x.attributes or {}).values()]
    assert not [v for v in every_value if "a@b.c" in v]
