"""Request validation like the real Messages API, for the mistakes an agent loop actually makes.

Returns the API's style of message (``field.path: what is wrong``) so a bug in a runner shows up in
tests as the same 400 ``invalid_request_error`` it would get in production.
"""

from __future__ import annotations

from typing import Any

from agentwatch.sim.models import max_output_tokens

_ROLES = ("user", "assistant")


def _ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [str(b.get(key)) for b in content if isinstance(b, dict) and b.get("type") == kind]


def _message_problem(i: int, message: Any) -> str | None:
    if not isinstance(message, dict):
        return f"messages.{i}: Input should be a valid dictionary"
    role = message.get("role")
    if role is None:
        return f"messages.{i}.role: Field required"
    if role == "system":
        return (
            f'messages.{i}.role: Unexpected role "system". The Messages API accepts a top-level `system` '
            'parameter, not "system" as an input message role.'
        )
    if role not in _ROLES:
        return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    if "content" not in message:
        return f"messages.{i}.content: Field required"
    content = message["content"]
    if isinstance(content, str):
        return f"messages.{i}: text content blocks must be non-empty" if not content else None
    if not isinstance(content, list):
        return f"messages.{i}.content: Input should be a valid string or list of content blocks"
    for j, block in enumerate(content):
        if not isinstance(block, dict) or "type" not in block:
            return f"messages.{i}.content.{j}: each content block needs a `type`"
        if block["type"] == "text" and not block.get("text"):
            return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
    return None


def _pairing_problem(messages: list[dict[str, Any]]) -> str | None:
    """Every tool_use needs a tool_result right after it, and every tool_result a tool_use before it."""
    for i, message in enumerate(messages):
        results = _ids(message, "tool_result", "tool_use_id")
        previous = _ids(messages[i - 1], "tool_use", "id") if i > 0 else []
        unexpected = [r for r in results if r not in previous]
        if unexpected:
            return (
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
        uses = _ids(message, "tool_use", "id")
        if uses and i + 1 < len(messages):
            answered = _ids(messages[i + 1], "tool_result", "tool_use_id")
            missing = [u for u in uses if u not in answered]
            if missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
    return None


_THINKING_TYPES = ("enabled", "disabled", "adaptive")
MIN_THINKING_BUDGET = 1024


def _thinking_problem(body: dict[str, Any]) -> str | None:
    """The API's rules for ``thinking``: a known type; ``enabled`` needs 1024 <= budget_tokens < max_tokens."""
    if "thinking" not in body:
        return None
    thinking = body["thinking"]
    if not isinstance(thinking, dict) or thinking.get("type") not in _THINKING_TYPES:
        tag = thinking.get("type") if isinstance(thinking, dict) else thinking
        expected = ", ".join(f"'{t}'" for t in _THINKING_TYPES)
        return f"thinking: Input tag {tag!r} found using 'type' does not match any of the expected tags: {expected}"
    if thinking["type"] != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return (
            "thinking.enabled.budget_tokens: Field required"
            if budget is None
            else ("thinking.enabled.budget_tokens: Input should be a valid integer")
        )
    if budget < MIN_THINKING_BUDGET:
        return f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
    if budget >= body["max_tokens"]:
        return (
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
            "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
        )
    return None


def problem(body: Any, *, count_tokens: bool = False) -> str | None:
    """What is wrong with a request body, as the API would say it, or None when it is valid."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required" if "model" not in body else "model: Input should be a valid string"
    if not count_tokens:
        if "max_tokens" not in body:
            return "max_tokens: Field required"
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            return "max_tokens: Input should be a valid integer"
        if max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
        limit = max_output_tokens(body["model"])
        if max_tokens > limit:
            return (
                f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output tokens "
                f"for {body['model']}"
            )
    thinking = _thinking_problem(body) if not count_tokens else None
    if thinking:
        return thinking
    if "messages" not in body:
        return "messages: Field required"
    messages = body["messages"]
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        found = _message_problem(i, message)
        if found:
            return found
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream: Input should be a valid boolean"
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not tool.get("name"):
            return f"tools.{i}.name: Field required"
        if "type" not in tool and "input_schema" not in tool:
            return f"tools.{i}.custom.input_schema: Field required"
    return _pairing_problem(messages)
