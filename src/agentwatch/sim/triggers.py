"""Test triggers: markers in the user's task text that make the scripted model misbehave on purpose.

Vocabulary (case-sensitive, anywhere in the task, several may be combined):

``[[refuse]]``           reply with ``stop_reason: "refusal"``.
``[[loop]]``             call the first offered tool on every turn, forever (trips iteration/budget guards).
``[[long:N]]``           answer with about N output tokens; more than ``max_tokens`` is cut, ``max_tokens``.
``[[pause]]``            first reply ``stop_reason: "pause_turn"``; sent back with it appended, carry on.
``[[tool:NAME:JSON]]``   call tool NAME (offered or not) with the JSON object as input, then report.
``[[parallel]]``         several ``tool_use`` blocks in one reply (e.g. two calculator calls).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_SIMPLE = re.compile(r"\[\[(refuse|loop|pause|parallel)\]\]")
_LONG = re.compile(r"\[\[long:(\d+)\]\]")
_TOOL = re.compile(r"\[\[tool:([^:\]\s]+):")


@dataclass
class Triggers:
    """The triggers found in a task, and the task text without them."""

    clean: str
    refuse: bool = False
    loop: bool = False
    pause: bool = False
    parallel: bool = False
    long: int | None = None
    tool: tuple[str, dict[str, Any]] | None = None


def _tool_trigger(text: str) -> tuple[tuple[str, dict[str, Any]] | None, str]:
    """The first ``[[tool:NAME:JSON]]`` and ``text`` without it. Invalid JSON becomes {"input": raw}."""
    match = _TOOL.search(text)
    if match is None:
        return None, text
    name, start = match.group(1), match.end()
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        value, end = None, start
    close = text.find("]]", end)
    if close < 0:
        return None, text
    if not isinstance(value, dict) or text[end:close].strip():
        raw = text[start:close]
        value = {"input": raw}
    return (name, value), text[: match.start()] + text[close + 2 :]


def parse(task: str) -> Triggers:
    """Find the triggers in ``task``. Never raises."""
    tool, text = _tool_trigger(task)
    flags = set(_SIMPLE.findall(text))
    long_match = _LONG.search(text)
    clean = re.sub(r"\s{2,}", " ", _LONG.sub(" ", _SIMPLE.sub(" ", text))).strip()
    return Triggers(
        clean=clean,
        refuse="refuse" in flags,
        loop="loop" in flags,
        pause="pause" in flags,
        parallel="parallel" in flags,
        long=int(long_match.group(1)) if long_match else None,
        tool=tool,
    )
