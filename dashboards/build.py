"""Generate the Grafana dashboards in this folder: ``python dashboards/build.py`` (``--check`` to verify).

Kept as code so that both dashboards share one set of conventions (datasource uids, the agent
variable, units, exemplar switches) and so the tests can find every query. Every Prometheus series
used here is listed in src/agentwatch/telemetry/names.py (or is a span-metrics series of
collector/config.yaml); tests/e2e proves each query returns data from real emitted telemetry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
AGENT = 'gen_ai_agent_name=~"$agent"'
# Loki: OTLP resource attribute service.name is the index label; log attributes are structured
# metadata, filtered after the stream selector.
RUNS_LOGS = '{service_name=~".+"} | event="run_end" | agent=~"$agent"'


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def row(layout: Layout, title: str) -> dict[str, Any]:
    if layout.x:
        layout.x, layout.y, layout.row_height = 0, layout.y + layout.row_height, 0
    panel = {
        "id": layout.new_id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": layout.y},
        "panels": [],
    }
    layout.y += 1
    return panel


def prom(
    expr: str,
    legend: str = "",
    *,
    ref: str = "A",
    exemplar: bool = False,
    instant: bool = False,
    fmt: str = "time_series",
) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": PROM,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "exemplar": exemplar,
        "range": not instant,
        "instant": instant,
        "format": fmt,
        "editorMode": "code",
    }


def loki(expr: str, *, ref: str = "A", instant: bool = False, legend: str = "") -> dict[str, Any]:
    target: dict[str, Any] = {
        "refId": ref,
        "datasource": LOKI,
        "expr": expr,
        "queryType": "instant" if instant else "range",
        "editorMode": "code",
    }
    if legend:
        target["legendFormat"] = legend
    return target


def panel(
    layout: Layout,
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    datasource: dict[str, str] = PROM,
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    decimals: int | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom:
        defaults["custom"] = custom
    result: dict[str, Any] = {
        "id": layout.new_id(),
        "type": kind,
        "title": title,
        "description": description,
        "gridPos": layout.place(w, h),
        "datasource": datasource,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    result.update(extra or {})
    return result


def timeseries(
    layout: Layout,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    stacked: bool = False,
    bars: bool = False,
    w: int = 12,
    h: int = 8,
) -> dict[str, Any]:
    custom: dict[str, Any] = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": True,
    }
    if stacked:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return panel(
        layout,
        "timeseries",
        title,
        description,
        targets,
        unit=unit,
        custom=custom,
        w=w,
        h=h,
        options={
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def stat(
    layout: Layout,
    title: str,
    description: str,
    expr: str,
    *,
    unit: str,
    decimals: int | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> dict[str, Any]:
    p = panel(
        layout,
        "stat",
        title,
        description,
        [prom(expr, instant=True)],
        unit=unit,
        w=6,
        h=4,
        decimals=decimals,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value",
        },
    )
    if thresholds:
        p["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute",
            "steps": [{"value": value, "color": color} for value, color in thresholds],
        }
    return p


def quantiles(
    metric: str,
    by: str,
    selector: str,
    qs: tuple[float, ...] = (0.5, 0.95, 0.99),
    exemplar_q: float = 0.95,
    legend_prefix: str = "",
) -> list[dict[str, Any]]:
    group = f"le, {by}" if by else "le"
    targets = []
    for i, q in enumerate(qs):
        legend = f"{legend_prefix}p{round(q * 100)}" + (f" {{{{{by}}}}}" if by else "")
        targets.append(
            prom(
                f"histogram_quantile({q}, sum by ({group}) (rate({metric}{{{selector}}}[$__rate_interval])))",
                legend,
                ref=chr(ord("A") + i),
                exemplar=q == exemplar_q,
            )
        )
    return targets


def agent_variable() -> dict[str, Any]:
    query = "label_values(agentwatch_runs_total, gen_ai_agent_name)"
    return {
        "name": "agent",
        "label": "Agent",
        "type": "query",
        "datasource": PROM,
        "query": {"query": query, "refId": "agent"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def trace_link_override(field: str) -> dict[str, Any]:
    """Make a table column holding a trace id open that trace in Jaeger."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Open trace in Jaeger",
                        "url": "",
                        "internal": {
                            "datasourceUid": JAEGER["uid"],
                            "datasourceName": "Jaeger",
                            "query": {"query": "${__value.raw}"},
                        },
                    }
                ],
            }
        ],
    }


