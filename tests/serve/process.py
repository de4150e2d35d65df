"""``agentwatch serve`` as a real subprocess on a free port (for the drain test and the e2e Jaeger test)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx

from .conftest import wait_for

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(
    args: list[str], env: dict[str, str], log: Path, attempts: int = 3
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``agentwatch serve ARGS --port P`` until /readyz is 200; a fresh port if another process took ours."""
    for _ in range(attempts):
        port = free_port()
        command = [sys.executable, "-m", "agentwatch.cli", "serve", *args, "--port", str(port)]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"

        def ready(process: subprocess.Popen[bytes] = process, url: str = url) -> bool:
            if process.poll() is not None:
                return True
            try:
                return httpx.get(url + "/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, "the service to be ready", timeout=60)
        if process.poll() is None:
            return process, url
    raise AssertionError(f"the service did not start: {log.read_text()[-2000:]}")
