"""Overhead benchmark: time added per LLM call over the bare Anthropic SDK call, agentwatch vs its peers.

    python bench/overhead.py                 # defaults: 3 rounds x 2000 calls per mode (~2-3 minutes)
    python bench/overhead.py --quick         # 3 rounds x 300 calls (~1 minute)
    python bench/overhead.py --json out.json --breakdown --profile

Each mode runs in its own fresh interpreter (``bench/_worker.py``) against an in-process
``httpx2.MockTransport`` answering canned Messages API JSON (no network). Modes:

  bare           the SDK call, SDK tracing off                       (the baseline)
  sdk-tracing    the SDK 2.x built-in OpenTelemetry spans (its default)
  openllmetry    opentelemetry-instrumentation-anthropic, SDK tracing off
  openinference  openinference-instrumentation-anthropic, SDK tracing off
  agentwatch     a one-call ``Agent.run`` with spans + metrics + JSON log file + cost
  signals-floor  the bare calls plus the same spans, attributes, metric points and log lines an agentwatch run
                 emits, made with bare OTel SDK calls and json (``_floor.py``): what the signals cost on their
                 own, the least any runner that keeps them all on the caller's thread can add

Every mode has the same real SDK providers installed (TracerProvider + BatchSpanProcessor, MeterProvider +
reader; exporters that only count), and every peer runs with its defaults. Modes are interleaved in rounds
(order rotated each round); a mode's number is the median of its per-round medians, and its added time is
the median over rounds of (mode median - bare median) in the same round. The "at min" column is the same for
the fastest operation of each mode (mode min - bare min): a noisy host inflates it least, so it is printed as a
cross-check; the verdicts use the medians.

The second table times a whole scripted 3-call, 2-tool conversation (calculator, web_search): agentwatch
runs it as an agent; the other modes run the same calls and tools in a hand-written loop on the SDK.

Peers are installed in a venv outside the repo (see ``_venv.py``); a peer that cannot be installed or
does not work is reported as ``unavailable: <reason>``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _venv

WORKER = _venv.BENCH / "_worker.py"
PEERS = ("sdk-tracing", "openllmetry", "openinference")
MODES = ("bare", *PEERS, "agentwatch")
BREAKDOWN = ("agentwatch-runtime", "agentwatch-spans", "agentwatch-spans-metrics")
# What the signals a one-call run documents cost on their own, made with bare OTel SDK calls (``_worker.py``).
FLOOR = "signals-floor"
# The targets (issue 13): a whole one-call run adds no more than the SDK's own tracing adds; a whole 3-call,
# 2-tool run adds no more than the lightest peer's hand-written loop.
TARGET_FRACTION = 1.0
TARGET_PEER = {"call": "sdk-tracing", "run3": None}  # None: the lightest peer

# Variables that would change what a mode records: stripped, so every mode runs with its defaults.
_ENV_PREFIXES = ("OTEL_", "ANTHROPIC_", "TRACELOOP_", "OPENINFERENCE_", "AGENTWATCH_")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _worker(python: Path, args: list[str], timeout_s: float = 600) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="agentwatch-bench-") as tmp:
        out = Path(tmp) / "result.json"
        try:
            proc = subprocess.run(
                [str(python), str(WORKER), *args, "--out", str(out)],
                env=_env(),
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "reason": f"worker timed out after {timeout_s:.0f}s"}
        if not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"ok": False, "reason": f"worker exited {proc.returncode}: {' | '.join(tail)}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# --- aggregation ----------------------------------------------------------------------------------
def aggregate(rounds: list[dict[str, dict[str, Any]]], modes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per mode: medians over rounds, and added time paired with bare round by round."""
    table: dict[str, dict[str, Any]] = {}
    for mode in modes:
        results = [r[mode] for r in rounds if mode in r]
        failed = [r for r in results if not r.get("ok")]
        if not results or failed:
            reason = failed[0].get("reason", "no result") if failed else "not run"
            table[mode] = {"available": False, "reason": reason}
            continue
        row: dict[str, Any] = {
            "available": True,
            "median_us": statistics.median(r["median_us"] for r in results),
            "p90_us": statistics.median(r["p90_us"] for r in results),
            "cpu_us_per_op": statistics.median(r["cpu_us_per_op"] for r in results),
            "rounds_median_us": [round(r["median_us"], 1) for r in results],
        }
        for key in ("spans_per_op", "span_names", "metrics", "log_lines_per_op"):
            if key in results[-1]:
                row[key] = results[-1][key]
        row["dropped_spans"] = sum(r.get("dropped_spans", 0) for r in results)
        table[mode] = row
    bare = table.get("bare", {})
    for mode, row in table.items():
        if not row["available"] or not bare.get("available"):
            continue
        added = [r[mode]["median_us"] - r["bare"]["median_us"] for r in rounds if r.get(mode, {}).get("ok")]
        row["added_rounds_us"] = [round(a, 1) for a in added]
        row["added_us"] = statistics.median(added) if added else None
        # the fastest operation's added time: what a noisy host inflates least (a cross-check, not the verdict)
        fastest = [r[mode]["min_us"] - r["bare"]["min_us"] for r in rounds if r.get(mode, {}).get("ok")]
        row["added_min_us"] = statistics.median(fastest) if fastest else None
    return table


