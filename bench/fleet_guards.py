"""Fleet guards benchmark: the time each shared guard (Redis on loopback) adds per LLM call, as a ratio to
the per-process guard, and the shared budget's throughput under contention.

    python bench/fleet_guards.py                  # 3 rounds x 2000 calls per guard, 8 processes x 5 s
    python bench/fleet_guards.py --quick          # 3 rounds x 300 calls, 8 processes x 2 s
    python bench/fleet_guards.py --json out.json

Per call, what the runner asks of a guard around one LLM call, with no LLM call (the guard's own cost):

  per-process   the run's own budget guard: ``Guards.before_call`` + ``ledger.add`` + ``warnings`` (the baseline)
  budget        ``FleetGate(budget=TenantBudget)``: ``admit`` (a Lua reserve) + ``settle`` (a Lua settle)
  rate-limit    ``FleetGate(rate_limit=RateLimit)``: a Lua bucket take + a Lua refund (never waiting)
  circuit       ``FleetGate(circuit=CircuitBreaker)``: ``route`` + ``admit`` (checks) + ``settle`` (record)
  all           the three together, as an ``Agent(gate=...)`` with all guards uses them
  all-async     the same through ``aroute``/``aadmit``/``asettle`` (redis.asyncio)

Guards are interleaved in rounds (order rotated); each number is the median over rounds of the per-round
median. Contention: 8 processes (``multiprocessing``, spawn) reserve and settle on one tenant's budget
as fast as they can; the number is reservations settled per second, all processes together.

A redis-server (``/usr/bin/redis-server``, or ``--redis-server PATH``) is started on a free loopback port,
without persistence, for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from agentwatch.cost import default_pricing
from agentwatch.fleet import CircuitBreaker, FleetGate, ModelLimits, RateLimit, TenantBudget
from agentwatch.limits import Limits
from agentwatch.result import Usage
from agentwatch.runner.gate import Admission, CallRequest, Settlement
from agentwatch.runner.guards import Guards
from agentwatch.runner.routing import Route

MODEL = "claude-haiku-4-5-20251001"
USAGE = Usage(input_tokens=120, output_tokens=80)


def _request(tenant: str) -> CallRequest:
    return CallRequest(
        agent="bench",
        tenant=tenant,
        model=MODEL,
        base_url="http://bench.invalid",
        input_tokens=120,
        max_tokens=1024,
        worst_case_usd=(120 * 1 + 1024 * 5) / 1e6,
        time_left_s=60.0,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(binary: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not listen on {port}")


def gates(url: str) -> dict[str, FleetGate]:
    budget = TenantBudget(limit_usd=1e9)
    limits = RateLimit({"claude": ModelLimits(10**9, 10**12, 10**12)}, learn_from_headers=False)
    circuit = CircuitBreaker()
    return {
        "budget": FleetGate(url, budget=budget),
        "rate-limit": FleetGate(url, rate_limit=limits),
        "circuit": FleetGate(url, circuit=circuit),
        "all": FleetGate(url, budget=budget, rate_limit=limits, circuit=circuit),
    }


def per_process_call() -> Callable[[], None]:
    pricing = default_pricing()
    limits = Limits(cost_budget_usd=1e9, token_budget=10**12, max_iterations=10**9)
    guards = Guards(limits, pricing)
    counter = [0]

    def call() -> None:
        counter[0] += 1
        guards.before_call(iteration=counter[0], model=MODEL, input_tokens=120, cached=False)
        guards.ledger.add(MODEL, USAGE)
        guards.warnings()

    return call


def gate_call(gate: FleetGate, tenant: str) -> Callable[[], None]:
    request = _request(tenant)
    route = Route(MODEL)

    def call() -> None:
        gate.route(route, request)
        admission = gate.admit(request)
        assert isinstance(admission, Admission), admission
        gate.settle(Settlement(admission=admission, request=request, usage=USAGE, cost_usd=0.0005))

    return call


def time_calls(call: Callable[[], None], n: int) -> float:
    """Median microseconds per call over ``n`` calls (after a short warm-up)."""
    for _ in range(min(50, n)):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def time_async(gate: FleetGate, tenant: str, n: int) -> float:
    request = _request(tenant)
    route = Route(MODEL)

    async def main() -> float:
        async def call() -> None:
            await gate.aroute(route, request)
            admission = await gate.aadmit(request)
            assert isinstance(admission, Admission), admission
            await gate.asettle(Settlement(admission=admission, request=request, usage=USAGE, cost_usd=0.0005))

        for _ in range(min(50, n)):
            await call()
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            await call()
            samples.append(time.perf_counter_ns() - start)
        await gate.aclose()
        return statistics.median(samples) / 1000

    return asyncio.run(main())


def per_call(url: str, rounds: int, n: int) -> dict[str, float]:
    shared = gates(url)
    modes: dict[str, Callable[[], float]] = {"per-process": lambda: time_calls(per_process_call(), n)}
    for name, gate in shared.items():
        modes[name] = lambda gate=gate, name=name: time_calls(gate_call(gate, f"bench-{name}"), n)  # type: ignore[misc]
    modes["all-async"] = lambda: time_async(gates(url)["all"], "bench-async", n)
    results: dict[str, list[float]] = {name: [] for name in modes}
    order = list(modes)
    for r in range(rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            results[name].append(modes[name]())
    return {name: statistics.median(values) for name, values in results.items()}


def _contend(url: str, seconds: float, ready: Any, out: Any) -> None:
    gate = FleetGate(url, budget=TenantBudget(limit_usd=1e9))
    request = _request("contended")
    admission = gate.admit(request)  # connected, scripts loaded
    assert isinstance(admission, Admission), admission
    gate.settle(Settlement(admission=admission, request=request, usage=USAGE, cost_usd=0.0))
    ready.wait()  # every process is up: start together
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        admission = gate.admit(request)
        assert isinstance(admission, Admission), admission
        gate.settle(Settlement(admission=admission, request=request, usage=USAGE, cost_usd=0.0005))
        done += 1
    out.put(done)


def contention(url: str, processes: int, seconds: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    ready = context.Barrier(processes)
    workers = [context.Process(target=_contend, args=(url, seconds, ready, out)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    counts = [out.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return {"processes": processes, "seconds": seconds, "reservations": sum(counts), "per_s": sum(counts) / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds x 300 calls, 8 processes x 2 s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    calls = args.calls or (300 if args.quick else 2000)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_redis(args.redis_server, Path(tmp))
        try:
            timings = per_call(url, args.rounds, calls)
            contended = contention(url, args.processes, seconds)
            version = subprocess.run(
                [args.redis_server, "--version"], capture_output=True, text=True, check=False
            ).stdout.split()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    base = timings["per-process"]
    print(f"agentwatch fleet guards: {platform.python_version()}, {os.cpu_count()} CPUs, redis {version[2:3]}")
    print(f"{rounds_text(args.rounds, calls)}; Redis on 127.0.0.1 (loopback)\n")
    print(f"{'guard':<14}{'us per call':>12}{'x per-process':>15}")
    for name, value in timings.items():
        print(f"{name:<14}{value:>12.1f}{value / base:>15.1f}")
    print(
        f"\nshared budget under contention: {contended['processes']} processes, {contended['seconds']:g} s: "
        f"{contended['per_s']:,.0f} reservations/s (reserve + settle), {contended['reservations']:,} in all"
    )
    if args.json:
        args.json.write_text(json.dumps({"per_call_us": timings, "contention": contended}, indent=2))
    return 0


def rounds_text(rounds: int, calls: int) -> str:
    return f"{rounds} rounds x {calls} calls per guard, median of per-round medians"


if __name__ == "__main__":
    sys.exit(main())
