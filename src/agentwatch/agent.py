"""``Agent``: the public face of the runner. Configuration here; control flow in ``runner``."""

from __future__ import annotations

import dataclasses
import json
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from agentwatch.cost import Pricing, default_pricing
from agentwatch.limits import Limits
from agentwatch.result import RunResult
from agentwatch.runner.drive import drive_async, drive_sync
from agentwatch.runner.events import RunEvent, RunFinished
from agentwatch.runner.gate import CallGate
from agentwatch.runner.routing import Router, router_models
from agentwatch.runner.state import RunState
from agentwatch.telemetry import http
from agentwatch.telemetry.recorder import AgentInfo, RunRecorder
from agentwatch.tools import Tool

_prepared: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _prepare_client(client: Any, sdk_spans: bool) -> Any:
    """The caller's client as given (base URL, auth, HTTP client), but with retries left to the runner.

    The copy has ``max_retries=0`` so every attempt is visible and budgeted, and the SDK's own spans off
    unless ``sdk_spans`` (then they nest under the runner's ``chat`` span instead of duplicating it).
    Copies are cached per client, so a long-lived client is copied once.
    """
    key = (sdk_spans,)
    cached = _prepared.get(client)
    if cached is not None and key in cached:
        return cached[key]
    options: dict[str, Any] = {"max_retries": 0}
    if not sdk_spans:
        options["open_telemetry"] = False
    prepared = client.with_options(**options)
    _prepared.setdefault(client, {})[key] = prepared
    return prepared


