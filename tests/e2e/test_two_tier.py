"""The two-tier collector layout through the real binaries: real agent runs -> two first-tier collectors
(config.yaml + tier1.yaml, load_balancing by trace id) -> two samplers (config.yaml + tier2.yaml) -> one
Jaeger per sampler (so the test sees which sampler exported a trace).

Many concurrent runs in four agent processes: one exporting to each first-tier collector (an agent and
its node's collector), and two that alternate spans between both, so every one of their traces reaches
the first tier in pieces. Every span is also exported, whole, to a single collector with the same
policies (config.yaml alone): the decisions of both layouts are compared on the very same traces. The
probabilistic baseline is 0 % in both, so every decision is deterministic.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from agentwatch.telemetry import names as n

from .binaries import REPO
from .conftest import start_collector, start_jaeger
from .stack import SAMPLING_ENV, Collector, Jaeger, LokiStandIn, http_get, wait_until
from .workload import AGENTS, EmittedRun

pytestmark = pytest.mark.e2e

SERVICE = "agentwatch-two-tier"
# Same policies and thresholds as the session collector; the baseline off so decisions are deterministic.
POLICY_ENV = {**SAMPLING_ENV, "AGENTWATCH_SAMPLING_BASELINE_PERCENT": "0"}
# The samplers wait longer after the root than tier2.yaml's 5 s: a split trace's spans reach them through two
# first-tier collectors, and on two cores shared by thirteen processes one of them can lag the other by more
# than 5 s (seen in CI: a failing tool's span arrived after the decision, so the error policy never saw it).
# The test is about routing and decisions on whole traces, not about how long a loaded node may lag.
SAMPLER_ENV = {**POLICY_ENV, "AGENTWATCH_SAMPLING_AFTER_ROOT_WAIT": "15s", "AGENTWATCH_SAMPLING_DECISION_WAIT": "30s"}
WAIT_S = 90.0  # generous: four agent processes, six collectors and three Jaegers share two busy cores
THREADS_PER_PROCESS = 6


def process_specs(seed: int) -> list[dict[str, Any]]:
    """13 runs per agent process: 6 ordinary (one with a failing tool), and 7 that must always be kept."""
    agents = list(AGENTS)
    specs: list[dict[str, Any]] = [
        {"kind": "ordinary", "agent": agents[i % 2], "stream": i % 3 == 1, "tool_error": i == 4, "task": seed + i}
        for i in range(6)
    ]
    specs += [
        {"kind": "error", "agent": agents[0], "fault": "auth_error"},
        {"kind": "error", "agent": agents[1], "fault": "server_error"},
        {"kind": "budget", "agent": agents[0], "budget": "max_iterations"},
        {"kind": "budget", "agent": agents[1], "budget": "token_budget"},
        {"kind": "budget", "agent": agents[0], "budget": "cost_budget"},
        {"kind": "slow", "agent": agents[1]},
        {"kind": "expensive", "agent": agents[0]},
    ]
    return specs


def should_keep(run: EmittedRun) -> bool:
    """What the policies keep with the baseline off: an always-kept kind, or any span with status ERROR."""
    return run.must_keep or run.error_type is not None


# --- the stack ---------------------------------------------------------------------------------------
@dataclass
class TwoTier:
    nodes: list[Collector]
    samplers: list[Collector]
    sampler_jaegers: list[Jaeger]
    reference: Collector  # config.yaml alone, exporting to the session Jaeger
    reference_jaeger: Jaeger


@pytest.fixture(scope="module")
def two_tier(tmp_path_factory: pytest.TempPathFactory, jaeger: Jaeger, loki: LokiStandIn) -> Iterator[TwoTier]:
    workdir = tmp_path_factory.mktemp("two-tier")
    started: list[Any] = []  # Jaegers and Collectors, each with .proc
    try:
        jaegers = [start_jaeger(f"jaeger-sampler-{i}", workdir) for i in (1, 2)]
        started += jaegers
        samplers = [
            start_collector(f"collector-sampler-{i}", workdir, j, loki.endpoint, SAMPLER_ENV, ("tier2.yaml",))
            for i, j in zip((1, 2), jaegers, strict=True)
        ]
        started += samplers
        tier = "[" + ", ".join(s.otlp_grpc for s in samplers) + "]"
        node_env = {**POLICY_ENV, "AGENTWATCH_SAMPLING_TIER": tier}
        nodes = [
            start_collector(f"collector-node-{i}", workdir, jaeger, loki.endpoint, node_env, ("tier1.yaml",))
            for i in (1, 2)
        ]
        started += nodes
        reference = start_collector("collector-reference", workdir, jaeger, loki.endpoint, POLICY_ENV)
        started.append(reference)
        yield TwoTier(nodes, samplers, jaegers, reference, jaeger)
    finally:
        for component in reversed(started):
            component.proc.stop()


def run_agent_process(args: list[str], specs: list[dict[str, Any]], seed: int) -> list[EmittedRun]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={SERVICE}-{seed}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    argv = [sys.executable, "-m", "tests.e2e.two_tier_workload", *args, f"--seed={seed}"]
    done = subprocess.run(
        argv, cwd=REPO, env=env, input=json.dumps(specs), capture_output=True, text=True, timeout=WAIT_S * 2
    )
    assert done.returncode == 0, f"agent process {args} failed:\n{done.stderr[-3000:]}"
    return [EmittedRun.from_json(r) for r in json.loads(done.stdout)]


@pytest.fixture(scope="module")
def runs(two_tier: TwoTier) -> list[EmittedRun]:
    """52 real runs, 6 at a time in each of four agent processes, through the first tier."""
    node_1, node_2 = (c.otlp_http for c in two_tier.nodes)
    also = ["--also", two_tier.reference.otlp_http, f"--threads={THREADS_PER_PROCESS}"]
    processes = [
        [f"--node={node_1}", *also],
        [f"--node={node_2}", *also],
        [f"--node={node_1}", f"--node={node_2}", "--split-spans", *also],
        [f"--node={node_2}", f"--node={node_1}", "--split-spans", *also],
    ]
    with ThreadPoolExecutor(len(processes)) as pool:
        futures = [
            pool.submit(run_agent_process, args, process_specs(10 * i), i + 1) for i, args in enumerate(processes)
        ]
        found = [run for future in futures for run in future.result()]
    assert len({run.trace_id for run in found}) == len(found) == 52
    assert not [r for r in found if "failed internally" in r.stop_detail]
    return found


# --- what the collectors say about themselves ----------------------------------------------------------
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def series(endpoint: str, name: str, **labels: str) -> list[float]:
    """Values of the series ``name`` with ``labels`` in a Prometheus text exposition at ``endpoint``."""
    status, body = http_get(f"http://{endpoint}/metrics")
    if status != 200:
        raise ValueError(f"{endpoint}/metrics answered {status}")
    values = []
    for line in body.decode().splitlines():
        match = SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        found = dict(LABEL.findall(match.group(2) or ""))
        if all(re.fullmatch(v, found.get(k, "")) for k, v in labels.items()):
            values.append(float(match.group(3)))
    return values


def total(collectors: list[Collector], name: str, telemetry: bool = False, **labels: str) -> float:
    return sum(sum(series(c.telemetry if telemetry else c.prometheus_exporter, name, **labels)) for c in collectors)


# The collector's own telemetry has no _total suffixes; the prometheus exporter adds them.
DECIDED = "otelcol_processor_tail_sampling_global_count_traces_sampled"
NEW_TRACES = "otelcol_processor_tail_sampling_new_trace_id_received"
SPAN_CALLS = "traces_span_metrics_calls_total"


def wait_decided(collectors: list[Collector], count: int) -> None:
    wait_until(
        lambda: total(collectors, DECIDED, telemetry=True) >= count,
        WAIT_S,
        what=f"{count} sampling decisions in {[c.proc.name for c in collectors]}",
    )


def complete_trace(jaeger: Jaeger, run: EmittedRun) -> list[dict[str, Any]] | None:
    spans = jaeger.get_trace(run.trace_id)
    return spans if spans and len(spans) >= len(run.span_names) else None


# --- the proof -----------------------------------------------------------------------------------------
def test_the_runs_are_concurrent_real_runs_of_every_kind(runs: list[EmittedRun]) -> None:
    kinds = Counter(run.kind for run in runs)
    assert kinds == {"ordinary": 24, "error": 8, "budget": 12, "slow": 4, "expensive": 4}
    assert {r.stop_reason for r in runs if r.kind == "budget"} == {"max_iterations", "token_budget", "cost_budget"}
    assert all(r.error_type for r in runs if r.kind == "error")
    assert sum(r.failed_tool_calls for r in runs) >= 4
    assert 0 < sum(should_keep(r) for r in runs) < len(runs)


def test_every_kept_trace_is_whole_in_exactly_one_sampler(two_tier: TwoTier, runs: list[EmittedRun]) -> None:
    """Each kept trace is in one sampler's Jaeger, with every span the agent ended, one root
    (invoke_agent) and no span whose parent is missing; both samplers got a share."""
    kept = [run for run in runs if should_keep(run)]
    by_sampler: Counter[int] = Counter()
    for run in kept:
        found = wait_until(
            lambda run=run: [i for i, j in enumerate(two_tier.sampler_jaegers) if complete_trace(j, run)],
            WAIT_S,
            what=f"{run.kind} trace {run.trace_id} ({len(run.span_names)} spans) in a sampler's Jaeger",
        )
        assert len(found) == 1, f"{run.kind} trace {run.trace_id} was exported by both samplers"
        spans = two_tier.sampler_jaegers[found[0]].get_trace(run.trace_id) or []
        assert Counter(s["name"] for s in spans) == Counter(run.span_names), run.kind
        ids = {s["spanId"] for s in spans}
        roots = [s for s in spans if not s.get("parentSpanId")]
        assert [r["name"] for r in roots] == [f"{n.OP_INVOKE_AGENT} {run.agent}"], run.kind
        orphans = [s["name"] for s in spans if s.get("parentSpanId") and s["parentSpanId"] not in ids]
        assert not orphans, f"{run.kind} trace {run.trace_id}: spans without their parent: {orphans}"
        by_sampler[found[0]] += 1
        other = two_tier.sampler_jaegers[1 - found[0]].get_trace(run.trace_id)
        assert other is None, f"{run.kind} trace {run.trace_id}: {len(other or [])} spans also in the other sampler"
    assert set(by_sampler) == {0, 1}, f"one sampler got every kept trace: {by_sampler}"


def test_each_trace_was_decided_once_by_one_sampler(two_tier: TwoTier, runs: list[EmittedRun]) -> None:
    """The samplers saw exactly as many distinct traces as there were runs: none split between them."""
    wait_decided(two_tier.samplers, len(runs))
    assert total(two_tier.samplers, NEW_TRACES, telemetry=True) == len(runs)
    assert total(two_tier.samplers, DECIDED, telemetry=True) == len(runs)


def test_sampling_decisions_equal_those_of_one_collector(two_tier: TwoTier, runs: list[EmittedRun]) -> None:
    """Trace by trace, the two tiers keep what one collector with the same policies keeps: every run
    the policies keep, nothing else."""
    wait_decided(two_tier.samplers, len(runs))
    wait_decided([two_tier.reference], len(runs))
    expected = {run.trace_id for run in runs if should_keep(run)}
    wait_until(
        lambda: all(complete_trace(two_tier.reference_jaeger, r) for r in runs if r.trace_id in expected),
        WAIT_S,
        what="every kept trace complete in the single collector's Jaeger",
    )
    two_tier_kept = {run.trace_id for run in runs if any(j.get_trace(run.trace_id) for j in two_tier.sampler_jaegers)}
    one_kept = {run.trace_id for run in runs if two_tier.reference_jaeger.get_trace(run.trace_id)}
    kinds = {run.trace_id: run.kind for run in runs}
    assert one_kept == expected, f"single collector: {Counter(kinds[t] for t in one_kept ^ expected)}"
    assert two_tier_kept == one_kept, f"two tiers differ on {Counter(kinds[t] for t in two_tier_kept ^ one_kept)}"


def test_span_metrics_count_every_span_once(two_tier: TwoTier, runs: list[EmittedRun]) -> None:
    """Span metrics are computed in the first tier only: the calls of chat spans summed over both nodes
    equal the chat spans the agents ended (and what the single collector counts); the samplers have none."""
    chat_spans = sum(1 for run in runs for name in run.span_names if name.startswith(n.OP_CHAT))
    chat = {"service_name": SERVICE, "span_name": f"{n.OP_CHAT} .*"}
    wait_until(
        lambda: (
            total(two_tier.nodes, SPAN_CALLS, **chat) >= chat_spans
            and total([two_tier.reference], SPAN_CALLS, **chat) >= chat_spans
        ),
        WAIT_S,
        what=f"span metrics counting {chat_spans} chat spans",
    )
    wait_decided(two_tier.samplers, len(runs))  # everything has passed the first tier by now
    assert total(two_tier.nodes, SPAN_CALLS, **chat) == chat_spans
    assert total([two_tier.reference], SPAN_CALLS, **chat) == chat_spans
    all_spans = sum(len(run.span_names) for run in runs)
    assert total(two_tier.nodes, SPAN_CALLS, service_name=SERVICE) == all_spans
    assert all(min(series(node.prometheus_exporter, SPAN_CALLS, **chat), default=0) > 0 for node in two_tier.nodes)
    assert not [s for s in two_tier.samplers if series(s.prometheus_exporter, SPAN_CALLS)]
