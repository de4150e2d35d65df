"""Demo tools that need no network: a safe ``calculator`` and a ``web_search`` over a local corpus."""

from __future__ import annotations

import re

from agentwatch.tools.arithmetic import evaluate, format_number
from agentwatch.tools.base import tool
from agentwatch.tools.search_corpus import CORPUS, Entry

MAX_QUERY_CHARS = 1_000
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is"}
    | {"it", "its", "many", "much", "of", "on", "or", "per", "the", "to", "was", "what", "when", "where"}
    | {"which", "who", "why", "with"}
)


# Both run inline (on the caller's thread, no worker hand-off): they are bounded by construction (the
# calculator refuses results over 1,000 digits and expressions over 200 parts; the search reads an in-memory
# corpus with a capped query), so a timeout has nothing to stop.
@tool(inline=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression: + - * / // % ** (or ^), unary minus, parentheses, × ÷ and
    thousands separators; integers are exact, decimals get 12 significant digits.

    Args:
        expression: The arithmetic to compute, e.g. "1234 * 5678" or "8,100,000,000 / 148,940,000".
    """
    return format_number(evaluate(expression))


@tool(inline=True)
def web_search(query: str) -> str:
    """Search the web for short factual snippets (an offline demo corpus) and return the best 1-3 matches.

    Args:
        query: What to look up, in a few keywords, e.g. "world population 2024".
    """
    results = search(query)
    if not results:
        return f"No results for {query[:200]!r}."
    return "\n".join(f"{i}. {entry.title}: {entry.text}" for i, entry in enumerate(results, 1))


def search(query: str, limit: int = 3) -> list[Entry]:
    """Rank corpus entries by keyword overlap (title words count double); keep the close contenders."""
    terms = _terms(query[:MAX_QUERY_CHARS])
    if not terms:
        return []
    scored = []
    for index, (title_terms, text_terms) in enumerate(_INDEX):
        score = 2 * len(terms & title_terms) + len(terms & text_terms)
        if score:
            scored.append((-score, index))
    if not scored:
        return []
    scored.sort()
    best = -scored[0][0]
    return [CORPUS[index] for neg, index in scored[:limit] if -neg * 2 >= best]


def _terms(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return {_stem(w) for w in words if w not in _STOPWORDS and (not w.isdigit() or len(w) >= 4)}


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


_INDEX = [(_terms(entry.title), _terms(entry.text)) for entry in CORPUS]
