#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (what CI runs; the README's second command).
# Installs the Debian packages the tests run (scripts/system-packages.sh) and the package with its dev extras
# into .venv, runs the static checks (scripts/lint.sh), builds the real end-to-end binaries at the versions in
# versions.env (scripts/e2e-binaries.sh; cached outside the repo, so they are built once per machine), then
# runs pytest with any arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
bash scripts/system-packages.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'
bash scripts/lint.sh
bash scripts/e2e-binaries.sh
exec .venv/bin/python -m pytest "$@"
