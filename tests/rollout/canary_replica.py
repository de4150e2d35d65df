"""One replica of a service that routes through a shared canary (run as a subprocess by test_canary_fleet).

It waits for ``--go`` to exist, then serves keys ``{name}-user-{i}`` one after another through
``Canary.run`` against the simulator until ``--stop`` exists, writing what it saw to ``--status``
(JSON, replaced atomically after every run): the state, step and share it routes by, how many runs
each version served, how many went to the candidate after this replica had seen the rollback, and
how many rollbacks this replica announced.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import anthropic

from agentwatch import Agent, Limits
from agentwatch.rollout import Canary, CanaryGuards, CanaryState, Ramp, Rollback, SlidingWindow
from agentwatch.rollout.redis_state import RedisCanaryStore
from agentwatch.tools import calculator

STABLE_MODEL = "claude-haiku-4-5-20251001"
CANDIDATE_MODEL = "claude-sonnet-4-6"
TASK = "What is 1234 * 5678?"


def write(path: Path, status: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--name", "--redis", "--sim", "--status", "--go", "--stop", "--salt"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--steps", default="0.2,0.6,1.0")
    parser.add_argument("--min-runs", type=int, default=6)
    parser.add_argument("--step-runs", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.5)
    parser.add_argument("--poll", type=float, default=0.2)
    args = parser.parse_args()

    stable = Agent(
        name="fleet-assistant",
        model=STABLE_MODEL,
        tools=[calculator],
        limits=Limits(max_iterations=5, max_retries=0),
        version="v1",
    )
    rollbacks: list[Rollback] = []
    canary = Canary(
        stable,
        stable.replace(model=CANDIDATE_MODEL, version="v2"),
        guards=CanaryGuards(max_error_rate=0.2),
        window=SlidingWindow(size=50),
        min_runs=args.min_runs,
        salt=args.salt,
        ramp=Ramp(tuple(float(s) for s in args.steps.split(",")), args.step_runs, args.step_seconds),
        store=RedisCanaryStore(args.redis, poll_interval_s=args.poll),
        on_rollback=rollbacks.append,
    )
    client = anthropic.Anthropic(api_key="test", base_url=args.sim, max_retries=0)
    status_path, go, stop = Path(args.status), Path(args.go), Path(args.stop)
    status: dict[str, Any] = {
        "ready": True,
        "runs": 0,
        "served": {"v1": 0, "v2": 0},
        "candidate_after_rollback_seen": 0,
        "shares_seen": [],
        "rollbacks_announced": 0,
    }
    write(status_path, status)
    while not go.exists():
        time.sleep(0.01)
    i = 0
    while not stop.exists():
        seen = canary.state  # what this replica routes by as the run starts
        result = canary.run(TASK, key=f"{args.name}-user-{i}", client=client)
        i += 1
        status["runs"] = i
        status["served"][result.agent_version] += 1
        if seen is CanaryState.ROLLED_BACK and result.agent_version == "v2":
            status["candidate_after_rollback_seen"] += 1
        if seen is CanaryState.ACTIVE and canary.share not in status["shares_seen"]:
            status["shares_seen"].append(canary.share)
        status["state"] = canary.state.value
        status["rollbacks_announced"] = len(rollbacks)
        write(status_path, status)
        time.sleep(0.002)  # pacing: two replicas share two cores with the simulator


if __name__ == "__main__":
    main()
