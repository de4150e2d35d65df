"""200 concurrent runs against the simulator: each with its own correct usage, budget and trace."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from agentwatch import StopReason
from agentwatch.telemetry import names as n

from .support import DEMO_TASK, EVAL_CASES, async_client, demo_agent, fast_limits

RUNS = 200
RUN_TIMEOUT_S = 240


def most_at_once(spans: list[ReadableSpan]) -> int:
    """The largest number of ``spans`` open at the same moment."""
    edges = sorted([(s.start_time, 1) for s in spans] + [(s.end_time, -1) for s in spans])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


async def test_200_concurrent_runs_are_correct_and_isolated(sim, spans) -> None:
    # 200 runs share one event loop: on a busy 2-core machine each takes as long as all of them, so
    # the run timeout is far above fast_limits' 20 s (and below pytest's 300 s).
    plain = demo_agent("crowd", limits=fast_limits(timeout_s=RUN_TIMEOUT_S))
    budgeted = demo_agent(
        "crowd-budget", limits=fast_limits(token_budget=1_200, max_tokens=200, timeout_s=RUN_TIMEOUT_S)
    )
    client = async_client(sim)
    jobs = []
    for i in range(RUNS):
        kind = i % 5
        if kind == 0:
            jobs.append(("demo", plain, DEMO_TASK))
        elif kind in (1, 2, 3):
            task, _ = EVAL_CASES[kind - 1]
            jobs.append((f"eval{kind - 1}", plain, task))
        else:
            jobs.append(("budget", budgeted, f"[[loop]] Keep counting, job {i}."))

    results = await asyncio.gather(*(agent.arun(task, client=client) for _, agent, task in jobs))

    by_trace = defaultdict(list)
    for span in spans.get_finished_spans():
        by_trace[format(span.context.trace_id, "032x")].append(span)
    assert len({r.trace_id for r in results}) == RUNS  # distinct traces
    # The runs really were concurrent: many LLM calls were in flight at once (a call that blocked the
    # event loop would leave one at a time). Counted from the spans, so a busy machine cannot fail it.
    chat_spans = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert most_at_once(chat_spans) >= 20

    for (kind, _, _), result in zip(jobs, results, strict=True):
        if kind == "budget":
            assert result.stop_reason is StopReason.TOKEN_BUDGET, result.answer
            assert result.usage.total_tokens <= 1_200
        else:
            assert result.stop_reason is StopReason.END_TURN, result.answer
        if kind == "demo":
            assert "8.1 billion" in result.answer and result.iterations == 3
        elif kind.startswith("eval"):
            for fragment in EVAL_CASES[int(kind[-1])][1]:
                assert fragment in result.answer
        # The run's usage is exactly the sum of its own chat spans, and nobody else's.
        own = by_trace[result.trace_id]
        chats = [s for s in own if s.name.startswith("chat ")]
        assert len(chats) == result.iterations
        assert sum(s.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] for s in chats) == result.usage.total_input_tokens
        assert sum(s.attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] for s in chats) == result.usage.output_tokens
        assert sum(s.attributes[n.AW_CALL_COST_USD] for s in chats) == pytest.approx(result.cost_usd, abs=1e-9)
        tools = [s for s in own if s.name.startswith("execute_tool ")]
        assert len(tools) == len(result.tool_calls)
        (root,) = [s for s in own if s.name.startswith("invoke_agent ")]
        assert root.attributes[n.AW_RUN_INPUT_TOKENS] == result.usage.total_input_tokens
        assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in chats + tools)
