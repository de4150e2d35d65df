"""Judge mode of the scripted model: grade an answer against the quoted phrases of a rubric.

An eval harness asks a model to judge answers. So that evals run offline and deterministically, a
request whose system prompt starts with ``JUDGE_PREFIX`` gets a JSON verdict: pass iff every
double-quoted phrase of the rubric appears (case-insensitively) in the answer; score = fraction found.
"""

from __future__ import annotations

import json
import re

JUDGE_PREFIX = "You are an evaluation judge"
_PHRASE = re.compile(r"\"([^\"]+)\"|“([^”]+)”")
# Markers at the start of a line win ("Rubric: ..." / "Answer: ..."); anywhere in the text otherwise.
_MARKERS = {
    name: (re.compile(rf"^\s*{name}\s*:", re.I | re.M), re.compile(rf"\b{name}\s*:", re.I))
    for name in ("rubric", "answer")
}


def _find(text: str, name: str) -> re.Match[str] | None:
    at_line_start, anywhere = _MARKERS[name]
    return at_line_start.search(text) or anywhere.search(text)


def _section(text: str, name: str, other: str) -> str:
    """The text after the ``name`` marker, up to the ``other`` marker when that comes later."""
    match = _find(text, name)
    if match is None:
        return ""
    rest = text[match.end() :]
    end = _find(rest, other)
    return rest[: end.start()] if end else rest


def verdict(prompt: str) -> str:
    """The judge's reply text: JSON ``{"verdict", "score", "reason"}`` for a Rubric:/Answer: prompt."""
    rubric = _section(prompt, "rubric", "answer")
    answer = _section(prompt, "answer", "rubric").strip().lower()
    phrases = [a or b for a, b in _PHRASE.findall(rubric)]
    if not phrases:
        result = {"verdict": "pass", "score": 1.0, "reason": "The rubric has no quoted phrases to check."}
        return json.dumps(result)
    missing = [p for p in phrases if p.strip().lower() not in answer]
    score = round((len(phrases) - len(missing)) / len(phrases), 4)
    if missing:
        listed = ", ".join(f'"{p}"' for p in missing)
        reason = f"The answer is missing {len(missing)} of {len(phrases)} required phrases: {listed}."
    else:
        reason = f"The answer contains all {len(phrases)} required phrases."
    return json.dumps({"verdict": "fail" if missing else "pass", "score": score, "reason": reason})