def verdict(
    table: dict[str, dict[str, Any]], rounds: list[dict[str, dict[str, Any]]], against: str | None = None
) -> dict[str, Any]:
    """agentwatch's added time against ``against`` (a peer mode), or the lightest peer when None."""
    peers = {m: table[m]["added_us"] for m in PEERS if table.get(m, {}).get("available")}
    if against is not None:
        peers = {m: v for m, v in peers.items() if m == against}
    aw = table.get("agentwatch", {})
    if not peers or not aw.get("available"):
        return {"met": None, "text": "no verdict: agentwatch or the peer to compare with is unavailable"}
    lightest = min(peers, key=lambda m: peers[m])
    allowed = TARGET_FRACTION * peers[lightest]
    added = aw["added_us"]
    met = added <= allowed
    held = 0
    for r in rounds:
        ok = [m for m in peers if r.get(m, {}).get("ok")]
        if r.get("agentwatch", {}).get("ok") and ok:
            aw_r = r["agentwatch"]["median_us"] - r["bare"]["median_us"]
            peer_r = min(r[m]["median_us"] - r["bare"]["median_us"] for m in ok)
            held += aw_r <= TARGET_FRACTION * peer_r
    times = added / peers[lightest] if peers[lightest] > 0 else float("inf")
    who = f"{lightest}" if against is not None else f"the lightest peer. Lightest peer: {lightest}"
    text = (
        f"target: agentwatch adds <= {TARGET_FRACTION:g} x {who} "
        f"{peers[lightest]:+.0f} us, so allowed <= {allowed:+.0f} us; agentwatch adds {added:+.0f} us "
        f"({times:.2f} x {lightest}) -> {'MET' if met else 'MISSED'} (held in {held}/{len(rounds)} rounds)"
    )
    return {
        "met": met,
        "lightest_peer": lightest,
        "lightest_peer_added_us": peers[lightest],
        "allowed_us": allowed,
        "agentwatch_added_us": added,
        "agentwatch_over_lightest": times,
        "rounds_held": held,
        "rounds": len(rounds),
        "text": text,
    }


# --- printing -------------------------------------------------------------------------------------
def _emits(row: dict[str, Any]) -> str:
    parts = []
    if "spans_per_op" in row:
        parts.append(f"{row['spans_per_op']:g} spans")
    if row.get("dropped_spans"):
        parts.append(f"({row['dropped_spans']} spans dropped: queue full)")
    if row.get("metrics"):
        parts.append(f"{len(row['metrics'])} metrics")
    if "log_lines_per_op" in row:
        parts.append(f"{row['log_lines_per_op']:g} log lines")
    return ", ".join(parts) or "-"


def print_table(title: str, unit: str, table: dict[str, dict[str, Any]], per_call_divisor: int = 1) -> None:
    aw_added = table.get("agentwatch", {}).get("added_us")
    print(title)
    header = (
        f"  {'mode':<26}{'median us/' + unit:>16}{'p90 us':>10}{'added us':>11}  {'added per round':<24}"
        f"{'added / aw added':>17}{'at min':>9}  emits per {unit}"
    )
    if per_call_divisor > 1:
        header = header.replace("  emits", f"{'added/call':>12}  emits")
    print(header)
    for mode, row in table.items():
        if not row["available"]:
            print(f"  {mode:<26}unavailable: {row['reason']}")
            continue
        added = row.get("added_us")
        if mode == "bare":
            added_s, rounds_s, ratio_s, per_call, fastest_s = "-", "", "-", "-", "-"
        else:
            added_s = f"{added:+.1f}"
            rounds_s = "(" + ", ".join(f"{a:+.0f}" for a in row["added_rounds_us"]) + ")"
            ratio_s = f"{added / aw_added:.2f}" if aw_added and aw_added > 0 else "n/a"
            per_call = f"{added / per_call_divisor:+.1f}"
            fastest_s = f"{row['added_min_us']:+.0f}"
        line = (
            f"  {mode:<26}{row['median_us']:>16.1f}{row['p90_us']:>10.1f}{added_s:>11}  {rounds_s:<24}{ratio_s:>17}"
            f"{fastest_s:>9}"
        )
        if per_call_divisor > 1:
            line += f"{per_call:>12}"
        print(line + f"  {_emits(row)}")


