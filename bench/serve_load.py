"""Load benchmark of ``agentwatch serve``: what the HTTP layer costs over the bare runner, as ratios.

    python bench/serve_load.py                                   # concurrency 50, 200 and 1,000; 2 rounds
    python bench/serve_load.py --concurrency 200 --rounds 3 --count 1000

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). One process per role, so each one's CPU and memory are its own:

  simulator   the Anthropic API simulator at a fixed latency per call (default 300 ms), started once; the demo
              task makes 3 calls (web_search, calculator, answer), so a run's own floor is 3 x latency = 0.9 s
  service     ``agentwatch serve agentwatch.demo:demo_agent`` on one uvicorn worker, API key auth on,
              telemetry set up as in production (SDK providers, JSON logs to a file), pointed at the simulator;
              a fresh process per measurement
  load        ``wrk`` (C, one thread, one connection per concurrent run) POSTing ``/v1/runs`` until a bounded
              count of responses (bench/serve_load.lua), within a time bound
  bare        the same count at the same concurrency on the bare runner: ``Agent.arun`` in one fresh process
              (same telemetry setup, same simulator, an asyncio semaphore for the concurrency), no HTTP

The machine is shared, so absolute numbers drift: each concurrency runs ``--rounds`` interleaved pairs
(service then bare, then bare then service, ...) and the ratios are taken within each pair. Reported per
side: runs/s; p50/p99 *added latency* = the client-observed latency of a run minus the simulator's own fixed
latency x calls (0.9 s), so it includes everything that is not the simulated model: runner, HTTP, queueing;
the run's own ``duration_s`` p50/p99 (what the runner measured inside the run); CPU-seconds per run of the
serving process (utime + stime from /proc over the load window, the simulator's CPU is reported separately);
resident memory per in-flight run = (peak RSS during the load - RSS before it, after a small warm-up) /
concurrency; errors (non-200, a run not ending in end_turn, socket errors, timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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
WARMUP_RUNS, WARMUP_CONCURRENCY = 40, 10
DEFAULT_COUNTS = {50: 300, 200: 600, 1000: 1000}
TIME_BOUND_S = 420


# --- roles (each runs in its own process) ---------------------------------------------------------
def role_sim(latency_s: float) -> None:
    from agentwatch.sim import Simulator

    sim = Simulator(latency_s=latency_s).start()
    print(sim.base_url, flush=True)
    threading.Event().wait()


def role_bare(base_url: str, concurrency: int, count: int, log_file: str) -> None:
    import anthropic

    from agentwatch.demo import DEMO_TASK, demo_agent
    from agentwatch.telemetry.logs import configure_json_logs
    from agentwatch.telemetry.setup import configure_telemetry

    configure_telemetry("bench", install_signal_handler=False)
    configure_json_logs(log_file)
    agent = demo_agent()
    client = anthropic.AsyncAnthropic(api_key="bench", base_url=base_url)

    async def batch(n: int, width: int, announce: bool = True) -> dict[str, Any]:
        """``width`` workers each running one run after another (as wrk's connections do) until ``n`` have
        finished; timed to the ``n``-th finish. Runs still going then are awaited but not counted."""
        latencies: list[float] = []
        durations: list[float] = []
        errors, wall = 0, 0.0
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal errors, wall
            while len(latencies) < n:
                began = time.perf_counter()
                result = await agent.arun(DEMO_TASK, client=client)
                if len(latencies) >= n:
                    return
                latencies.append(time.perf_counter() - began)
                durations.append(result.duration_s)
                errors += 0 if result.stop_reason.value == "end_turn" else 1
                if len(latencies) == n:
                    wall = time.perf_counter() - started
                    if announce:
                        print("STOPPED", flush=True)

        await asyncio.gather(*(worker() for _ in range(width)))
        return {"requests": n, "wall_s": wall, "latencies": latencies, "durations": durations, "errors": errors}

    async def main() -> None:
        await batch(WARMUP_RUNS, WARMUP_CONCURRENCY, announce=False)
        print("READY", flush=True)
        sys.stdin.readline()  # the driver has taken the idle RSS and CPU
        out = await batch(count, concurrency)
        print(json.dumps(out), flush=True)

    asyncio.run(main())  # the service's loop too: `agentwatch serve` runs uvicorn on asyncio's


# --- the driver -------------------------------------------------------------------------------------
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


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _wrk(url: str, concurrency: int, count: int, on_stop: Any = None) -> dict[str, Any]:
    """``count`` runs through wrk at ``concurrency`` connections (a closed loop: each connection sends its next
    run when the last one answers). Times from launch to the ``count``-th response (wrk's STOPPED line), calls
    ``on_stop`` then, interrupts wrk, and returns its RESULT line as a dict plus ``wall_s``."""
    from agentwatch.demo import DEMO_TASK

    body = json.dumps({"task": DEMO_TASK})
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{TIME_BOUND_S}s",
        "--timeout",
        "300s",
        "-s",
        str(REPO / "bench" / "serve_load.lua"),
        f"{url}/v1/runs",
        "--",
        KEY,
        str(count),
        body,
    ]
    started = time.perf_counter()
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wrk.stdout is not None and wrk.stderr is not None
    wall, result = float(TIME_BOUND_S), None
    for line in wrk.stdout:
        if line.startswith("STOPPED"):
            wall = time.perf_counter() - started
            if on_stop is not None:
                on_stop()
            wrk.send_signal(signal.SIGINT)
        elif line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    wrk.wait(60)
    if result is None:
        raise SystemExit(f"wrk printed no result (exit {wrk.returncode}): {wrk.stderr.read()}")
    return {**result, "wall_s": wall}


SERVICE_ENV: dict[str, str] = {}  # --service-env NAME=VALUE


def measure_service(base_url: str, concurrency: int, count: int, own_s: float, log_file: str, sim_pid: int) -> dict:
    env = {
        **os.environ,
        **SERVICE_ENV,
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
        _wrk(url, WARMUP_CONCURRENCY, WARMUP_RUNS)
        time.sleep(0.5)
        idle, cpu0, sim0 = _rss_mib(service.pid), _cpu_of(service.pid), _cpu_of(sim_pid)
        at_stop: list[float] = []
        with PeakRss(service.pid) as rss:
            out = _wrk(url, concurrency, count, lambda: at_stop.extend((_cpu_of(service.pid), _cpu_of(sim_pid))))
        cpu, sim_cpu = at_stop[0] - cpu0, at_stop[1] - sim0
    finally:
        service.terminate()
        service.wait(60)
    errors = out["bad"] + out["connect"] + out["read"] + out["write"] + out["timeout"]
    latencies = {"p50": out["p50_s"], "p99": out["p99_s"]}
    return _row(
        count, out["wall_s"], latencies, out["durations"], own_s, cpu, sim_cpu, rss.peak - idle, concurrency, errors
    )


def measure_bare(base_url: str, concurrency: int, count: int, own_s: float, log_file: str, sim_pid: int) -> dict:
    args = ["bench/serve_load.py", "_bare", base_url, str(concurrency), str(count), log_file]
    bare = _python(*args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bare.stdin is not None and bare.stdout is not None
    try:
        if bare.stdout.readline().strip() != "READY":
            raise SystemExit("the bare runner process did not start")
        time.sleep(0.5)
        idle, cpu0, sim0 = _rss_mib(bare.pid), _cpu_of(bare.pid), _cpu_of(sim_pid)
        with PeakRss(bare.pid) as rss:
            bare.stdin.write("go\n")
            bare.stdin.flush()
            if bare.stdout.readline().strip() != "STOPPED":
                raise SystemExit("the bare runner process failed")
            cpu, sim_cpu = _cpu_of(bare.pid) - cpu0, _cpu_of(sim_pid) - sim0
            out = json.loads(bare.stdout.readline())
    finally:
        bare.kill()
        bare.wait()
    latencies = {"p50": _pct(out["latencies"], 0.5), "p99": _pct(out["latencies"], 0.99)}
    return _row(
        out["requests"],
        out["wall_s"],
        latencies,
        out["durations"],
        own_s,
        cpu,
        sim_cpu,
        rss.peak - idle,
        concurrency,
        out["errors"],
    )


def _row(
    requests: int,
    wall_s: float,
    latencies: dict[str, float],
    durations: list[float],
    own_s: float,
    cpu_s: float,
    sim_cpu_s: float,
    rss_delta_mib: float,
    concurrency: int,
    errors: int,
) -> dict[str, Any]:
    return {
        "runs": requests,
        "runs_per_s": requests / wall_s,
        "added_p50_ms": (latencies["p50"] - own_s) * 1000,
        "added_p99_ms": (latencies["p99"] - own_s) * 1000,
        "run_p50_ms": _pct(durations, 0.5) * 1000,
        "run_p99_ms": _pct(durations, 0.99) * 1000,
        "cpu_ms_per_run": cpu_s / max(1, requests) * 1000,
        "sim_cpu_ms_per_run": sim_cpu_s / max(1, requests) * 1000,
        "rss_kib_per_inflight_run": max(0.0, rss_delta_mib) * 1024 / concurrency,
        "errors": errors,
    }


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
            if httpx.get(url + "/readyz", timeout=10).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the service did not become ready within 60 s")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    if sys.argv[1:2] == ["_sim"]:
        role_sim(float(sys.argv[2]))
    if sys.argv[1:2] == ["_bare"]:
        role_bare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description="agentwatch serve under wrk load vs the bare runner")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--count", type=int, help="runs per measurement (default 300 / 600 / 1000 for 50 / 200 / 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved service/bare pairs per concurrency")
    parser.add_argument("--latency", type=float, default=0.3, help="simulated seconds per model call")
    parser.add_argument("--json", help="also write every round's results here")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for the service process (repeatable)",
    )
    args = parser.parse_args()
    SERVICE_ENV.update(item.split("=", 1) for item in args.service_env)
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark drives the service with wrk: apt-get install -y wrk (Debian/Ubuntu)")
    own_s = CALLS_PER_RUN * args.latency
    sim = _python("bench/serve_load.py", "_sim", str(args.latency), stdout=subprocess.PIPE)
    assert sim.stdout is not None
    base_url = sim.stdout.readline().strip()
    results: dict[str, Any] = {"latency_s": args.latency, "calls_per_run": CALLS_PER_RUN, "levels": {}}
    logs = tempfile.mkdtemp(prefix="agentwatch-bench-")
    print(f"load average before: {_loadavg()}", flush=True)
    try:
        for concurrency in args.concurrency:
            count = args.count or DEFAULT_COUNTS.get(concurrency, 2 * concurrency)
            rounds = []
            for r in range(args.rounds):
                row: dict[str, Any] = {}
                sides = ("service", "bare") if r % 2 == 0 else ("bare", "service")
                for side in sides:
                    measure = measure_service if side == "service" else measure_bare
                    row[side] = measure(
                        base_url, concurrency, count, own_s, f"{logs}/{side}-{concurrency}-{r}.jsonl", sim.pid
                    )
                row["loadavg"] = _loadavg()
                rounds.append(row)
                _print_round(concurrency, count, r, row)
            results["levels"][concurrency] = {"count": count, "rounds": rounds, "summary": _summarize(rounds)}
            _print_summary(concurrency, results["levels"][concurrency]["summary"])
    finally:
        sim.kill()
        sim.wait()
    print(f"load average after: {_loadavg()}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


COLUMNS = (
    "runs_per_s",
    "added_p50_ms",
    "added_p99_ms",
    "run_p50_ms",
    "run_p99_ms",
    "cpu_ms_per_run",
    "sim_cpu_ms_per_run",
    "rss_kib_per_inflight_run",
    "errors",
)


def _summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, and the median of the within-pair ratios/differences."""
    out: dict[str, Any] = {}
    for side in ("service", "bare"):
        out[side] = {k: statistics.median(r[side][k] for r in rounds) for k in COLUMNS if k != "errors"}
        out[side]["errors"] = sum(r[side]["errors"] for r in rounds)
    out["throughput_ratio"] = statistics.median(r["service"]["runs_per_s"] / r["bare"]["runs_per_s"] for r in rounds)
    out["p99_over_bare_ms"] = statistics.median(
        r["service"]["added_p99_ms"] - r["bare"]["added_p99_ms"] for r in rounds
    )
    out["cpu_ratio"] = statistics.median(r["service"]["cpu_ms_per_run"] / r["bare"]["cpu_ms_per_run"] for r in rounds)
    out["loadavg"] = [r["loadavg"] for r in rounds]
    return out


def _print_round(concurrency: int, count: int, r: int, row: dict[str, Any]) -> None:
    print(f"\nconcurrency {concurrency}, {count} runs, round {r + 1} (load average {row['loadavg']})")
    print(
        f"  {'':8} {'runs/s':>8} {'added p50':>10} {'added p99':>10} {'run p50':>9} {'run p99':>9}"
        f" {'CPU-ms/run':>11} {'sim CPU-ms':>11} {'KiB/run':>8} errors"
    )
    for name in ("service", "bare"):
        x = row[name]
        print(
            f"  {name:8} {x['runs_per_s']:8.1f} {x['added_p50_ms']:8.1f}ms {x['added_p99_ms']:8.1f}ms "
            f"{x['run_p50_ms']:7.0f}ms {x['run_p99_ms']:7.0f}ms {x['cpu_ms_per_run']:11.2f} "
            f"{x['sim_cpu_ms_per_run']:11.2f} {x['rss_kib_per_inflight_run']:8.1f} {x['errors']}",
            flush=True,
        )


def _print_summary(concurrency: int, s: dict[str, Any]) -> None:
    print(
        f"  => concurrency {concurrency}, median of rounds: service/bare throughput {s['throughput_ratio']:.1%}, "
        f"service added p99 {s['service']['added_p99_ms']:.1f} ms ({s['p99_over_bare_ms']:+.1f} ms over bare), "
        f"CPU per run x{s['cpu_ratio']:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
