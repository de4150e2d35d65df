"""loki/config.yaml is accepted by Loki itself, at the version of the compose image."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("env", [{}, {"LOKI_DATA_DIR": "/tmp/agentwatch-loki", "LOKI_HTTP_PORT": "13100"}])
def test_loki_verify_config(loki: Path, repo: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(loki), f"-config.file={repo / 'loki' / 'config.yaml'}", "-config.expand-env=true", "-verify-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stderr.lower(), result.stderr


def test_loki_config_supports_otlp_ingestion(repo: Path) -> None:
    config = yaml.safe_load((repo / "loki" / "config.yaml").read_text())
    latest = config["schema_config"]["configs"][-1]
    assert (latest["store"], latest["schema"]) == ("tsdb", "v13")
    assert config["limits_config"]["allow_structured_metadata"] is True
    compose = yaml.safe_load((repo / "docker-compose.yml").read_text())["services"]["loki"]
    assert "-config.expand-env=true" in compose["command"]
    assert compose["image"].endswith(":3.7.6")
    assert "LOKI_VERSION=v3.7.6" in (repo / "scripts" / "e2e-binaries.sh").read_text()
