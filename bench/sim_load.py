"""Load on the simulator: throughput as a share of the ideal C/L, refused connections and peak RSS.

``agentwatch sim --latency L`` runs in its own process. C workers each open a keep-alive connection at the
same moment (the listen backlog's test: a refused connect is counted) and send ``--rounds`` one-call
requests back to back, each answer checked (200, a ``message`` body). A server that keeps up finishes in
about ``rounds * L``, so throughput / (C / L) is the share printed; the first wave's connection set-up is
part of the time. Peak RSS is the server's ``VmHWM``.

    .venv/bin/python bench/sim_load.py            # C = 300, 1000, 2000; about 40 s
    .venv/bin/python bench/sim_load.py --levels 300:0.5 --rounds 5
    .venv/bin/python bench/sim_load.py --sdk --clients 2   # through AsyncAnthropic instead

The default load generator writes raw HTTP/1.1 (~0.1 ms of CPU a call) so that the simulator, not the
client, is measured; ``--sdk`` goes through the real SDK, whose own cost per call (2-5 ms at these
concurrencies, in httpx2's pool) makes the client the limit on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "claude-haiku-4-5-20251001"
ROUNDS = 8
LEVELS = ((300, 0.5), (1000, 1.0), (2000, 2.0))  # (concurrency C, latency L): ideal C/L = 600, 1000, 1000 req/s


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_BODY = json.dumps({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]})
_REQUEST = (
    "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: bench\r\nanthropic-version: 2023-06-01\r\n"
    f"content-type: application/json\r\ncontent-length: {len(_BODY)}\r\n\r\n{_BODY}"
).encode()


async def _raw_worker(host: str, port: int, rounds: int) -> tuple[int, list[str]]:
    """One keep-alive connection sending ``rounds`` requests; each reply must be a 200 with a message."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return 0, [type(exc).__name__] * rounds
    done, errors = 0, []
    try:
        for _ in range(rounds):
            writer.write(_REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length"))
            body = json.loads(await reader.readexactly(length))
            if head.startswith(b"HTTP/1.1 200") and body.get("type") == "message":
                done += 1
            else:
                errors.append(f"status {head[9:12].decode()}")
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(type(exc).__name__)
    finally:
        writer.close()
    return done, errors


async def _sdk_worker(client: Any, rounds: int) -> tuple[int, list[str]]:
    import anthropic

    done, errors = 0, []
    for _ in range(rounds):
        try:
            await client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
            done += 1
        except anthropic.APIError as exc:
            errors.append(type(exc).__name__)
    return done, errors


async def _load(base_url: str, workers: int, rounds: int, sdk: bool) -> dict[str, Any]:
    """One load process: ``workers`` concurrent loops of ``rounds`` calls each."""
    client = None
    if sdk:
        import anthropic
        import httpx2

        limits = httpx2.Limits(max_connections=workers, max_keepalive_connections=workers)
        http = anthropic.DefaultAsyncHttpxClient(limits=limits, timeout=60)
        client = anthropic.AsyncAnthropic(api_key="bench", base_url=base_url, max_retries=0, http_client=http)
    host, port = base_url.removeprefix("http://").split(":")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started, cpu = time.monotonic(), time.process_time()
    jobs = [_sdk_worker(client, rounds) if sdk else _raw_worker(host, int(port), rounds) for _ in range(workers)]
    outcomes = await asyncio.gather(*jobs)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    if client is not None:
        await client.close()
    errors: dict[str, int] = {}
    for _, failed in outcomes:
        for name in failed:
            errors[name] = errors.get(name, 0) + 1
    return {"done": sum(d for d, _ in outcomes), "errors": errors, "elapsed": elapsed, "cpu": cpu}


def _level(concurrency: int, latency: float, rounds: int, clients: int, sdk: bool) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, "-m", "agentwatch.sim", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().split()[-1]
        shares = [concurrency // clients + (i < concurrency % clients) for i in range(clients)]
        loaders = [
            subprocess.Popen(
                [sys.executable, __file__, "--load", base_url, str(n), str(rounds), "sdk" if sdk else "raw"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in shares
        ]
        for p in loaders:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        cpu_before = _cpu_s(server.pid)
        for p in loaders:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.communicate(timeout=120)[0].splitlines()[-1]) for p in loaders]
        server_cpu = _cpu_s(server.pid) - cpu_before
        rss = _peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    done = sum(r["done"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for name, n in r["errors"].items():
            errors[name] = errors.get(name, 0) + n
    throughput = done / elapsed
    return {
        "C": concurrency,
        "L": latency,
        "requests": concurrency * rounds,
        "ok": done,
        "errors": errors,
        "req_s": throughput,
        "share": throughput / (concurrency / latency),
        "server_cpu_s": server_cpu,
        "client_cpu_s": sum(r["cpu"] for r in results),
        "elapsed_s": elapsed,
        "peak_rss_mb": rss,
    }


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", nargs="*", help="C:L pairs, e.g. 300:0.5 1000:1 (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="requests per worker (default %(default)s)")
    parser.add_argument("--clients", type=int, default=1, help="load processes (default %(default)s)")
    parser.add_argument("--sdk", action="store_true", help="load through AsyncAnthropic instead of raw HTTP/1.1")
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        base_url, workers, rounds, kind = args.load
        print(json.dumps(asyncio.run(_load(base_url, int(workers), int(rounds), kind == "sdk"))))
        return 0
    resource.setrlimit(resource.RLIMIT_NOFILE, (20_000, 20_000))
    levels = [tuple(map(float, spec.split(":"))) for spec in args.levels] if args.levels else LEVELS
    print(
        f"{'C':>5} {'L s':>5} {'ok':>6} {'req/s':>7} {'of C/L':>7} {'refused/errors':>16} "
        f"{'server CPU s':>12} {'client CPU s':>12} {'peak RSS MB':>11}"
    )
    for c, latency in levels:
        row = _level(int(c), float(latency), args.rounds, args.clients, args.sdk)
        errors = ", ".join(f"{k}={v}" for k, v in row["errors"].items()) or "0"
        print(
            f"{row['C']:>5} {row['L']:>5g} {row['ok']:>6} {row['req_s']:>7.0f} {row['share']:>7.1%} {errors:>16} "
            f"{row['server_cpu_s']:>12.1f} {row['client_cpu_s']:>12.1f} {row['peak_rss_mb']:>11.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
