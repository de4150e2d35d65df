"""The benchmark's interpreter: a venv outside the repo with agentwatch (editable) and the peers, pinned.

Made once from ``bench/requirements.txt`` + ``pip install -e <repo>`` and reused while the requirements are
unchanged (a stamp file holds their hash). Editable, so it always measures the repo's current source.
Location: ``$AGENTWATCH_BENCH_VENV``, else ``$XDG_CACHE_HOME/agentwatch/bench-venv`` (``~/.cache/...``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
REQUIREMENTS = BENCH / "requirements.txt"


def location() -> Path:
    explicit = os.environ.get("AGENTWATCH_BENCH_VENV")
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "agentwatch" / "bench-venv"


def _python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes() + str(REPO).encode()).hexdigest()


def ensure(log: object = sys.stderr) -> Path:
    """The venv's python, creating or updating the venv first when needed. Raises ``RuntimeError`` on failure."""
    root = location()
    python = _python(root)
    stamp_file = root / ".bench-requirements.sha256"
    if python.exists() and stamp_file.exists() and stamp_file.read_text().strip() == _stamp():
        return python
    print(f"[bench] preparing the benchmark venv at {root} (once; pip install of the pinned peers)", file=log)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS), "-e", str(REPO)],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"could not prepare the benchmark venv at {root}: {exc}") from exc
    stamp_file.write_text(_stamp() + "\n")
    return python
