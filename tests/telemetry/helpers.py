"""Helpers for the telemetry tests: span trees, and running a script in a process of its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from runner.support import of_trace


def trace_spans(spans: Any, trace_id: str) -> list[ReadableSpan]:
    return of_trace(spans.get_finished_spans(), trace_id)


def tree(finished: list[ReadableSpan]) -> list[tuple[int, str, SpanKind]]:
    """(depth, name, kind) for every span, depth first, children in start order. Asserts one root."""
    ids = {s.context.span_id for s in finished}
    roots = [s for s in finished if s.parent is None or s.parent.span_id not in ids]
    assert len(roots) == 1, [s.name for s in roots]
    out: list[tuple[int, str, SpanKind]] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        out.append((depth, span.name, span.kind))
        children = [s for s in finished if s.parent is not None and s.parent.span_id == span.context.span_id]
        for child in sorted(children, key=lambda s: s.start_time):
            walk(child, depth + 1)

    walk(roots[0], 0)
    assert len(out) == len(finished)
    return out


def named(finished: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return sorted((s for s in finished if s.name.startswith(prefix)), key=lambda s: s.start_time)


def the(finished: list[ReadableSpan], prefix: str) -> ReadableSpan:
    found = named(finished, prefix)
    assert len(found) == 1, [s.name for s in finished]
    return found[0]


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (a collector that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_script(script: str, env: dict[str, str], timeout: float = 60) -> dict:
    """Run ``script`` in a fresh Python (its own global OTel providers); its last stdout line is JSON."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without any OTEL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra or {})
    return env


def http_status(span: ReadableSpan) -> int:
    return span.attributes.get("http.response.status_code", span.attributes.get("http.status_code"))


def assert_one_http_span_per_attempt(finished: list[ReadableSpan], agent: Any) -> None:
    """Each attempt one POST under its chat span (a 529 and its retry), the tool's GET under execute_tool."""
    shape = [(depth, name) for depth, name, _ in tree(finished)]
    assert shape == [
        (0, f"invoke_agent {agent.name}"),
        (1, f"chat {agent.model}"),
        (2, "POST"),
        (1, "execute_tool health_check"),
        (2, "GET"),
        (1, f"chat {agent.model}"),
        (2, "POST"),  # the attempt that got a 529
        (2, "POST"),  # its retry
    ]
    http = [s for s in finished if s.name in ("GET", "POST")]
    assert all(s.kind is SpanKind.CLIENT for s in http)
    first, second = named(finished, "chat")

    def statuses_under(parent: ReadableSpan) -> list[int]:
        return [http_status(s) for s in http if s.parent is not None and s.parent.span_id == parent.context.span_id]

    assert statuses_under(first) == [200] and statuses_under(second) == [529, 200]
    assert statuses_under(named(finished, "execute_tool")[0]) == [200]
