"""End to end through the real binaries: agent telemetry -> collector -> Jaeger / Prometheus -> Alertmanager,
and the logs leg up to what Loki receives (a second collector stands in for Loki: LokiStandIn), with the
repository's own collector and Prometheus configs and rules. LogQL against real Loki: tests/docker."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentwatch.telemetry import names as n

from .binaries import REPO
from .dashboards import dashboard_queries
from .stack import (
    AlertWebhook,
    Collector,
    Jaeger,
    LogRecord,
    LokiStandIn,
    Prometheus,
    wait_until,
)
from .workload import ALWAYS_KEPT, SERVICE_NAME, EmittedRun, Workload

pytestmark = pytest.mark.e2e

# Tail sampling decides 1 s after the root span arrives (AGENTWATCH_SAMPLING_AFTER_ROOT_WAIT) or
# after 5 s at most, then batches for up to 2 s: everything kept is in Jaeger well within this.
TRACE_WAIT_S = 30.0


def wait_for_trace(jaeger: Jaeger, trace_id: str, min_spans: int = 1) -> list[dict[str, Any]]:
    return wait_until(
        lambda: (spans := jaeger.get_trace(trace_id)) and len(spans) >= min_spans and spans,
        TRACE_WAIT_S,
        what=f"trace {trace_id} with {min_spans} spans in Jaeger",
    )


def root_of(spans: list[dict[str, Any]]) -> dict[str, Any]:
    roots = [s for s in spans if not s.get("parentSpanId")]
    assert len(roots) == 1, f"expected one root span, got {[s['name'] for s in roots]}"
    return roots[0]


def where_found(value: Any, needle: str, path: str = "") -> list[str]:
    """Paths inside ``value`` (spans, records) whose string contains ``needle``: where a secret leaked."""
    if isinstance(value, str):
        return [path or "."] if needle in value else []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return []
    return [hit for key, item in items for hit in where_found(item, needle, f"{path}/{key}")]


@pytest.fixture(scope="module")
def kept_traces(workload_runs: list[EmittedRun], jaeger: Jaeger) -> dict[str, list[dict[str, Any]]]:
    """Every run tail sampling must keep, fetched by id from Jaeger (waits until complete)."""
    return {
        run.trace_id: wait_for_trace(jaeger, run.trace_id, len(run.span_names))
        for run in workload_runs
        if run.must_keep
    }


# --- the workload -----------------------------------------------------------------------------------
def test_the_workload_is_real_runs_of_every_kind(workload_runs: list[EmittedRun]) -> None:
    """What each kind of run really did (agent_workload.py makes them; nothing here is fabricated)."""
    assert not [r for r in workload_runs if "failed internally" in r.stop_detail]
    by_kind: dict[str, list[EmittedRun]] = {}
    for run in workload_runs:
        by_kind.setdefault(run.kind, []).append(run)
    assert all(r.stop_reason == "end_turn" for r in by_kind["ordinary"])
    assert any(r.streamed for r in by_kind["ordinary"]) and any(r.retries for r in by_kind["ordinary"])
    assert sum(r.failed_tool_calls for r in by_kind["ordinary"]) == 2  # the 1/0 calculator calls
    assert {(r.stop_reason, r.error_type) for r in by_kind["error"]} == {
        ("error", "AuthenticationError"),
        ("error", "InternalServerError"),
    }
    assert {r.stop_reason for r in by_kind["budget"]} == {"max_iterations", "cost_budget", "token_budget"}
    assert [r.stop_reason for r in by_kind["slow"]] == ["end_turn"]
    assert by_kind["expensive"][0].cost_usd > 1  # above the $1 alert and the $0.10 keep threshold
    assert max(r.cost_usd for r in workload_runs if r.kind != "expensive") < 0.10
    assert [r.failed_tool_calls for r in by_kind["secret"]] == [1]
    for run in workload_runs:
        assert len(run.span_names) == 1 + run.iterations + run.tool_calls, run


# --- traces ----------------------------------------------------------------------------------------
def test_each_kept_run_is_one_trace_with_the_run_tree(
    workload_runs: list[EmittedRun], kept_traces: dict[str, list[dict[str, Any]]]
) -> None:
    for run in (r for r in workload_runs if r.must_keep):
        spans = kept_traces[run.trace_id]
        assert sorted(s["name"] for s in spans) == sorted(run.span_names), run
        root = root_of(spans)
        assert root["name"] == n.agent_span_name(run.agent)
        assert root["attrs"][n.GEN_AI_OPERATION_NAME] == n.OP_INVOKE_AGENT
        assert root["attrs"][n.AW_RUN_STOP_REASON] == run.stop_reason
        assert root["attrs"][n.AW_RUN_COST_USD] == pytest.approx(run.cost_usd)
        assert root["attrs"][n.AW_RUN_ITERATIONS] == run.iterations
        # Run totals use agentwatch.* names, never gen_ai.usage.* (backends would double count).
        assert not any(k.startswith("gen_ai.usage.") for k in root["attrs"])
        assert root["resource"]["service.name"] == SERVICE_NAME
        assert root["resource"]["deployment.environment.name"] == "e2e"  # the resource processor
        children = [s for s in spans if s is not root]
        assert all(s["parentSpanId"] == root["spanId"] for s in children)
        chats = [s for s in children if s["attrs"][n.GEN_AI_OPERATION_NAME] == n.OP_CHAT]
        tools = [s for s in children if s["attrs"][n.GEN_AI_OPERATION_NAME] == n.OP_EXECUTE_TOOL]
        assert len(chats) == run.iterations and len(tools) == run.tool_calls
        for chat in chats:
            assert chat["kind"] in ("SPAN_KIND_CLIENT", 3)
            assert chat["attrs"][n.GEN_AI_PROVIDER_NAME] == n.PROVIDER_ANTHROPIC
            assert chat["attrs"][n.GEN_AI_REQUEST_MODEL] == run.model
            if chat["attrs"].get(n.ERROR_TYPE) is None:
                assert chat["attrs"][n.GEN_AI_USAGE_INPUT_TOKENS] > 0
                assert chat["attrs"][n.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
        for tool in tools:
            assert tool["attrs"][n.GEN_AI_TOOL_NAME] in tool["name"]
            assert tool["attrs"][n.AW_TOOL_OUTCOME] in (n.TOOL_OK, n.TOOL_ERROR)
        if run.stop_reason == "error":
            assert root["status"].get("code") in ("STATUS_CODE_ERROR", 2)


def test_tail_sampling_keeps_every_important_run_and_samples_ordinary_ones(
    workload_runs: list[EmittedRun],
    kept_traces: dict[str, list[dict[str, Any]]],
    jaeger: Jaeger,
    collector: Collector,
) -> None:
    assert {run.kind for run in workload_runs if run.must_keep} >= ALWAYS_KEPT
    assert len(kept_traces) == sum(run.must_keep for run in workload_runs)
    collector.wait_traces_settled()  # every ordinary trace the baseline kept is in Jaeger now
    ordinary = [run for run in workload_runs if not run.must_keep]
    kept = [run for run in ordinary if jaeger.get_trace(run.trace_id)]
    # Baseline is 50% (AGENTWATCH_SAMPLING_BASELINE_PERCENT): some kept, some dropped.
    assert len(ordinary) >= 15
    assert 0 < len(kept) < len(ordinary), f"baseline kept {len(kept)} of {len(ordinary)} ordinary runs"


def test_each_keep_policy_works_on_its_own_with_the_baseline_off(
    collector_keep_content: Collector, jaeger: Jaeger
) -> None:
    """The second collector samples 0% of ordinary runs: whatever is kept, a keep policy kept."""
    with Workload(
        collector_keep_content.otlp_http, service_name="agentwatch-e2e-strict", instance_id="strict", seed=13
    ) as workload:
        # No tool errors in the ordinary runs, so only the policy named by the kind can keep each run.
        runs = workload.runs(
            [{"kind": k} for k in ("error", "budget", "budget", "slow", "expensive")]
            + [{"kind": "ordinary", "task": i, "stream": i % 2 == 1} for i in range(6)]
        )
    important, ordinary = runs[:5], runs[5:]
    assert {r.stop_reason for r in important if r.kind == "budget"} == {"max_iterations", "cost_budget"}
    assert not any(r.failed_tool_calls or r.stop_reason != "end_turn" for r in ordinary), ordinary
    slow, expensive = important[3], important[4]
    assert (slow.stop_reason, expensive.stop_reason) == ("end_turn", "end_turn")
    assert expensive.cost_usd > 0.10 and slow.cost_usd < 0.10
    for run in important:
        wait_for_trace(jaeger, run.trace_id, len(run.span_names))
    collector_keep_content.wait_traces_settled()  # an ordinary run that was kept would be in Jaeger now
    assert not [run.trace_id for run in ordinary if jaeger.get_trace(run.trace_id)]


def test_span_metrics_count_every_run_before_sampling(workload_runs: list[EmittedRun], prometheus: Prometheus) -> None:
    expr = f'sum(traces_span_metrics_calls_total{{job="{SERVICE_NAME}", gen_ai_operation_name="{n.OP_INVOKE_AGENT}"}})'
    total = wait_until(
        lambda: (r := prometheus.query(expr)) and float(r[0]["value"][1]) >= len(workload_runs) and r,
        30,
        what=f"{expr} >= {len(workload_runs)}",
    )
    # Exactly all runs, dropped ones included: span metrics run before tail sampling.
    assert float(total[0]["value"][1]) == len(workload_runs)


def test_content_attributes_are_dropped_by_default(kept_traces: dict[str, list[dict[str, Any]]]) -> None:
    for spans in kept_traces.values():
        for span in spans:
            assert not set(n.CONTENT_ATTRIBUTES) & set(span["attrs"]), span["name"]
            for event_name, event_attrs in span["event_attrs"]:
                assert not set(n.CONTENT_ATTRIBUTES) & set(event_attrs), event_name


def secret_tool_span(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in spans if s["attrs"].get(n.GEN_AI_TOOL_NAME) == "account_status")


def test_api_key_planted_in_a_tool_failure_is_masked(
    workload_runs: list[EmittedRun], kept_traces: dict[str, list[dict[str, Any]]]
) -> None:
    """The secret run's tool fails quoting the key, and its application sends it unredacted
    (agent_workload.app_redaction_off): no attribute or event that reaches Jaeger holds it."""
    secret = next(run for run in workload_runs if run.kind == "secret")
    tool = secret_tool_span(kept_traces[secret.trace_id])
    assert tool["attrs"][n.AW_TOOL_OUTCOME] == n.TOOL_ERROR
    leaks = [path for path in where_found(kept_traces, "sk-ant-") if not path.endswith("/status/message")]
    assert not leaks, leaks


# A failed tool's output is also the description of its span's ERROR status. The redaction processor
# masks attribute values only; the collector's transform/mask_status masks status messages.
def test_api_key_in_a_failed_tool_status_message_is_masked(
    workload_runs: list[EmittedRun], kept_traces: dict[str, list[dict[str, Any]]]
) -> None:
    secret = next(run for run in workload_runs if run.kind == "secret")
    message = secret_tool_span(kept_traces[secret.trace_id])["status"].get("message", "")
    assert "invalid x-api-key" in message
    assert "sk-ant-" not in message and "****" in message


def test_operator_can_keep_content_and_keys_are_still_masked(collector_keep_content: Collector, jaeger: Jaeger) -> None:
    with Workload(collector_keep_content.otlp_http, instance_id="keep-content", seed=11) as workload:
        run = workload.run("secret", agent="triage")
    spans = wait_for_trace(jaeger, run.trace_id, len(run.span_names))
    chats = [s for s in spans if s["attrs"].get(n.GEN_AI_OPERATION_NAME) == n.OP_CHAT]
    assert all(n.GEN_AI_INPUT_MESSAGES in c["attrs"] and n.GEN_AI_SYSTEM_INSTRUCTIONS in c["attrs"] for c in chats)
    assert all(n.GEN_AI_OUTPUT_MESSAGES in c["attrs"] for c in chats)
    tool = secret_tool_span(spans)
    assert tool["attrs"][n.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"account": "acme"}'
    result = tool["attrs"][n.GEN_AI_TOOL_CALL_RESULT]
    # (the tool span's status message is test_api_key_in_a_failed_tool_status_message_is_masked's)
    leaks = [path for path in where_found(spans, "sk-ant-") if not path.endswith("/status/message")]
    assert not leaks, leaks
    assert "invalid x-api-key" in result and "****" in result
    # The key also went back to the model (the next call's input) and into its answer: masked there too.
    assert "****" in chats[-1]["attrs"][n.GEN_AI_INPUT_MESSAGES]


def test_otlp_grpc_receiver_reaches_jaeger(collector: Collector, jaeger: Jaeger) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "agentwatch-e2e-grpc"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.otlp_grpc, insecure=True)))
    span = provider.get_tracer("e2e").start_span(n.agent_span_name("grpc-probe"))
    span.set_status(Status(StatusCode.ERROR, "kept because errored"))
    trace_id = format(span.get_span_context().trace_id, "032x")
    span.end()
    provider.shutdown()
    spans = wait_for_trace(jaeger, trace_id)
    assert spans[0]["resource"]["service.name"] == "agentwatch-e2e-grpc"


# --- logs ----------------------------------------------------------------------------------------
# Loki 3 turns the resource's service.name (and deployment.environment.name) into index labels and
# every other attribute, trace_id and span_id into structured metadata: the stand-in's records hold
# exactly those fields.
def records_of(loki: LokiStandIn, trace_ids: set[str], what: str) -> dict[str, list[LogRecord]]:
    """Every record Loki received for each of ``trace_ids``, once each has its run_end record."""

    def complete() -> dict[str, list[LogRecord]]:
        by_trace: dict[str, list[LogRecord]] = {}
        for record in loki.records():
            if record.trace_id in trace_ids:
                by_trace.setdefault(record.trace_id, []).append(record)
        ended = {t for t, rs in by_trace.items() if any(r.attributes.get("event") == n.LOG_RUN_END for r in rs)}
        return by_trace if ended == trace_ids else {}

    return wait_until(complete, 60, interval=0.5, what=what)  # type: ignore[no-any-return]


def test_logs_reach_loki_with_their_trace_ids(workload_runs: list[EmittedRun], loki: LokiStandIn) -> None:
    # Logs are not sampled: every run's records are there, dropped traces included.
    by_trace = records_of(loki, {run.trace_id for run in workload_runs}, "a run_end record at Loki for every run")
    for run in workload_runs:
        records = by_trace[run.trace_id]
        (end,) = [r for r in records if r.attributes.get("event") == n.LOG_RUN_END]
        assert str(end.body).startswith(f"run_end {run.agent} stop_reason={run.stop_reason}")
        assert end.attributes["stop_reason"] == run.stop_reason
        assert float(end.attributes["cost_usd"]) == pytest.approx(run.cost_usd)
        assert end.resource["service.name"] == SERVICE_NAME  # Loki's service_name label
        assert end.resource["deployment.environment.name"] == "e2e"  # the resource processor
        assert len(end.span_id) == 16 and len(end.trace_id) == 32
    # What Grafana's trace -> logs link finds (`| trace_id="…"`): every record of a run, here one the
    # tail sampler dropped.
    dropped = next(r for r in workload_runs if r.kind == "ordinary")
    events = {r.attributes.get("event") for r in by_trace[dropped.trace_id]}
    assert events >= {n.LOG_RUN_START, n.LOG_LLM_CALL, n.LOG_RUN_END}


DETAILS_EVENT = n.LOG_INFERENCE_DETAILS


def secret_run_records(workload_runs: list[EmittedRun], loki: LokiStandIn) -> list[LogRecord]:
    secret = next(run for run in workload_runs if run.kind == "secret")
    return records_of(loki, {secret.trace_id}, "the secret run's logs at Loki")[secret.trace_id]


def test_logs_lose_content_and_keys_on_the_way_to_loki(workload_runs: list[EmittedRun], loki: LokiStandIn) -> None:
    records = secret_run_records(workload_runs, loki)
    assert [r for r in records if r.attributes.get("event") == DETAILS_EVENT], "the content-carrying records arrive"
    for record in records:
        assert not set(n.CONTENT_ATTRIBUTES) & set(record.attributes), record.attributes["event"]
        text = json.dumps([record.body, record.attributes, record.resource], default=str)
        assert "sk-ant-" not in text
        # Wherever the tool's error text survives, the key in it is masked.
        assert text.count("invalid x-api-key") == text.count("invalid x-api-key ****"), text


def test_inference_content_in_log_records_is_dropped_by_default(
    workload_runs: list[EmittedRun], loki: LokiStandIn
) -> None:
    """The workload captures content (SPAN_AND_EVENT); by default none of it may reach Loki."""
    details = [r for r in secret_run_records(workload_runs, loki) if r.attributes.get("event") == DETAILS_EVENT]
    assert details
    for record in details:
        for attribute in (n.GEN_AI_INPUT_MESSAGES, n.GEN_AI_OUTPUT_MESSAGES):
            assert attribute not in record.attributes, f"content reached Loki: {record.attributes[attribute][:200]}"


def test_operator_can_keep_content_in_logs_and_keys_are_still_masked(
    collector_keep_content: Collector, keep_content_loki: LokiStandIn
) -> None:
    """The second collector (AGENTWATCH_COLLECTOR_KEEP_CONTENT=true) keeps content in what Loki gets."""
    with Workload(collector_keep_content.otlp_http, instance_id="keep-content-logs", seed=5) as workload:
        run = workload.run("secret", agent="triage")

    found = records_of(keep_content_loki, {run.trace_id}, "the run's logs at Loki")[run.trace_id]
    details = [r for r in found if r.attributes.get("event") == DETAILS_EVENT]
    assert details and all(r.attributes.get(n.GEN_AI_OUTPUT_MESSAGES) for r in details)
    assert all(r.resource["deployment.environment.name"] == "e2e" for r in found)
    dumped = json.dumps([(r.body, r.attributes) for r in found], default=str)
    assert "sk-ant-" not in dumped
    # The model's answer quotes the tool's failure, key included: masked.
    assert any("invalid x-api-key ****" in r.attributes[n.GEN_AI_OUTPUT_MESSAGES] for r in details)


# --- metrics -------------------------------------------------------------------------------------
# The Prometheus series the workload produces, as names.py documents them.
EXPECTED_SERIES = (
    "gen_ai_client_token_usage_bucket",
    "gen_ai_client_token_usage_sum",
    "gen_ai_client_operation_duration_seconds_bucket",
    "gen_ai_client_operation_duration_seconds_count",
    "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
    "gen_ai_execute_tool_duration_seconds_bucket",
    "agentwatch_runs_total",
    "agentwatch_run_duration_seconds_bucket",
    "agentwatch_run_cost_usd_bucket",
    "agentwatch_spend_usd_total",
    "agentwatch_run_iterations_bucket",
    "agentwatch_tool_calls_total",
    "agentwatch_retries_total",
    "agentwatch_budget_stops_total",
)


def names_py_text() -> str:
    return (REPO / "src" / "agentwatch" / "telemetry" / "names.py").read_text()


def wait_for_series(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    return wait_until(lambda: prometheus.query(expr), 30, what=f"{expr} in Prometheus")


def test_prometheus_has_the_documented_series(workload_runs: list[EmittedRun], prometheus: Prometheus) -> None:
    documented = names_py_text()
    for series in EXPECTED_SERIES:
        stem = re.sub(r"_(bucket|sum|count|total)$", "", series)
        assert stem in documented, f"{series} is not documented in names.py"
        wait_for_series(prometheus, f'{series}{{job="{SERVICE_NAME}"}}')
    labels = wait_for_series(prometheus, f'agentwatch_runs_total{{job="{SERVICE_NAME}"}}')
    assert {r["metric"]["agentwatch_run_stop_reason"] for r in labels} >= {
        "end_turn",
        "error",
        "max_iterations",
        "cost_budget",
    }
    assert {r["metric"]["gen_ai_agent_name"] for r in labels} == {"research-assistant", "triage"}
    retries = wait_for_series(prometheus, f'agentwatch_retries_total{{job="{SERVICE_NAME}"}}')
    assert {r["metric"]["error_type"] for r in retries} >= {"RateLimitError"}
    tokens = wait_for_series(prometheus, f'gen_ai_client_token_usage_count{{job="{SERVICE_NAME}"}}')
    assert {r["metric"]["gen_ai_token_type"] for r in tokens} == {"input", "output"}
    # Spend adds up to the runs' cost (runs that failed before a priced call spend what they spent).
    spend = wait_until(
        lambda: (
            (r := prometheus.query(f'sum(agentwatch_spend_usd_total{{job="{SERVICE_NAME}"}})'))
            and float(r[0]["value"][1]) > 0
            and r
        ),
        30,
        what="spend total",
    )
    assert 0 < float(spend[0]["value"][1]) <= sum(run.cost_usd for run in workload_runs) + 1e-6


def exemplar_trace_ids(prometheus: Prometheus, query: str) -> set[str]:
    now = time.time()
    data = prometheus.api("/api/v1/query_exemplars", query=query, start=str(now - 600), end=str(now + 60))
    return {e["labels"].get("trace_id") for series in data for e in series.get("exemplars", [])}


# agentwatch records each measurement in the context of the span it describes, so the SDK's
# trace-based exemplar filter links histogram samples to the run's trace.
def test_agentwatch_histograms_carry_exemplars_that_point_at_traces(
    workload_runs: list[EmittedRun], prometheus: Prometheus
) -> None:
    trace_ids = {run.trace_id for run in workload_runs}
    query = f'agentwatch_run_cost_usd_bucket{{job="{SERVICE_NAME}"}}'
    wait_for_series(prometheus, query)
    assert wait_until(
        lambda: exemplar_trace_ids(prometheus, query) & trace_ids, 10, what="run-cost exemplars with run trace ids"
    )


# --- every dashboard and rule query returns data -------------------------------------------------
def rule_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule; alert conditions are checked without their threshold."""
    found = []
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                expr = rule["expr"]
                if "alert" in rule:
                    # The signal behind the alert must have data; whether it crosses the threshold
                    # is the promtool tests' business.
                    expr = re.sub(r"\s*(>|<|>=|<=|==|!=)\s*[0-9.eE+-]+(?=\s|\)|$)", "", expr)
                    expr = re.sub(r"absent\((.*?)\)", r"\1", expr)
                found.append((f"{path.name}: {rule.get('record') or rule.get('alert')}", expr))
    return found


