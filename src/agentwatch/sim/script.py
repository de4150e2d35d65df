"""The scripted model: a deterministic stand-in for Claude that uses tools the way an agent would.

It reads the request (offered tools by name, the task, the tool calls so far and their results) and
picks the next step; the same request always gets the same reply.

- Arithmetic ("What is 1234 * 5678?", "12 times 3", "7 ÷ 2") with a ``calculator`` tool offered:
  ``calculator({"expression": "1234 * 5678"})``, then "1234 × 5678 = 7,006,652 (7006652)." from the
  tool result. Without the tool it computes the answer itself.
- A question with a ``web_search`` tool offered: ``web_search({"query": ...})``, then an answer quoting
  the result sentence that best matches the question.
- "What is X, and how many Y is that per Z? Z = N" with both tools: web_search(X), then
  calculator("<biggest number in the result> / N"), then an answer with both numbers (3 model calls).
- A tool result with ``is_error: true``: an answer saying which tool failed and what it said.
- Otherwise: a short direct answer. Judge prompts and test triggers: see ``judge`` and ``triggers``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from agentwatch.sim import arith, judge, schema, triggers
from agentwatch.sim.conversation import Conversation, ToolCall, read
from agentwatch.sim.ids import make_id
from agentwatch.sim.usage import CHARS_PER_TOKEN, block_chars, tokens

_WH = r"what|who|when|where|which|how|why"
_LEAD = re.compile(
    rf"^\s*(?:please\s+)?(?:how\s+\w+\s+(?:is|are|was|were|does|do|did)"
    rf"|(?:{_WH})(?:'s|\s+(?:is|are|was|were|does|do|did|much|many))?"
    r"|tell\s+me(?:\s+about)?|find(?:\s+out)?|look\s+up|search(?:\s+for)?)\s+",
    re.I,
)
_QUESTION = re.compile(rf"\?|^\s*(?:{_WH}|tell me|find|look up|search)\b", re.I)
_CLAUSE = re.compile(rf"[?\n]|,\s*(?:and\s+)?|\s+and\s+(?=(?:{_WH})\b)", re.I)
_TITLE = re.compile(r"^[^:.\n]{1,60}:\s+(?=[A-Z])")  # "World population: The world ..." → "The world ..."
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])|\n+")
_STOP_WORDS = frozenset(
    {"the", "a", "an", "of", "in", "on", "at", "to", "for", "is", "are", "was", "were", "and", "or"}
    | {"what", "who", "how", "which", "by", "with"}
)
_SCRIPTED_TOOLS = frozenset({"calculator", "web_search"})
_LONG_TEXT = "The simulated model keeps writing so that long answers and token limits can be tested."


@dataclass
class Reply:
    """What the model answers: content blocks and why it stopped."""

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    stop_details: dict[str, Any] | None = field(default=None)


def _text(text: str, stop_reason: str = "end_turn") -> Reply:
    return Reply([{"type": "text", "text": text}], stop_reason)


def _use(calls: list[tuple[str, dict[str, Any]]], preface: str) -> Reply:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": preface}] if preface else []
    blocks += [{"type": "tool_use", "id": "", "name": name, "input": args} for name, args in calls]
    return Reply(blocks, "tool_use")


def query_of(task: str) -> str:
    """A search query for the first question in ``task``: "What is the speed of light?" → "speed of light"."""
    first = _CLAUSE.split(task.strip(), maxsplit=1)[0]
    first = _LEAD.sub("", first)
    first = re.sub(r"^(?:the|a|an)\s+", "", first, flags=re.I).strip(" .!?")
    return first or task.strip()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if re.search(r"[^\W\d_]", s)]  # "1." is no sentence


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP_WORDS}


def best_sentence(text: str, query: str, must_contain: str | None = None) -> str:
    """The sentence of ``text`` sharing the most words with ``query`` (first wins ties)."""
    sentences = _sentences(text) or [text.strip()]
    if must_contain:
        sentences = [s for s in sentences if must_contain in s.replace(",", "")] or sentences
    wanted = _words(query)
    return max(sentences, key=lambda s: (len(wanted & _words(s)), -sentences.index(s)))


_PLACE_KEYS = frozenset({"location", "city", "place", "country", "region", "address", "destination"})
_PLACE = re.compile(r"\b(?:in|at|for|near|to)\s+((?:[A-Z][\w'-]*)(?:[\s,]+[A-Z][\w'-]*)*)")


def _hint(task: str, turn: int) -> schema.Hint:
    """Text for a string property ``name`` of a tool input, taken from the task."""

    def hint(name: str) -> str:
        key = name.lower()
        if key == "expression":
            return f"{turn + 1} + 1"
        if key in ("query", "q", "search", "question"):
            return query_of(task) or "test"
        if key in _PLACE_KEYS:
            place = _PLACE.search(task)
            return place.group(1).strip(" ,") if place else query_of(task) or "test"
        return task[:100] or "test"

    return hint


def _input_for(tool: dict[str, Any] | None, task: str, turn: int) -> dict[str, Any]:
    """An input for ``tool`` valid against its ``input_schema`` (required properties, from the task)."""
    spec = tool.get("input_schema", {}) if tool else {}
    value = schema.generate(spec if isinstance(spec, dict) else {}, _hint(task, turn))
    return value if isinstance(value, dict) else {}


def _stems(text: str) -> set[str]:
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _words(text)}


def best_tool(convo: Conversation, task: str) -> dict[str, Any] | None:
    """The offered tool (not one the demo script knows) whose name, description and parameters share the
    most words with the task; None when none shares any. Server tools (with a ``type``) are not called."""
    wanted, best, best_score = _stems(task), None, 0
    for tool in convo.tools:
        if tool.get("name") in _SCRIPTED_TOOLS or tool.get("type") not in (None, "custom"):
            continue
        spec = tool.get("input_schema")
        properties = spec.get("properties") if isinstance(spec, dict) else None
        about = [str(tool.get("name", "")).replace("_", " ").replace("-", " "), str(tool.get("description", ""))]
        about += [str(p).replace("_", " ") for p in properties] if isinstance(properties, dict) else []
        score = len(wanted & _stems(" ".join(about)))
        if score > best_score:
            best, best_score = tool, score
    return best


def _report(calls: list[ToolCall]) -> Reply:
    """An answer that says what each tool returned or how it failed."""
    lines = []
    for call in calls:
        result = (call.result or "").strip()
        result = result if len(result) <= 300 else result[:297] + "..."
        if call.is_error:
            lines.append(f"The {call.name} tool failed: {result or 'no error message'}.")
        else:
            lines.append(f"The {call.name} tool returned: {result or '(empty result)'}")
    if any(c.is_error for c in calls):
        lines.append("I could not complete the task without it.")
    return _text(" ".join(lines))


def _arithmetic_answer(expression: str, result: str) -> str:
    number = arith.first_number(result)
    if number is None:
        return f"The calculator returned {result.strip()!r} for {arith.pretty(expression)}."
    value = float(number)
    return f"{arith.pretty(expression)} = {arith.format_number(value)} ({arith.plain_number(value)})."


def _about(value: float) -> str:
    if not math.isfinite(value):
        return arith.format_number(value)
    return f"{round(value):,}" if abs(value) >= 10 else f"{value:.2g}"


def _in_words(value: Decimal) -> str:
    for size, word in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million")):
        if value >= size:
            return f"{float(value) / size:.1f}".rstrip("0").rstrip(".") + f" {word}"
    return arith.format_number(float(value))


@dataclass(frozen=True)
class _PerQuestion:
    divisor: Decimal
    noun: str
    unit: str


def _per_question(task: str) -> _PerQuestion | None:
    """ "How many people is that per km²? Land area = 148,940,000 km²" → divide by 148940000."""
    if not re.search(r"\bper\b", task, re.I):
        return None
    given = arith.numbers(task)
    if not given or max(given) == 0:
        return None
    noun = re.search(r"how\s+many\s+(\w+)", task, re.I)
    if re.search(r"km²|km2|square\s+kilomet", task, re.I):
        unit = "km²"
    else:
        named = re.search(r"\bper\s+([a-z ]+?)(?:\s+of\b|[?,.]|$)", task, re.I)
        unit = named.group(1) if named else "unit"
    return _PerQuestion(max(given), noun.group(1) if noun else "", unit)


def _per_answer(query: str, search: ToolCall, calc: ToolCall, per: _PerQuestion) -> str:
    found = arith.numbers(search.result or "")
    total = max(found) if found else Decimal(0)
    quotient = arith.first_number(calc.result or "")
    value = float(quotient) if quotient is not None else float(total / per.divisor)
    sentence = _TITLE.sub("", best_sentence(search.result or "", query, arith.plain_number(float(total))))
    noun = f" {per.noun}" if per.noun else ""
    return (
        f"The {query} is about {_in_words(total)} ({arith.format_number(float(total))}), according to the "
        f'search result: "{sentence}" Divided by {arith.format_number(float(per.divisor))} {per.unit}, '
        f"that is about {_about(value)}{noun} per {per.unit} "
        f"({arith.format_number(float(total))} ÷ {arith.format_number(float(per.divisor))} "
        f"= {arith.format_number(value)})."
    )


def _plan(convo: Conversation, task: str) -> Reply:
    """The normal (no trigger) next step."""
    tools = set(convo.tool_names)
    latest = convo.latest
    if any(c.is_error for c in latest):
        return _report(latest)
    expression = arith.find_expression(task)
    if expression:
        if "calculator" in tools:
            done = convo.done("calculator")
            if not done:
                return _use([("calculator", {"expression": expression})], "I'll calculate that.")
            used = str(done[-1].input.get("expression", expression))
            return _text(_arithmetic_answer(used, done[-1].result or ""))
        value = arith.evaluate(expression)
        if value is not None:
            return _text(_arithmetic_answer(expression, arith.plain_number(value)))
    query = query_of(task)
    per = _per_question(task)
    if per and {"web_search", "calculator"} <= tools:
        searches, calcs = convo.done("web_search"), convo.done("calculator")
        if not searches:
            return _use([("web_search", {"query": query})], f"I'll search for the {query} first.")
        if not calcs:
            found = arith.numbers(searches[-1].result or "")
            if not found:
                return _text(f'I searched for "{query}" but the result has no number to work with.')
            expression = f"{arith.plain_number(float(max(found)))} / {arith.plain_number(float(per.divisor))}"
            return _use([("calculator", {"expression": expression})], "Now I'll divide.")
        return _text(_per_answer(query, searches[-1], calcs[-1], per))
    tool = best_tool(convo, task)
    if tool is not None:
        name = str(tool["name"])
        done = convo.done(name)
        if not done:
            return _use([(name, _input_for(tool, task, 0))], f"I'll use the {name} tool.")
        return _report(done[-1:])
    if "web_search" in tools and _QUESTION.search(task):
        searches = convo.done("web_search")
        if not searches:
            return _use([("web_search", {"query": query})], "I'll search for that.")
        result = (searches[-1].result or "").strip()
        if not result:
            return _text(f'The search for "{query}" returned nothing, so I cannot answer.')
        sentence = _TITLE.sub("", best_sentence(result, query))
        return _text(f"According to the search results: {sentence}")
    if latest:
        return _report(latest)
    short = task if len(task) <= 120 else task[:117] + "..."
    return _text(f'This is a direct answer from the agentwatch simulator (no tool needed) to: "{short}"')


def _parallel(convo: Conversation, task: str) -> Reply:
    """Several tool calls in one turn, then one answer covering every result."""
    if convo.latest:
        if any(c.is_error for c in convo.latest) or not all(c.name == "calculator" for c in convo.latest):
            return _report(convo.latest)
        lines = [_arithmetic_answer(str(c.input.get("expression", "")), c.result or "") for c in convo.latest]
        return _text(" ".join(lines))
    names = convo.tool_names
    if "calculator" in names:
        found = re.split(r"[;\n]|\band\b", task)
        expressions = [e for e in (arith.find_expression(part) for part in found) if e]
        expressions = [*expressions, "2 + 2", "3 * 3"][: max(2, len(expressions))]
        return _use([("calculator", {"expression": e}) for e in expressions], "I'll run these in parallel.")
    calls = [(name, _input_for(convo.tool(name), task, 0)) for name in names]
    if len(calls) == 1:
        calls.append((names[0], _input_for(convo.tool(names[0]), task, 1)))
    return _use(calls, "I'll call these tools in parallel.")


def _long_text(n_tokens: int) -> str:
    wanted = n_tokens * CHARS_PER_TOKEN
    repeats = wanted // (len(_LONG_TEXT) + 1) + 1
    return " ".join([_LONG_TEXT] * repeats)[:wanted].rstrip() or "."


def _decide(convo: Conversation, max_tokens: int) -> Reply:
    if convo.system.lstrip().startswith(judge.JUDGE_PREFIX):
        return _text(judge.verdict(convo.task))
    found = triggers.parse(convo.task)
    task = found.clean
    if found.refuse:
        reply = _text("I can't help with that request.", "refusal")
        reply.stop_details = {"type": "refusal", "category": None, "explanation": None}
        return reply
    if found.pause and not convo.assistant_after_task:
        return _text("Let me work through this; the turn is paused and will continue.", "pause_turn")
    names = convo.tool_names
    if found.loop and names:
        args = _input_for(convo.tool(names[0]), task, len(convo.calls))
        return _use([(names[0], args)], f"Calling {names[0]} again.")
    if found.tool:
        name, args = found.tool
        if not any(c.name == name for c in convo.calls):
            return _use([(name, args)], f"Calling {name} as asked.")
        return _report(convo.latest or [c for c in convo.calls if c.name == name])
    if found.parallel and names:
        return _parallel(convo, task)
    if found.long is not None:
        return _text(_long_text(min(found.long, max_tokens + 1)))
    return _plan(convo, task)


def _force_tool(reply: Reply, convo: Conversation, choice: Any) -> Reply:
    """Honour ``tool_choice`` ``any`` / ``tool`` on a first turn that would not call a tool."""
    if not isinstance(choice, dict) or convo.calls or reply.stop_reason != "end_turn":
        return reply
    names = convo.tool_names
    name = choice.get("name") if choice.get("type") == "tool" else names[0] if names else None
    if choice.get("type") not in ("any", "tool") or not isinstance(name, str):
        return reply
    return _use([(name, _input_for(convo.tool(name), convo.task, 0))], "")


def _stop_at_sequence(reply: Reply, sequences: Any) -> Reply:
    if not isinstance(sequences, list) or not sequences:
        return reply
    for i, block in enumerate(reply.content):
        if block.get("type") != "text":
            continue
        text = str(block["text"])
        hits = [(text.find(s), s) for s in sequences if isinstance(s, str) and s and s in text]
        if hits:
            cut, sequence = min(hits)
            content = [*reply.content[:i], {"type": "text", "text": text[:cut]}]
            return Reply(content, "stop_sequence", sequence)
    return reply


def _fit(reply: Reply, max_tokens: int) -> Reply:
    """Cut the reply at ``max_tokens`` output tokens (stop_reason ``max_tokens``)."""
    used, kept = 0, []
    for block in reply.content:
        need = tokens(block_chars(block))
        if used + need <= max_tokens:
            kept.append(block)
            used += need
            continue
        room = max_tokens - used
        if block.get("type") == "text" and room > 0:
            kept.append({"type": "text", "text": block["text"][: room * CHARS_PER_TOKEN]})
        return Reply(kept, "max_tokens")
    return reply


def _with_ids(reply: Reply, id_seed: str) -> Reply:
    content = []
    for i, block in enumerate(reply.content):
        if block.get("type") == "tool_use":
            block = {**block, "id": make_id("toolu_", id_seed, i)}
        content.append(block)
    return replace(reply, content=content)


def output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of a structured-output request: ``output_config.format`` (what SDK 2.x
    ``messages.parse(output_format=Model)`` sends) or the older top-level ``output_format``."""
    config = body.get("output_config")
    for found in (config.get("format") if isinstance(config, dict) else None, body.get("output_format")):
        if isinstance(found, dict) and found.get("type") == "json_schema" and isinstance(found.get("schema"), dict):
            return dict(found["schema"])
    return None


