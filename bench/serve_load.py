"""Load benchmark of ``agentwatch serve``: what the HTTP layer costs over the bare runner.

    python bench/serve_load.py                       # concurrency 50 and 200, 3 x concurrency runs each
    python bench/serve_load.py --concurrency 50 200 1000 --rounds 2

Three processes per measurement, so each one's CPU and memory are its own:

  simulator   the Anthropic API simulator at a fixed latency per call (default 300 ms); the demo task makes
              3 calls (web_search, calculator, answer), so a run's own time is ~3 x latency
  service     ``agentwatch serve agentwatch.demo:demo_agent`` on one uvicorn worker, API key auth on,
              telemetry set up as in production (SDK providers, JSON logs to a file), pointed at the simulator
  load        an httpx async client firing a bounded count of ``POST /v1/runs`` at a fixed concurrency

and the same count at the same concurrency on the bare runner: ``Agent.arun`` in one process (same telemetry
setup, same simulator), no HTTP. Reported per concurrency: runs/s, p50/p99 latency added over the simulator's
own 3 x latency, CPU-seconds per run of the serving process, resident memory per in-flight run (peak RSS
minus idle RSS, over the concurrency), and errors. A warm-up of one concurrency's worth of runs comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789abcdef"
CALLS_PER_RUN = 3


# --- roles (each runs in its own process) ---------------------------------------------------------
def role_sim(latency_s: float) -> None:
    from agentwatch.sim import Simulator
    from agentwatch.sim.server import _Server

    # The stdlib server listens with a backlog of 5; a burst of 1,000 connects would then wait on SYN
    # retries (1 s) and measure the kernel, not agentwatch. Both sides of the comparison share this backend.
    _Server.request_queue_size = 4096
    sim = Simulator(latency_s=latency_s).start()
    print(sim.base_url, flush=True)
    threading.Event().wait()


def _telemetry(log_file: str) -> None:
    from agentwatch.telemetry.logs import configure_json_logs
    from agentwatch.telemetry.setup import configure_telemetry

    configure_telemetry("bench", install_signal_handler=False)
    configure_json_logs(log_file)


def role_bare(base_url: str, concurrency: int, count: int, log_file: str) -> None:
    import anthropic

    from agentwatch.demo import DEMO_TASK, demo_agent

    _telemetry(log_file)
    agent = demo_agent()
    client = anthropic.AsyncAnthropic(api_key="bench", base_url=base_url)

    async def batch(n: int) -> tuple[list[float], int]:
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []
        outside: list[float] = []
        errors = 0

        async def one() -> None:
            nonlocal errors
            async with gate:
                started = time.perf_counter()
                result = await agent.arun(DEMO_TASK, client=client)
                latencies.append(time.perf_counter() - started)
                outside.append(latencies[-1] - result.duration_s)
                errors += 0 if result.ok else 1

        await asyncio.gather(*(one() for _ in range(n)))
        return latencies, outside, errors

    async def main() -> None:
        await batch(concurrency)  # warm-up
        print("READY", flush=True)
        sys.stdin.readline()  # the driver has taken the idle RSS
        cpu0, wall0 = _cpu_self(), time.perf_counter()
        latencies, outside, errors = await batch(count)
        wall, cpu = time.perf_counter() - wall0, _cpu_self() - cpu0
        out = {"latencies": latencies, "outside": outside, "errors": errors, "wall_s": wall, "cpu_s": cpu}
        print(json.dumps(out), flush=True)

    asyncio.run(main())


def role_load(url: str, concurrency: int, count: int) -> None:
    import httpx

    from agentwatch.demo import DEMO_TASK

    async def main() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers, timeout=120) as client:
            gate = asyncio.Semaphore(concurrency)
            latencies: list[float] = []
            outside: list[float] = []
            errors: dict[str, int] = {}

            async def one() -> None:
                async with gate:
                    started = time.perf_counter()
                    try:
                        response = await client.post("/v1/runs", json={"task": DEMO_TASK})
                        ok = response.status_code == 200 and response.json()["stop_reason"] == "end_turn"
                        kind = "" if ok else str(response.status_code)
                        if ok:
                            outside.append(time.perf_counter() - started - response.json()["duration_s"])
                    except httpx.HTTPError as exc:
                        kind = type(exc).__name__
                    latencies.append(time.perf_counter() - started)
                    if kind:
                        errors[kind] = errors.get(kind, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count)))
            wall = time.perf_counter() - started
        out = {"latencies": latencies, "outside": outside, "errors": sum(errors.values()), "kinds": errors}
        out["wall_s"] = wall
        print(json.dumps({**out, "cpu_s": _cpu_self()}))

    asyncio.run(main())


# --- the driver -------------------------------------------------------------------------------------
def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples a process's RSS every 20 ms on a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _python(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], text=True, cwd=REPO, **kw)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _summary(out: dict[str, Any], own_s: float, count: int) -> dict[str, float]:
    """Latency over the simulator's own time, and over the run's own ``duration_s`` (what is outside the run)."""
    added = [latency - own_s for latency in out["latencies"]]
    return {
        "runs_per_s": count / out["wall_s"],
        "added_p50_ms": statistics.median(added) * 1000,
        "added_p99_ms": _p99(added) * 1000,
        "outside_p50_ms": statistics.median(out["outside"]) * 1000,
        "outside_p99_ms": _p99(out["outside"]) * 1000,
    }


def measure_service(base_url: str, concurrency: int, count: int, own_s: float, log_file: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "bench",
        "AGENTWATCH_API_KEYS": f"bench:{KEY}",
        "AGENTWATCH_SERVE_MAX_RUNS": str(concurrency * 2),
        "AGENTWATCH_SERVE_MAX_RUNS_PER_TENANT": str(concurrency * 2),
        "AGENTWATCH_SERVE_RETENTION_S": "5",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_file, "w") as log:
        service = _python(
            "-m", "agentwatch.cli", "serve", "agentwatch.demo:demo_agent", "--port", str(port), env=env, stderr=log
        )
    try:
        _wait_ready(url, service)
        _run_load(url, concurrency, concurrency)  # warm-up
        idle = _rss_mib(service.pid)
        cpu0 = _cpu_of(service.pid)
        with PeakRss(service.pid) as rss:
            out = _run_load(url, concurrency, count)
        cpu = _cpu_of(service.pid) - cpu0
    finally:
        service.terminate()
        service.wait(60)
    return {
        **_summary(out, own_s, count),
        "cpu_s_per_run": cpu / count,
        "rss_kib_per_inflight_run": max(0.0, rss.peak - idle) * 1024 / concurrency,
        "errors": out["errors"],
        "error_kinds": out["kinds"],
        "load_cpu_s": out["cpu_s"],
    }


def measure_bare(base_url: str, concurrency: int, count: int, own_s: float, log_file: str) -> dict[str, Any]:
    args = ["bench/serve_load.py", "_bare", base_url, str(concurrency), str(count), log_file]
    bare = _python(*args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bare.stdin is not None and bare.stdout is not None
    try:
        assert bare.stdout.readline().strip() == "READY"
        idle = _rss_mib(bare.pid)
        with PeakRss(bare.pid) as rss:
            bare.stdin.write("go\n")
            bare.stdin.flush()
            out = json.loads(bare.stdout.readline())
    finally:
        bare.kill()
        bare.wait()
    return {
        **_summary(out, own_s, count),
        "cpu_s_per_run": out["cpu_s"] / count,
        "rss_kib_per_inflight_run": max(0.0, rss.peak - idle) * 1024 / concurrency,
        "errors": out["errors"],
    }


def _run_load(url: str, concurrency: int, count: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "bench/serve_load.py", "_load", url, str(concurrency), str(count)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode}")
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the service did not become ready within 60 s")


def main() -> int:
    if sys.argv[1:2] == ["_sim"]:
        role_sim(float(sys.argv[2]))
    if sys.argv[1:2] == ["_bare"]:
        role_bare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    if sys.argv[1:2] == ["_load"]:
        role_load(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description="agentwatch serve under load vs the bare runner")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--runs-per-slot", type=int, default=3, help="runs = this x concurrency")
    parser.add_argument("--latency", type=float, default=0.3, help="simulated seconds per model call")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    own_s = CALLS_PER_RUN * args.latency
    sim = _python("bench/serve_load.py", "_sim", str(args.latency), stdout=subprocess.PIPE)
    assert sim.stdout is not None
    base_url = sim.stdout.readline().strip()
    results: dict[str, Any] = {"latency_s": args.latency, "calls_per_run": CALLS_PER_RUN, "levels": {}}
    logs = tempfile.mkdtemp(prefix="agentwatch-bench-")
    try:
        for concurrency in args.concurrency:
            count = args.runs_per_slot * concurrency
            service = measure_service(base_url, concurrency, count, own_s, f"{logs}/serve-{concurrency}.jsonl")
            bare = measure_bare(base_url, concurrency, count, own_s, f"{logs}/bare-{concurrency}.jsonl")
            results["levels"][concurrency] = {"count": count, "service": service, "bare": bare}
            _print_level(concurrency, count, service, bare)
    finally:
        sim.kill()
        sim.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _print_level(concurrency: int, count: int, service: dict[str, Any], bare: dict[str, Any]) -> None:
    print(f"\nconcurrency {concurrency}, {count} runs")
    print(
        f"  {'':8} {'runs/s':>8} {'added p50':>10} {'added p99':>10} {'outside p50':>12} {'outside p99':>12}"
        f" {'CPU-ms/run':>11} {'KiB/run':>8} errors"
    )
    for name, row in (("service", service), ("bare", bare)):
        print(
            f"  {name:8} {row['runs_per_s']:8.1f} {row['added_p50_ms']:8.1f}ms {row['added_p99_ms']:8.1f}ms "
            f"{row['outside_p50_ms']:10.1f}ms {row['outside_p99_ms']:10.1f}ms "
            f"{row['cpu_s_per_run'] * 1000:11.2f} {row['rss_kib_per_inflight_run']:8.1f} {row['errors']}"
        )
    ratio = service["runs_per_s"] / bare["runs_per_s"]
    extra = service["added_p99_ms"] - bare["added_p99_ms"]
    print(f"  service/bare throughput {ratio:.1%}; HTTP adds {extra:+.1f} ms at p99", flush=True)


if __name__ == "__main__":
    sys.exit(main())
