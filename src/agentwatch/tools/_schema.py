"""Turn a Python function into what the Messages API needs: a description and a JSON input schema.

The schema comes from a pydantic model built from the signature, so the same model both describes the
input to Claude and validates what Claude sends back.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

import pydantic

_SECTION_HEADERS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_OTHER_SECTIONS = {
    "returns",
    "return",
    "yields",
    "raises",
    "examples",
    "example",
    "notes",
    "note",
    "see also",
    "attributes",
    "warnings",
    "references",
    "other parameters",
}
_GOOGLE_PARAM = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<desc>.*)$")
_NUMPY_PARAM = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?::.*)?$")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into (first paragraph, {parameter: description}).

    Understands Google style (``Args:`` with ``name (type): text``) and NumPy style
    (``Parameters`` underlined with dashes, ``name : type`` then indented text). Never raises.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for index, line in enumerate(lines):
        if not line.strip() or _header_kind(lines, index) is not None:
            break
        summary.append(line.strip())
    return " ".join(summary), _param_docs(lines)


def _header_kind(lines: list[str], index: int) -> str | None:
    """``"google"`` / ``"numpy"`` when ``lines[index]`` opens a section, else None."""
    text = lines[index].strip()
    if text.endswith(":") and text[:-1].strip().lower() in _SECTION_HEADERS | _OTHER_SECTIONS:
        return "google"
    if text and index + 1 < len(lines) and _UNDERLINE.match(lines[index + 1]):
        return "numpy"
    return None


def _param_docs(lines: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    i = 0
    while i < len(lines):
        kind = _header_kind(lines, i)
        title = lines[i].strip().rstrip(":").strip().lower()
        if kind is None or title not in _SECTION_HEADERS:
            i += 1
            continue
        pattern = _GOOGLE_PARAM if kind == "google" else _NUMPY_PARAM
        i += 2 if kind == "numpy" else 1
        base_indent: int | None = None
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            base_indent = indent if base_indent is None else base_indent
            if indent < base_indent or (indent == base_indent and _header_kind(lines, i) is not None):
                break
            if indent == base_indent:
                match = pattern.match(line.strip())
                if match is None:
                    break
                current = match.group("name")
                docs[current] = (match.groupdict().get("desc") or "").strip()
            elif current is not None:
                docs[current] = f"{docs[current]} {line.strip()}".strip()
            i += 1
    return docs


def build_input_model(
    fn: Callable[..., Any], tool_name: str, param_docs: dict[str, str]
) -> tuple[type[pydantic.BaseModel], dict[str, Any], dict[str, str], list[str]]:
    """A pydantic model for ``fn``'s parameters, and the JSON schema it produces.

    Returns (model, schema, {field name: parameter name}, positional-only parameter names). Fields get
    neutral names (``p0``, ``p1`` …) aliased to the parameter names, so parameters called ``json`` or
    ``schema`` cannot collide with ``BaseModel`` attributes. Raises ``TypeError`` for ``*args`` /
    ``**kwargs`` (no JSON-object equivalent) and for types JSON Schema cannot describe.
    """
    label = getattr(fn, "__qualname__", tool_name)
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:  # e.g. a forward reference to a class defined inside a function
        raise TypeError(f"Cannot read the type hints of tool function {label!r}: {exc}") from exc
    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    positional_only: list[str] = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            stars = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise TypeError(
                f"Tool function {label!r} takes {stars}{param.name}; tools need named parameters "
                "so that Claude can send them as a JSON object."
            )
        if param.kind is param.POSITIONAL_ONLY:
            positional_only.append(param.name)
        annotation = hints.get(param.name, Any)
        extra: dict[str, Any] = {"alias": param.name}
        if param_docs.get(param.name):  # an Annotated[..., Field(description=...)] keeps its own otherwise
            extra["description"] = param_docs[param.name]
        if param.default is not inspect.Parameter.empty:
            extra["default"] = param.default
        info = pydantic.Field(**extra)
        field_name = f"p{index}"
        fields[field_name] = (annotation, info)
        names[field_name] = param.name
    try:
        model = pydantic.create_model(f"{tool_name}_input", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
        schema = clean_schema(model.model_json_schema())
    except pydantic.PydanticUserError as exc:
        raise TypeError(
            f"Tool function {label!r} has a parameter type JSON Schema cannot describe; use str, int, "
            f"float, bool, list, dict, Literal, Enum or pydantic models. ({str(exc).splitlines()[0]})"
        ) from exc
    return model, schema, names, positional_only


_VALUE_KEYS = frozenset({"default", "enum", "const", "examples"})


class _Recursive(Exception):
    """A recursive model: its ``$ref``s cannot be inlined."""


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``s (kept in recursive models) and drop pydantic's ``title`` noise. Returns a copy."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any, seen: frozenset[str], inline: bool) -> Any:
        if isinstance(node, list):
            return [walk(item, seen, inline) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if inline and isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen or name not in defs:
                raise _Recursive
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**defs[name], **rest}, seen | {name}, inline)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs") and isinstance(value, dict):
                out[key] = {name: walk(sub, seen, inline) for name, sub in value.items()}
            elif key in _VALUE_KEYS:
                out[key] = value
            else:
                out[key] = walk(value, seen, inline)
        return out

    try:
        cleaned: dict[str, Any] = walk({k: v for k, v in schema.items() if k != "$defs"}, frozenset(), True)
    except _Recursive:
        cleaned = walk(schema, frozenset(), False)
    cleaned["type"] = "object"
    cleaned.setdefault("properties", {})
    return cleaned


def render_validation_error(tool_name: str, error: pydantic.ValidationError) -> str:
    """One readable line per problem, naming the field, what was wrong and what was sent."""
    lines = [f"Invalid input for tool {tool_name!r}:"]
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"]) or "(input)"
        if item["type"] == "missing":
            lines.append(f"- {loc}: required field is missing")
            continue
        if item["type"] == "extra_forbidden":
            lines.append(f"- {loc}: unexpected field (not a parameter of this tool)")
            continue
        sent = repr(item.get("input"))
        if len(sent) > 80:
            sent = sent[:77] + "..."
        lines.append(f"- {loc}: {item['msg']} (got {sent})")
    return "\n".join(lines)
