"""API keys never reach what agentwatch writes: exception events (message and stack trace, chained causes
included), statuses, log records (also through the OTLP log handler), metric attributes, run results and
eval reports. Runs go through real HTTP on loopback: a key with a trailing newline that the HTTP layer
refuses, and a gateway that echoes the key back in its 401/500 bodies. The folder's autouse secret scan
(tests/secret_scan.py) checks every span, metric, record and file besides the assertions here."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from agentwatch import Agent, StopReason
from agentwatch.evals.dataset import Dataset, EvalCase
from agentwatch.evals.runner import run_eval
from agentwatch.evals.scorers import ContainsAll
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import MASK, exception_attributes, mark_span_error, mask_secrets
from agentwatch.telemetry.instruments import instruments
from agentwatch.telemetry.logs import RedactingFilter, logger
from conftest import METRIC_READER
from runner.support import API_KEY, MODEL, aconsume, async_client, consume, fast_limits, sync_client, unique
from secret_scan import PLANTED_KEY, leak_forms, scan_texts

from .helpers import named, trace_spans

KEYS = (API_KEY, PLANTED_KEY)


def leaks(*texts: Any) -> list[str]:
    return scan_texts(KEYS, texts)


# --- the default redactor ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        f"raw {API_KEY} end",
        f"trailing newline {API_KEY}\n",
        f"Illegal header value b'Bearer {API_KEY}\\n'",
        f"Authorization: Bearer {API_KEY}",
        f"url {urllib.parse.quote(API_KEY + chr(10), safe='')}",
        f"url {API_KEY.replace('-', '%2D')}",
        f"form auth={urllib.parse.quote_plus('Bearer ' + API_KEY)}",
        f"{{'x-api-key': '{API_KEY}', 'accept': 'application/json'}}",
        f'{{"error": {{"message": "invalid x-api-key Bearer {API_KEY}"}}}}',
    ],
)
def test_the_default_redactor_masks_every_form_of_a_key(text: str) -> None:
    masked = mask_secrets(text)
    assert MASK in masked and leaks(masked) == [], masked


def test_credential_values_from_the_environment_are_masked_whatever_their_shape(monkeypatch) -> None:
    token = "gw_7f3a9c1e5b2d4f6a8c0e"  # a gateway token: no sk-ant- prefix, no "Bearer" before it
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", token + "\n")
    for form in (token, urllib.parse.quote(token + "\n", safe="")):
        assert token not in mask_secrets(f"upstream said {form}!")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "k")  # too short to mask: ordinary words stay readable
    assert mask_secrets("a kind key") == "a kind key"


def test_every_leak_form_of_the_scan_is_masked() -> None:
    for key in KEYS:
        for form in leak_forms(key)[:5]:  # the full-key forms (the last two are the scan's partial checks)
            assert leaks(mask_secrets(form)) == [], form


# --- exception events -------------------------------------------------------------------------------
def chained_failure() -> BaseException:
    try:
        try:
            raise ValueError(f"Illegal header value b'Bearer {API_KEY}\\n'")
        except ValueError as inner:
            raise ConnectionError("the gateway refused the request") from inner
    except ConnectionError as outer:
        return outer


def test_the_exception_event_redacts_message_and_stack_trace_with_its_causes() -> None:
    attributes = exception_attributes(chained_failure())

    assert attributes[n.EXCEPTION_TYPE] == "ConnectionError"
    stacktrace = attributes[n.EXCEPTION_STACKTRACE]
    assert "ValueError: Illegal header value b'[REDACTED]\\n'" in stacktrace
    assert "The above exception was the direct cause" in stacktrace and "ConnectionError" in stacktrace
    assert leaks(*attributes.values()) == []


def test_mark_span_error_never_writes_the_raw_sdk_event() -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("work")
    mark_span_error(span, "ConnectionError", f"ConnectionError: {chained_failure()} {API_KEY}", chained_failure())
    span.end()

    (event,) = span.events
    assert event.name == n.EVENT_EXCEPTION and MASK in event.attributes[n.EXCEPTION_STACKTRACE]
    assert MASK in span.status.description
    assert leaks(json.dumps(dict(event.attributes)), span.status.description) == []


# --- real runs that fail with the key in the exception ---------------------------------------------
class KeyEchoingGateway:
    """A real HTTP server on loopback that answers every request with ``status`` and an error body that
    quotes the credentials it was sent, as some gateways and proxies do."""

    def __init__(self, status: int) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                sent = self.headers.get("x-api-key") or self.headers.get("authorization") or ""
                kind = "authentication_error" if gateway.status == 401 else "api_error"
                body = json.dumps(
                    {"type": "error", "error": {"type": kind, "message": f"invalid x-api-key Bearer {sent}"}}
                )
                self.send_response(gateway.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KeyEchoingGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=[401, 500])
def gateway(request: pytest.FixtureRequest) -> Iterator[KeyEchoingGateway]:
    with KeyEchoingGateway(request.param) as running:
        yield running


class Base:
    """What ``runner.support``'s client helpers read from a simulator: its base URL."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


