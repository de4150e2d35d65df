"""``FleetGate``: tenant budgets, shared rate limits and circuit breakers composed into one ``CallGate``.

The decisions are written once, as generators that yield the Redis scripts to run and the waits to
make (``_Script``, ``_Sleep``); ``route``/``admit``/``settle`` drive them with the blocking client and
``time.sleep``, ``aroute``/``aadmit``/``asettle`` with ``redis.asyncio`` and ``asyncio.sleep``, so the
async forms never block the event loop. Nothing here raises into a run: an unreachable Redis follows
each guard's policy (see ``store``), and a bug in a guard is logged and treated like an outage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import anthropic
from opentelemetry import trace

from agentwatch.cost import Pricing, default_pricing
from agentwatch.fleet import budget as budget_mod
from agentwatch.fleet import circuit as circuit_mod
from agentwatch.fleet import ratelimit as rl_mod
from agentwatch.fleet.budget import TenantBudget, from_nano, to_nano
from agentwatch.fleet.circuit import CircuitBreaker
from agentwatch.fleet.ratelimit import RateLimit
from agentwatch.fleet.store import STORE_ERRORS, FleetStore, Policy
from agentwatch.result import StopReason
from agentwatch.runner.gate import Admission, CallRequest, Settlement
from agentwatch.runner.guards import Stop
from agentwatch.runner.routing import Route
from agentwatch.telemetry import instruments
from agentwatch.telemetry import names as n

logger = logging.getLogger(n.LOGGER_NAME)
_SCRIPTS = {
    "reserve": budget_mod.RESERVE,
    "settle": budget_mod.SETTLE,
    "take": rl_mod.TAKE,
    "give": rl_mod.GIVE,
    "check": circuit_mod.CHECK,
    "record": circuit_mod.RECORD,
    "release": circuit_mod.RELEASE,
}
_GUARD_OF = {
    "reserve": n.GUARD_TENANT_BUDGET,
    "settle": n.GUARD_TENANT_BUDGET,
    "take": n.GUARD_RATE_LIMIT,
    "give": n.GUARD_RATE_LIMIT,
    "check": n.GUARD_CIRCUIT,
    "record": n.GUARD_CIRCUIT,
    "release": n.GUARD_CIRCUIT,
}
_STORE_DOWN_RETRY_S = 5.0
_POLL_S = 0.25  # the longest a waiting call sleeps before asking the shared bucket again


@dataclass(frozen=True)
class _Script:
    name: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Down:
    """What a ``_Script`` returns when the store could not run it."""

    exc: BaseException


Op = _Script | _Sleep
Flow = Generator[Op, Any, Any]


@dataclass(frozen=True)
class _Ticket:
    """What ``admit`` took, for ``settle`` to give back."""

    budget_keys: tuple[str, str] | None = None
    reservation: str = ""
    tenant_label: dict[str, str] | None = None
    limit_usd: float | None = None
    bucket: str | None = None
    taken: tuple[int, int, int] = (0, 0, 0)
    circuit: str | None = None
    probe: bool = False


def _status(exc: BaseException | None) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_backend_failure(exc: BaseException | None) -> bool:
    """5xx (529 overloaded included), timeouts and dropped connections: the backend is failing."""
    if exc is None:
        return False
    status = _status(exc)
    if status is not None:
        return status >= 500
    return isinstance(exc, anthropic.APITimeoutError | anthropic.APIConnectionError | TimeoutError | ConnectionError)


def _headers_of(settlement: Settlement) -> Mapping[str, str] | None:
    if settlement.headers is not None:
        return settlement.headers
    response = getattr(settlement.error, "response", None)
    headers = getattr(response, "headers", None)
    return dict(headers) if headers is not None else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FleetGate:
    """Fleet-wide guards around each LLM call, shared through one Redis.

    ``FleetGate("redis://127.0.0.1:6379/0", budget=TenantBudget(5.0), rate_limit=RateLimit(...),
    circuit=CircuitBreaker(fallbacks={...}))``; any guard left ``None`` is off. With no URL,
    ``AGENTWATCH_FLEET_REDIS_URL`` is read. ``pricing`` prices the output tokens a budget may still
    afford (the agent's own pricing, for custom prices). Pass it as ``Agent(gate=...)`` and each run's
    ``tenant=`` is charged.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        budget: TenantBudget | None = None,
        rate_limit: RateLimit | None = None,
        circuit: CircuitBreaker | None = None,
        pricing: Pricing | None = None,
        prefix: str | None = None,
        socket_timeout_s: float = 0.5,
        store: FleetStore | None = None,
    ) -> None:
        if store is None:
            if redis_url is None:
                store = FleetStore.from_env()
            else:
                store = FleetStore(
                    redis_url, socket_timeout_s=socket_timeout_s, **({"prefix": prefix} if prefix else {})
                )
        self.store = store
        self.budget, self.rate_limit, self.circuit = budget, rate_limit, circuit
        self.pricing = pricing or default_pricing()
        self._scripts: dict[tuple[int, str], Any] = {}
        self._spend = instruments.gauge(n.M_TENANT_SPEND, "Spend of a tenant in its fleet budget's current period")
        self._limit = instruments.gauge(n.M_TENANT_BUDGET_LIMIT, "A tenant's fleet budget for the current period")
        self._remaining = instruments.gauge(
            n.M_TENANT_BUDGET_REMAINING,
            "What is left of a tenant's fleet budget (reservations of calls in flight held)",
        )
        self._waits = instruments.histogram(
            n.M_RATE_LIMIT_WAIT, "Time LLM calls waited for shared rate-limit capacity", n.DURATION_BUCKETS
        )
        self._circuit_state = instruments.gauge(n.M_CIRCUIT_STATE, "Circuit state: 0 closed, 1 half-open, 2 open")
        self._known_states: dict[str, str] = {}

    # --- the CallGate protocol --------------------------------------------------------------------
    def route(self, route: Route, request: CallRequest) -> Route | Stop:
        return self._drive(self._route(route, request), route)  # type: ignore[no-any-return]

    def admit(self, request: CallRequest) -> Admission | Stop:
        return self._drive(self._admit(request), Admission(request.max_tokens))  # type: ignore[no-any-return]

    def settle(self, settlement: Settlement) -> None:
        self._drive(self._settle(settlement), None)

    async def aroute(self, route: Route, request: CallRequest) -> Route | Stop:
        return await self._adrive(self._route(route, request), route)  # type: ignore[no-any-return]

    async def aadmit(self, request: CallRequest) -> Admission | Stop:
        return await self._adrive(self._admit(request), Admission(request.max_tokens))  # type: ignore[no-any-return]

    async def asettle(self, settlement: Settlement) -> None:
        await self._adrive(self._settle(settlement), None)

    def close(self) -> None:
        self.store.close()

    async def aclose(self) -> None:
        await self.store.aclose()

    # --- drivers ----------------------------------------------------------------------------------
    def _drive(self, flow: Flow, fallback: Any) -> Any:
        reply: Any = None
        try:
            while True:
                op = flow.send(reply)
                if isinstance(op, _Sleep):
                    time.sleep(op.seconds)
                    reply = None
                    continue
                try:
                    script = self._scripts.get((0, op.name))
                    if script is None:
                        script = self._scripts[(0, op.name)] = self.store.client.register_script(_SCRIPTS[op.name])
                    reply = script(keys=list(op.keys), args=list(op.args))
                except STORE_ERRORS as exc:
                    reply = _Down(exc)
        except StopIteration as done:
            return done.value
        except Exception:
            logger.exception("agentwatch fleet gate failed; the call goes ahead unguarded")
            return fallback

    async def _adrive(self, flow: Flow, fallback: Any) -> Any:
        reply: Any = None
        try:
            while True:
                op = flow.send(reply)
                if isinstance(op, _Sleep):
                    await asyncio.sleep(op.seconds)
                    reply = None
                    continue
                try:
                    client = self.store.aclient()
                    key = (id(client), op.name)
                    script = self._scripts.get(key)
                    if script is None:
                        script = self._scripts[key] = client.register_script(_SCRIPTS[op.name])
                    reply = await script(keys=list(op.keys), args=list(op.args))
                except STORE_ERRORS as exc:
                    reply = _Down(exc)
        except StopIteration as done:
            return done.value
        except Exception:
            logger.exception("agentwatch fleet gate failed; the call goes ahead unguarded")
            return fallback

    def _down(self, op_name: str, policy: Policy, reply: _Down) -> None:
        self.store.unavailable(_GUARD_OF[op_name], policy, reply.exc)

    # --- route ------------------------------------------------------------------------------------
    def _circuit_key(self, model: str, base_url: str) -> str:
        return self.store.key("circuit", f"{model}|{base_url.rstrip('/')}")

    def _route(self, route: Route, request: CallRequest) -> Flow:
        circuit = self.circuit
        if circuit is None:
            return route
        first_why = ""
        for model in (route.model, *circuit.fallbacks_for(route.model)):
            reply = yield _Script("check", (self._circuit_key(model, request.base_url),), (1, 0))
            if isinstance(reply, _Down):
                self._down("check", circuit.on_store_error, reply)  # type: ignore[arg-type]
                if circuit.on_store_error is Policy.FAIL_OPEN:
                    return route
                return self._store_stop(n.GUARD_CIRCUIT, StopReason.CIRCUIT_OPEN)
            verdict, state, why = int(reply[0]), _text(reply[1]), _text(reply[3])
            self._observe_circuit(model, request.base_url, state)
            if verdict:
                if model == route.model:
                    return route
                reason = f"circuit open for {route.model} at {request.base_url} ({first_why}); fallback to {model}"
                return Route(model, "fallback", reason)
            if model == route.model:
                first_why = why or "failing"
        return self._circuit_stop(route.model, request.base_url, first_why, None)

    def _circuit_stop(self, model: str, base_url: str, why: str, wait_ms: int | None) -> Stop:
        fallbacks = self.circuit.fallbacks_for(model) if self.circuit else ()
        tail = (
            f"; its fallbacks ({', '.join(fallbacks)}) are open too" if fallbacks else " and no fallback model is set"
        )
        wait = self.circuit.cooldown_s if wait_ms is None and self.circuit else (wait_ms or 0) / 1000
        return Stop(
            StopReason.CIRCUIT_OPEN,
            f"the circuit for {model} at {base_url} is open ({why or 'failing'}){tail}; try again in about "
            f"{math.ceil(wait)}s",
            retry_after_s=round(wait, 3),
        )

    def _store_stop(self, guard: str, reason: StopReason) -> Stop:
        return Stop(
            reason,
            f"the fleet {guard} guard cannot reach its Redis at {self.store.where} and fails closed",
            guard,
            error_type="FleetStoreUnavailable" if reason is StopReason.ERROR else None,
            retry_after_s=_STORE_DOWN_RETRY_S,
        )

    # --- admit ------------------------------------------------------------------------------------
    def _admit(self, request: CallRequest) -> Flow:
        ticket = _Ticket()
        circuit = self.circuit
        if circuit is not None:
            key = self._circuit_key(request.model, request.base_url)
            reply = yield _Script("check", (key,), (int(circuit.probe_ttl_s * 1000), 1))
            if isinstance(reply, _Down):
                self._down("check", circuit.on_store_error, reply)  # type: ignore[arg-type]
                if circuit.on_store_error is Policy.FAIL_CLOSED:
                    return self._store_stop(n.GUARD_CIRCUIT, StopReason.CIRCUIT_OPEN)
            else:
                verdict, state = int(reply[0]), _text(reply[1])
                self._observe_circuit(request.model, request.base_url, state)
                if not verdict:
                    return self._circuit_stop(request.model, request.base_url, _text(reply[3]), int(reply[2]))
                ticket = _Ticket(circuit=key, probe=verdict == 2)
        max_tokens = request.max_tokens
        granted = yield from self._reserve(request, ticket)
        if isinstance(granted, Stop):
            yield from self._release(ticket)
            return granted
        ticket, max_tokens = granted
        waited = yield from self._take(request, ticket, max_tokens)
        if isinstance(waited, Stop):
            yield from self._release(ticket)
            return waited
        ticket, waited_s = waited
        return Admission(max_tokens=max_tokens, waited_s=waited_s, handle=ticket)

    def _reserve(self, request: CallRequest, ticket: _Ticket) -> Flow:
        budget = self.budget
        if budget is None or request.tenant is None:
            return ticket, request.max_tokens
        limit = budget.limit_for(request.tenant)
        if limit is None:
            return ticket, request.max_tokens
        if request.worst_case_usd is None:
            return Stop(
                StopReason.ERROR,
                f"model {request.model!r} has no known price, so the tenant budget cannot be enforced: add a "
                "price override (Pricing(overrides=...) or AGENTWATCH_PRICES_FILE)",
                "tenant_budget",
            )
        now = datetime.now(UTC)
        period, reset = budget.window(now)
        scope = budget.scope(request.tenant, request.agent)
        tag = "{" + f"{scope}:{period}" + "}"
        keys = (self.store.key("budget", tag), self.store.key("budget", tag, "held"))
        rates = self.pricing.prices_for(request.model, input_tokens=request.input_tokens)
        rate = rates.output * 1000 if rates is not None else 0.0  # nano-dollars per output token
        input_nano = (
            to_nano(max(request.worst_case_usd - request.max_tokens * rate / 1e9, 0.0))
            if rates
            else to_nano(request.worst_case_usd)
        )
        reservation = uuid.uuid4().hex
        key_ttl = int((reset - now).total_seconds()) + 86_400
        args = (
            reservation,
            input_nano,
            math.ceil(rate),
            request.max_tokens,
            min(budget.min_output_tokens, request.max_tokens),
            to_nano(limit) if limit > 0 else 0,
            int(budget.reservation_ttl_s * 1000),
            key_ttl,
        )
        label = {n.AW_TENANT: request.tenant, n.AW_BUDGET_PERIOD: budget.period}
        if budget.per_agent:
            label[n.GEN_AI_AGENT_NAME] = request.agent
        smallest = from_nano(input_nano) + min(budget.min_output_tokens, request.max_tokens) * rate / 1e9
        wait_budget = budget.max_wait_s if request.time_left_s is None else min(budget.max_wait_s, request.time_left_s)
        started = time.monotonic()
        while True:
            reply = yield _Script("reserve", keys, args)
            if isinstance(reply, _Down):
                self._down("reserve", budget.on_store_error, reply)  # type: ignore[arg-type]
                if budget.on_store_error is Policy.FAIL_OPEN:
                    return ticket, request.max_tokens
                return self._store_stop(n.GUARD_TENANT_BUDGET, StopReason.TENANT_BUDGET)
            granted, spent, reserved = int(reply[0]), from_nano(reply[1]), from_nano(reply[2])
            self._observe_budget(label, limit, spent, reserved)
            if granted > 0 or reserved <= 0 or limit - spent < smallest:
                break  # admitted, or refused for good: calls in flight settling would not make room
            pause = random.uniform(0.02, 0.1)
            if time.monotonic() - started + pause > wait_budget:
                break
            yield _Sleep(pause)  # calls in flight hold worst cases: wait for them to settle
        if granted <= 0:
            left = max(limit - spent - reserved, 0.0)
            retry = max((reset - now).total_seconds(), 0.0)
            held = f" (${reserved:.6f} more is held by calls in flight)" if reserved > 0 else ""
            return Stop(
                StopReason.TENANT_BUDGET,
                f"{budget.describe(request.tenant, request.agent)} is spent: ${left:.6f} of ${limit:g} is left"
                f"{held}, less than the next call could cost (up to ${request.worst_case_usd:.6f}); it resets at "
                f"{reset.isoformat()} (in {math.ceil(retry)}s)",
                "tenant_budget",
                retry_after_s=round(retry, 3),
            )
        ticket = _Ticket(
            budget_keys=keys,
            reservation=reservation,
            tenant_label=label,
            limit_usd=limit,
            circuit=ticket.circuit,
            probe=ticket.probe,
        )
        return ticket, min(granted, request.max_tokens)

    def _take(self, request: CallRequest, ticket: _Ticket, max_tokens: int) -> Flow:
        limits = self.rate_limit
        if limits is None:
            return ticket, 0.0
        rule, configured = limits.rule(request.model)
        caps = configured.capacities() if configured is not None else (0, 0, 0)
        bucket = self.store.key("ratelimit", rule)
        wanted = (1, max(request.input_tokens, 0), max_tokens)
        budget_s = limits.max_wait_s if request.time_left_s is None else min(limits.max_wait_s, request.time_left_s)
        started = time.monotonic()
        waited = 0.0  # time asleep for capacity (0 when the first ask was granted)
        while True:
            reply = yield _Script("take", (bucket,), (*wanted, *caps))
            if isinstance(reply, _Down):
                self._down("take", limits.on_store_error, reply)  # type: ignore[arg-type]
                if limits.on_store_error is Policy.FAIL_OPEN:
                    return ticket, waited
                return self._store_stop(n.GUARD_RATE_LIMIT, StopReason.ERROR)
            verdict, value = int(reply[0]), int(reply[1])
            if waited:
                waited = time.monotonic() - started
            if verdict == 1:
                if waited:
                    self._waits.record(waited, {n.GEN_AI_REQUEST_MODEL: request.model})
                return _replace(ticket, bucket=bucket, taken=wanted), waited
            if verdict == -1:
                kind = rl_mod.KINDS[value - 1]
                return Stop(
                    StopReason.ERROR,
                    f"the call needs {wanted[value - 1]:,} {rl_mod.NOUNS[kind]} but {request.model}'s shared rate "
                    f"limit allows only {caps[value - 1] or 'fewer'} per minute: shorten the input or lower max_tokens",
                    "rate_limit",
                )
            wait_s = value / 1000 + random.uniform(0.0, 0.05)  # jitter: replicas do not retry in lockstep
            waited = time.monotonic() - started
            if waited + wait_s > budget_s:
                self._waits.record(waited, {n.GEN_AI_REQUEST_MODEL: request.model})
                deadline = "the run's time left" if request.time_left_s is not None else f"{limits.max_wait_s:g}s"
                return Stop(
                    StopReason.TIMEOUT,
                    f"{request.model}'s shared rate limit has no room for this call within {deadline} "
                    f"(capacity in about {value / 1000:.1f}s)",
                    "rate_limit",
                    retry_after_s=round(value / 1000, 3),
                )
            yield _Sleep(min(wait_s, _POLL_S))  # calls settling give back unused tokens: look again soon

    def _release(self, ticket: _Ticket) -> Flow:
        """Give back what an admission that will not be sent took."""
        if ticket.budget_keys is not None:
            yield _Script("settle", ticket.budget_keys, (ticket.reservation, 0, 86_400 * 32))
        if ticket.probe and ticket.circuit is not None:
            yield _Script("release", (ticket.circuit,), ())
        return None

    # --- settle -----------------------------------------------------------------------------------
    def _settle(self, settlement: Settlement) -> Flow:
        ticket = settlement.admission.handle
        if not isinstance(ticket, _Ticket):
            return None
        error = settlement.error
        if ticket.budget_keys is not None and self.budget is not None:
            cost = settlement.cost_usd or 0.0
            reply = yield _Script("settle", ticket.budget_keys, (ticket.reservation, to_nano(cost), 86_400 * 32))
            if isinstance(reply, _Down):
                self._down("settle", self.budget.on_store_error, reply)  # type: ignore[arg-type]
            elif ticket.tenant_label is not None and ticket.limit_usd is not None:
                self._observe_budget(ticket.tenant_label, ticket.limit_usd, from_nano(reply[0]), from_nano(reply[1]))
        if ticket.bucket is not None and self.rate_limit is not None:
            headers = _headers_of(settlement)
            requests, input_tokens, output_tokens = ticket.taken
            block_ms = 0
            if _status(error) == 429:
                refund = (requests, input_tokens, output_tokens)  # refused: nothing was used
                wait = rl_mod.retry_after_s(headers)
                block_ms = int((wait if wait is not None else 1.0) * 1000)
            elif settlement.usage is not None:
                used_input = settlement.usage.input_tokens + settlement.usage.cache_write_tokens
                refund = (0, max(input_tokens - used_input, 0), max(output_tokens - settlement.usage.output_tokens, 0))
            else:
                refund = (0, input_tokens, output_tokens)
            learned = rl_mod.Learned.from_headers(headers) if self.rate_limit.learn_from_headers else None
            learned = learned.scaled(self.rate_limit.learned_headroom) if learned else rl_mod.Learned()
            give = (*refund, *learned.capacities, *learned.remaining, block_ms)
            reply = yield _Script("give", (ticket.bucket,), give)
            if isinstance(reply, _Down):
                self._down("give", self.rate_limit.on_store_error, reply)  # type: ignore[arg-type]
        if ticket.circuit is not None and self.circuit is not None:
            circuit = self.circuit
            failed = _is_backend_failure(error)
            args = (
                int(failed),
                int(circuit.window_s * 1000),
                circuit.min_calls,
                circuit.failure_rate,
                int(circuit.cooldown_s * 1000),
                int(ticket.probe),
            )
            reply = yield _Script("record", (ticket.circuit,), args)
            if isinstance(reply, _Down):
                self._down("record", circuit.on_store_error, reply)  # type: ignore[arg-type]
            else:
                model, base_url = settlement.request.model, settlement.request.base_url
                self._observe_circuit(model, base_url, _text(reply[0]))
        return None

    # --- telemetry --------------------------------------------------------------------------------
    def _observe_budget(self, label: dict[str, str], limit: float, spent: float, reserved: float) -> None:
        try:
            self._spend.set(round(spent, 9), label)
            self._limit.set(limit, label)
            self._remaining.set(round(max(limit - spent - reserved, 0.0), 9), label)
        except Exception:
            pass

    def _observe_circuit(self, model: str, base_url: str, state: str) -> None:
        try:
            host = urlsplit(base_url).hostname or base_url
            self._circuit_state.set(
                n.CIRCUIT_STATE_VALUES.get(state, 0), {n.GEN_AI_REQUEST_MODEL: model, n.SERVER_ADDRESS: host}
            )
            key = f"{model}|{base_url}"
            previous = self._known_states.get(key, n.CIRCUIT_CLOSED)
            self._known_states[key] = state
            if previous != state:
                span = trace.get_current_span()
                span.add_event(
                    n.EVENT_CIRCUIT_STATE,
                    {n.AW_CIRCUIT_STATE: state, n.GEN_AI_REQUEST_MODEL: model, n.SERVER_ADDRESS: host},
                )
                level = logging.WARNING if state == n.CIRCUIT_OPEN else logging.INFO
                logger.log(
                    level,
                    "agentwatch circuit for %s at %s is %s (was %s)",
                    model,
                    base_url,
                    state,
                    previous,
                    extra={"event": n.LOG_CIRCUIT_STATE, "model": model, "state": state},
                )
        except Exception:
            pass


def _replace(ticket: _Ticket, **changes: Any) -> _Ticket:
    import dataclasses

    return dataclasses.replace(ticket, **changes)
