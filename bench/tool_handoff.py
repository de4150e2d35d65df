"""What a sync tool call costs through the executor: on a worker thread (the default) vs ``inline=True``.

    python bench/tool_handoff.py               # 30 blocks of 500 calls per variant (~15 s)

One process, the same tool, the variants in alternating blocks; the number is the median over blocks of the
wall time per ``execute_tool`` call (wall, not CPU: the caller waits for the worker thread), and the direct
call of the function for reference. The difference between the first two is the thread hand-off that lets
a hung tool be abandoned at its timeout.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

from agentwatch.tools import Tool, execute_tool, tool


def _pair() -> tuple[Tool[..., str], Tool[..., str]]:
    def echo(text: str) -> str:
        """Return the text."""
        return text

    return tool(name="isolated")(echo), tool(name="inline", inline=True)(echo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--per-block", type=int, default=500)
    args = parser.parse_args(argv)
    isolated, inline = _pair()
    tools = {t.name: t for t in (isolated, inline)}
    arguments = {"text": "hello"}

    def through(name: str) -> Callable[[], object]:
        return lambda: execute_tool(tools, name, arguments, timeout_s=30.0, max_output_chars=1000)

    cases: dict[str, Callable[[], object]] = {
        "execute_tool, worker thread (default)": through("isolated"),
        "execute_tool, inline=True": through("inline"),
        "the function called directly": lambda: inline(**arguments),
    }
    for fn in cases.values():  # warm up (and start the worker thread)
        for _ in range(200):
            fn()
    results: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    gc.freeze()
    for block in range(args.blocks):
        items = list(cases.items())
        if block % 2:
            items.reverse()
        for name, fn in items:
            start = time.perf_counter_ns()
            for _ in range(args.per_block):
                fn()
            results[name].append((time.perf_counter_ns() - start) / args.per_block / 1000)
    print(f"wall time per call, median of {args.blocks} blocks of {args.per_block} (min in brackets)")
    for name, values in results.items():
        print(f"  {name:<40} {statistics.median(values):8.1f} us  (min {min(values):7.1f})")
    medians = {name: statistics.median(values) for name, values in results.items()}
    names = list(cases)
    print(f"  hand-off: {medians[names[0]] - medians[names[1]]:+.1f} us per tool call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
