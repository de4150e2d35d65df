"""The Lambda handler under the real Runtime Interface Emulator and awslambdaric: every span, metric and
log of an invocation has reached the collector by the time the invocation returned — also when the run
is cut by the invocation's deadline."""

from __future__ import annotations

import json
import secrets
import socket

from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from otlp_receiver import OtlpReceiver
from serverless.lambda_support import ARN, FUNCTION, Emulator, EmulatorFactory

MODEL = "claude-haiku-4-5-20251001"
SERVER, CONSUMER = 2, 5  # OTLP span kinds


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def http_event(task: str, header: str) -> dict[str, object]:
    return {
        "version": "2.0",
        "rawPath": "/runs",
        "headers": {"content-type": "application/json", "traceparent": header},
        "requestContext": {"http": {"method": "POST", "path": "/runs"}},
        "body": json.dumps({"task": task}),
        "isBase64Encoded": False,
    }


def warm_up(emulator: Emulator) -> None:
    """One quick invocation, so the next one is warm: the emulator counts the init phase against the first
    invocation's timeout (with a short timeout the handler may answer that too little time is left)."""
    _, response = emulator.invoke({"task": "Say hello"})
    assert response.get("stop_reason") == "end_turn" or "not run" in response.get("error", ""), response


def test_http_invocation_is_one_trace_flushed_before_return(
    start_emulator: EmulatorFactory, sim: Simulator, otlp: OtlpReceiver
) -> None:
    emulator = start_emulator(sim)
    header, trace_id, parent_id = traceparent()
    request_id, response = emulator.invoke(http_event("What is 1234 * 5678?", header))

    assert response["statusCode"] == 200
    run = json.loads(response["body"])
    assert run["stop_reason"] == "end_turn" and "7,006,652" in run["answer"]
    assert run["trace_id"] == trace_id

    # No waiting: the handler flushed before it returned (Lambda would freeze the process right after).
    spans = otlp.spans(trace_id)
    [server] = [s for s in spans if s.kind == SERVER]
    assert server.name == FUNCTION and server.parent_span_id == parent_id
    assert server.attributes[n.FAAS_TRIGGER] == "http"
    assert server.attributes[n.FAAS_INVOCATION_ID] == request_id
    assert server.attributes[n.FAAS_COLDSTART] is True
    assert server.attributes[n.CLOUD_RESOURCE_ID] == ARN
    assert server.attributes[n.CLOUD_ACCOUNT_ID] == "012345678912"
    assert server.attributes[n.HTTP_RESPONSE_STATUS_CODE] == 200
    assert server.resource[n.CLOUD_PROVIDER] == "aws" and server.resource[n.CLOUD_PLATFORM] == "aws_lambda"
    assert server.resource[n.FAAS_NAME] == FUNCTION and server.resource[n.CLOUD_REGION] == "us-east-1"
    [root] = [s for s in spans if s.name == n.agent_span_name("lambda-calc")]
    assert root.parent_span_id == server.span_id
    children = sorted(s.name for s in spans if s.parent_span_id == root.span_id)
    assert children == [f"chat {MODEL}", f"chat {MODEL}", "execute_tool calculator"]
    assert otlp.metric_points(n.M_RUNS[0]), "the run's metrics were flushed too"
    assert any(r["attributes"].get("event") == n.LOG_RUN_END for r in otlp.logs(trace_id)), "and its run_end log"

    _, again = emulator.invoke(http_event("What is 2 + 2?", traceparent()[0]))
    [warm] = [s for s in otlp.spans(json.loads(again["body"])["trace_id"]) if s.kind == SERVER]
    assert warm.attributes[n.FAAS_COLDSTART] is False


def test_a_run_cut_by_the_deadline_returns_timeout_with_all_its_spans(
    start_emulator: EmulatorFactory, otlp: OtlpReceiver
) -> None:
    # 3 s function timeout, 1 s flush margin: the run gets about 2 s; two 1.5 s model calls need 3 s.
    with Simulator() as slow:
        emulator = start_emulator(slow, function_timeout_s=3)
        warm_up(emulator)
        slow.latency_s = 1.5
        header, trace_id, _ = traceparent()
        _, response = emulator.invoke(http_event("What is 1234 * 5678?", header))

    assert response.get("statusCode") == 200, f"the platform cut the invocation: {response}"
    run = json.loads(response["body"])
    assert run["stop_reason"] == "timeout" and "time" in run["answer"].lower()
    spans = otlp.spans(trace_id)
    [server] = [s for s in spans if s.kind == SERVER]
    assert 0 < server.attributes[n.AW_FAAS_DEADLINE_S] < 3
    [root] = [s for s in spans if s.name == n.agent_span_name("lambda-calc")]
    assert root.attributes[n.AW_RUN_STOP_REASON] == "timeout"
    assert [s.name for s in spans if s.parent_span_id == root.span_id and s.name.startswith("chat ")], "chat spans"
    assert any(r["attributes"].get("event") == n.LOG_RUN_END for r in otlp.logs(trace_id))


def test_sqs_batch_reports_only_the_bad_record_and_parents_each_run(
    start_emulator: EmulatorFactory, sim: Simulator, otlp: OtlpReceiver
) -> None:
    emulator = start_emulator(sim)
    parents = [traceparent() for _ in range(2)]
    records = [
        {
            "messageId": f"m-{i}",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:012345678912:agent-runs",
            "body": json.dumps({"task": f"What is {i} + 40?"}),
            "messageAttributes": {"traceparent": {"stringValue": header, "dataType": "String"}},
        }
        for i, (header, _, _) in enumerate(parents)
    ]
    records.append({"messageId": "m-bad", "eventSource": "aws:sqs", "eventSourceARN": "x:agent-runs", "body": "oops"})
    _, response = emulator.invoke({"Records": records})

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    for i, (_, trace_id, parent_id) in enumerate(parents):
        spans = otlp.spans(trace_id)
        [consumer] = [s for s in spans if s.kind == CONSUMER]
        assert consumer.name == "agent-runs process" and consumer.parent_span_id == parent_id
        assert consumer.attributes[n.FAAS_TRIGGER] == "pubsub"
        assert consumer.attributes[n.MESSAGING_MESSAGE_ID] == f"m-{i}"
        assert any(s.parent_span_id == consumer.span_id and s.name == n.agent_span_name("lambda-calc") for s in spans)


def test_a_collector_that_never_answers_does_not_hold_the_invocation_past_its_deadline(
    start_emulator: EmulatorFactory, sim: Simulator
) -> None:
    # A listener that accepts connections and never replies: every export hangs until its own timeout (5 s).
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        endpoint = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        # 6 s: enough for the run and a bounded flush, far from enough for three 5 s export timeouts.
        emulator = start_emulator(sim, function_timeout_s=6, otlp_endpoint=endpoint)
        warm_up(emulator)
        _, response = emulator.invoke(http_event("What is 1234 * 5678?", traceparent()[0]))
    # The bounded flush gave up in time: the handler answered, the platform did not cut it.
    assert response.get("statusCode") == 200, f"the invocation was cut: {response}"
    assert json.loads(response["body"])["stop_reason"] == "end_turn"
