"""`import agentwatch` loads only what a run needs: the SDK exporters, the simulator, evals, rollout and YAML
stay out of a service that only runs agents (they load when used)."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_AT_IMPORT = (
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "yaml",
    "agentwatch.sim",
    "agentwatch.evals",
    "agentwatch.rollout",
    "agentwatch.cli",
    "pytest",
    "celery",
    "redis",
    "awslambdaric",
    "agentwatch.queue",
    "agentwatch.serverless",
    "agentwatch.fleet",
)


def test_import_agentwatch_loads_only_the_core() -> None:
    code = "import json, sys, agentwatch; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    unwanted = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in NOT_AT_IMPORT)]
    assert not unwanted, f"`import agentwatch` loaded {unwanted}"


def test_the_telemetry_front_door_loads_the_sdk_only_when_used() -> None:
    code = (
        "import json, sys\n"
        "from agentwatch.telemetry import configure_json_logs, set_redactor\n"
        "before = [m for m in sys.modules if m.startswith('opentelemetry.sdk')]\n"
        "from agentwatch.telemetry import Telemetry, configure_telemetry\n"
        "from agentwatch.telemetry import setup\n"
        "assert configure_telemetry is setup.configure_telemetry and Telemetry is setup.Telemetry\n"
        "print(json.dumps([before, 'opentelemetry.sdk.trace' in sys.modules]))"
    )
    before, after = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    assert before == [] and after is True