def dashboard(
    uid: str, title: str, description: str, panels: list[dict[str, Any]], links: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agentwatch", "genai", "opentelemetry"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 41,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [agent_variable()]},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": links,
        "panels": panels,
    }


# --- "Agent cost & usage" --------------------------------------------------------------------------
def cost_dashboard() -> dict[str, Any]:
    L = Layout()
    runs = f"agentwatch_runs_total{{{AGENT}}}"
    panels = [
        row(L, "Spend"),
        stat(
            L,
            "Spend in range",
            "Money spent on LLM calls in the selected time range.",
            f"sum(increase(agentwatch_spend_usd_total{{{AGENT}}}[$__range]))",
            unit="currencyUSD",
            decimals=4,
        ),
        stat(
            L,
            "Runs in range",
            "Completed agent runs, any stop reason.",
            f"sum(increase({runs}[$__range]))",
            unit="short",
            decimals=0,
        ),
        stat(
            L,
            "Cost per run p95",
            "95th percentile of the cost of one run over the range; the "
            "AgentRunCostP95High alert fires above $0.25 sustained for 15 minutes.",
            f"histogram_quantile(0.95, sum by (le) (rate(agentwatch_run_cost_usd_bucket{{{AGENT}}}[$__range])))",
            unit="currencyUSD",
            decimals=4,
            thresholds=[(None, "green"), (0.1, "orange"), (0.25, "red")],
        ),
        stat(
            L,
            "Budget-stopped runs",
            "Share of runs stopped by a guard (iterations, tokens, cost, timeout).",
            f"sum(increase(agentwatch_budget_stops_total{{{AGENT}}}[$__range])) / sum(increase({runs}[$__range]))",
            unit="percentunit",
            decimals=1,
            thresholds=[(None, "green"), (0.1, "orange"), (0.2, "red")],
        ),
        timeseries(
            L,
            "Spend rate by model and agent",
            "Dollars per hour, from the spend counter each "
            "priced LLM call adds to. AgentSpendBurnRateHigh fires above $10/hour.",
            [
                prom(
                    f"sum by (gen_ai_agent_name, gen_ai_request_model) "
                    f"(rate(agentwatch_spend_usd_total{{{AGENT}}}[$__rate_interval])) * 3600",
                    "{{gen_ai_agent_name}} · {{gen_ai_request_model}}",
                )
            ],
            unit="currencyUSD",
            stacked=True,
        ),
        timeseries(
            L,
            "Cost per run p50 / p95 / p99",
            "Cost of one run. Exemplars (diamonds on the p95 line) open the trace of a run in that bucket.",
            quantiles("agentwatch_run_cost_usd_bucket", "", AGENT),
            unit="currencyUSD",
        ),
        row(L, "Tokens"),
        timeseries(
            L,
            "Tokens per second by type and model",
            "gen_ai.client.token.usage summed; input "
            "includes cache reads and writes (the conventions' rule for Anthropic).",
            [
                prom(
                    f"sum by (gen_ai_token_type, gen_ai_request_model) "
                    f"(rate(gen_ai_client_token_usage_sum{{{AGENT}}}[$__rate_interval]))",
                    "{{gen_ai_token_type}} · {{gen_ai_request_model}}",
                )
            ],
            unit="short",
            stacked=True,
            w=8,
        ),
        timeseries(
            L,
            "Input tokens per call p95",
            "Prompt size per LLM call; a jump usually means a growing conversation or a larger tool result fed back.",
            [
                prom(
                    f"histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate("
                    f'gen_ai_client_token_usage_bucket{{gen_ai_token_type="input", {AGENT}}}'
                    f"[$__rate_interval])))",
                    "{{gen_ai_request_model}}",
                    exemplar=True,
                )
            ],
            w=8,
        ),
        timeseries(
            L,
            "Prompt-cache hit ratio",
            "Cache-read input tokens over all input tokens, from the "
            "llm_call log records in Loki (token counts by cache state are not a metric).",
            [
                loki(
                    'sum(sum_over_time({service_name=~".+"} | event="llm_call" | agent=~"$agent" '
                    "| unwrap cache_read_tokens [$__auto])) / "
                    'sum(sum_over_time({service_name=~".+"} | event="llm_call" | agent=~"$agent" '
                    "| unwrap input_tokens [$__auto]))",
                    legend="cache hit ratio",
                )
            ],
            unit="percentunit",
            w=8,
        )
        | {"datasource": LOKI},
        row(L, "Runs"),
        timeseries(
            L,
            "Runs by stop reason",
            "Runs per minute. Anything but end_turn returned partial "
            "work; error and the budget reasons are always kept by tail sampling.",
            [
                prom(
                    f"sum by (agentwatch_run_stop_reason) (rate({runs}[$__rate_interval])) * 60",
                    "{{agentwatch_run_stop_reason}}",
                )
            ],
            unit="short",
            stacked=True,
            bars=True,
            w=8,
        ),
        timeseries(
            L,
            "Budget stops by kind",
            "Runs stopped by each guard.",
            [
                prom(
                    f"sum by (agentwatch_budget_kind, gen_ai_agent_name) "
                    f"(increase(agentwatch_budget_stops_total{{{AGENT}}}[$__rate_interval]))",
                    "{{agentwatch_budget_kind}} · {{gen_ai_agent_name}}",
                )
            ],
            unit="short",
            stacked=True,
            bars=True,
            w=8,
        ),
        timeseries(
            L,
            "Iterations per run",
            "LLM calls per run (p50 / p95). A rising p95 with flat traffic is the usual start of a cost incident.",
            quantiles("agentwatch_run_iterations_bucket", "", AGENT, qs=(0.5, 0.95)),
            w=8,
        ),
        timeseries(
            L,
            "Run duration p95",
            "Wall clock of a run by agent, retries and tool time included.",
            quantiles("agentwatch_run_duration_seconds_bucket", "gen_ai_agent_name", AGENT, qs=(0.95,)),
            unit="s",
            w=8,
        ),
        timeseries(
            L,
            "Tool error rate",
            "Share of tool calls that did not end ok (error, timeout, invalid input, unknown tool), by tool.",
            [
                prom(
                    f"sum by (gen_ai_tool_name) (rate(agentwatch_tool_calls_total"
                    f'{{agentwatch_tool_outcome!="ok", {AGENT}}}[$__rate_interval])) / '
                    f"sum by (gen_ai_tool_name) (rate(agentwatch_tool_calls_total{{{AGENT}}}"
                    f"[$__rate_interval]))",
                    "{{gen_ai_tool_name}}",
                )
            ],
            unit="percentunit",
            w=8,
        ),
        timeseries(
            L,
            "Tool latency p95",
            "gen_ai.execute_tool.duration by tool.",
            quantiles("gen_ai_execute_tool_duration_seconds_bucket", "gen_ai_tool_name", AGENT, qs=(0.95,)),
            unit="s",
            w=8,
        ),
        row(L, "LLM calls"),
        timeseries(
            L,
            "LLM latency p95 by model",
            "One chat call including its retries. Exemplars open the trace.",
            quantiles(
                "gen_ai_client_operation_duration_seconds_bucket",
                "gen_ai_request_model",
                f'gen_ai_operation_name="chat", {AGENT}',
                qs=(0.95,),
            ),
            unit="s",
        ),
        timeseries(
            L,
            "Time to first token p95 (streaming)",
            "gen_ai.client.operation.time_to_first_chunk.",
            quantiles(
                "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "gen_ai_request_model", AGENT, qs=(0.95,)
            ),
            unit="s",
        ),
        timeseries(
            L,
            "Retries by error type",
            "Retried attempts per minute by SDK error class (RateLimitError = 429, OverloadedError = 529, ...).",
            [
                prom(
                    f"sum by (error_type) (rate(agentwatch_retries_total{{{AGENT}}}[$__rate_interval])) * 60",
                    "{{error_type}}",
                )
            ],
            unit="short",
            stacked=True,
            bars=True,
        ),
        timeseries(
            L,
            "429 rate",
            "Rate-limited retries per LLM call, by model. AnthropicRateLimited fires above 10% for 10 minutes.",
            [
                prom(
                    f"sum by (gen_ai_request_model) (rate(agentwatch_retries_total"
                    f'{{error_type=~"RateLimitError|429", {AGENT}}}[$__rate_interval])) / '
                    f"sum by (gen_ai_request_model) (rate(gen_ai_client_operation_duration_seconds_count"
                    f'{{gen_ai_operation_name="chat", {AGENT}}}[$__rate_interval]))',
                    "{{gen_ai_request_model}}",
                )
            ],
            unit="percentunit",
        ),
        *fleet_panels(L),
        row(L, "Spans before sampling"),
        timeseries(
            L,
            "Spans per second by operation",
            "From the collector's span_metrics connector, "
            "which sees every span before tail sampling drops ordinary traces.",
            [
                prom(
                    "sum by (gen_ai_operation_name) (rate(traces_span_metrics_calls_total"
                    '{gen_ai_operation_name!=""}[$__rate_interval]))',
                    "{{gen_ai_operation_name}}",
                )
            ],
        ),
        timeseries(
            L,
            "Errored spans per second",
            "Spans with status ERROR by span name, before sampling. Exemplars open a kept trace.",
            [
                prom(
                    "sum by (span_name) (rate(traces_span_metrics_calls_total"
                    '{status_code="STATUS_CODE_ERROR"}[$__rate_interval]))',
                    "{{span_name}}",
                    exemplar=True,
                )
            ],
        ),
    ]
    return dashboard(
        "agentwatch-cost",
        "Agent cost & usage",
        "Spend, cost per run, tokens, stop reasons, tools, LLM latency and retries of agentwatch agents.",
        panels,
        [
            {
                "title": "Agent runs",
                "type": "link",
                "url": "/d/agentwatch-runs",
                "keepTime": True,
                "includeVars": True,
                "icon": "dashboard",
            }
        ],
    )