async def run_form(mode: str, agent: Agent, base_url: str, api_key: str) -> Any:
    target: Any = Base(base_url)
    if mode == "run":
        return agent.run("What is 1234 * 5678?", client=sync_client(target, api_key=api_key))
    if mode == "stream":
        return consume(agent.stream("What is 1234 * 5678?", client=sync_client(target, api_key=api_key)))[1]
    if mode == "arun":
        return await agent.arun("What is 1234 * 5678?", client=async_client(target, api_key=api_key))
    return (await aconsume(agent.astream("What is 1234 * 5678?", client=async_client(target, api_key=api_key))))[1]


def failure_outputs(spans, logs, result) -> list[Any]:
    finished = trace_spans(spans, result.trace_id)
    texts: list[Any] = [result.answer, result.stop_detail, *(json.dumps(r, default=str) for r in logs.records)]
    for span in finished:
        texts += [span.status.description, json.dumps(dict(span.attributes), default=str)]
        texts += [json.dumps(dict(e.attributes), default=str) for e in span.events]
    return texts


MODES = ["run", "stream", "arun", "astream"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_with_a_trailing_newline_never_reaches_the_exception_event(sim, spans, logs, mode) -> None:
    agent = Agent(name=unique("newline-key"), model=MODEL, limits=fast_limits(max_retries=0))
    result = await run_form(mode, agent, str(sim.base_url), API_KEY + "\n")

    assert result.stop_reason is StopReason.ERROR
    (chat,) = named(trace_spans(spans, result.trace_id), "chat")
    (event,) = [e for e in chat.events if e.name == n.EVENT_EXCEPTION]
    stacktrace = event.attributes[n.EXCEPTION_STACKTRACE]
    assert "LocalProtocolError: Illegal header value b'[REDACTED]\\n'" in stacktrace  # the HTTP layer's own words
    assert leaks(*failure_outputs(spans, logs, result)) == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_gateway_echoing_the_key_leaks_it_nowhere(gateway, spans, logs, mode) -> None:
    agent = Agent(name=unique("echo-key"), model=MODEL, limits=fast_limits(max_retries=1))
    result = await run_form(mode, agent, gateway.base_url, API_KEY)

    assert result.stop_reason is StopReason.ERROR
    chats = named(trace_spans(spans, result.trace_id), "chat")
    events = [e for chat in chats for e in chat.events if e.name == n.EVENT_EXCEPTION]
    assert events and all(MASK in e.attributes[n.EXCEPTION_MESSAGE] for e in events)
    assert all("invalid x-api-key Bearer [REDACTED]" in e.attributes[n.EXCEPTION_STACKTRACE] for e in events)
    if gateway.status == 500:
        assert "invalid x-api-key Bearer [REDACTED]" in result.stop_detail and MASK in result.answer
    assert leaks(*failure_outputs(spans, logs, result)) == []


async def test_a_client_built_from_the_environment_leaks_its_key_nowhere(gateway, spans, logs, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", gateway.base_url)  # ANTHROPIC_API_KEY: the scan's planted key
    agent = Agent(name=unique("env-key"), model=MODEL, limits=fast_limits(max_retries=0))
    result = await agent.arun("What is 1234 * 5678?")

    assert result.stop_reason is StopReason.ERROR
    assert leaks(*failure_outputs(spans, logs, result)) == []


# --- logs and metrics -------------------------------------------------------------------------------
def test_a_logged_exception_is_redacted_for_every_handler_including_otlp(logs) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    otlp = LoggingHandler(logger_provider=provider)
    otlp.addFilter(RedactingFilter())  # as configure_telemetry installs it
    plain: list[str] = []
    application = logging.Handler()
    application.emit = lambda record: plain.append(logging.Formatter().format(record))  # type: ignore[method-assign]
    root = logging.getLogger()
    logger.addHandler(otlp)  # the child logger's record reaches it by propagation, past the logger's filter
    root.addHandler(application)
    try:
        error = chained_failure()
        logger.error("call failed with key %s", API_KEY, exc_info=error)
        logging.getLogger("agentwatch.sim").error("child logger: %s", API_KEY, exc_info=error)
    finally:
        root.removeHandler(application)
        logger.removeHandler(otlp)
        provider.shutdown()

    exported = [record.log_record for record in exporter.get_finished_logs()]
    assert len(exported) == 2
    first = exported[0]
    assert MASK in str(first.body) and MASK in first.attributes[n.EXCEPTION_STACKTRACE]
    assert "The above exception was the direct cause" in first.attributes[n.EXCEPTION_STACKTRACE]
    json_record = logs.records[-1]
    assert MASK in json_record["message"] and "ValueError" in json_record[n.EXCEPTION_STACKTRACE]
    outputs = [str(r.body) for r in exported] + [json.dumps(dict(r.attributes), default=str) for r in exported]
    assert plain and leaks(*outputs, *plain, json.dumps(logs.records)) == []


def test_metric_attribute_values_are_redacted() -> None:
    name = unique("metric-key")
    instruments().retries.add(1, {n.GEN_AI_AGENT_NAME: name, n.ERROR_TYPE: f"Bearer {API_KEY}"})

    points = [
        dict(p.attributes)
        for rm in METRIC_READER.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
        if (p.attributes or {}).get(n.GEN_AI_AGENT_NAME) == name
    ]
    assert points == [{n.GEN_AI_AGENT_NAME: name, n.ERROR_TYPE: MASK}]


# --- evals ------------------------------------------------------------------------------------------
class RaisingAgent:
    """An agent whose run raises an exception quoting the key (the eval runner records it)."""

    name = "raising"
    version = None

    async def arun(self, task: str, client: Any = None) -> Any:
        await asyncio.sleep(0)
        raise chained_failure()


def dataset() -> Dataset:
    case = EvalCase(id="mult", task="What is 1234 * 5678?", expect=[ContainsAll(values=["7,006,652"])])
    return Dataset(name=unique("redaction"), cases=[case])


async def test_the_eval_runner_records_a_raising_agent_redacted(spans, tmp_path: Path) -> None:
    report = await run_eval(dataset(), RaisingAgent())

    (evaluate,) = [s for s in spans.get_finished_spans() if s.name == "evaluate mult"]
    (event,) = [e for e in evaluate.events if e.name == n.EVENT_EXCEPTION]
    assert "ValueError: Illegal header value b'[REDACTED]\\n'" in event.attributes[n.EXCEPTION_STACKTRACE]
    (tmp_path / "report.json").write_text(report.to_json())  # the folder's scan reads written files
    assert leaks(json.dumps(dict(event.attributes)), evaluate.status.description, report.to_json()) == []


async def test_the_eval_json_report_carries_no_key_from_a_failed_run(gateway, tmp_path: Path) -> None:
    agent = Agent(name=unique("eval-echo"), model=MODEL, limits=fast_limits(max_retries=0))
    report = await run_eval(dataset(), agent, client=async_client(Base(gateway.base_url), api_key=API_KEY))

    (trial,) = report.cases[0].trials
    assert trial.stop_reason == "error" and not trial.passed
    if gateway.status == 500:
        assert "invalid x-api-key Bearer [REDACTED]" in trial.answer
    (tmp_path / "report.json").write_text(report.to_json())
    assert leaks(report.to_json(), trial.answer) == []


# --- the scan itself --------------------------------------------------------------------------------
def test_the_secret_scan_finds_keys_that_bypass_the_redactor(secret_scan, tmp_path: Path) -> None:
    """The fixture every test here runs under catches a raw SDK exception event, a raw metric attribute
    and a URL-encoded key in a written file (then starts over, so this test's own teardown passes)."""
    from opentelemetry import metrics, trace

    span = trace.get_tracer("raw").start_span("leaky")
    span.record_exception(ValueError(f"Illegal header value b'Bearer {API_KEY}\\n'"))
    span.end()
    metrics.get_meter("raw").create_counter("raw.leaks").add(1, {"detail": f"Bearer {PLANTED_KEY}"})
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"answer": urllib.parse.quote(PLANTED_KEY + "\n", safe="")}))

    found = secret_scan.leaks()
    assert [f.split(":")[0] for f in found] == ["span 'leaky'", "metric 'raw.leaks'", "file report.json"], found
    report.unlink()
    secret_scan.start()
