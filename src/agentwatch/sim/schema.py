"""Values that are valid against a JSON schema, for tool inputs and structured outputs.

``generate(schema, hint)`` walks a schema (``type`` or a list of types, ``enum``, ``const``, ``default``,
``examples``, ``anyOf`` / ``oneOf`` (first branch that is not ``null``), ``allOf``, local ``$ref`` into
``$defs`` / ``definitions``, ``properties`` / ``required``, ``items`` / ``prefixItems`` / ``minItems``,
numeric bounds, string lengths and common ``format`` values) and builds one value. Constraints that the
SDK's ``messages.parse`` moves into a description (``"{minLength: 5, maximum: 150}"``) are read back, so
the parsed model's own validation passes too. ``pattern`` is not solved: a string is only guaranteed to
match it when the schema gives an example, a default, an enum or a const. ``hint`` fills strings: a
callable that gets the property name and returns text, so the values read like the task.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Hint = Callable[[str], str]
_MOVED = re.compile(r"\{((?:\w+: [^,{}]+(?:, )?)+)\}")
_FORMATS = {
    "date": "2026-01-15",
    "date-time": "2026-01-15T12:00:00Z",
    "time": "12:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "hostname": "example.com",
}
_MAX_DEPTH = 8


def _no_hint(name: str) -> str:
    return name or "value"


def _moved_constraints(schema: dict[str, Any]) -> dict[str, Any]:
    """``"{maxLength: 5, minimum: 0}"`` in a description (how the SDK keeps what the API ignores)."""
    found = _MOVED.search(str(schema.get("description", "")))
    constraints: dict[str, Any] = {}
    for part in found.group(1).split(", ") if found else []:
        key, _, raw = part.partition(": ")
        try:
            constraints[key] = float(raw) if "." in raw else int(raw)
        except ValueError:
            continue
    return constraints


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a local ``$ref`` replaced by its target and ``allOf`` merged."""
    if not isinstance(schema, dict):
        return {}
    seen = 0
    while isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) and part else target
        schema = {**(target if isinstance(target, dict) else {}), **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part, root)
            merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
            merged["required"] = [*merged.get("required", []), *part.get("required", [])]
            merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
        schema = merged
    return {**_moved_constraints(schema), **schema}


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1.0
    if isinstance(low, int | float):
        value = float(low) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if isinstance(high, int | float) and value > high:
        value = float(high) - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    return int(value) if integer else value


def _string(schema: dict[str, Any], name: str, hint: Hint) -> str:
    text = _FORMATS.get(str(schema.get("format")), "") or hint(name) or "value"
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int):
        text = text.ljust(low, ".")
    return text[:high] if isinstance(high, int) else text


def generate(schema: Any, hint: Hint = _no_hint, *, name: str = "", root: dict[str, Any] | None = None) -> Any:
    """One value valid against ``schema`` (see the module docstring for what is honoured). Never raises."""
    root = root if root is not None else schema if isinstance(schema, dict) else {}
    return _value(schema, hint, name, root, 0)


def _value(schema: Any, hint: Hint, name: str, root: dict[str, Any], depth: int) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(key) or [] if isinstance(b, dict)]
        if branches:
            usable = [b for b in branches if _resolve(b, root).get("type") != "null"] or branches
            return _value(usable[0], hint, name, root, depth + 1)
    kind = _type_of(schema)
    if depth > _MAX_DEPTH:
        return None if kind == "null" else {} if kind == "object" else [] if kind == "array" else "x"
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required", list(properties))
        required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        return {key: _value(properties.get(key, {}), hint, key, root, depth + 1) for key in required}
    if kind == "array":
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        items = [_value(p, hint, name, root, depth + 1) for p in prefix]
        count = schema.get("minItems", 1 if not prefix else 0)
        count = max(count, 1) if isinstance(count, int) else 1
        maximum = schema.get("maxItems")
        count = min(count, maximum) if isinstance(maximum, int) else count
        while len(items) < count:
            items.append(_value(schema.get("items", {}), hint, name, root, depth + 1))
        return items
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name, hint)
