#!/usr/bin/env bash
# The static checks CI enforces: ruff lint and format over the Python code, mypy --strict over src/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
"$py" -m ruff check src tests bench examples
"$py" -m ruff format --check src tests bench examples
"$py" -m mypy --strict src
