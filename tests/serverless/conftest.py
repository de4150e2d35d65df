"""Fixtures for the Lambda tests: the real emulator (built by scripts/e2e-binaries.sh rie), an OTLP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwatch.sim import Simulator
from e2e.binaries import require_binary
from otlp_receiver import OtlpReceiver
from serverless.lambda_support import Emulator, EmulatorFactory


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def start_emulator(tmp_path: Path, otlp: OtlpReceiver) -> Iterator[EmulatorFactory]:
    """``start_emulator(sim, function_timeout_s=30, otlp_endpoint=None)``: the handler under RIE, exporting
    to ``otlp`` unless another endpoint is given."""
    rie = require_binary("aws-lambda-rie")
    started: list[Emulator] = []

    def start(sim: Simulator, function_timeout_s: int = 30, otlp_endpoint: str | None = None) -> Emulator:
        env = {
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function_timeout_s),
            "ANTHROPIC_BASE_URL": sim.base_url,
            "ANTHROPIC_API_KEY": "test-key",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint or otlp.endpoint,
            # Metrics and logs leave only by the handler's force flush, never by a timer.
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        }
        emulator = Emulator(rie, tmp_path, env).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.proc.stop()
