#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (what CI runs; the README's second command).
# Installs: the package with its dev extras into .venv, then the real end-to-end binaries (OpenTelemetry
# Collector built with its builder, Jaeger v2 and Loki built from their Go module sources, Prometheus and
# Alertmanager from Debian), cached outside the repo so they are built once per machine (~15 min cold).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'
bash scripts/e2e-binaries.sh
exec .venv/bin/python -m pytest "$@"