def fleet_panels(L: Layout) -> list[dict[str, Any]]:
    """Fleet guards (agentwatch.fleet, README "Fleet guards"): tenant budgets, shared rate limits, circuits;
    and the canaries shared through the same Redis.

    Every replica reports the shared values it last read from Redis: spend is the max over replicas,
    what remains the min."""
    tenant = "agentwatch_tenant, agentwatch_budget_period"
    canary = "gen_ai_agent_name, agentwatch_rollout_candidate_version"
    return [
        row(L, "Fleet guards and canaries"),
        timeseries(
            L,
            "Tenant spend vs budget",
            "Each tenant's spend in its fleet budget's current period, and the budget (alert TenantBudgetNearlySpent "
            "at 80%).",
            [
                prom(f"max by ({tenant}) (agentwatch_tenant_spend_usd)", "{{agentwatch_tenant}} spent"),
                prom(
                    f"max by ({tenant}) (agentwatch_tenant_budget_limit_usd)",
                    "{{agentwatch_tenant}} budget",
                    ref="B",
                ),
            ],
            unit="currencyUSD",
        ),
        timeseries(
            L,
            "Tenant budget remaining",
            "What is left of each tenant's budget this period, reservations of calls in flight held back.",
            [prom(f"min by ({tenant}) (agentwatch_tenant_budget_remaining_usd)", "{{agentwatch_tenant}}")],
            unit="currencyUSD",
        ),
        timeseries(
            L,
            "Rate-limit waits p50 / p95",
            "Time LLM calls waited for shared rate-limit capacity instead of collecting a 429, by model.",
            quantiles("agentwatch_rate_limit_wait_duration_seconds_bucket", "gen_ai_request_model", "", qs=(0.5, 0.95)),
            unit="s",
        ),
        timeseries(
            L,
            "Circuit state",
            "0 closed, 1 half-open (a probe is out), 2 open (calls fail fast or go to the fallback; alert "
            "ModelCircuitOpen), by model and API host.",
            [
                prom(
                    "max by (gen_ai_request_model, server_address) (agentwatch_circuit_state)",
                    "{{gen_ai_request_model}} @ {{server_address}}",
                )
            ],
        ),
        timeseries(
            L,
            "Fleet store errors",
            "Guard decisions made without Redis, by guard and policy (fail_open: unguarded; fail_closed: stopped).",
            [
                prom(
                    "sum by (agentwatch_fleet_guard, agentwatch_fleet_policy) "
                    "(increase(agentwatch_fleet_store_errors_total[$__rate_interval]))",
                    "{{agentwatch_fleet_guard}} {{agentwatch_fleet_policy}}",
                )
            ],
            bars=True,
            stacked=True,
        ),
        timeseries(
            L,
            "Canary ramp steps and rollbacks",
            'Shared canaries (agentwatch.rollout, README "Evals and safe rollout"): ramp steps taken, by the share '
            "they moved to, and rollbacks, by the guard that tripped (alert AgentCanaryRolledBack).",
            [
                prom(
                    f"sum by ({canary}, agentwatch_canary_share) "
                    "(increase(agentwatch_canary_step_total[$__rate_interval]))",
                    "{{gen_ai_agent_name}} {{agentwatch_rollout_candidate_version}} to {{agentwatch_canary_share}}",
                ),
                prom(
                    f"sum by ({canary}, agentwatch_rollout_guard) "
                    "(increase(agentwatch_canary_rollbacks_total[$__rate_interval]))",
                    "{{gen_ai_agent_name}} {{agentwatch_rollout_candidate_version}} rolled back "
                    "({{agentwatch_rollout_guard}})",
                    ref="B",
                ),
            ],
            bars=True,
        ),
    ]