def print_breakdown(table: dict[str, dict[str, Any]]) -> None:
    steps = [
        ("agentwatch-runtime", "runner only: no providers, no log handler (spans non-recording)"),
        ("agentwatch-spans", "+ real spans (TracerProvider + BatchSpanProcessor)"),
        ("agentwatch-spans-metrics", "+ metrics (MeterProvider + reader)"),
        ("agentwatch", "+ JSON log file = full instrumentation"),
    ]
    print("agentwatch breakdown (one-call run; added us over bare, and what each step adds; medians, then at min)")
    previous = previous_min = 0.0
    for mode, what in steps:
        row = table.get(mode, {})
        if not row.get("available"):
            print(f"  {mode:<26}unavailable: {row.get('reason', 'not run')}")
            continue
        added, added_min = row["added_us"], row["added_min_us"]
        print(
            f"  {mode:<26}{added:>+9.1f}   step {added - previous:>+8.1f}   at min {added_min:>+7.1f}"
            f"   step {added_min - previous_min:>+7.1f}   {what}"
        )
        previous, previous_min = added, added_min


def print_profile(profile: dict[str, Any]) -> None:
    total = profile["profiled_us_per_op"]
    print(
        f"cProfile of {profile['n']} one-call agentwatch runs: {total:.0f} us per run under the profiler "
        "(cProfile slows Python calls ~3x; read the shares, not the absolute us)"
    )
    for title, key in (
        ("top agentwatch functions by cumulative time", "agentwatch_by_cumulative"),
        ("top functions anywhere by own time", "all_by_own_time"),
    ):
        print(f"  {title}:")
        print(f"    {'cum us':>8}{'cum %':>7}{'own us':>8}{'calls':>7}  function")
        for r in profile[key]:
            share = 100 * r["cum_us_per_op"] / total if total else 0.0
            print(
                f"    {r['cum_us_per_op']:>8.1f}{share:>6.1f}%{r['own_us_per_op']:>8.1f}{r['calls_per_op']:>7g}"
                f"  {r['function']}"
            )


def floor_line(table: dict[str, dict[str, Any]], peer: str) -> dict[str, Any]:
    """How the signals floor compares with ``peer`` and with agentwatch."""
    floor, aw, other = table.get(FLOOR, {}), table.get("agentwatch", {}), table.get(peer, {})
    if not (floor.get("available") and aw.get("available") and other.get("available")):
        return {"text": f"floor: unavailable ({floor.get('reason', 'not run')})"}
    floor_us, aw_us, peer_us = floor["added_us"], aw["added_us"], other["added_us"]
    text = (
        f"floor: the same signals made with bare OTel SDK calls add {floor_us:+.0f} us "
        f"({floor_us / peer_us:.2f} x {peer}); agentwatch adds {aw_us / floor_us:.2f} x the floor "
        f"({aw_us - floor_us:+.0f} us for what the runner does besides the signals: the run loop, guards, "
        "pricing, redaction, tool input validation, error handling)"
    )
    floor_min, aw_min, peer_min = floor["added_min_us"], aw["added_min_us"], other["added_min_us"]
    if floor_min > 0 and peer_min > 0:
        text += f"; at min: floor {floor_min / peer_min:.2f} x {peer}, agentwatch {aw_min / floor_min:.2f} x the floor"
    return {
        "floor_added_us": floor_us,
        "floor_over_peer": floor_us / peer_us,
        "agentwatch_over_floor": aw_us / floor_us,
        "text": text,
    }


def busy_note(raw: dict[str, list[dict[str, dict[str, Any]]]]) -> str | None:
    """A warning when the machine took CPU away during measurements (wall time well above process CPU time)."""
    results = [res for rounds in raw.values() for r in rounds for res in r.values() if res.get("ok")]
    busy = [res for res in results if res["wall_us_per_op"] > 1.15 * res["cpu_us_per_op"]]
    if not busy:
        return None
    return (
        f"note: the machine was busy during {len(busy)} of {len(results)} measurements (wall time > 1.15 x "
        "process CPU time); the medians over rounds absorb most of it, the per-round columns show the spread"
    )


