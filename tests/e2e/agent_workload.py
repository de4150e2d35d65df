"""Real agent runs with agentwatch's own OTLP telemetry: the child process behind ``workload.Workload``.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=agentwatch-e2e \\
        python -m tests.e2e.agent_workload --mix standard      # one-shot: prints the runs as JSON

Telemetry is set up exactly as an application would (``configure_telemetry``, reading the ``OTEL_*``
environment); the runs are real ``agentwatch.Agent`` runs through the real ``anthropic`` SDK against
``agentwatch.sim.Simulator`` servers on 127.0.0.1. Nothing here writes a span, metric or log itself.

With ``--serve`` it reads one JSON request per line on stdin and answers one JSON line on stdout:
``{"op": "runs", "runs": [spec, ...]}`` -> ``{"ok": true, "runs": [EmittedRun, ...]}``;
``{"op": "flush"}``; ``{"op": "shutdown"}`` (flush, then exit). A failure answers
``{"ok": false, "error": traceback}``. A spec is ``{"kind", "agent", "stream", "tool_error", "task",
"budget", "fault"}`` (all but ``kind`` optional); see ``Runner.agent_and_task``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run by path: make `tests.e2e` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import anthropic
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode
from tests.e2e.workload import AGENTS, PLANTED_KEY, EmittedRun, standard_mix

from agentwatch import Agent, Limits, Pricing, RunFinished, RunResult, tool
from agentwatch.demo import DEMO_TASK, SEED_CASES, demo_agent
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import content
from agentwatch.telemetry import names as n
from agentwatch.telemetry.setup import Telemetry, configure_telemetry
from agentwatch.tools import calculator, web_search

TASKS = (DEMO_TASK, *(case.task for case in SEED_CASES))
TOOL_ERROR_TASK = 'What is 1 divided by 0? [[tool:calculator:{"expression": "1/0"}]]'
LOOP_TASK = "Count up with the calculator and never stop. [[loop]]"
SLOW_TASK = SEED_CASES[1].task  # two LLM calls
SECRET_TASK = 'Is the acme account in good standing? [[tool:account_status:{"account": "acme"}]]'

# Every LLM call of a slow run takes this long (the session collector's slow threshold is 3 s).
SLOW_CALL_S = 2.2
# A model with a made-up price, so one ordinary-sized run costs a few dollars (> $1 alert, > $0.10 keep).
EXPENSIVE_MODEL = "claude-expensive-e2e"
EXPENSIVE_PRICING = Pricing(overrides={EXPENSIVE_MODEL: {"input": 5_000, "output": 10_000}})
# Cost budgets that allow a couple of looping calls (max_tokens 256) before the guard stops the run.
LOOP_COST_BUDGET_USD = {"claude-haiku-4-5-20251001": 0.004, "claude-sonnet-4-5-20250929": 0.006}
BUDGETS = ("max_iterations", "cost_budget", "token_budget")
FAULTS = ("auth_error", "server_error")


@tool
def account_status(account: str) -> str:
    """Look up an account's standing with the billing backend.

    Args:
        account: The account id.
    """
    # A careless integration: the upstream error quotes the credential it was sent.
    raise PermissionError(f"billing backend rejected the request: invalid x-api-key {PLANTED_KEY} for {account}")


def triage_agent() -> Agent:
    return Agent(
        name="triage",
        model=AGENTS["triage"],
        system="You triage support questions: look facts up with web_search and compute with calculator.",
        tools=[calculator, web_search],
        limits=Limits(max_iterations=6, cost_budget_usd=0.25, timeout_s=60),
        description="Answers support questions with web_search and calculator.",
        cache_prompt=True,
    )


def base_agent(name: str) -> Agent:
    if name == "triage":
        return triage_agent()
    agent = demo_agent()
    return agent if name == agent.name else agent.replace(name=name)


class SpanLog(SpanProcessor):
    """What the SDK really ended, per trace: span names, errored spans, retry events."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, list[ReadableSpan]] = defaultdict(list)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None:
            with self.lock:
                self.spans[format(span.context.trace_id, "032x")].append(span)

    def pop(self, trace_id: str) -> list[ReadableSpan]:
        with self.lock:
            return self.spans.pop(trace_id, [])


