"""The demo web_search tool: finds the right fact offline, says so plainly when it finds nothing."""

from __future__ import annotations

import pytest

import agentwatch.tools.builtins as demo_tools
from agentwatch.tools import execute_tool, web_search
from agentwatch.tools.builtins import search
from agentwatch.tools.search_corpus import CORPUS


@pytest.mark.parametrize(
    ("query", "fact"),
    [
        ("world population 2024", "8.1 billion (8,100,000,000) people in 2024, according to the UN"),
        ("speed of light", "exactly 299,792,458 metres per second (m/s)"),
        ("Earth land area km2", "148,940,000 square kilometres"),
        ("How tall is Mount Everest?", "8,849 metres"),
        ("distance to the moon", "384,400 kilometres"),
    ],
)
def test_finds_the_fact_first(query: str, fact: str) -> None:
    first = web_search(query).splitlines()[0]
    assert first.startswith("1. ")
    assert fact in first


def test_returns_at_most_three_ranked_entries() -> None:
    lines = web_search("speed of light and speed of sound in metres per second").splitlines()
    assert 1 <= len(lines) <= 3
    assert [line.split(". ", 1)[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)]
    assert {"Speed of light", "Speed of sound"} <= {entry.title for entry in search("speed of light sound")}


@pytest.mark.parametrize("query", ["xyzzy plugh", "", "the of and", "   "])
def test_no_results(query: str) -> None:
    assert web_search(query) == f"No results for {query!r}."


def test_huge_query_is_cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 11 MB query is searched by its first MAX_QUERY_CHARS characters only (work, not time, is measured)."""
    searched: list[int] = []
    terms = demo_tools._terms

    def counting_terms(text: str) -> set[str]:
        searched.append(len(text))
        return terms(text)

    monkeypatch.setattr(demo_tools, "_terms", counting_terms)
    result = web_search("population " * 1_000_000)
    assert searched == [demo_tools.MAX_QUERY_CHARS]
    assert "8,100,000,000" in result


def test_corpus_shape() -> None:
    assert 12 <= len(CORPUS) <= 20
    assert all(entry.title and entry.text.endswith(".") for entry in CORPUS)


def test_runs_through_the_executor() -> None:
    outcome = execute_tool(
        {"web_search": web_search},
        "web_search",
        {"query": "world population"},
        timeout_s=5,
        max_output_chars=2000,
    )
    assert not outcome.is_error
    assert "8,100,000,000" in outcome.content
    assert web_search.to_api()["input_schema"]["required"] == ["query"]