# --- "Agent runs" ----------------------------------------------------------------------------------
def queue_panels(L: Layout) -> list[dict[str, Any]]:
    """Queued runs (agentwatch worker, README "Queue"): backlog, waiting time and dead letters, per queue."""
    queue = "messaging_destination_name"
    return [
        row(L, "Queue"),
        timeseries(
            L,
            "Queue depth",
            "Jobs waiting in each queue (LLEN of its Redis list, read by the workers at each export).",
            [prom(f"max by ({queue}) (agentwatch_queue_depth)", f"{{{{{queue}}}}}")],
        ),
        timeseries(
            L,
            "Oldest job age",
            "How long the job next in line has waited. Growing steadily: no worker consumes, or too few.",
            [prom(f"max by ({queue}) (agentwatch_queue_oldest_job_age_seconds)", f"{{{{{queue}}}}}")],
            unit="s",
        ),
        timeseries(
            L,
            "Time in queue p50 / p95 / p99",
            "From submit to the start of the run (also the agentwatch.queue.wait_s attribute of the consumer span).",
            quantiles("agentwatch_queue_wait_duration_seconds_bucket", queue, f'{queue}=~".+"', exemplar_q=0.99),
            unit="s",
        ),
        timeseries(
            L,
            "Dead-lettered jobs",
            "Jobs that failed for good, by reason; each is in the Redis list agentwatch:dead:<queue> with its "
            "error and trace id (alert AgentJobsDeadLettered).",
            [
                prom(
                    f"sum by ({queue}, error_type) (increase(agentwatch_queue_dead_letters_total[$__rate_interval]))",
                    f"{{{{{queue}}}}} {{{{error_type}}}}",
                )
            ],
            bars=True,
            stacked=True,
        ),
    ]