@contextlib.contextmanager
def app_redaction_off() -> Iterator[None]:
    """Simulate a misconfigured application: agentwatch's redactor replaced by a no-op.

    agentwatch masks ``sk-ant-`` keys in everything it records by default, so without this no key
    would ever reach the collector and its masking would go unproven.
    """
    content.set_redactor(lambda text: text)
    try:
        yield
    finally:
        content.set_redactor(content.mask_secrets)


class Runner:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.spans = SpanLog()
        # One simulator per behaviour, so concurrent runs never take each other's faults.
        self.sims = {
            "ok": Simulator(seed=seed),
            "flaky": Simulator(
                seed=seed, faults=FaultPlan(rates={Fault.rate_limit(retry_after_ms=10): 0.15}, seed=seed)
            ),
            "slow": Simulator(seed=seed, latency_s=SLOW_CALL_S),
            "fault": Simulator(seed=seed),
        }
        for sim in self.sims.values():
            sim.start()
        self.clients = {
            name: anthropic.Anthropic(api_key="e2e-test-key", base_url=sim.base_url, max_retries=0)
            for name, sim in self.sims.items()
        }
        self.budgets = itertools.cycle(BUDGETS)
        self.faults = itertools.cycle(FAULTS)
        self.fault_lock = threading.Lock()

    def close(self) -> None:
        for sim in self.sims.values():
            sim.stop()

    # --- one run -----------------------------------------------------------------------------------
    def agent_and_task(self, spec: dict[str, Any]) -> tuple[Agent, str, str]:
        """The agent, task and simulator for a spec (what makes each kind that kind is in here)."""
        kind, agent = spec["kind"], base_agent(spec.get("agent", "research-assistant"))
        if kind == "ordinary":
            task = TOOL_ERROR_TASK if spec.get("tool_error") else TASKS[int(spec.get("task", 0)) % len(TASKS)]
            return agent, task, "flaky"
        if kind == "error":
            fault = spec.get("fault") or next(self.faults)
            plan = {
                "auth_error": [Fault.auth_error()],
                "bad_request": [Fault.bad_request()],
                "server_error": [Fault.server_error(), Fault.server_error()],
            }[fault]
            self.sims["fault"].faults = FaultPlan(schedule=plan)
            # One retry, quickly: the 500s are retried once, then the run fails.
            limits = Limits(max_retries=1, retry_base_delay_s=0.05, retry_max_delay_s=0.1)
            return agent.replace(limits=limits), SEED_CASES[0].task, "fault"
        if kind == "budget":
            budget = spec.get("budget") or next(self.budgets)
            limits = {
                "max_iterations": Limits(max_iterations=2),
                "cost_budget": Limits(
                    max_iterations=50, cost_budget_usd=LOOP_COST_BUDGET_USD[agent.model], max_tokens=256
                ),
                "token_budget": Limits(max_iterations=50, token_budget=3000, max_tokens=256),
            }[budget]
            return agent.replace(limits=limits), LOOP_TASK, "ok"
        if kind == "slow":
            return agent, SLOW_TASK, "slow"
        if kind == "expensive":
            expensive = agent.replace(
                model=EXPENSIVE_MODEL, pricing=EXPENSIVE_PRICING, limits=Limits(max_iterations=10)
            )
            return expensive, SEED_CASES[1].task, "ok"
        if kind == "secret":
            return agent.replace(tools=[*agent.tools, account_status]), SECRET_TASK, "ok"
        raise ValueError(f"unknown run kind {kind!r}")

    def run(self, spec: dict[str, Any]) -> EmittedRun:
        kind = spec["kind"]
        with self.fault_lock if kind == "error" else contextlib.nullcontext():
            agent, task, sim = self.agent_and_task(spec)
            client = self.clients[sim]
            with app_redaction_off() if kind == "secret" else contextlib.nullcontext():
                if spec.get("stream"):
                    result = next(e.result for e in agent.stream(task, client=client) if isinstance(e, RunFinished))
                else:
                    result = agent.run(task, client=client)
        return self.emitted(spec, agent, result)

    def emitted(self, spec: dict[str, Any], agent: Agent, result: RunResult) -> EmittedRun:
        spans = self.spans.pop(result.trace_id)
        retries = sum(1 for s in spans for e in s.events if e.name == n.EVENT_RETRY and s.name.startswith(n.OP_CHAT))
        return EmittedRun(
            trace_id=result.trace_id,
            kind=spec["kind"],
            agent=agent.name,
            model=agent.model,
            stop_reason=result.stop_reason.value,
            cost_usd=result.cost_usd if result.cost_usd is not None else 0.0,
            iterations=result.iterations,
            tool_calls=len(result.tool_calls),
            span_names=tuple(s.name for s in spans),
            failed_tool_calls=sum(
                1 for s in spans if s.name.startswith(n.OP_EXECUTE_TOOL) and s.status.status_code is StatusCode.ERROR
            ),
            streamed=bool(spec.get("stream")),
            retries=retries,
            error_type=result.error,
            stop_detail=result.stop_detail,
        )

    def runs(self, specs: list[dict[str, Any]]) -> list[EmittedRun]:
        """Slow runs on threads alongside the others; the secret run last, alone (it swaps the redactor)."""
        results: dict[int, EmittedRun] = {}
        errors: list[BaseException] = []

        def in_thread(index: int, spec: dict[str, Any]) -> None:
            try:
                results[index] = self.run(spec)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=in_thread, args=(i, spec), daemon=True)
            for i, spec in enumerate(specs)
            if spec["kind"] == "slow"
        ]
        for thread in threads:
            thread.start()
        for i, spec in enumerate(specs):
            if spec["kind"] not in ("slow", "secret"):
                results[i] = self.run(spec)
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        for i, spec in enumerate(specs):
            if spec["kind"] == "secret":
                results[i] = self.run(spec)
        return [results[i] for i in range(len(specs))]


