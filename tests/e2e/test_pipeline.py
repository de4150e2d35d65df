"""End to end through the real binaries: agent telemetry -> collector -> Jaeger / Loki / Prometheus ->
Alertmanager, with the repository's own collector, Loki and Prometheus configs and rules."""

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
from .stack import (
    AlertWebhook,
    Collector,
    Jaeger,
    Loki,
    OtlpLogsSink,
    Prometheus,
    wait_until,
)
from .workload import ALWAYS_KEPT, PLANTED_KEY, SERVICE_NAME, EmittedRun, Workload

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


@pytest.fixture(scope="module")
def kept_traces(workload_runs: list[EmittedRun], jaeger: Jaeger) -> dict[str, list[dict[str, Any]]]:
    """Every run tail sampling must keep, fetched by id from Jaeger (waits until complete)."""
    return {
        run.trace_id: wait_for_trace(jaeger, run.trace_id, len(run.span_names))
        for run in workload_runs
        if run.must_keep
    }


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
    workload_runs: list[EmittedRun], kept_traces: dict[str, list[dict[str, Any]]], jaeger: Jaeger
) -> None:
    assert {run.kind for run in workload_runs if run.must_keep} >= ALWAYS_KEPT
    assert len(kept_traces) == sum(run.must_keep for run in workload_runs)
    # Kept traces are all in; any ordinary trace the baseline kept was decided at the same time.
    time.sleep(3)
    ordinary = [run for run in workload_runs if not run.must_keep]
    kept = [run for run in ordinary if jaeger.get_trace(run.trace_id)]
    # Baseline is 50% (AGENTWATCH_SAMPLING_BASELINE_PERCENT): some kept, some dropped.
    assert len(ordinary) >= 15
    assert 0 < len(kept) < len(ordinary), f"baseline kept {len(kept)} of {len(ordinary)} ordinary runs"


def test_each_keep_policy_works_on_its_own_with_the_baseline_off(
    collector_keep_content: Collector, jaeger: Jaeger
) -> None:
    """The second collector samples 0% of ordinary runs: whatever is kept, a keep policy kept."""
    workload = Workload(
        collector_keep_content.otlp_http, service_name="agentwatch-e2e-strict", instance_id="strict", seed=13
    )
    try:
        # No failing tool calls, so only the policy named by the kind can keep each run.
        important = [workload.run(k, tool_failure_rate=0.0) for k in ("error", "budget", "budget", "slow", "expensive")]
        ordinary = [workload.run("ordinary", tool_failure_rate=0.0) for _ in range(6)]
    finally:
        workload.shutdown()
    assert {r.stop_reason for r in important if r.kind == "budget"} == {"max_iterations", "cost_budget"}
    for run in important:
        wait_for_trace(jaeger, run.trace_id, len(run.span_names))
    time.sleep(3)
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


def test_api_key_planted_in_a_tool_failure_is_masked(
    workload_runs: list[EmittedRun], kept_traces: dict[str, list[dict[str, Any]]]
) -> None:
    secret = next(run for run in workload_runs if run.kind == "secret")
    root = root_of(kept_traces[secret.trace_id])
    detail = root["attrs"][n.AW_RUN_STOP_DETAIL]
    assert "x-api-key" in detail and "sk-ant-" not in detail and "****" in detail
    assert PLANTED_KEY not in json.dumps(kept_traces)


def test_operator_can_keep_content_and_keys_are_still_masked(collector_keep_content: Collector, jaeger: Jaeger) -> None:
    workload = Workload(collector_keep_content.otlp_http, instance_id="keep-content", seed=11)
    try:
        run = workload.run("secret", agent="triage")
    finally:
        workload.shutdown()
    spans = wait_for_trace(jaeger, run.trace_id, len(run.span_names))
    chat = next(s for s in spans if s["attrs"].get(n.GEN_AI_OPERATION_NAME) == n.OP_CHAT)
    assert n.GEN_AI_INPUT_MESSAGES in chat["attrs"]
    assert n.GEN_AI_SYSTEM_INSTRUCTIONS in chat["attrs"]
    tool = next(s for s in spans if s["attrs"].get(n.GEN_AI_OPERATION_NAME) == n.OP_EXECUTE_TOOL)
    result = tool["attrs"][n.GEN_AI_TOOL_CALL_RESULT]
    assert result.startswith("error: upstream rejected key") and "sk-ant-" not in result
    assert PLANTED_KEY not in json.dumps(spans)


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
def loki_label(name: str) -> str:
    """How Loki names an OTLP attribute (structured metadata / label): dots become underscores."""
    return name.replace(".", "_")


def test_logs_reach_loki_with_their_trace_ids(workload_runs: list[EmittedRun], loki: Loki) -> None:
    trace_ids = {run.trace_id for run in workload_runs}
    query = f'{{service_name="{SERVICE_NAME}"}} | event="{n.LOG_RUN_END}"'

    def run_end_lines() -> dict[str, tuple[dict[str, str], str]]:
        found = {labels.get("trace_id", ""): (labels, line) for labels, line in loki.log_lines(query)}
        return found if trace_ids <= set(found) else {}

    # Logs are not sampled: every run's run_end record is there, dropped traces included.
    lines = wait_until(run_end_lines, 60, interval=1, what="a run_end log line in Loki for every run")
    for run in workload_runs:
        labels, line = lines[run.trace_id]
        assert line.startswith(f"run_end {run.agent} stop_reason={run.stop_reason}")
        assert labels["stop_reason"] == run.stop_reason
        assert float(labels["cost_usd"]) == pytest.approx(run.cost_usd)
        assert labels["deployment_environment_name"] == "e2e"  # the resource processor
        assert len(labels["span_id"]) == 16
    # What Grafana's trace -> logs link runs (grafana/provisioning/datasources): every record of a
    # run, here one the tail sampler dropped.
    dropped = next(r for r in workload_runs if r.kind == "ordinary")
    by_trace = loki.log_lines(f'{{service_name=~".+"}} | trace_id="{dropped.trace_id}"')
    assert {labels["event"] for labels, _ in by_trace} >= {n.LOG_RUN_START, n.LOG_LLM_CALL, n.LOG_RUN_END}