def runs_dashboard() -> dict[str, Any]:
    L = Layout()
    runs = f"agentwatch_runs_total{{{AGENT}}}"
    panels = [
        stat(L, "Runs", "Completed runs in range.", f"sum(increase({runs}[$__range]))", unit="short", decimals=0),
        stat(
            L,
            "Failed runs",
            "Runs that ended with stop_reason=error.",
            f'sum(increase(agentwatch_runs_total{{agentwatch_run_stop_reason="error", {AGENT}}}[$__range]))',
            unit="short",
            decimals=0,
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            L,
            "Budget-stopped runs",
            "Runs a guard stopped.",
            f"sum(increase(agentwatch_budget_stops_total{{{AGENT}}}[$__range]))",
            unit="short",
            decimals=0,
            thresholds=[(None, "green"), (1, "orange")],
        ),
        stat(
            L,
            "Spend in range",
            "Money spent on LLM calls.",
            f"sum(increase(agentwatch_spend_usd_total{{{AGENT}}}[$__range]))",
            unit="currencyUSD",
            decimals=4,
        ),
        panel(
            L,
            "table",
            "Most expensive runs",
            "The 20 costliest runs in range, from run_end log records; the trace_id column opens the "
            "trace in Jaeger (expensive runs are always kept by tail sampling).",
            [
                loki(
                    f"topk(20, max by (trace_id, agent, stop_reason) "
                    f"(max_over_time({RUNS_LOGS} | unwrap cost_usd [$__range])))",
                    instant=True,
                )
            ],
            datasource=LOKI,
            unit="currencyUSD",
            w=12,
            h=10,
            overrides=[trace_link_override("trace_id")],
            options={"showHeader": True, "sortBy": [{"displayName": "Value #A", "desc": True}]},
            extra={
                "transformations": [
                    {
                        "id": "organize",
                        "options": {
                            "excludeByName": {"Time": True},
                            "renameByName": {"Value #A": "cost (USD)", "agent": "agent", "stop_reason": "stop reason"},
                        },
                    }
                ]
            },
        ),
        timeseries(
            L,
            "Cost per run p95 (click an exemplar for its trace)",
            "Exemplars link metric points to the trace of a run that produced them.",
            quantiles("agentwatch_run_cost_usd_bucket", "gen_ai_agent_name", AGENT, qs=(0.95,)),
            unit="currencyUSD",
            h=10,
        ),
        panel(
            L,
            "logs",
            "Recent runs",
            "One run_end record per run: stop reason, iterations, tokens, cost. "
            "Expand a line and follow the TraceID link to Jaeger.",
            [loki(RUNS_LOGS)],
            datasource=LOKI,
            w=24,
            h=10,
            options={
                "showTime": True,
                "wrapLogMessage": True,
                "enableLogDetails": True,
                "sortOrder": "Descending",
                "dedupStrategy": "none",
                "prettifyLogMessage": False,
            },
        ),
        panel(
            L,
            "logs",
            "Failed and budget-stopped runs",
            "run_end records whose stop reason is not end_turn.",
            [loki(f'{RUNS_LOGS} | stop_reason!="end_turn"')],
            datasource=LOKI,
            w=12,
            h=10,
            options={"showTime": True, "wrapLogMessage": True, "enableLogDetails": True, "sortOrder": "Descending"},
        ),
        panel(
            L,
            "logs",
            "Retries and tool failures",
            "Why runs slowed down or failed: retried API calls "
            "(with the error class) and tool calls that did not end ok.",
            [loki('{service_name=~".+"} | agent=~"$agent" | event="retry" or (event="tool_result" and outcome!="ok")')],
            datasource=LOKI,
            w=12,
            h=10,
            options={"showTime": True, "wrapLogMessage": True, "enableLogDetails": True, "sortOrder": "Descending"},
        ),
        timeseries(
            L,
            "Runs by stop reason",
            "Runs per minute by how they ended.",
            [
                prom(
                    f"sum by (agentwatch_run_stop_reason) (rate({runs}[$__rate_interval])) * 60",
                    "{{agentwatch_run_stop_reason}}",
                )
            ],
            stacked=True,
            bars=True,
            w=24,
        ),
        *queue_panels(L),
    ]
    return dashboard(
        "agentwatch-runs",
        "Agent runs",
        "Individual runs: the most expensive ones, recent run_end logs with links to their traces.",
        panels,
        [
            {
                "title": "Agent cost & usage",
                "type": "link",
                "url": "/d/agentwatch-cost",
                "keepTime": True,
                "includeVars": True,
                "icon": "dashboard",
            }
        ],
    )


DASHBOARDS = {"agent-cost-usage.json": cost_dashboard, "agent-runs.json": runs_dashboard}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, build in DASHBOARDS.items():
        path = HERE / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards (run python dashboards/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