def start(seed: int) -> tuple[Telemetry, Runner]:
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        raise SystemExit("set OTEL_EXPORTER_OTLP_ENDPOINT (the collector's OTLP/HTTP base URL)")
    telemetry = configure_telemetry(metric_interval_s=1.0, export_timeout_s=5.0, shutdown_timeout_s=15.0)
    runner = Runner(seed)
    telemetry.tracer_provider.add_span_processor(runner.spans)
    return telemetry, runner


def serve(seed: int, out: IO[str]) -> None:
    telemetry, runner = start(seed)

    def reply(payload: dict[str, Any]) -> None:
        out.write(json.dumps(payload) + "\n")
        out.flush()

    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                op = request["op"]
                if op == "runs":
                    reply({"ok": True, "runs": [r.to_json() for r in runner.runs(request["runs"])]})
                elif op == "flush":
                    telemetry.force_flush(timeout_s=10.0)
                    reply({"ok": True})
                elif op == "shutdown":
                    break
                else:
                    raise ValueError(f"unknown op {op!r}")
            except Exception:
                reply({"ok": False, "error": traceback.format_exc()})
    finally:
        runner.close()
        telemetry.shutdown()
    reply({"ok": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", action="store_true", help="answer JSON-line requests on stdin")
    mode.add_argument("--mix", choices=["standard"], help="run a mix once and print its runs as JSON")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    # stdout carries the protocol only: anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if args.serve:
        serve(args.seed, out)
        return
    telemetry, runner = start(args.seed)
    try:
        runs = runner.runs(standard_mix())
    finally:
        runner.close()
        telemetry.shutdown()
    out.write(json.dumps([r.to_json() for r in runs], indent=1) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