def test_logs_lose_content_and_keys_on_the_way_to_loki(workload_runs: list[EmittedRun], loki: Loki) -> None:
    secret = next(run for run in workload_runs if run.kind == "secret")
    lines = wait_until(
        lambda: (
            (found := loki.log_lines(f'{{service_name="{SERVICE_NAME}"}} | trace_id="{secret.trace_id}"'))
            and any(labels.get("event") == n.LOG_RUN_END for labels, _ in found)
            and found
        ),
        60,
        interval=1,
        what="the secret run's logs in Loki",
    )
    details = [labels for labels, _ in lines if labels.get("event") == "gen_ai.client.inference.operation.details"]
    assert details, "the content-carrying log records themselves still arrive"
    for labels, line in lines:
        assert not {loki_label(a) for a in n.CONTENT_ATTRIBUTES} & set(labels), labels["event"]
        assert "sk-ant-" not in line and "sk-ant-" not in json.dumps(labels)
    masked = [line for labels, line in lines if labels.get("event") == n.LOG_TOOL_RESULT and "rejected key" in line]
    assert masked and all("****" in line for line in masked)


def test_operator_can_keep_content_in_logs_and_keys_are_still_masked(
    collector_keep_content: Collector, logs_sink: OtlpLogsSink
) -> None:
    """The second collector (AGENTWATCH_COLLECTOR_KEEP_CONTENT=true) writes to a raw OTLP listener."""
    workload = Workload(collector_keep_content.otlp_http, instance_id="keep-content-logs", seed=5)
    try:
        run = workload.run("secret", agent="triage")
    finally:
        workload.shutdown()

    def records() -> list[Any]:
        found = [r for r in logs_sink.snapshot() if r.trace_id == run.trace_id]
        return found if any(r.attributes.get("event") == n.LOG_RUN_END for r in found) else []

    found = wait_until(records, 30, what="the run's logs at the OTLP listener")
    details = [r for r in found if r.attributes.get("event") == "gen_ai.client.inference.operation.details"]
    assert details and all(n.GEN_AI_INPUT_MESSAGES in r.attributes for r in details)
    assert all(r.resource["deployment.environment.name"] == "e2e" for r in found)
    dumped = json.dumps([(r.body, r.attributes) for r in found], default=str)
    assert "sk-ant-" not in dumped
    assert any("****" in str(r.body) for r in found if r.attributes.get("event") == n.LOG_TOOL_RESULT)


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


def test_histograms_carry_exemplars_that_point_at_traces(
    workload_runs: list[EmittedRun], prometheus: Prometheus
) -> None:
    trace_ids = {run.trace_id for run in workload_runs}

    def exemplar_trace_ids() -> set[str]:
        now = time.time()
        data = prometheus.api(
            "/api/v1/query_exemplars", query="agentwatch_run_cost_usd_bucket", start=str(now - 600), end=str(now + 60)
        )
        return {e["labels"].get("trace_id") for series in data for e in series.get("exemplars", [])} & trace_ids

    assert wait_until(exemplar_trace_ids, 30, what="exemplars with the runs' trace ids")


# --- every dashboard and rule query returns data -------------------------------------------------
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "10m",
    "${__range}": "10m",
    "$__auto": "1m",
}


def dashboard_queries(datasource_uid: str = "prometheus") -> list[tuple[str, str]]:
    """(where, query) for every target of every shipped dashboard on the given datasource."""
    found = []
    for path in sorted((REPO / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                if datasource.get("uid") != datasource_uid:
                    continue
                expr = target["expr"]
                for key, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(key, value)
                for name in variables:
                    expr = expr.replace(f"${{{name}}}", ".*").replace(f"${name}", ".*")
                found.append((f"{path.name}: {panel['title']} [{target['refId']}]", expr))
    return found


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
    deadline = time.monotonic() + 30
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


def test_every_dashboard_log_query_returns_data(workload_runs: list[EmittedRun], loki: Loki) -> None:
    """The Loki panels (recent runs, most expensive runs, cache-hit ratio, ...) against real Loki."""
    queries = dashboard_queries("loki")
    assert len(queries) >= 4
    pending = dict(queries)
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for where, expr in list(pending.items()):
            if loki.query_range(expr, step="60s"):  # raises on a LogQL parse error
                del pending[where]
        if pending:
            time.sleep(1)
    assert not pending, "log queries with no data:\n" + "\n".join(f"  {w}: {e}" for w, e in pending.items())


# --- alerting ------------------------------------------------------------------------------------
def test_an_expensive_run_pages_through_alertmanager(
    collector: Collector, prometheus: Prometheus, alert_webhook: AlertWebhook
) -> None:
    agent = "alert-probe"
    # A service of its own, so the session workload's series and counts stay as they were.
    workload = Workload(collector.otlp_http, service_name="agentwatch-e2e-alert", instance_id="alert-probe", seed=3)
    try:
        workload.run("ordinary", agent=agent, cost_usd=0.01)
        workload.flush()
        # The cost histogram must have been scraped once before the expensive run: an alert on
        # increase() needs a sample to increase from.
        wait_for_series(prometheus, f'agentwatch_run_cost_usd_count{{gen_ai_agent_name="{agent}"}}')
        time.sleep(2)
        workload.run("ordinary", agent=agent, cost_usd=2.5)
        workload.flush()
    finally:
        workload.shutdown()

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
