"""Serve fixtures: the service under real uvicorn on a free 127.0.0.1 port (a thread), the simulator behind it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
import uvicorn

from agentwatch import Agent
from agentwatch.serve import ApiKeys, ServeSettings, create_app
from agentwatch.sim import Simulator
from polling import DEADLINE_S
from polling import wait_until as wait_for
from queue_fixtures import otlp, redis_server, start_worker  # noqa: F401  (for the async-mode tests)
from secret_scan import SecretScan

from .agents import slow_agent

KEY_A = "tenant-a-key-0123456789abcdef"
KEY_B = "tenant-b-key-0123456789abcdef"
KEYS = f"alpha:{KEY_A},beta:{KEY_B}"


@pytest.fixture(autouse=True)
def _no_secret_leaks(secret_scan: SecretScan) -> None:
    """Every test here fails if the planted Anthropic key or a tenant's service key reaches a span, metric,
    log record or written file."""
    secret_scan.keys = (*secret_scan.keys, KEY_A, KEY_B)


@dataclass
class Served:
    url: str
    sim: Simulator
    settings: ServeSettings

    def client(self, key: str | None = KEY_A, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, **{"timeout": DEADLINE_S, **kw})


@contextlib.contextmanager
def serve(agent: Agent, sim: Simulator, /, **settings: Any) -> Iterator[Served]:
    """Run ``create_app(agent)`` under uvicorn in a thread until the block ends (lifespan included)."""
    merged = ServeSettings(**{"api_keys": KEYS, **settings})
    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=sim.base_url)
    app = create_app(agent, client=client, settings=merged, keys=ApiKeys.load(merged.api_keys))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, name="serve-under-test", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        served = Served(f"http://127.0.0.1:{port}", sim, merged)
        wait_for(lambda: httpx.get(served.url + "/healthz").status_code == 200, "/healthz")
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE_S)


@pytest.fixture(scope="module")
def served(sim: Simulator) -> Iterator[Served]:
    """One service for the module: the slow test agent, two tenants, small limits."""
    with serve(slow_agent(), sim, max_runs=4, max_runs_per_tenant=3, max_task_chars=2000, max_body_bytes=4096) as s:
        yield s
