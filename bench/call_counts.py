"""Python function calls per operation of a benchmark mode: a deterministic measure where wall time is noisy.

    python bench/call_counts.py                          # agentwatch and bare, one-call and 3-call runs
    PYTHONPATH=/other/checkout/src python bench/call_counts.py --modes agentwatch

Builds the same operation as ``_worker.py`` (same providers, JSON log file, mock API), warms it up, then
counts every Python and C function call of ``--ops`` operations with ``sys.setprofile`` and prints the
mean per operation. Two versions of the code compare by running this under each one's ``PYTHONPATH``;
the count does not depend on the machine's load, unlike ``overhead.py``, which decides the targets.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _worker


def count_calls(mode: str, scenario: str, ops: int, warmup: int) -> float:
    log_path = os.path.join(tempfile.mkdtemp(prefix="agentwatch-calls-"), "agentwatch.jsonl")
    op, check, _handles = _worker.build(mode, scenario, log_path)
    for _ in range(warmup):
        check(op())
    calls = 0

    def profiler(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call" or event == "c_call":
            calls += 1

    sys.setprofile(profiler)
    try:
        for _ in range(ops):
            op()
    finally:
        sys.setprofile(None)
    return calls / ops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=["bare", "agentwatch"], choices=_worker.MODES)
    parser.add_argument("--scenarios", nargs="+", default=["call", "run3"], choices=["call", "run3"])
    parser.add_argument("--ops", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)
    for scenario in args.scenarios:
        for mode in args.modes:
            # each mode installs global providers: a fresh interpreter per mode, like overhead.py
            if len(args.modes) * len(args.scenarios) > 1:
                cmd = [sys.executable, __file__, "--modes", mode, "--scenarios", scenario, "--ops", str(args.ops)]
                subprocess.run([*cmd, "--warmup", str(args.warmup)], check=True)
                continue
            calls = count_calls(mode, scenario, args.ops, args.warmup)
            print(f"{scenario:<5} {mode:<26} {calls:>9.1f} Python calls per operation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
