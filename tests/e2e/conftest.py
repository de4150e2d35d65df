"""Session fixtures that run the real deploy-kit binaries on 127.0.0.1 free ports.

The collector runs the repository's collector/config.yaml unchanged (its addresses and thresholds are
environment variables); Prometheus and Alertmanager run temporary copies of prometheus/*.yml with
only addresses and intervals changed. Jaeger runs a minimal in-memory config. Loki runs
loki/config.yaml (addresses and data directory by environment). The second collector
(content allowed) sends its logs to a Python OTLP/HTTP listener instead, so tests can read the
exact OTLP records that leave the logs pipeline. Binaries: binaries.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .binaries import REPO, require_binary
from .stack import (
    HOST,
    SAMPLING_ENV,
    STARTUP_TIMEOUT_S,
    Alertmanager,
    AlertWebhook,
    Collector,
    Jaeger,
    Loki,
    OtlpLogsSink,
    Proc,
    Prometheus,
    free_port,
    http_get,
    wait_until,
)
from .workload import EmittedRun, run_workload


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def jaeger(e2e_dir: Path) -> Iterator[Jaeger]:
    binary = require_binary("jaeger")
    otlp, http, grpc, health = free_port(), free_port(), free_port(), free_port()
    config = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": f"{HOST}:{health}"}},
            "jaeger_query": {
                "storage": {"traces": "memory"},
                "http": {"endpoint": f"{HOST}:{http}"},
                "grpc": {"endpoint": f"{HOST}:{grpc}"},
            },
            "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": 100000}}}},
        },
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"{HOST}:{otlp}"}}}},
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
    }
    path = e2e_dir / "jaeger.yaml"
    path.write_text(yaml.safe_dump(config))
    # Jaeger traces itself to localhost:4317 by default; that would slow its shutdown here.
    proc = Proc(
        "jaeger",
        [str(binary), "--config", str(path)],
        e2e_dir,
        env={"OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true"},
    ).start()
    try:
        proc.wait_healthy(f"http://{HOST}:{health}/status")
        yield Jaeger(proc, f"{HOST}:{otlp}", f"http://{HOST}:{http}")
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def loki(e2e_dir: Path) -> Iterator[Loki]:
    binary = require_binary("loki")
    http, grpc = free_port(), free_port()
    env = {
        "LOKI_LISTEN_ADDRESS": HOST,
        "LOKI_HTTP_PORT": str(http),
        "LOKI_GRPC_PORT": str(grpc),
        "LOKI_DATA_DIR": str(e2e_dir / "loki-data"),
        "LOKI_MIN_READY_DURATION": "0s",
    }
    config = REPO / "loki" / "config.yaml"
    proc = Proc("loki", [str(binary), f"-config.file={config}", "-config.expand-env=true"], e2e_dir, env).start()
    try:
        # Up (answering /ready, even "not ready yet") is enough to accept pushes; see Loki.wait_ready.
        wait_until(
            lambda: (
                proc.process is not None and proc.process.poll() is None and http_get(f"http://{HOST}:{http}/ready")[0]
            ),
            STARTUP_TIMEOUT_S,
            what=f"loki listening on {http}",
        )
        yield Loki(proc, f"http://{HOST}:{http}")
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def logs_sink() -> Iterator[OtlpLogsSink]:
    sink = OtlpLogsSink()
    yield sink
    sink.close()


def start_collector(
    name: str, workdir: Path, jaeger: Jaeger, logs_endpoint: str, extra_env: dict[str, str]
) -> Collector:
    binary = require_binary("otelcol-agentwatch")
    grpc, http, prom, telemetry, health, zpages, pprof = (free_port() for _ in range(7))
    env = {
        "AGENTWATCH_OTLP_GRPC_ENDPOINT": f"{HOST}:{grpc}",
        "AGENTWATCH_OTLP_HTTP_ENDPOINT": f"{HOST}:{http}",
        "AGENTWATCH_PROMETHEUS_EXPORTER_ENDPOINT": f"{HOST}:{prom}",
        "AGENTWATCH_COLLECTOR_TELEMETRY_HOST": HOST,
        "AGENTWATCH_COLLECTOR_TELEMETRY_PORT": str(telemetry),
        "AGENTWATCH_HEALTH_ENDPOINT": f"{HOST}:{health}",
        "AGENTWATCH_ZPAGES_ENDPOINT": f"{HOST}:{zpages}",
        "AGENTWATCH_PPROF_ENDPOINT": f"{HOST}:{pprof}",
        "AGENTWATCH_JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc,
        "AGENTWATCH_LOKI_OTLP_ENDPOINT": logs_endpoint,
        "AGENTWATCH_ENVIRONMENT": "e2e",
        **SAMPLING_ENV,
        **extra_env,
    }
    proc = Proc(name, [str(binary), f"--config={REPO / 'collector' / 'config.yaml'}"], workdir, env).start()
    health_url = f"http://{HOST}:{health}/"
    try:
        proc.wait_healthy(health_url)
    except Exception:
        proc.stop()
        raise
    return Collector(
        proc, f"{HOST}:{grpc}", f"http://{HOST}:{http}", f"{HOST}:{prom}", f"{HOST}:{telemetry}", health_url
    )


@pytest.fixture(scope="session")
def collector(e2e_dir: Path, jaeger: Jaeger, loki: Loki) -> Iterator[Collector]:
    c = start_collector("collector", e2e_dir, jaeger, loki.otlp_endpoint, {})
    try:
        yield c
    finally:
        c.proc.stop()


@pytest.fixture(scope="session")
def collector_keep_content(e2e_dir: Path, jaeger: Jaeger, logs_sink: OtlpLogsSink) -> Iterator[Collector]:
    """A second collector: content allowed, sampling baseline 0%, logs to the raw OTLP listener."""
    c = start_collector(
        "collector-keep-content",
        e2e_dir,
        jaeger,
        logs_sink.endpoint,
        {"AGENTWATCH_COLLECTOR_KEEP_CONTENT": "true", "AGENTWATCH_SAMPLING_BASELINE_PERCENT": "0"},
    )
    try:
        yield c
    finally:
        c.proc.stop()


@pytest.fixture(scope="session")
def alert_webhook() -> Iterator[AlertWebhook]:
    hook = AlertWebhook()
    yield hook
    hook.close()


@pytest.fixture(scope="session")
def alertmanager(e2e_dir: Path, alert_webhook: AlertWebhook) -> Iterator[Alertmanager]:
    binary = require_binary("alertmanager")
    config = yaml.safe_load((REPO / "prometheus" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = alert_webhook.url
    path = e2e_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    storage = e2e_dir / "alertmanager-data"
    storage.mkdir(exist_ok=True)
    proc = Proc(
        "alertmanager",
        [
            str(binary),
            f"--config.file={path}",
            f"--storage.path={storage}",
            f"--web.listen-address={HOST}:{port}",
            "--cluster.listen-address=",  # no gossip port on 0.0.0.0
        ],
        e2e_dir,
    ).start()
    try:
        proc.wait_healthy(f"http://{HOST}:{port}/-/ready")
        yield Alertmanager(proc, f"http://{HOST}:{port}")
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def prometheus(e2e_dir: Path, collector: Collector, alertmanager: Alertmanager) -> Iterator[Prometheus]:
    binary = require_binary("prometheus")
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(REPO / "prometheus" / "rules" / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager.url.split("//")[1]]
    targets = {"agentwatch": collector.prometheus_exporter, "otel-collector": collector.telemetry}
    for job in config["scrape_configs"]:
        job["static_configs"][0]["targets"] = [targets[job["job_name"]]]
    path = e2e_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    storage = e2e_dir / "prometheus-data"
    proc = Proc(
        "prometheus",
        [
            str(binary),
            f"--config.file={path}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address={HOST}:{port}",
            "--enable-feature=exemplar-storage",
        ],
        e2e_dir,
    ).start()
    try:
        proc.wait_healthy(f"http://{HOST}:{port}/-/ready")
        yield Prometheus(proc, f"http://{HOST}:{port}")
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def workload_runs(collector: Collector, prometheus: Prometheus) -> list[EmittedRun]:
    """The standard workload (real agent runs, workload.py), pushed once per session through the session
    collector. Prometheus scrapes from the start: an exemplar is in the collector's exposition only
    until the next export of its series replaces the point, so a later first scrape would miss them."""
    return run_workload(collector.otlp_http)
