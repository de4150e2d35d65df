"""A fleet replica for the tests: one process, one ``FleetGate``, runs on demand.

Reads one JSON command per line on stdin and answers one JSON line on stdout:
``{"gate": {...}, "agent": {...}, "sim": URL, "tenant": T, "tasks": [...], "concurrency": N}`` runs the
tasks concurrently with ``arun`` (``"hold": true`` runs them and never answers, to be killed) and answers
``{"results": [{"stop_reason", "stop_detail", "cost_usd", "models", "retry_after_s"}]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any

import anthropic

from agentwatch import Agent, Limits
from agentwatch.fleet import CircuitBreaker, FleetGate, ModelLimits, RateLimit, TenantBudget


def make_gate(config: dict[str, Any]) -> FleetGate:
    budget = TenantBudget(**config["budget"]) if config.get("budget") else None
    rate_limit = None
    if config.get("rate_limit") is not None:
        spec = config["rate_limit"]
        limits = {model: ModelLimits(*numbers) for model, numbers in spec.get("limits", {}).items()}
        rate_limit = RateLimit(limits, learn_from_headers=spec.get("learn", True))
    circuit = CircuitBreaker(**config["circuit"]) if config.get("circuit") else None
    return FleetGate(config["redis"], budget=budget, rate_limit=rate_limit, circuit=circuit)


async def run(command: dict[str, Any], gates: dict[str, FleetGate]) -> dict[str, Any]:
    key = json.dumps(command["gate"], sort_keys=True)
    gate = None if command["gate"] is None else gates.get(key) or gates.setdefault(key, make_gate(command["gate"]))
    options = command.get("agent", {})
    agent = Agent(
        name=options.get("name", "fleet-test"),
        model=options.get("model", "claude-haiku-4-5-20251001"),
        limits=Limits(**options.get("limits", {})),
        gate=gate,
    )
    client = anthropic.AsyncAnthropic(base_url=command["sim"], api_key="test-key")
    slots = asyncio.Semaphore(command.get("concurrency", 25))

    async def one(task: str) -> dict[str, Any]:
        async with slots:
            result = await agent.arun(task, client=client, tenant=command.get("tenant"))
        return {
            "stop_reason": result.stop_reason.value,
            "stop_detail": result.stop_detail,
            "cost_usd": result.cost_usd,
            "models": result.models,
            "retry_after_s": result.retry_after_s,
            "iterations": result.iterations,
        }

    results = await asyncio.gather(*(one(task) for task in command["tasks"]))
    await client.close()
    return {"results": list(results)}


async def main() -> None:
    gates: dict[str, FleetGate] = {}
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        try:
            answer = await run(command, gates)
        except Exception:
            answer = {"error": traceback.format_exc()}
        if not command.get("hold"):
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
