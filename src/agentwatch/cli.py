"""The ``agentwatch`` command: ``demo``, ``run``, ``sim``, ``eval``, ``serve`` and ``worker``."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anthropic

from agentwatch.agent import Agent
from agentwatch.demo import DEMO_TASK, SEED_CASES, demo_agent, passes
from agentwatch.limits import Limits
from agentwatch.result import RunResult
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.sim.serve import main as sim_main
from agentwatch.telemetry.logs import configure_json_logs

try:
    from agentwatch.telemetry.console import SpanTreeCollector
    from agentwatch.telemetry.setup import Telemetry, configure_telemetry
except ModuleNotFoundError as missing:  # a lean install: the core without the command's extra
    raise SystemExit(
        f"The agentwatch command needs the `cli` extra ({missing.name} is not installed): pip install 'agentwatch[cli]'"
    ) from None


def default_log_path() -> Path:
    """Where the demo writes its JSON logs: ``$AGENTWATCH_LOG_FILE`` or the user's state directory."""
    explicit = os.environ.get("AGENTWATCH_LOG_FILE")
    if explicit:
        return Path(explicit)
    state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return state / "agentwatch" / "agentwatch.jsonl"


def _setup(service: str, log_path: Path) -> tuple[Telemetry, SpanTreeCollector]:
    tree = SpanTreeCollector()
    telemetry = configure_telemetry(service, span_exporters=[tree])
    configure_json_logs(log_path)
    return telemetry, tree


def _summary(label: str, result: RunResult, tree: SpanTreeCollector, telemetry: Telemetry) -> None:
    telemetry.force_flush(2.0)
    cost = "unknown (no price for the model)" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    usage = result.usage
    print(f"\n== {label}")
    print(f"answer      : {result.answer}")
    print(f"stop reason : {result.stop_reason.value}" + (f" — {result.stop_detail}" if result.stop_detail else ""))
    print(
        f"tokens      : input {usage.total_input_tokens} (cache read {usage.cache_read_tokens}, "
        f"cache write {usage.cache_write_tokens}), output {usage.output_tokens}"
    )
    print(f"cost        : {cost}   iterations: {result.iterations}   tool calls: {len(result.tool_calls)}")
    print(f"trace id    : {result.trace_id}   duration: {result.duration_s:.3f}s")
    rendered = tree.render(result.span_context.trace_id)
    if rendered:
        print("spans:\n" + "\n".join("  " + line for line in rendered.splitlines()))


def _client(base_url: str | None) -> anthropic.Anthropic:
    if base_url is not None:
        return anthropic.Anthropic(api_key="demo-key", base_url=base_url)
    return anthropic.Anthropic()


LOOP_FAULTS = FaultPlan(
    rates={Fault.rate_limit(retry_after_ms=200): 0.05, Fault.overloaded(): 0.02, Fault.server_error(): 0.01}
)


def _background_traffic(agent: Agent, client: anthropic.Anthropic, sim: Simulator) -> None:
    """With ``--loop``: the variety a dashboard needs: retries, streams, tool errors, budget stops."""
    sim.faults = LOOP_FAULTS
    for _ in agent.stream(random.choice(SEED_CASES).task, client=client):
        pass  # a streamed run: time to first chunk
    if random.random() < 0.3:
        agent.run('Divide by zero [[tool:calculator:{"expression": "1/0"}]]', client=client)
    if random.random() < 0.2:
        agent.replace(limits=Limits(max_iterations=3)).run("Keep checking [[loop]]", client=client)
    sim.faults = None


def cmd_demo(args: argparse.Namespace) -> int:
    log_path = Path(args.logs) if args.logs else default_log_path()
    telemetry, tree = _setup("agentwatch-demo", log_path)
    agent = demo_agent()
    failures = 0
    with Simulator(latency_s=args.latency) as sim:
        client = _client(sim.base_url)
        print(f"agentwatch demo: local simulator at {sim.base_url} (no API key, no network)")
        rounds = 0
        while True:
            rounds += 1
            _summary("demo task: " + DEMO_TASK, agent.run(DEMO_TASK, client=client), tree, telemetry)
            for case in SEED_CASES:
                result = agent.run(case.task, client=client)
                ok = passes(case, result.answer)
                failures += 0 if ok else 1
                _summary(
                    f"eval {case.name}: {'PASS' if ok else 'FAIL'} (expects {', '.join(case.expect)})",
                    result,
                    tree,
                    telemetry,
                )
            if not args.loop or (args.rounds and rounds >= args.rounds):
                break
            _background_traffic(agent, client, sim)
            time.sleep(args.interval)
    print(f"\nJSON logs: {log_path}")
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        print("Set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 to export spans, metrics and logs over OTLP.")
    telemetry.shutdown()
    print("All seed cases passed." if failures == 0 else f"{failures} seed case(s) failed.")
    return 0 if failures == 0 else 1


