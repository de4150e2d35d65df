"""``RunSpec``: everything a run reads from its agent, built once by ``Agent`` and frozen.

The run core reads this, never ``Agent`` itself, so ``agent`` → ``runner`` is a one-way import and the
request pieces (system and tool parameters, the prompt's size) are computed once per agent, not per run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentwatch.cost import Pricing
from agentwatch.limits import Limits
from agentwatch.runner.gate import CallGate
from agentwatch.runner.routing import Router
from agentwatch.tools import Tool


@dataclass(frozen=True)
class RunSpec:
    """What every run of one agent shares: identity, model, request pieces, limits, prices, seams."""

    name: str
    model: str
    system: str | None
    system_param: Any  # the API's ``system`` (a cached text block when prompt caching is on)
    tool_params: tuple[dict[str, Any], ...]
    tools: Mapping[str, Tool[..., Any]]
    limits: Limits
    pricing: Pricing
    router: Router | None
    prompt_bytes: int  # system prompt + tool schemas, for the input estimate of the first call
    stop_sequences: tuple[str, ...]
    cache_prompt: bool
    count_tokens_near_budget: bool
    version: str | None
    description: str | None
    gate: CallGate | None

    @classmethod
    def build(
        cls,
        *,
        tools: Mapping[str, Tool[..., Any]],
        system: str | None,
        cache_prompt: bool,
        **fields: Any,
    ) -> RunSpec:
        """The spec with its request pieces; the last tool and the system carry the cache breakpoint."""
        params = [t.to_api() for t in tools.values()]
        if cache_prompt and params:
            params[-1] = {**params[-1], "cache_control": {"type": "ephemeral"}}
        system_param: Any = system
        if system is not None and cache_prompt:
            system_param = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
        prompt_bytes = len((system or "").encode("utf-8")) + len(json.dumps(params, ensure_ascii=False).encode())
        return cls(
            tools=tools,
            system=system,
            cache_prompt=cache_prompt,
            system_param=system_param,
            tool_params=tuple(params),
            prompt_bytes=prompt_bytes,
            **fields,
        )
