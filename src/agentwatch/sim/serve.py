"""Run the simulator in the foreground: ``serve()`` and ``python -m agentwatch.sim``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from agentwatch.sim.faults import Fault, FaultPlan
from agentwatch.sim.ratelimit import RateLimit
from agentwatch.sim.server import Simulator


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    latency_s: float = 0.0,
    fault_rates: dict[str, float] | None = None,
    *,
    request_log_size: int = 10_000,
    idle_timeout_s: float = 60.0,
    rate_limits: Sequence[str] = (),
) -> None:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, printing the base URL first.

    ``fault_rates`` maps fault specs (``"overloaded"``, ``"rate_limit:2"``, ``"slow:1.5"``; see
    ``Fault.from_spec``) to probabilities; ``rate_limits`` are ``RateLimit.from_spec`` specs
    (``"claude-haiku-4-5=50,50000,10000"``); the other arguments are ``Simulator``'s. Raises ValueError
    for an unknown fault, bad rates or a bad limit, OSError when the port is taken.
    """
    limits = dict(RateLimit.from_spec(spec) for spec in rate_limits)
    rates = {Fault.from_spec(spec): p for spec, p in (fault_rates or {}).items()}
    plan = FaultPlan(rates=rates) if rates else None
    sim = Simulator(
        port=port,
        latency_s=latency_s,
        faults=plan,
        host=host,
        request_log_size=request_log_size,
        idle_timeout_s=idle_timeout_s,
        rate_limits=limits or None,
    ).start()
    print(f"agentwatch simulator listening on {sim.base_url}", flush=True)
    print(f"  export ANTHROPIC_BASE_URL={sim.base_url}  (any API key works)", flush=True)
    if rates:
        listed = ", ".join(f"{spec}={p:g}" for spec, p in (fault_rates or {}).items())
        print(f"  injecting faults: {listed}", flush=True)
    for model, limit in limits.items():
        print(
            f"  rate limit for {model}: {limit.requests_per_minute} requests, {limit.input_tokens_per_minute} input "
            f"and {limit.output_tokens_per_minute} output tokens per minute",
            flush=True,
        )
    print("  press Ctrl-C to stop", flush=True)
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sim.stop()


def _rate(text: str) -> tuple[str, float]:
    spec, sep, rate = text.rpartition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FAULT=RATE (e.g. overloaded=0.1), got {text!r}")
    return spec, float(rate)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m agentwatch.sim [--host H] [--port N] [--latency S] [--fault F=RATE]``."""
    parser = argparse.ArgumentParser(prog="python -m agentwatch.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument(
        "--fault", type=_rate, action="append", default=[], metavar="FAULT=RATE", help="e.g. overloaded=0.1"
    )
    parser.add_argument(
        "--request-log-size", type=int, default=10_000, metavar="N", help="requests kept in the log (default 10000)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="close connections that send no complete request for S seconds (default 60)",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="[MODEL=]RPM,ITPM,OTPM",
        help="per-minute limits for models starting with MODEL (all models without MODEL=), with the API's "
        "anthropic-ratelimit-* headers and 429s; repeatable, e.g. claude-haiku-4-5=50,50000,10000",
    )
    args = parser.parse_args(argv)
    try:
        serve(
            args.host,
            args.port,
            args.latency,
            dict(args.fault) or None,
            request_log_size=args.request_log_size,
            idle_timeout_s=args.idle_timeout,
            rate_limits=args.rate_limit,
        )
    except (ValueError, OSError) as exc:
        print(f"agentwatch simulator: {exc}", file=sys.stderr)
        return 2
    return 0