# --- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="timed LLM calls per mode per round (default 2000)")
    parser.add_argument("--runs", type=int, help="timed 3-call runs per mode per round (default n/4)")
    parser.add_argument("--warmup", type=int, help="untimed operations first (default n/10, at least 50)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all modes (default 3)")
    parser.add_argument("--quick", action="store_true", help="300 calls per mode per round (~1 minute)")
    parser.add_argument("--json", metavar="PATH", help="also write every number as JSON to PATH")
    parser.add_argument("--python", metavar="PATH", help="interpreter for the workers (default: the bench venv)")
    parser.add_argument("--no-venv", action="store_true", help="run workers with this interpreter; no venv set-up")
    parser.add_argument("--no-runs", action="store_true", help="skip the 3-call, 2-tool table")
    parser.add_argument("--breakdown", action="store_true", help="also time agentwatch with spans/metrics/logs off")
    parser.add_argument("--profile", nargs="?", const=1000, type=int, metavar="N", help="cProfile N agentwatch runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 300
    runs = args.runs or max(50, args.n // 4)
    warmup = args.warmup if args.warmup is not None else max(50, args.n // 10)
    began = time.perf_counter()

    if args.python:
        python = Path(args.python)
    elif args.no_venv:
        python = Path(sys.executable)
    else:
        try:
            python = _venv.ensure()
        except RuntimeError as exc:
            print(f"[bench] {exc}; falling back to {sys.executable} (peers may be unavailable)", file=sys.stderr)
            python = Path(sys.executable)
    versions = _worker(python, ["--versions"]).get("versions", {})

    call_modes = MODES + (FLOOR,) + (BREAKDOWN if args.breakdown else ())
    scenarios = [("call", call_modes, args.n, warmup)]
    if not args.no_runs:
        scenarios.append(("run3", (*MODES, FLOOR), runs, max(20, warmup // 4)))
    raw: dict[str, list[dict[str, dict[str, Any]]]] = {name: [] for name, *_ in scenarios}
    for r in range(args.rounds):
        for name, modes, n, w in scenarios:
            shift = r % len(modes)
            order = modes[shift:] + modes[:shift]  # rotated each round: no mode always runs first or last
            results: dict[str, dict[str, Any]] = {}
            for mode in order:
                print(f"[bench] round {r + 1}/{args.rounds} {name:<4} {mode:<26}", end="", file=sys.stderr, flush=True)
                results[mode] = _worker(python, ["--mode", mode, "--scenario", name, "--n", str(n), "--warmup", str(w)])
                got = results[mode]
                print(
                    f"{got['median_us']:>9.1f} us" if got.get("ok") else f" unavailable: {got.get('reason')}",
                    file=sys.stderr,
                )
            raw[name].append(results)

    tables = {name: aggregate(raw[name], modes) for name, modes, *_ in scenarios}
    verdicts = {name: verdict(tables[name], raw[name], TARGET_PEER[name]) for name in tables}
    for name, result in verdicts.items():
        result["floor"] = floor_line(tables[name], result.get("lightest_peer") or "sdk-tracing")
    profile = None
    if args.profile:
        print(f"[bench] profiling {args.profile} agentwatch runs", file=sys.stderr)
        got = _worker(python, ["--mode", "agentwatch", "--scenario", "call", "--profile", str(args.profile)])
        profile = got.get("profile") if got.get("ok") else {"error": got.get("reason")}
    elapsed = time.perf_counter() - began

    print()
    print("agentwatch overhead benchmark (in-process httpx2.MockTransport, no network)")
    print(
        f"  {platform.python_implementation()} {versions.get('python')} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "python")
    )
    print(
        f"  {args.rounds} interleaved rounds, each mode in a fresh process; {args.n} calls"
        + ("" if args.no_runs else f" / {runs} runs")
        + f" per mode per round after warm-up; medians of round medians; total {elapsed:.0f}s"
    )
    print()
    print_table(
        "Per LLM call: added time over the bare SDK call (agentwatch: a whole one-call Agent.run)",
        "call",
        {m: tables["call"][m] for m in (*MODES, FLOOR)},
    )
    print("  " + verdicts["call"]["text"])
    print("  " + verdicts["call"]["floor"]["text"])
    if args.breakdown:
        print()
        print_breakdown(tables["call"])
    if "run3" in tables:
        print()
        print_table(
            "Whole run, 3 LLM calls + 2 tool calls: agentwatch Agent.run vs a hand-written SDK loop per mode",
            "run",
            tables["run3"],
            per_call_divisor=3,
        )
        print("  " + verdicts["run3"]["text"])
        print("  " + verdicts["run3"]["floor"]["text"])
    note = busy_note(raw)
    if note:
        print()
        print(note)
    if profile is not None:
        print()
        if "error" in profile:
            print(f"profile failed: {profile['error']}")
        else:
            print_profile(profile)

    if args.json:
        document = {
            "config": {
                "n_calls": args.n,
                "n_runs": None if args.no_runs else runs,
                "warmup": warmup,
                "rounds": args.rounds,
                "python": str(python),
                "cpus": os.cpu_count(),
                "elapsed_s": round(elapsed, 1),
            },
            "versions": versions,
            "tables": tables,
            "verdicts": verdicts,
            "raw": raw,
            "profile": profile,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
