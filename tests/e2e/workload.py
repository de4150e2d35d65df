"""The workload the end-to-end tests push through the real collector: real agent runs.

Each ``Workload`` is a child process (``agent_workload.py``) that runs real ``agentwatch.Agent`` runs
(the real ``anthropic`` SDK, real HTTP to in-process ``agentwatch.sim.Simulator`` servers on
127.0.0.1) with agentwatch's own telemetry (``configure_telemetry``) exporting over OTLP/HTTP to the
collector under test. A child process because the pytest process already has global in-memory OTel
providers (tests/conftest.py), and global providers can be set only once per process.

The parent talks to the child with one JSON object per line (``agent_workload.py`` documents the
protocol); each run comes back as an ``EmittedRun``: what the run reported (``RunResult``) plus the
names of the spans the SDK really ended for its trace.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field, fields
from typing import Any

from .binaries import REPO

# A fake key in the shape of a real one, which the "secret" run's careless tool echoes in its error.
PLANTED_KEY = "sk-ant-api03-E2Eplanted" + "Xy7_-" * 8
SERVICE_NAME = "agentwatch-e2e"

# The agents the standard mix uses (model of each); any other agent name gets the demo agent's setup.
AGENTS = {
    "research-assistant": "claude-haiku-4-5-20251001",
    "triage": "claude-sonnet-4-5-20250929",
}

# Kinds the collector's tail sampling must always keep; "ordinary" runs are left to the baseline.
ALWAYS_KEPT = frozenset({"error", "budget", "slow", "expensive", "secret"})

# What an application that turned content capture on sends: the collector must drop it by default.
CAPTURE_CONTENT = "SPAN_AND_EVENT"

REPLY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class EmittedRun:
    trace_id: str  # 32 hex chars
    kind: str  # ordinary | error | budget | slow | expensive | secret
    agent: str
    model: str
    stop_reason: str
    cost_usd: float
    iterations: int
    tool_calls: int
    span_names: tuple[str, ...] = field(default=())
    failed_tool_calls: int = 0
    streamed: bool = False
    retries: int = 0  # retry events on the run's chat spans
    error_type: str | None = None
    stop_detail: str = ""

    @property
    def must_keep(self) -> bool:
        """Tail sampling must keep it: a kind it always keeps, or any span with status ERROR."""
        return self.kind in ALWAYS_KEPT or self.failed_tool_calls > 0

    def to_json(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmittedRun:
        return cls(**{**data, "span_names": tuple(data.get("span_names", ()))})


def standard_mix(ordinary: int = 30) -> list[dict[str, Any]]:
    """Run specs for the session workload (``agent_workload.py`` turns each into a real run).

    ``ordinary`` runs alternate the two agents over the demo task and seed cases, against a simulator
    that answers some calls 429 (so they are retried); every third streams; two call the calculator
    with 1/0 (a tool error, so an errored trace). Then what tail sampling must keep: two errored runs
    (401; 500 until retries run out), three budget stops (iterations, cost, tokens), a slow run, an
    expensive run and one whose tool echoes an API key with the application's redactor off.
    """
    agents = list(AGENTS)
    specs: list[dict[str, Any]] = [
        {"kind": "ordinary", "agent": agents[i % 2], "stream": i % 3 == 1, "tool_error": i in (4, 17), "task": i}
        for i in range(ordinary)
    ]
    for kind in ("error", "error", "budget", "budget", "budget", "slow", "expensive", "secret"):
        specs.append({"kind": kind, "agent": agents[len(specs) % 2]})
    return specs


class WorkloadError(RuntimeError):
    pass


class Workload:
    """One agent process: its own resource (``service.instance.id``), simulators and telemetry.

    Metrics are exported every second and on ``flush()`` / ``shutdown()``.
    """

    def __init__(
        self,
        otlp_http_endpoint: str,
        *,
        service_name: str = SERVICE_NAME,
        instance_id: str | None = None,
        seed: int = 7,
        capture_content: str = CAPTURE_CONTENT,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http_endpoint,
                "OTEL_SERVICE_NAME": service_name,
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": capture_content,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if instance_id:
            env["OTEL_RESOURCE_ATTRIBUTES"] = f"service.instance.id={instance_id}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.agent_workload", "--serve", f"--seed={seed}"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True, name="workload-reader")
        self._reader.start()
        self._closed = False

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def _call(self, request: dict[str, Any], timeout: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
        if self._closed:
            raise WorkloadError("the workload process was shut down")
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError as exc:
            raise WorkloadError(f"the workload process exited ({self.process.poll()})") from exc
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise WorkloadError(f"no reply to {request['op']} within {timeout:.0f}s") from None
        if line is None:
            raise WorkloadError(f"the workload process exited ({self.process.wait(5)}) during {request['op']}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise WorkloadError(f"{request['op']} failed in the workload process:\n{reply.get('error')}")
        return reply

    def run(self, kind: str = "ordinary", *, agent: str = "research-assistant", **options: Any) -> EmittedRun:
        """One real run; ``options``: ``stream``, ``tool_error``, ``task`` (index), ``budget``."""
        return self.runs([{"kind": kind, "agent": agent, **options}])[0]

    def runs(self, specs: list[dict[str, Any]]) -> list[EmittedRun]:
        """Real runs for ``specs`` (slow ones run concurrently with the rest), in spec order."""
        reply = self._call({"op": "runs", "runs": specs})
        return [EmittedRun.from_json(r) for r in reply["runs"]]

    def flush(self) -> None:
        """Export what the process holds now (spans, logs and a metric collection)."""
        self._call({"op": "flush"})

    def shutdown(self) -> None:
        """Flush (bounded) and stop the process. Idempotent."""
        if self._closed:
            return
        try:
            if self.process.poll() is None:
                self._call({"op": "shutdown"})
        finally:
            self._closed = True
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> Workload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def run_workload(otlp_http_endpoint: str, *, ordinary: int = 30, seed: int = 7) -> list[EmittedRun]:
    """The standard mix (``standard_mix``) as real runs, exported to ``otlp_http_endpoint``."""
    with Workload(otlp_http_endpoint, seed=seed) as workload:
        return workload.runs(standard_mix(ordinary))