_ANSWER_KEYS = frozenset({"answer", "result", "text", "summary", "response", "content", "explanation", "reason"})


def _structured(reply: Reply, spec: dict[str, Any], task: str) -> Reply:
    """A final answer as one JSON text valid against ``spec``; its prose goes into answer-like strings."""
    if reply.stop_reason not in ("end_turn", "max_tokens") or any(b["type"] == "tool_use" for b in reply.content):
        return reply
    prose = " ".join(str(b.get("text", "")) for b in reply.content if b.get("type") == "text").strip()
    base = _hint(task, 0)
    value = schema.generate(spec, lambda name: prose if name.lower() in _ANSWER_KEYS else base(name))
    return Reply([{"type": "text", "text": json.dumps(value, ensure_ascii=False)}], "end_turn")


def thinking_budget(body: dict[str, Any]) -> int | None:
    """The thinking budget when extended (``enabled``) or ``adaptive`` thinking is on, else None."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return None
    budget = thinking.get("budget_tokens")
    return budget if isinstance(budget, int) else int(body.get("max_tokens", 4096)) // 2


def _think(reply: Reply, task: str, budget: int, id_seed: str) -> Reply:
    """Put a thinking block (with its signature) before the reply, as the API does with thinking on."""
    short = task if len(task) <= 200 else task[:197] + "..."
    calls = [str(b["name"]) for b in reply.content if b["type"] == "tool_use"]
    plan = f"I should call {', '.join(calls)} to get what I need." if calls else "I can answer from what I have."
    text = f'The user asks: "{short}". {plan}'[: budget * CHARS_PER_TOKEN]
    signature = base64.b64encode(hashlib.sha512(f"{id_seed}:{text}".encode()).digest() * 2).decode()
    return replace(reply, content=[{"type": "thinking", "thinking": text, "signature": signature}, *reply.content])


def respond(body: dict[str, Any], id_seed: str) -> Reply:
    """The model's reply to a validated request body; tool_use ids and signatures derive from ``id_seed``."""
    convo = read(body)
    max_tokens = int(body.get("max_tokens", 4096))
    reply = _force_tool(_decide(convo, max_tokens), convo, body.get("tool_choice"))
    spec = output_schema(body)
    if spec is not None:
        reply = _structured(reply, spec, convo.task)
    budget = thinking_budget(body)
    if budget is not None:
        reply = _think(reply, triggers.parse(convo.task).clean, budget, id_seed)
    reply = _fit(_stop_at_sequence(reply, body.get("stop_sequences")), max_tokens)
    return _with_ids(reply, id_seed)
