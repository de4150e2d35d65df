"""Prompt caching: the Anthropic input-token rule on spans, cache attributes, and cost per call."""

from __future__ import annotations

import uuid

import httpx2
import pytest

from agentwatch import Usage
from agentwatch.telemetry import names as n
from runner.support import MODEL, consume, demo_agent, sync_client

from .helpers import named, trace_spans

# Haiku 4.5, USD per million tokens: input, 5-minute cache write, cache read, output.
INPUT, WRITE_5M, READ, OUTPUT = 1.00, 1.25, 0.10, 5.00


class RawUsage:
    """Keeps the ``usage`` object of every JSON response, as the API sent it (before agentwatch)."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def client(self) -> httpx2.Client:
        def keep(response: httpx2.Response) -> None:
            response.read()
            self.seen.append(response.json()["usage"])

        return httpx2.Client(event_hooks={"response": [keep]})


def cached_agent(name: str):
    system = f"Session {uuid.uuid4()}. You are a meticulous research assistant. " * 60  # fresh cache prefix
    return demo_agent(name, system=system, cache_prompt=True)


def test_input_tokens_include_cache_reads_and_writes(sim, spans) -> None:
    agent = cached_agent("cache")
    raw = RawUsage()
    first = agent.run("What is 1234 * 5678?", client=sync_client(sim, http_client=raw.client()))
    second = agent.run("What is 1234 * 5678?", client=sync_client(sim, http_client=raw.client()))

    chats = named(trace_spans(spans, first.trace_id), "chat") + named(trace_spans(spans, second.trace_id), "chat")
    assert len(chats) == len(raw.seen) == 4
    assert raw.seen[0]["cache_creation_input_tokens"] > 0  # the first call writes the prefix
    assert raw.seen[2]["cache_read_input_tokens"] > 0 and raw.seen[2]["cache_creation_input_tokens"] == 0
    for chat, usage in zip(chats, raw.seen, strict=True):
        uncached, read, write = (
            usage["input_tokens"],
            usage["cache_read_input_tokens"],
            usage["cache_creation_input_tokens"],
        )
        attributes = chat.attributes
        assert attributes[n.GEN_AI_USAGE_INPUT_TOKENS] == uncached + read + write  # never just `uncached`
        assert attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == read
        assert attributes[n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == write
        assert attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["output_tokens"]
        expected = (uncached * INPUT + read * READ + write * WRITE_5M + usage["output_tokens"] * OUTPUT) / 1e6
        assert attributes[n.AW_CALL_COST_USD] == pytest.approx(expected, abs=1e-10)
    assert first.usage.cache_write_tokens > 0 and second.usage.cache_read_tokens > first.usage.cache_read_tokens
    assert second.cost_usd < first.cost_usd  # reading the cache is cheaper than writing it

    roots = [s for s in spans.get_finished_spans() if s.name == f"invoke_agent {agent.name}"]
    for root, result in zip(sorted(roots, key=lambda s: s.start_time), [first, second], strict=True):
        assert root.attributes[n.AW_RUN_INPUT_TOKENS] == result.usage.total_input_tokens
        assert root.attributes[n.AW_RUN_CACHE_READ_TOKENS] == result.usage.cache_read_tokens
        assert root.attributes[n.AW_RUN_CACHE_WRITE_TOKENS] == result.usage.cache_write_tokens


def test_streaming_keeps_the_cache_attributes(sim, spans) -> None:
    agent = cached_agent("cache-stream")
    plain = agent.run("What is 1234 * 5678?", client=sync_client(sim))  # writes the cache
    _, streamed = consume(agent.stream("What is 1234 * 5678?", client=sync_client(sim)))

    assert streamed.usage.cache_read_tokens > 0
    chats = named(trace_spans(spans, streamed.trace_id), "chat")
    assert sum(c.attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] for c in chats) == streamed.usage.cache_read_tokens
    assert sum(c.attributes[n.GEN_AI_USAGE_INPUT_TOKENS] for c in chats) == streamed.usage.total_input_tokens
    assert streamed.usage.total_input_tokens == plain.usage.total_input_tokens


def test_the_worked_example_prices_right_on_the_result() -> None:
    from agentwatch.cost import Pricing

    usage = Usage(input_tokens=1_000, output_tokens=300, cache_read_tokens=2_000, cache_write_tokens=500)
    assert usage.total_input_tokens == 3_500
    assert Pricing().cost(MODEL, usage) == 0.003325
