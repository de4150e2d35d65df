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
)


def test_import_agentwatch_loads_only_the_core() -> None:
    code = "import json, sys, agentwatch; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    unwanted = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in NOT_AT_IMPORT)]
    assert not unwanted, f"`import agentwatch` loaded {unwanted}"