def test_every_dashboard_and_rule_query_returns_data(workload_runs: list[EmittedRun], prometheus: Prometheus) -> None:
    queries = dashboard_queries() + rule_queries()
    assert len(queries) > 20
    # Let a few evaluation rounds of the recording rules happen on the scraped data.
    wait_for_series(prometheus, "agentwatch:run_cost_usd:p95_15m")
    empty: dict[str, str] = {}
    deadline = time.monotonic() + 60
    pending = dict(queries)
    while pending and time.monotonic() < deadline:
        for where, expr in list(pending.items()):
            if prometheus.query(expr):  # raises on a parse error
                del pending[where]
        if pending:
            time.sleep(1)
    empty = pending
    assert not empty, "queries with no data (wrong metric or label names?):\n" + "\n".join(
        f"  {where}: {expr}" for where, expr in empty.items()
    )


# --- alerting ------------------------------------------------------------------------------------
def test_an_expensive_run_pages_through_alertmanager(
    collector: Collector, prometheus: Prometheus, alert_webhook: AlertWebhook
) -> None:
    agent = "alert-probe"
    # A service of its own, so the session workload's series and counts stay as they were.
    with Workload(
        collector.otlp_http, service_name="agentwatch-e2e-alert", instance_id="alert-probe", seed=3
    ) as workload:
        cheap = workload.run("ordinary", agent=agent, task=1)
        workload.flush()
        # The cheap run's cost histogram must be in Prometheus (two scrapes) before the expensive run:
        # an alert on increase() needs samples to increase from (hence one process for both runs).
        wait_for_series(
            prometheus, f'count_over_time(agentwatch_run_cost_usd_count{{gen_ai_agent_name="{agent}"}}[5m]) >= 2'
        )
        expensive = workload.run("expensive", agent=agent)
        workload.flush()
    assert cheap.cost_usd < 1 < expensive.cost_usd

    def delivered() -> list[dict[str, Any]]:
        return [
            a
            for a in alert_webhook.alerts()
            if a["labels"].get("alertname") == "AgentRunCostAboveLimit"
            and a["labels"].get("gen_ai_agent_name") == agent
            and a["status"] == "firing"
        ]

    alerts = wait_until(delivered, 90, interval=1, what="AgentRunCostAboveLimit at the webhook")
    alert = alerts[0]
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == f"A run of {agent} cost more than $1"
    assert alert["annotations"]["runbook"]


def test_collector_runs_the_config_without_deprecation_warnings(
    workload_runs: list[EmittedRun], collector: Collector
) -> None:
    log = collector.proc.log_path.read_text(errors="replace")
    assert "Everything is ready" in log
    assert "deprecated" not in log.lower(), [line for line in log.splitlines() if "deprecated" in line.lower()]


def test_shipped_files_are_the_ones_running(e2e_dir: Path, prometheus: Prometheus) -> None:
    """The temporary Prometheus/Alertmanager configs differ from the shipped ones only in addresses."""
    shipped = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    running = yaml.safe_load((e2e_dir / "prometheus.yml").read_text())
    assert [j["job_name"] for j in running["scrape_configs"]] == [j["job_name"] for j in shipped["scrape_configs"]]
    assert [j.get("honor_labels") for j in running["scrape_configs"]] == [
        j.get("honor_labels") for j in shipped["scrape_configs"]
    ]
    shipped_am = yaml.safe_load((REPO / "prometheus" / "alertmanager.yml").read_text())
    running_am = yaml.safe_load((e2e_dir / "alertmanager.yml").read_text())
    assert running_am["route"] == shipped_am["route"]
    assert running_am["inhibit_rules"] == shipped_am["inhibit_rules"]
