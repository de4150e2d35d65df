"""Session fixtures that run the real deploy-kit binaries on 127.0.0.1 free ports.

The collector runs the repository's collector/config.yaml unchanged (its addresses and thresholds are
environment variables); Prometheus and Alertmanager run temporary copies of prometheus/*.yml with
only addresses and intervals changed. Jaeger runs a minimal in-memory config. Loki is never built
here (AGPL): each collector's Loki exporter points at a second real collector that receives on Loki's
OTLP path and writes what it gets to a file (LokiStandIn), so tests read exactly what Loki would
receive; the LogQL side runs against the real Loki image in tests/docker. Every process gets fresh
free ports and is started again with new ones if another process took one meanwhile
(start_on_free_ports). Binaries: binaries.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .binaries import REPO, require_binary
from .queue_stack import QueuedRun, run_queue_workload
from .stack import (
    COLLECTOR_PORTS,
    HOST,
    SAMPLING_ENV,
    Alertmanager,
    AlertWebhook,
    Collector,
    Jaeger,
    LokiStandIn,
    Proc,
    Prometheus,
    collector_listen_env,
    start_on_free_ports,
)
from .workload import EmittedRun, run_workload


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


def start_healthy(proc: Proc, health_url: str) -> Proc:
    """``proc`` started and answering ``health_url``; stopped again when it does not get there."""
    proc.start()
    try:
        proc.wait_healthy(health_url)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_jaeger(name: str, workdir: Path) -> Jaeger:
    """A Jaeger v2 on fresh ports: OTLP/gRPC in, in-memory storage, the query API."""
    binary = require_binary("jaeger")

    def start(ports: list[int]) -> Jaeger:
        otlp, http, grpc, health = ports
        config = {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["jaeger_storage_exporter"],
                    }
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
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        # Jaeger traces itself to localhost:4317 by default; that would slow its shutdown here.
        proc = Proc(
            name,
            [str(binary), "--config", str(path)],
            workdir,
            env={"OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true"},
        )
        start_healthy(proc, f"http://{HOST}:{health}/status")
        return Jaeger(proc, f"{HOST}:{otlp}", f"http://{HOST}:{http}")

    return start_on_free_ports(4, start)


@pytest.fixture(scope="session")
def jaeger(e2e_dir: Path) -> Iterator[Jaeger]:
    j = start_jaeger("jaeger", e2e_dir)
    try:
        yield j
    finally:
        j.proc.stop()


def start_loki_stand_in(name: str, workdir: Path) -> LokiStandIn:
    """A second collector in Loki's place: OTLP/HTTP logs on Loki's path (/otlp/v1/logs) -> a file."""
    binary = require_binary("otelcol-agentwatch")
    output = workdir / f"{name}.jsonl"

    def start(ports: list[int]) -> LokiStandIn:
        http, health = ports
        config = {
            "receivers": {
                "otlp": {"protocols": {"http": {"endpoint": f"{HOST}:{http}", "logs_url_path": "/otlp/v1/logs"}}}
            },
            "exporters": {"file": {"path": str(output), "format": "json", "flush_interval": "100ms"}},
            "extensions": {"health_check": {"endpoint": f"{HOST}:{health}"}},
            "service": {
                "extensions": ["health_check"],
                "pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["file"]}},
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            },
        }
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = start_healthy(Proc(name, [str(binary), f"--config={path}"], workdir), f"http://{HOST}:{health}/")
        return LokiStandIn(proc, f"http://{HOST}:{http}/otlp", output)

    return start_on_free_ports(2, start)


@pytest.fixture(scope="session")
def loki(e2e_dir: Path) -> Iterator[LokiStandIn]:
    """What the session collector sends Loki."""
    stand_in = start_loki_stand_in("loki-stand-in", e2e_dir)
    try:
        yield stand_in
    finally:
        stand_in.proc.stop()


@pytest.fixture(scope="session")
def keep_content_loki(e2e_dir: Path) -> Iterator[LokiStandIn]:
    """What the keep-content collector sends Loki."""
    stand_in = start_loki_stand_in("loki-stand-in-keep-content", e2e_dir)
    try:
        yield stand_in
    finally:
        stand_in.proc.stop()


def start_collector(
    name: str,
    workdir: Path,
    jaeger: Jaeger,
    logs_endpoint: str,
    extra_env: dict[str, str],
    overlays: tuple[str, ...] = (),
) -> Collector:
    """collector/config.yaml (plus ``overlays`` from collector/, e.g. tier1.yaml) on fresh ports."""
    binary = require_binary("otelcol-agentwatch")
    configs = [f"--config={REPO / 'collector' / file}" for file in ("config.yaml", *overlays)]

    def start(ports: list[int]) -> Collector:
        grpc, http, prom, telemetry, health = ports[:5]
        env = {
            **collector_listen_env(ports),
            "AGENTWATCH_JAEGER_OTLP_ENDPOINT": jaeger.otlp_grpc,
            "AGENTWATCH_LOKI_OTLP_ENDPOINT": logs_endpoint,
            "AGENTWATCH_ENVIRONMENT": "e2e",
            **SAMPLING_ENV,
            **extra_env,
        }
        health_url = f"http://{HOST}:{health}/"
        proc = Proc(name, [str(binary), *configs], workdir, env)
        start_healthy(proc, health_url)
        return Collector(
            proc, f"{HOST}:{grpc}", f"http://{HOST}:{http}", f"{HOST}:{prom}", f"{HOST}:{telemetry}", health_url
        )

    return start_on_free_ports(COLLECTOR_PORTS, start)


@pytest.fixture(scope="session")
def collector(e2e_dir: Path, jaeger: Jaeger, loki: LokiStandIn) -> Iterator[Collector]:
    c = start_collector("collector", e2e_dir, jaeger, loki.endpoint, {})
    try:
        yield c
    finally:
        c.proc.stop()


@pytest.fixture(scope="session")
def collector_keep_content(e2e_dir: Path, jaeger: Jaeger, keep_content_loki: LokiStandIn) -> Iterator[Collector]:
    """A second collector: content allowed, sampling baseline 0%, logs to a Loki stand-in of its own."""
    c = start_collector(
        "collector-keep-content",
        e2e_dir,
        jaeger,
        keep_content_loki.endpoint,
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
    storage = e2e_dir / "alertmanager-data"
    storage.mkdir(exist_ok=True)

    def start(ports: list[int]) -> Alertmanager:
        (port,) = ports
        argv = [
            str(binary),
            f"--config.file={path}",
            f"--storage.path={storage}",
            f"--web.listen-address={HOST}:{port}",
            "--cluster.listen-address=",  # no gossip port on 0.0.0.0
        ]
        proc = start_healthy(Proc("alertmanager", argv, e2e_dir), f"http://{HOST}:{port}/-/ready")
        return Alertmanager(proc, f"http://{HOST}:{port}")

    am = start_on_free_ports(1, start)
    try:
        yield am
    finally:
        am.proc.stop()


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
    storage = e2e_dir / "prometheus-data"

    def start(ports: list[int]) -> Prometheus:
        (port,) = ports
        argv = [
            str(binary),
            f"--config.file={path}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address={HOST}:{port}",
            "--enable-feature=exemplar-storage",
        ]
        proc = start_healthy(Proc("prometheus", argv, e2e_dir), f"http://{HOST}:{port}/-/ready")
        return Prometheus(proc, f"http://{HOST}:{port}")

    prom = start_on_free_ports(1, start)
    try:
        yield prom
    finally:
        prom.proc.stop()


@pytest.fixture(scope="session")
def session_workload(collector: Collector, prometheus: Prometheus, e2e_dir: Path) -> tuple[list[EmittedRun], QueuedRun]:
    """The standard workload (real agent runs, workload.py), pushed once per session through the session
    collector, then a few queued runs (queue_stack.py). Prometheus scrapes from the start: an exemplar is in
    the collector's exposition only until the next export of its series replaces the point, so a later
    first scrape would miss them."""
    runs = run_workload(collector.otlp_http)
    return runs, run_queue_workload(collector.otlp_http, e2e_dir / "queue")


@pytest.fixture(scope="session")
def workload_runs(session_workload: tuple[list[EmittedRun], QueuedRun]) -> list[EmittedRun]:
    return session_workload[0]


@pytest.fixture(scope="session")
def queued_run(session_workload: tuple[list[EmittedRun], QueuedRun]) -> QueuedRun:
    """The queued run whose producer and worker sides both went to the session collector."""
    return session_workload[1]