def _server(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.base_url
        return url.host or None, url.port or (443 if url.scheme == "https" else 80)
    except Exception:
        return None, None


@dataclass(frozen=True)
class Agent:
    """A Claude agent: model, instructions, tools and limits. Immutable; ``replace`` makes variants.

    ``run``/``arun`` never raise for a failed run: the ``RunResult`` says how it ended and why.
    Configuration mistakes (a cost budget on a model with no known price, duplicate tool names) raise
    ``ValueError`` here, at construction, before any call.
    """

    name: str
    model: str
    system: str | None = None
    tools: Sequence[Tool[..., Any]] = ()
    limits: Limits = field(default_factory=Limits)
    description: str | None = None
    version: str | None = None
    router: Router | None = None
    pricing: Pricing = field(default_factory=default_pricing)
    cache_prompt: bool = False
    stop_sequences: Sequence[str] = ()
    sdk_spans: bool = False
    count_tokens_near_budget: bool = True
    # One HTTP client span per attempt under each chat span, and tools' HTTP calls under execute_tool
    # (the httpx extra); None reads AGENTWATCH_HTTP_SPANS at each run. See telemetry/http.py.
    http_spans: bool | None = None
    # Fleet-wide guards around every LLM call (agentwatch.fleet.FleetGate: tenant budgets, shared rate limits,
    # circuit breakers); None: each run guards itself with its Limits only.
    gate: CallGate | None = field(default=None, compare=False)
    # Request pieces, built once (the agent is immutable); the runner reads them, users need not.
    _tools_by_name: dict[str, Tool[..., Any]] = field(init=False, repr=False, compare=False)
    _tool_params: list[dict[str, Any]] = field(init=False, repr=False, compare=False)
    _system_param: Any = field(init=False, repr=False, compare=False)
    _prompt_bytes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("Agent.name must be a non-empty string (it names the agent's spans and metrics).")
        if not self.model or not isinstance(self.model, str):
            raise ValueError("Agent.model must be a model id such as 'claude-haiku-4-5-20251001'.")
        by_name: dict[str, Tool[..., Any]] = {}
        for item in self.tools:
            if not isinstance(item, Tool):
                raise ValueError(f"Agent.tools must hold @tool-decorated functions; got {item!r}.")
            if item.name in by_name:
                raise ValueError(f"Two tools are named {item.name!r}: tool names must be unique.")
            by_name[item.name] = item
        object.__setattr__(self, "_tools_by_name", by_name)
        object.__setattr__(self, "tools", tuple(self.tools))
        params = [t.to_api() for t in self.tools]
        if self.cache_prompt and params:
            params[-1] = {**params[-1], "cache_control": {"type": "ephemeral"}}
        object.__setattr__(self, "_tool_params", params)  # the last tool carries the cache breakpoint
        system: Any = self.system
        if system is not None and self.cache_prompt:
            system = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
        object.__setattr__(self, "_system_param", system)
        prompt = (self.system or "").encode("utf-8")
        object.__setattr__(self, "_prompt_bytes", len(prompt) + len(json.dumps(params, ensure_ascii=False).encode()))
        if self.http_spans and not http.http_spans_available():
            raise ValueError(f"Agent(http_spans=True): {http.EXTRA_HINT}, or leave http_spans off.")
        if self.limits.cost_budget_usd is not None:
            for model in (self.model, *router_models(self.router)):
                if not self.pricing.has_price(model):
                    raise ValueError(
                        f"Limits.cost_budget_usd is set but model {model!r} has no known price, so the budget "
                        "could not be enforced. Add a price override (Pricing(overrides=...) or "
                        "AGENTWATCH_PRICES_FILE) or remove the cost budget."
                    )

    def replace(self, **changes: Any) -> Agent:
        """A copy with ``changes`` (e.g. a new version, system prompt or model), validated again."""
        return dataclasses.replace(self, **changes)

    # --- running -------------------------------------------------------------------------------------
    def _state(self, task: str, client: Any, conversation_id: str | None, tenant: str | None = None) -> RunState:
        host, port = _server(client)
        info = AgentInfo(
            name=self.name,
            model=self.model,
            version=self.version,
            description=self.description,
            conversation_id=conversation_id,
            server_address=host,
            server_port=port,
        )
        recorder = RunRecorder(info, self.limits)
        base_url = str(getattr(client, "base_url", ""))
        return RunState(agent=self, task=task, recorder=recorder, base_url=base_url, tenant=tenant)

    def _sync_client(self, client: anthropic.Anthropic | None) -> anthropic.Anthropic:
        if isinstance(client, anthropic.AsyncAnthropic):
            raise TypeError(
                "run()/stream() need an anthropic.Anthropic client; use arun()/astream() with AsyncAnthropic."
            )
        return _prepare_client(client if client is not None else anthropic.Anthropic(), self.sdk_spans)  # type: ignore[no-any-return]

    def _async_client(self, client: anthropic.AsyncAnthropic | None) -> anthropic.AsyncAnthropic:
        if isinstance(client, anthropic.Anthropic):
            raise TypeError(
                "arun()/astream() need an anthropic.AsyncAnthropic client; use run()/stream() with Anthropic."
            )
        return _prepare_client(client if client is not None else anthropic.AsyncAnthropic(), self.sdk_spans)  # type: ignore[no-any-return]

    def _events(
        self, task: str, client: Any, conversation_id: str | None, sse: bool, tenant: str | None = None
    ) -> Iterator[RunEvent]:
        prepared = self._sync_client(client)
        http.before_run(self.http_spans)
        return drive_sync(self._state(task, prepared, conversation_id, tenant), prepared, stream=sse)

    def _aevents(
        self, task: str, client: Any, conversation_id: str | None, sse: bool, tenant: str | None = None
    ) -> AsyncIterator[RunEvent]:
        prepared = self._async_client(client)
        http.before_run(self.http_spans)
        return drive_async(self._state(task, prepared, conversation_id, tenant), prepared, stream=sse)

    def run(
        self,
        task: str,
        *,
        client: anthropic.Anthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
    ) -> RunResult:
        """Run ``task`` to the end (or to a guard) with a sync client; with none, one from the environment.

        ``tenant`` names whose fleet budget the run is charged to (with ``Agent(gate=...)``; else unused).
        """
        for event in self._events(task, client, conversation_id, sse=False, tenant=tenant):
            if isinstance(event, RunFinished):
                return event.result
        raise AssertionError("unreachable: a run always ends with RunFinished")

    async def arun(
        self,
        task: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
    ) -> RunResult:
        """``run`` for asyncio: tool calls of one turn run concurrently. Cancellation is honoured."""
        events = self._aevents(task, client, conversation_id, sse=False, tenant=tenant)
        try:
            async for event in events:
                if isinstance(event, RunFinished):
                    return event.result
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        raise AssertionError("unreachable: a run always ends with RunFinished")

    def stream(
        self,
        task: str,
        *,
        client: anthropic.Anthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
    ) -> Iterator[RunEvent]:
        """Yield text deltas (the API is called with SSE) and run events; the last is ``RunFinished``.

        Stop reading early (or ``close()`` the iterator) and the run ends as ``cancelled`` with its spans ended.
        """
        return self._events(task, client, conversation_id, sse=True, tenant=tenant)

    def astream(
        self,
        task: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Async ``stream``. Use ``contextlib.aclosing`` to end an abandoned stream promptly."""
        return self._aevents(task, client, conversation_id, sse=True, tenant=tenant)
