"""Fleet replicas as real processes (``fleet_worker.py``), driven over their stdin and stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

from agentwatch.cost import default_pricing
from agentwatch.result import Usage
from agentwatch.sim import Simulator

WORKER = Path(__file__).with_name("fleet_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"
ANSWER_TIMEOUT_S = 120.0


class Replica:
    """One ``fleet_worker.py`` process."""

    def __init__(self, name: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(SRC), "OTEL_SDK_DISABLED": "true"}
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            start_new_session=True,
        )
        self._lines: Queue[str] = Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def answer(self, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except Empty:
            raise AssertionError(f"{self.name} did not answer within {timeout:.0f} s") from None
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, f"{self.name} failed:\n{answer['error']}"
        return answer

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class Fleet:
    """Replicas started on demand; all of them killed at the end of the test."""

    def __init__(self) -> None:
        self.replicas: list[Replica] = []

    def start(self, count: int) -> list[Replica]:
        started = [Replica(f"replica-{len(self.replicas) + i}") for i in range(count)]
        self.replicas.extend(started)
        for replica in started:
            assert replica.answer().get("ready"), f"{replica.name} did not start"
        return started

    def run(self, replicas: list[Replica], commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send one command to each replica at once; every result of every replica."""
        for replica, command in zip(replicas, commands, strict=True):
            replica.send(command)
        results: list[dict[str, Any]] = []
        for replica in replicas:
            results.extend(replica.answer()["results"])
        return results

    def stop(self) -> None:
        for replica in self.replicas:
            replica.kill()


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    started = Fleet()
    yield started
    started.stop()


def billed_usd(sim: Simulator) -> float:
    """What the simulator billed: the cost of the usage of every answered request."""
    pricing = default_pricing()
    total = 0.0
    for record in sim.requests:
        if record.usage is not None and record.model is not None:
            total += pricing.cost(record.model, Usage.from_api(record.usage)) or 0.0
    return total


def statuses(sim: Simulator, model: str | None = None) -> list[int | None]:
    return [r.status for r in sim.requests if r.path == "/v1/messages" and (model is None or r.model == model)]
