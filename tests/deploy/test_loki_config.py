"""loki/config.yaml is written for what Loki 3 needs to ingest OTLP.

Loki is AGPL-licensed and never built here: the real Loki image loads this config in the compose stack
(tests/docker), which also runs the dashboards' LogQL against it.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def test_loki_config_supports_otlp_ingestion(repo: Path) -> None:
    config = yaml.safe_load((repo / "loki" / "config.yaml").read_text())
    latest = config["schema_config"]["configs"][-1]
    assert (latest["store"], latest["schema"]) == ("tsdb", "v13")
    assert config["limits_config"]["allow_structured_metadata"] is True
    compose = yaml.safe_load((repo / "docker-compose.yml").read_text())["services"]["loki"]
    assert "-config.expand-env=true" in compose["command"]
