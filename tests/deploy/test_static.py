"""Static checks of the deploy kit: compose file, Grafana provisioning, dashboards, alert rules, and
that every metric, label and log event they name is one agentwatch emits (names.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agentwatch.telemetry import names as n

REPO = Path(__file__).resolve().parents[2]
NAMES_PY = (REPO / "src" / "agentwatch" / "telemetry" / "names.py").read_text()


def load_yaml(*parts: str) -> Any:
    return yaml.safe_load(REPO.joinpath(*parts).read_text())


def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((REPO / "dashboards").glob("*.json"))}


def datasources() -> list[dict[str, Any]]:
    found = []
    for path in sorted((REPO / "grafana" / "provisioning" / "datasources").glob("*.yaml")):
        found += yaml.safe_load(path.read_text())["datasources"]
    return found


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows keep their panels inside
    return out


def rules() -> list[dict[str, Any]]:
    found = []
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += group["rules"]
    return found


# --- docker-compose.yml --------------------------------------------------------------------------
# The part of the compose specification this file may use; a typo in a key fails here.
SERVICE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
    "properties": {
        "image": {"type": "string"},
        "build": {
            "type": "object",
            "required": ["context"],
            "additionalProperties": False,
            "properties": {"context": {"type": "string"}, "dockerfile": {"type": "string"}},
        },
        "command": {"type": "array", "items": {"type": "string"}},
        "environment": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "ports": {"type": "array", "items": {"type": "string"}},
        "volumes": {"type": "array", "items": {"type": "string"}},
        "depends_on": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["condition"],
                "properties": {
                    "condition": {"enum": ["service_started", "service_healthy", "service_completed_successfully"]}
                },
            },
        },
        "healthcheck": {
            "type": "object",
            "required": ["test"],
            "additionalProperties": False,
            "properties": {
                "test": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "interval": {"type": "string"},
                "timeout": {"type": "string"},
                "retries": {"type": "integer"},
                "start_period": {"type": "string"},
            },
        },
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "profiles": {"type": "array", "items": {"type": "string"}},
        "stop_grace_period": {"type": "string"},
    },
}
COMPOSE_SCHEMA = {
    "type": "object",
    "required": ["services"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "services": {"type": "object", "additionalProperties": SERVICE_SCHEMA},
        "volumes": {"type": "object"},
    },
}

# Services whose image has nothing to run a healthcheck with (otelcol-contrib is a scratch image).
NO_HEALTHCHECK = {"collector", "collector-node-1", "collector-node-2", "collector-sampler-1", "collector-sampler-2"}
# Compose service -> its image's key in versions.env, the table the end-to-end binaries are built from.
IMAGE_KEYS = {
    "collector": "OTELCOL_IMAGE",
    "jaeger": "JAEGER_IMAGE",
    "loki": "LOKI_IMAGE",
    "prometheus": "PROMETHEUS_IMAGE",
    "alertmanager": "ALERTMANAGER_IMAGE",
    "grafana": "GRAFANA_IMAGE",
}
EXACT_TAG = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+$")


def test_compose_file_follows_the_compose_spec_subset() -> None:
    jsonschema.validate(compose(), COMPOSE_SCHEMA)


def test_compose_images_are_pinned_to_exact_versions(versions: dict[str, str]) -> None:
    services = compose()["services"]
    for name, service in services.items():
        image = service.get("image", "")
        assert EXACT_TAG.match(image), f"{name}: image {image!r} is not pinned to an exact version"
        assert not image.endswith(":latest")
    for name, key in IMAGE_KEYS.items():
        assert services[name]["image"] == versions[key], f"{name}: compose and versions.env disagree"
    assert re.fullmatch(r"grafana/grafana:13\.\d+\.\d+", services["grafana"]["image"])


def test_compose_builds_exist_and_base_image_is_pinned() -> None:
    for name, service in compose()["services"].items():
        build = service.get("build")
        if not build:
            continue
        context = REPO / build["context"]
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.M)
        assert bases and all(":" in b and not b.endswith(":latest") for b in bases), bases
        assert any(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases  # an exact tag


def test_compose_healthchecks_and_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service
        else:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"


def test_compose_mounts_exist_and_volumes_are_declared() -> None:
    spec = compose()
    declared = set(spec.get("volumes") or {})
    used = set()
    for name, service in spec["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: mounted {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {declared - used}"


def test_compose_ports_bind_to_localhost() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is published on every interface"


def test_compose_wires_the_shipped_configs() -> None:
    services = compose()["services"]
    mounts = {m.split(":")[0]: m.split(":")[1] for s in services.values() for m in s.get("volumes", [])}
    assert mounts["./collector/config.yaml"] in " ".join(services["collector"]["command"])
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules"] == "/etc/prometheus/rules"
    prometheus_yml = load_yaml("prometheus", "prometheus.yml")
    assert prometheus_yml["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    provider = load_yaml("grafana", "provisioning", "dashboards", "agentwatch.yaml")["providers"][0]
    assert mounts["./dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert f"-config.file={mounts['./loki/config.yaml']}" in services["loki"]["command"]
    # The agent service and the traffic generator export to the collector's OTLP/HTTP port.
    for name in ("agent", "trafficgen"):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    # Alertmanager's webhook is the compose alert-sink.
    hook = load_yaml("prometheus", "alertmanager.yml")["receivers"][0]["webhook_configs"][0]["url"]
    assert hook.startswith("http://alert-sink:9095/")


def test_two_tier_profile_runs_the_shipped_collector_with_its_overlays(versions: dict[str, str]) -> None:
    """Profile two-tier: 2 first-tier and 2 sampling collectors, the `collector` service's image and
    config.yaml (same mount) plus tier1.yaml / tier2.yaml, and the samplers tier1.yaml routes to."""
    services = compose()["services"]
    single = services["collector"]
    base_mount = next(m for m in single["volumes"] if m.startswith("./collector/config.yaml:"))
    profile = {name: s for name, s in services.items() if "two-tier" in s.get("profiles", [])}
    tiers = {
        "tier1.yaml": ["collector-node-1", "collector-node-2"],
        "tier2.yaml": ["collector-sampler-1", "collector-sampler-2"],
    }
    for overlay, names in tiers.items():
        for name in names:
            service = profile[name]
            assert service["image"] == single["image"] == versions["OTELCOL_IMAGE"], name
            overlay_mount = next(m for m in service["volumes"] if m.startswith(f"./collector/{overlay}:"))
            assert service["volumes"] == [base_mount, overlay_mount], name
            targets = [m.split(":")[1] for m in service["volumes"]]
            assert service["command"] == [f"--config={t}" for t in targets], name
    collectors = {name for names in tiers.values() for name in names}
    assert {name for name in profile if name.startswith("collector")} == collectors
    tier1 = (REPO / "collector" / "tier1.yaml").read_text()
    default = re.search(r"AGENTWATCH_SAMPLING_TIER:-\[([^\]]*)\]", tier1)
    assert default, "tier1.yaml: no default sampler list"
    assert [h.strip() for h in default.group(1).split(",")] == [f"{n}:4317" for n in tiers["tier2.yaml"]]
    # Each node's traffic generator exports to its own first-tier collector.
    for node in tiers["tier1.yaml"]:
        agent = profile[f"trafficgen-{node.removeprefix('collector-')}"]
        assert agent["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{node}:4318"
        assert agent["image"] == services["trafficgen"]["image"]


def test_collector_defaults_point_at_compose_services() -> None:
    text = (REPO / "collector" / "config.yaml").read_text()
    assert "${env:AGENTWATCH_JAEGER_OTLP_ENDPOINT:-jaeger:4317}" in text
    assert "${env:AGENTWATCH_LOKI_OTLP_ENDPOINT:-http://loki:3100/otlp}" in text
    targets = {
        j["job_name"]: j["static_configs"][0]["targets"]
        for j in load_yaml("prometheus", "prometheus.yml")["scrape_configs"]
    }
    assert targets["agentwatch"] == ["collector:8889"]
    assert "${env:AGENTWATCH_PROMETHEUS_EXPORTER_ENDPOINT:-0.0.0.0:8889}" in text


def docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(
    not docker_compose_available(),
    reason="no `docker compose` CLI here: the schema subset above checks the file instead",
)
def test_docker_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --- the agent service (agentwatch serve) and its traffic generator -------------------------------
def dockerfile_instructions() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Z]+)\s+(.*)$", text, flags=re.M)}


def test_the_image_runs_the_service_as_non_root_with_a_healthcheck_and_sigterm() -> None:
    found = dockerfile_instructions()
    assert found["USER"] not in {"root", "0"}
    assert "/healthz" in found["HEALTHCHECK"] and found["STOPSIGNAL"] == "SIGTERM"
    command = json.loads(found["CMD"])
    assert command[:2] == ["agentwatch", "serve"] and "--sim" in command
    assert "scripts/serve_traffic.py" in (REPO / "Dockerfile").read_text()  # the traffic generator ships too


def test_compose_serves_the_agent_with_keys_and_the_traffic_generator_calls_it_over_http() -> None:
    import dataclasses

    from agentwatch.refs import load_agent
    from agentwatch.serve.auth import ApiKeys, require_safe_exposure
    from agentwatch.serve.settings import ServeSettings

    services = compose()["services"]
    agent, trafficgen = services["agent"], services["trafficgen"]
    command = agent["command"]
    assert command[:2] == ["agentwatch", "serve"]
    load_agent(command[2])  # the reference the container serves loads
    env = {k: str(v) for k, v in agent["environment"].items()}
    known = {f.metadata["env"] for f in dataclasses.fields(ServeSettings)}
    assert {k for k in env if k.startswith("AGENTWATCH_")} <= known, "an AGENTWATCH_* variable no setting reads"
    settings = ServeSettings.from_env(env)
    host = command[command.index("--host") + 1]
    require_safe_exposure(ApiKeys.load(settings.api_keys, settings.api_keys_file), host, False)  # keys are set
    port = command[command.index("--port") + 1]
    assert f"127.0.0.1:{port}:{port}" in agent["ports"] and f":{port}/healthz" in " ".join(agent["healthcheck"]["test"])
    grace = int(agent["stop_grace_period"].rstrip("s"))
    assert grace > settings.drain_timeout_s, "compose must wait longer than the drain before it kills the service"
    assert trafficgen["command"][:2] == ["python", "/app/scripts/serve_traffic.py"]
    assert trafficgen["command"][trafficgen["command"].index("--target") + 1] == f"http://agent:{port}"
    assert trafficgen["depends_on"]["agent"]["condition"] == "service_healthy"
    tenant_key = settings.api_keys.split(":", 1)[1]
    assert trafficgen["environment"]["AGENTWATCH_TRAFFIC_API_KEY"] == tenant_key
    assert (REPO / "scripts" / "serve_traffic.py").is_file()


def test_compose_queues_the_agents_async_runs_on_redis_for_a_worker_serving_the_same_agent() -> None:
    from urllib.parse import urlsplit

    from agentwatch.serve.settings import ServeSettings

    services = compose()["services"]
    agent, worker, trafficgen = services["agent"], services["worker"], services["trafficgen"]
    settings = ServeSettings.from_env({k: str(v) for k, v in agent["environment"].items()})
    queue = urlsplit(settings.queue_url)
    assert queue.scheme == "redis" and queue.hostname == "redis", f"the agent's queue is not compose's redis: {queue}"
    redis_command = services["redis"]["command"]
    redis_port = int(redis_command[redis_command.index("--port") + 1]) if "--port" in redis_command else 6379
    assert (queue.port or 6379) == redis_port
    assert agent["depends_on"]["redis"]["condition"] == "service_healthy"
    command = worker["command"]
    assert command[:2] == ["agentwatch", "worker"]
    assert command[2] == agent["command"][2], "the worker must serve the agent reference the service queues runs for"
    assert command[command.index("--broker") + 1] == settings.queue_url, "the worker must read the agent's queue"
    share = float(trafficgen["environment"]["AGENTWATCH_TRAFFIC_ASYNC_SHARE"])
    assert 0 < share < 1, "the traffic generator sends some, not all, runs async"


# --- Grafana provisioning and dashboards ---------------------------------------------------------
def test_datasources_have_fixed_uids_and_trace_links() -> None:
    by_uid = {d["uid"]: d for d in datasources()}
    assert {"prometheus", "loki", "jaeger"} <= set(by_uid)
    assert by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "jaeger"
    assert by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["name"] == "trace_id"
    derived = by_uid["loki"]["jsonData"]["derivedFields"][0]
    assert derived["datasourceUid"] == "jaeger" and derived["matcherRegex"] == "trace_id"
    traces_to_logs = by_uid["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert traces_to_logs["datasourceUid"] == "loki" and traces_to_logs["filterByTraceID"]
    services = compose()["services"]
    for source in by_uid.values():
        host, port = re.match(r"http://([\w-]+):(\d+)", source["url"]).groups()  # type: ignore[union-attr]
        assert host in services, f"{source['name']}: {host} is not a compose service"
        container_ports = {p.rsplit(":", 1)[1] for p in services[host].get("ports", [])}
        assert port in container_ports, f"{source['name']}: {host} does not serve port {port}"


def test_provisioning_escapes_dollar_signs() -> None:
    """Grafana expands $VAR / ${VAR} in provisioning files; template variables must be written $$."""
    for path in (REPO / "grafana" / "provisioning").rglob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue
            unescaped = re.findall(r"(?<!\$)\$(?!\$)\{?[\w.]+", line.replace("$$", ""))
            assert not unescaped, f"{path.name}: unescaped $ in {line.strip()!r}"


def test_dashboards_are_generated_from_build_py() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "dashboards" / "build.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_dashboards_are_valid_and_every_panel_uses_a_provisioned_datasource() -> None:
    provisioned = {d["uid"] for d in datasources()}
    found = dashboards()
    assert {d["title"] for d in found.values()} == {"Agent cost & usage", "Agent runs"}
    assert len({d["uid"] for d in found.values()}) == len(found)
    for name, dashboard in found.items():
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"]), name
        assert isinstance(dashboard["schemaVersion"], int)
        ids = [p["id"] for p in panels_of(dashboard)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for variable in dashboard["templating"]["list"]:
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in provisioned
        for panel in panels_of(dashboard):
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            if panel["type"] == "row":
                continue
            assert panel["title"] and panel.get("description"), f"{name}: panel without title/description"
            assert panel["datasource"]["uid"] in provisioned, f"{name}: {panel['title']}"
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            for target in panel["targets"]:
                uid = (target.get("datasource") or panel["datasource"])["uid"]
                assert uid in provisioned, f"{name}: {panel['title']} queries unprovisioned {uid}"
                assert target["expr"].strip()


def test_dashboards_cover_the_issue_panels() -> None:
    titles = " | ".join(p["title"].lower() for d in dashboards().values() for p in panels_of(d))
    for wanted in (
        "spend rate by model and agent",
        "cost per run p50 / p95 / p99",
        "tokens per second by type",
        "cache hit ratio",
        "runs by stop reason",
        "budget stops",
        "iterations per run",
        "tool error rate",
        "llm latency p95",
        "time to first token",
        "retries by error type",
        "429 rate",
        "recent runs",
        "most expensive runs",
    ):
        assert wanted in titles, wanted
    exemplar_targets = [
        t for d in dashboards().values() for p in panels_of(d) for t in p.get("targets", []) if t.get("exemplar")
    ]
    assert exemplar_targets, "no panel shows exemplars (links to traces)"


# --- names: no stale metric, label or log event names ----------------------------------------------
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}
STANDARD_LABELS = {"le", "job", "instance", "__name__"}
# Labels the span_metrics connector adds (collector/config.yaml).
SPAN_METRICS_LABELS = {"span_name", "span_kind", "status_code", "service_name"}
SPAN_METRICS_SERIES = {
    "traces_span_metrics_calls_total",
    "traces_span_metrics_duration_seconds_bucket",
    "traces_span_metrics_duration_seconds_sum",
    "traces_span_metrics_duration_seconds_count",
}


def promql_exprs() -> list[tuple[str, str]]:
    found = [(f"rule {r.get('record') or r.get('alert')}", r["expr"]) for r in rules()]
    for name, dashboard in dashboards().items():
        for panel in panels_of(dashboard):
            for target in panel.get("targets", []):
                if (target.get("datasource") or panel.get("datasource") or {}).get("uid") == "prometheus":
                    found.append((f"{name}: {panel['title']}", target["expr"]))
        for variable in dashboard["templating"]["list"]:
            if variable.get("datasource", {}).get("uid") == "prometheus":
                found.append((f"{name}: ${variable['name']}", variable["definition"]))
    return found


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) referenced by a PromQL expression."""
    expr = strip_strings(expr)
    labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    labels |= set(re.findall(r"label_values\(\s*[\w:]+\s*,\s*(\w+)\s*\)", expr))
    expr = re.sub(r"label_values\(\s*([\w:]+)\s*,\s*\w+\s*\)", r"\1", expr)
    without_groups = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_groups)
    identifiers = set(re.findall(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?=\s*[\[{)\s,]|$)", without_matchers))
    functions = set(re.findall(r"([a-zA-Z_]+)\s*\(", without_matchers))
    metrics = {i for i in identifiers - functions - PROMQL_KEYWORDS if not re.fullmatch(r"\d.*|[smhdwy]", i)}
    return metrics, labels


def documented_label_names() -> set[str]:
    keys = {v for k, v in vars(n).items() if k.isupper() and isinstance(v, str) and "." in v and " " not in v}
    return {k.replace(".", "_") for k in keys}


def test_every_metric_in_dashboards_and_rules_is_documented_in_names_py() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    labels_ok = documented_label_names() | STANDARD_LABELS | SPAN_METRICS_LABELS
    problems = []
    for where, expr in promql_exprs():
        metrics, labels = names_in(expr)
        assert metrics, f"{where}: no metric found in {expr!r}"
        for metric in metrics:
            if metric in recorded or metric in SPAN_METRICS_SERIES:
                continue
            stem = re.sub(r"_(bucket|sum|count)$", "", metric)
            if metric not in NAMES_PY and stem not in NAMES_PY:
                problems.append(f"{where}: metric {metric} is not in names.py")
        for label in labels - labels_ok:
            problems.append(f"{where}: label {label} is no names.py attribute")
    assert not problems, "\n".join(problems)


def test_name_extraction_catches_a_stale_name() -> None:
    metrics, labels = names_in('sum by (gen_ai_system) (rate(gen_ai_client_token_usage_total{foo_bar="x"}[5m]))')
    assert metrics == {"gen_ai_client_token_usage_total"}
    assert labels == {"gen_ai_system", "foo_bar"}
    assert "gen_ai_client_token_usage_total" not in NAMES_PY  # the stale name a peer dashboard uses


def test_span_metrics_series_match_the_collector_config() -> None:
    connector = load_yaml("collector", "config.yaml")["connectors"]["span_metrics"]
    assert "namespace" not in connector  # default traces.span.metrics
    assert connector["histogram"]["unit"] == "s"  # -> _duration_seconds_*
    dimensions = {d["name"].replace(".", "_") for d in connector["dimensions"]}
    assert dimensions <= documented_label_names()


def test_loki_queries_use_logged_event_names() -> None:
    events = {v for k, v in vars(n).items() if k.startswith("LOG_") and isinstance(v, str)}
    for dashboard in dashboards().values():
        for panel in panels_of(dashboard):
            for target in panel.get("targets", []):
                if (target.get("datasource") or panel["datasource"])["uid"] != "loki":
                    continue
                used = set(re.findall(r'event\s*=\s*"([^"]+)"', target["expr"]))
                used |= {e for group in re.findall(r'event\s*=~\s*"([^"]+)"', target["expr"]) for e in group.split("|")}
                assert used and used <= events, f"{panel['title']}: {used - events}"


def test_collector_config_uses_names_py_attributes() -> None:
    cfg = load_yaml("collector", "config.yaml")
    text = (REPO / "collector" / "config.yaml").read_text()
    for context in (
        cfg["processors"]["transform/drop_content"]["trace_statements"]
        + cfg["processors"]["transform/drop_content"]["log_statements"]
    ):
        deleted = set(re.findall(r'delete_key\(\w+\.attributes, "([^"]+)"\)', " ".join(context["statements"])))
        assert deleted == set(n.CONTENT_ATTRIBUTES), context["context"]
    policies = {p["name"]: p for p in cfg["processors"]["tail_sampling"]["policies"]}
    budget = policies["budget-stopped"]["string_attribute"]
    assert budget["key"] == n.AW_RUN_STOP_REASON
    assert set(budget["values"]) == {"max_iterations", "token_budget", "cost_budget", "timeout"}
    assert f'span.attributes["{n.AW_RUN_COST_USD}"]' in text
    assert policies["errors"]["status_code"]["status_codes"] == ["ERROR"]
    redaction = cfg["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True
    assert any(re.fullmatch(v, "sk-ant-api03-" + "a" * 40) for v in redaction["blocked_values"])


# --- alert rules ---------------------------------------------------------------------------------
def test_every_alert_has_summary_description_runbook_and_severity() -> None:
    alerts = [r for r in rules() if "alert" in r]
    assert {a["alert"] for a in alerts} >= {
        "AgentRunCostP95High",
        "AgentSpendBurnRateHigh",
        "AgentBudgetStopRateHigh",
        "AgentRunErrorRateHigh",
        "AnthropicRateLimited",
        "AgentNoTraffic",
        "AgentRunCostAboveLimit",
    }
    for alert in alerts:
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical")


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    cases: dict[str, set[bool]] = {}
    for path in (REPO / "prometheus" / "tests").glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    for alert in (r["alert"] for r in rules() if "alert" in r):
        assert cases.get(alert) == {True, False}, f"{alert}: firing/not-firing cases {cases.get(alert)}"
