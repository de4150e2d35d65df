"""``Agent``: the public face of the runner. Configuration here; control flow in ``runner``."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from agentwatch.cost import Pricing, default_pricing
from agentwatch.limits import Limits
from agentwatch.result import RunResult
from agentwatch.runner.core import RunCore
from agentwatch.runner.drivers import RunHandle, drive
from agentwatch.runner.events import RunEvent, RunFinished
from agentwatch.runner.gate import CallGate
from agentwatch.runner.routing import Router, router_models
from agentwatch.runner.spec import RunSpec
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


_servers: weakref.WeakKeyDictionary[Any, tuple[Any, str | None, int | None, str]] = weakref.WeakKeyDictionary()


def _server(client: Any) -> tuple[str | None, int | None, str]:
    """The client's server address and port (for the chat spans) and its base URL, worked out once per
    client and base URL (a client's ``base_url`` can be set)."""
    url: Any = getattr(client, "base_url", "")
    try:
        cached = _servers.get(client)
        cacheable = True
    except TypeError:  # not weakly referenceable: worked out each run
        cached, cacheable = None, False
    if cached is not None and cached[0] is url:
        return cached[1], cached[2], cached[3]
    try:
        host, port = url.host or None, url.port or (443 if url.scheme == "https" else 80)
    except Exception:
        host, port = None, None
    base_url = str(url)
    if cacheable:
        _servers[client] = (url, host, port, base_url)
    return host, port, base_url


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
    # Fleet-wide guards around each LLM call (tenant budgets, shared rate limits, circuits): runner/gate.py.
    gate: CallGate | None = None
    # What every run reads, built once (the agent is immutable).
    _spec: RunSpec = field(init=False, repr=False, compare=False)

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
        object.__setattr__(self, "tools", tuple(self.tools))
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

        spec = RunSpec.build(
            tools=by_name,
            system=self.system,
            cache_prompt=self.cache_prompt,
            name=self.name,
            model=self.model,
            limits=self.limits,
            pricing=self.pricing,
            router=self.router,
            stop_sequences=tuple(self.stop_sequences),
            count_tokens_near_budget=self.count_tokens_near_budget,
            version=self.version,
            description=self.description,
            gate=self.gate,
        )
        object.__setattr__(self, "_spec", spec)

    def replace(self, **changes: Any) -> Agent:
        """A copy with ``changes`` (e.g. a new version, system prompt or model), validated again."""
        return dataclasses.replace(self, **changes)

    # --- running -------------------------------------------------------------------------------------
    def _core(
        self, task: str, client: Any, conversation_id: str | None, tenant: str | None, sse: bool, concurrent: bool
    ) -> RunCore:
        http.before_run(self.http_spans)
        host, port, base_url = _server(client)
        info = AgentInfo(
            name=self.name,
            model=self.model,
            version=self.version,
            description=self.description,
            conversation_id=conversation_id,
            server_address=host,
            server_port=port,
        )
        return RunCore(
            self._spec,
            task,
            RunRecorder(info, self.limits),
            base_url=base_url,
            stream=sse,
            concurrent_tools=concurrent,
            tenant=tenant,
        )

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
        self, task: str, client: Any, conversation_id: str | None, tenant: str | None, sse: bool
    ) -> Iterator[RunEvent]:
        prepared = self._sync_client(client)
        return drive(self._core(task, prepared, conversation_id, tenant, sse, concurrent=False), prepared)

    def run(
        self,
        task: str,
        *,
        client: anthropic.Anthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
    ) -> RunResult:
        """Run ``task`` to the end (or to a guard) with a sync client; with none, one from the environment.

        ``tenant`` is who the run is for, as the agent's ``CallGate`` counts it (fleet budgets).
        """
        for event in self._events(task, client, conversation_id, tenant, sse=False):
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
        events = self.astart(task, client=client, conversation_id=conversation_id, tenant=tenant, stream=False)
        try:
            async for event in events:
                if isinstance(event, RunFinished):
                    return event.result
        finally:
            await events.aclose()
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
        return self._events(task, client, conversation_id, tenant, sse=True)

    def astream(
        self,
        task: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
    ) -> RunHandle:
        """Async ``stream``. Use ``contextlib.aclosing`` to end an abandoned stream promptly."""
        return self.astart(task, client=client, conversation_id=conversation_id, tenant=tenant, stream=True)

    def astart(
        self,
        task: str,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        conversation_id: str | None = None,
        tenant: str | None = None,
        stream: bool = True,
    ) -> RunHandle:
        """An async run to iterate for its events (``stream``: the API is called with SSE, text deltas too).

        Its ``result`` is set when the run ends, also when the task iterating it is cancelled: a service
        reads a cancelled run's usage there. The run starts at the first iteration.
        """
        prepared = self._async_client(client)
        return RunHandle(self._core(task, prepared, conversation_id, tenant, stream, concurrent=True), prepared)
