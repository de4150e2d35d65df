"""Read a Messages API request into what the scripted model decides on.

The model is stateless, like the real one: everything it knows comes from the request. The "task" is
the last user message with text (and no tool results); the tool calls are the ``tool_use`` blocks the
assistant made after it, each joined with its ``tool_result`` when the caller sent one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentwatch.sim.usage import tool_result_text


@dataclass
class ToolCall:
    """One ``tool_use`` the assistant made, with its result once the caller sent it."""

    id: str
    name: str
    input: dict[str, Any]
    result: str | None = None
    is_error: bool = False
    turn: int = 0


@dataclass
class Conversation:
    """The parts of a request the scripted model looks at."""

    system: str
    task: str
    tools: list[dict[str, Any]]
    calls: list[ToolCall] = field(default_factory=list)
    assistant_after_task: bool = False

    @property
    def tool_names(self) -> list[str]:
        """Names of the offered tools, in order."""
        return [str(t["name"]) for t in self.tools if isinstance(t, dict) and "name" in t]

    def tool(self, name: str) -> dict[str, Any] | None:
        """The offered tool called ``name``."""
        return next((t for t in self.tools if isinstance(t, dict) and t.get("name") == name), None)

    def done(self, name: str) -> list[ToolCall]:
        """Calls to ``name`` that have a result, oldest first."""
        return [c for c in self.calls if c.name == name and c.result is not None]

    @property
    def latest(self) -> list[ToolCall]:
        """The calls of the most recent assistant turn that made any, if their results are back."""
        if not self.calls:
            return []
        last_turn = self.calls[-1].turn
        batch = [c for c in self.calls if c.turn == last_turn]
        return batch if all(c.result is not None for c in batch) else []


def text_of(content: Any) -> str:
    """The text of a message content or system prompt (a string or a list of blocks). Never raises."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def read(body: dict[str, Any]) -> Conversation:
    """The conversation of a (validated) request body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "none":
        tools = []
    task_index = -1
    for i, message in enumerate(messages):
        is_user_text = message.get("role") == "user" and text_of(message.get("content")).strip()
        if is_user_text and not _blocks(message, "tool_result"):
            task_index = i
    convo = Conversation(
        system=text_of(body.get("system")),
        task=text_of(messages[task_index].get("content")) if task_index >= 0 else "",
        tools=tools,
    )
    by_id: dict[str, ToolCall] = {}
    for turn, message in enumerate(messages[task_index + 1 :]):
        if message.get("role") == "assistant":
            convo.assistant_after_task = True
            for block in _blocks(message, "tool_use"):
                raw_input = block.get("input")
                call = ToolCall(
                    id=str(block.get("id", "")),
                    name=str(block.get("name", "")),
                    input=raw_input if isinstance(raw_input, dict) else {},
                    turn=turn,
                )
                convo.calls.append(call)
                by_id[call.id] = call
        else:
            for block in _blocks(message, "tool_result"):
                match = by_id.get(str(block.get("tool_use_id", "")))
                if match is not None:
                    match.result = tool_result_text(block.get("content", ""))
                    match.is_error = bool(block.get("is_error", False))
    return convo