def cmd_run(args: argparse.Namespace) -> int:
    log_path = Path(args.logs) if args.logs else default_log_path()
    telemetry, tree = _setup("agentwatch", log_path)
    agent = demo_agent(model=args.model)
    use_api = bool(os.environ.get("ANTHROPIC_API_KEY")) and not args.sim
    if use_api:
        print("Running against the Anthropic API (ANTHROPIC_API_KEY is set).")
        result = agent.run(args.task, client=_client(None))
    else:
        with Simulator() as sim:
            print(f"Running against the local simulator at {sim.base_url} (set ANTHROPIC_API_KEY for the real API).")
            result = agent.run(args.task, client=_client(sim.base_url))
    _summary(args.task, result, tree, telemetry)
    print(f"\nJSON logs: {log_path}")
    telemetry.shutdown()
    return 0 if result.ok else 2


def cmd_worker(args: argparse.Namespace) -> int:
    """``agentwatch worker``: a Celery worker for one agent (README "Queue")."""
    try:
        from agentwatch.queue.worker import run_worker
    except ModuleNotFoundError as missing:
        raise SystemExit(
            f"agentwatch worker needs the `queue` extra ({missing.name} is missing): pip install 'agentwatch[queue]'"
        ) from None
    from agentwatch.refs import LoadError

    if not args.broker:
        raise SystemExit("agentwatch worker: give --broker redis://host:6379/0 (or set AGENTWATCH_BROKER_URL).")
    try:
        run_worker(
            args.agent,
            args.broker,
            queue=args.queue,
            concurrency=args.concurrency,
            pool=args.pool,
            margin_s=args.margin,
        )
    except (LoadError, ValueError) as exc:
        raise SystemExit(f"agentwatch worker: {exc}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentwatch", description="Observability-first runtime for Claude agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the demo agent and the seed cases against the local simulator")
    demo.add_argument("--logs", help=f"JSON log file (default: {default_log_path()})")
    demo.add_argument("--latency", type=float, default=0.0, help="simulated API latency in seconds")
    demo.add_argument("--loop", action="store_true", help="keep generating traffic (for the compose stack)")
    demo.add_argument("--interval", type=float, default=2.0, help="seconds between rounds with --loop")
    demo.add_argument("--rounds", type=int, default=0, help="stop after N rounds with --loop (0 = forever)")
    demo.set_defaults(handler=cmd_demo)
    run = sub.add_parser("run", help="run one task (real API when ANTHROPIC_API_KEY is set, else the simulator)")
    run.add_argument("task")
    run.add_argument("--model", default="claude-haiku-4-5-20251001")
    run.add_argument("--sim", action="store_true", help="use the simulator even when ANTHROPIC_API_KEY is set")
    run.add_argument("--logs", help="JSON log file")
    run.set_defaults(handler=cmd_run)
    worker = sub.add_parser("worker", help="run queued agent runs: a Celery worker on Redis (the queue extra)")
    worker.add_argument("agent", metavar="MODULE:ATTR", help="the agent it runs: module:attr or path/file.py:attr")
    worker.add_argument("--broker", default=os.environ.get("AGENTWATCH_BROKER_URL"), help="redis://host:port/db")
    worker.add_argument("--queue", default="agentwatch", help="queue name (default: agentwatch)")
    worker.add_argument("--concurrency", type=int, default=1, help="pool processes (default: 1)")
    worker.add_argument("--pool", choices=["prefork", "solo"], default="prefork")
    worker.add_argument("--margin", type=float, default=30.0, help="seconds added to each time limit (default: 30)")
    worker.set_defaults(handler=cmd_worker)
    sim = sub.add_parser("sim", help="serve the local Anthropic API simulator", add_help=False)
    sim.set_defaults(handler=None)
    try:
        from agentwatch.evals.cli import add_eval_parser, run_eval_command

        add_eval_parser(sub)
        sub.choices["eval"].set_defaults(handler=run_eval_command)
    except ImportError:  # pragma: no cover - evals always ship with the package
        pass
    try:
        from agentwatch.serve.cli import add_serve_parser

        add_serve_parser(sub)
    except ImportError as missing:  # the serve extra is not installed
        need = (
            f"`agentwatch serve` needs the `serve` extra ({missing.name} is missing): pip install 'agentwatch[serve]'"
        )
        sub.add_parser("serve", help="serve an agent over HTTP (needs the serve extra)").set_defaults(
            handler=lambda _args: sys.exit(need)
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        return sim_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
