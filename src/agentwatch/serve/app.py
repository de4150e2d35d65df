"""The ASGI app: routes, JSON errors, auth, limits, SSE, readiness, and the OpenTelemetry server span.

``create_app(agent)`` returns an ASGI app to serve with uvicorn or mount in another app. Every error is
``{"error": {"type": ..., "message": ...}}`` with a sentence saying what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anthropic
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from agentwatch.agent import Agent
from agentwatch.result import RunResult, StopReason
from agentwatch.serve.auth import HOW_TO_AUTHENTICATE, ApiKeys
from agentwatch.serve.drain import Drain
from agentwatch.serve.runs import EventsGone, Refused, Run, RunRegistry
from agentwatch.serve.settings import ServeSettings, parse_bool
from agentwatch.serve.wire import BadRequest, RunRequest, parse_run_request, result_json
from agentwatch.telemetry import names as n

if TYPE_CHECKING:
    from agentwatch.serve.queued import QueuedRuns

_PROPAGATOR = TraceContextTextMapPropagator()


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape of the service."""
    return JSONResponse({"error": {"type": error_type, "message": message}}, status_code=status, headers=headers)


class BackendProbe:
    """Is the model backend reachable? A TCP connect to its host, cached for ``ttl_s`` (cheap for /readyz)."""

    def __init__(self, base_url: str, ttl_s: float = 5.0, timeout_s: float = 1.0) -> None:
        url = urlsplit(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self._checked_at, self._ok = float("-inf"), False

    async def reachable(self) -> bool:
        if time.monotonic() - self._checked_at < self.ttl_s:
            return self._ok
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._ok = True
        except (OSError, TimeoutError):
            self._ok = False
        self._checked_at = time.monotonic()
        return self._ok


def _refused_by_fleet_budget(result: RunResult) -> bool:
    """A run the tenant's fleet budget refused before any work (a run that did some returns it as usual)."""
    return result.stop_reason is StopReason.TENANT_BUDGET and result.iterations == 0 and not result.tool_calls


def _result_response(result: RunResult, run_id: str) -> Response:
    """A finished JSON run: 200 with its result, or 429 + Retry-After when its fleet budget refused it before
    any work (the caller should come back later)."""
    if _refused_by_fleet_budget(result):
        retry = {"Retry-After": str(max(1, math.ceil(result.retry_after_s or 1)))}
        return error(429, "tenant_budget", result.stop_detail, {**_trace_headers(run_id), **retry})
    return JSONResponse(result_json(result, run_id), headers=_trace_headers(run_id))


def _trace_headers(run_id: str | None = None) -> dict[str, str]:
    """``traceparent`` and ``X-Trace-Id`` of the request's server span (so a caller can open the trace)."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        headers["X-Trace-Id"] = format(context.trace_id, "032x")
    if run_id is not None:
        headers["X-Run-Id"] = run_id
    return headers


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is over ``limit`` bytes (declared or counted)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def queue_for(settings: ServeSettings) -> QueuedRuns | None:
    """The run queue when ``queue_url`` is set; a clear ValueError without the queue extra or an agent reference."""
    if not settings.queue_url:
        return None
    try:
        from agentwatch.serve.queued import QueuedRuns
    except ImportError:
        raise ValueError("--queue needs the queue extra: pip install 'agentwatch[queue]'.") from None
    return QueuedRuns(settings.queue_url, settings.agent)


def _running(run_id: str) -> JSONResponse:
    """``GET /v1/runs/{id}`` of a run that has not finished yet (in this server or in the queue)."""
    return JSONResponse({"run_id": run_id, "status": "running"}, status_code=202, headers=_trace_headers(run_id))


async def _until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class Service:
    """The routes, sharing the settings, keys, run registry and backend probe of one app."""

    def __init__(self, settings: ServeSettings, keys: ApiKeys, page: str) -> None:
        self.settings, self.keys, self.page = settings, keys, page
        self.registry: RunRegistry | None = None
        self.probe: BackendProbe | None = None
        self.queued = queue_for(settings)

    # --- plumbing ------------------------------------------------------------------------------
    def _tenant(self, request: Request) -> str | JSONResponse:
        tenant = self.keys.tenant_for(request.headers)
        if tenant is None:
            return error(401, "unauthorized", f"missing or unknown API key: {HOW_TO_AUTHENTICATE}.",
                         {"WWW-Authenticate": "Bearer"})  # fmt: skip
        trace.get_current_span().set_attribute(n.AW_TENANT, tenant)
        return tenant

    def _runs(self) -> RunRegistry:
        if self.registry is None:
            raise RuntimeError("the app has not started: serve it with an ASGI server that runs its lifespan")
        return self.registry

    def _caller(self, request: Request) -> tuple[str, bool] | JSONResponse:
        """(tenant, cancel on disconnect) of a request that opens a run's stream, or the error to answer."""
        tenant = self._tenant(request)
        if isinstance(tenant, Response):
            return tenant
        # most requests have no query string: skip parsing one
        raw = request.query_params.get("cancel_on_disconnect") if request.scope.get("query_string") else None
        if raw is None:
            return tenant, self.settings.cancel_on_disconnect
        try:
            return tenant, parse_bool(raw)
        except ValueError:
            return error(400, "invalid_request", "cancel_on_disconnect must be true or false.")

    def _retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.retry_after_s)}

    def _annotate(self, run_request: RunRequest) -> None:
        span = trace.get_current_span()
        for key in self.settings.metadata_attributes:
            if key in run_request.metadata:
                span.set_attribute(n.AW_REQUEST_METADATA_PREFIX + key, run_request.metadata[key])

    # --- endpoints -----------------------------------------------------------------------------
    async def create_run(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        tenant, cancel = caller
        body = await _read_body(request, self.settings.max_body_bytes)
        if body is None:
            return error(413, "body_too_large", f"the body is over {self.settings.max_body_bytes} bytes; send less.")
        try:
            run_request = parse_run_request(body, self.settings.max_task_chars)
        except BadRequest as exc:
            return error(exc.status, exc.error_type, str(exc))
        if run_request.mode == "async" or "respond-async" in request.headers.get("prefer", "").lower():
            return await self.submit_to_queue(run_request, tenant)
        self._annotate(run_request)
        stream = "text/event-stream" in request.headers.get("accept", "")
        try:
            run = self._runs().start(run_request.task, tenant, run_request.conversation_id, stream=stream)
        except Refused as exc:
            return error(exc.status, exc.error_type, str(exc), self._retry_after())
        trace.get_current_span().set_attribute(n.AW_SERVE_RUN_ID, run.id)
        if stream:
            return self._stream(run, 0, cancel)
        if not cancel:  # a client that goes away leaves the run going: nothing to watch (and no task per request)
            return _result_response(await run.wait(), run.id)
        waiter = asyncio.ensure_future(run.wait())
        gone = asyncio.ensure_future(_until_disconnect(request))
        await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not waiter.done():  # the client went away before the end
            run.cancel("the client disconnected and asked for cancel_on_disconnect")
            waiter.cancel()
            return Response(status_code=499)  # nobody reads it; uvicorn drops it
        return _result_response(waiter.result(), run.id)

    async def submit_to_queue(self, run_request: RunRequest, tenant: str) -> Response:
        """``"mode": "async"`` / ``Prefer: respond-async``: queue the run, answer 202 with where its result will be.

        The server span is current in the thread that publishes, so it parents the Celery producer span.
        Queued runs are off the request path: the concurrency limits do not apply to them.
        """
        if self.queued is None:
            return error(
                501, "no_queue", "no queue configured: start with --queue redis://… to accept asynchronous runs."
            )
        if run_request.conversation_id is not None:
            return error(422, "invalid_request", "conversation_id works only in synchronous runs: drop it, or send "
                         'the run without "mode": "async" and Prefer: respond-async.')  # fmt: skip
        self._annotate(run_request)
        from agentwatch.queue import QueueUnavailable

        try:
            run_id = await asyncio.to_thread(self.queued.submit, run_request.task, tenant)
        except QueueUnavailable:
            return self._queue_down("the run was not queued: send it again")
        trace.get_current_span().set_attribute(n.AW_SERVE_RUN_ID, run_id)
        headers = {**_trace_headers(run_id), "Location": f"/v1/runs/{run_id}"}
        return JSONResponse({"run_id": run_id, "status": "queued"}, status_code=202, headers=headers)

    async def _queued_result(self, queued: QueuedRuns, run_id: str, tenant: str) -> Response:
        """``GET /v1/runs/{id}`` of a queued run: its result from the queue's result backend."""
        from agentwatch.queue import QueueUnavailable, RunFailed, RunNotFound, RunPending

        try:
            result = await asyncio.to_thread(queued.result, run_id, tenant)
        except RunNotFound:
            return self._unknown_run()
        except RunPending:
            return _running(run_id)
        except RunFailed as exc:
            return error(500, "run_failed", f"{exc}. It is in the queue's dead-letter list; send the task again.")
        except QueueUnavailable:
            return self._queue_down("the run itself is unaffected: ask again")
        return JSONResponse(result_json(result, run_id), headers=_trace_headers(run_id))

    def _queue_down(self, what_now: str) -> JSONResponse:
        return error(503, "queue_unavailable", f"the run queue (Redis) is unreachable; {what_now} after "
                     f"{self.settings.retry_after_s} s.", self._retry_after())  # fmt: skip

    async def run_events(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        tenant, cancel = caller
        run = self._runs().get(request.path_params["run_id"], tenant)
        if run is None:
            return self._unknown_run()
        raw = request.headers.get("last-event-id", "0").strip() or "0"
        if not raw.isdigit():
            return error(400, "invalid_last_event_id", "Last-Event-ID must be the id of an event this run sent.")
        after = int(raw)
        if after > run.last_id:
            return error(400, "invalid_last_event_id", f"run {run.id} has sent only {run.last_id} events so far.")
        try:
            run.since(after)
        except EventsGone as exc:
            return error(410, "events_expired", f"{exc}; fetch the result with GET /v1/runs/{run.id}.")
        return self._stream(run, after, cancel)

    async def get_run(self, request: Request) -> Response:
        tenant = self._tenant(request)
        if isinstance(tenant, Response):
            return tenant
        run = self._runs().get(request.path_params["run_id"], tenant)
        if run is None and self.queued is not None:
            return await self._queued_result(self.queued, request.path_params["run_id"], tenant)
        if run is None:
            return self._unknown_run()
        if run.result is None:
            return _running(run.id)
        return JSONResponse(result_json(run.result, run.id), headers=_trace_headers(run.id))

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        registry = self.registry
        if registry is None or registry.draining:
            return error(503, "draining", "the server is not accepting runs (starting or shutting down).")
        if self.probe is not None and not await self.probe.reachable():
            return error(503, "backend_unreachable", f"the model backend {self.probe.host}:{self.probe.port} "
                         "does not accept connections; check its address and the network.")  # fmt: skip
        return JSONResponse({"status": "ready", "runs": registry.active})

    async def index(self, request: Request) -> Response:
        return HTMLResponse(self.page)

    def _unknown_run(self) -> JSONResponse:
        return error(404, "not_found", "no such run for this API key (it may have expired); start a new one.")

    def _stream(self, run: Run, after: int, cancel: bool) -> EventSourceResponse:
        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                async for event in run.follow(after):
                    yield ServerSentEvent(data=event.data, event=event.name, id=str(event.id))
            finally:
                if cancel and not run.done:
                    run.cancel("the client disconnected and asked for cancel_on_disconnect")

        return EventSourceResponse(events(), ping=self.settings.heartbeat_s, headers=_trace_headers(run.id))


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error(404, "not_found", f"no endpoint {request.url.path}; see GET / and the README's Serve section.")
    if status == 405:
        return error(405, "method_not_allowed", f"{request.method} is not supported on {request.url.path}.")
    if status < 500:
        return error(status, "http_error", str(getattr(exc, "detail", "")) or "the request was rejected.")
    return error(500, "internal_error", "the server failed; the run's trace has the details. Retry later.")


def _page(settings: ServeSettings) -> str:
    text = resources.files("agentwatch.serve").joinpath("static", "index.html").read_text(encoding="utf-8")
    return text.replace("__JAEGER_URL__", html.escape(settings.jaeger_url, quote=True))


def create_app(
    agent: Agent,
    *,
    client: anthropic.AsyncAnthropic | None = None,
    settings: ServeSettings | None = None,
    keys: ApiKeys | None = None,
    on_shutdown: Sequence[Callable[[], object]] = (),
) -> ASGIApp:
    """The service for ``agent``, traced (server span → ``invoke_agent``).

    ``client`` is used as given (default: the simulator with ``settings.sim``, else one from the
    environment). ``keys`` default to ``settings.api_keys``/``api_keys_file``. ``on_shutdown`` runs after the
    runs have ended (e.g. a telemetry flush).
    """
    settings = settings or ServeSettings.from_env()
    keys = keys if keys is not None else ApiKeys.load(settings.api_keys, settings.api_keys_file)
    service = Service(settings, keys, _page(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        simulator: Any = None
        backend = client
        if backend is None and settings.sim:
            from agentwatch.sim import Fault, FaultPlan, Simulator

            rate = settings.sim_fault_rate  # mostly 429s (retried after retry-after), some 529 and 500
            rates = {Fault.rate_limit(retry_after_ms=200): rate * 0.6, Fault.overloaded(): rate * 0.25}
            faults = FaultPlan(rates={**rates, Fault.server_error(): rate * 0.15}) if rate else None
            simulator = Simulator(latency_s=settings.sim_latency_s, faults=faults).start()
            backend = anthropic.AsyncAnthropic(api_key="simulator", base_url=simulator.base_url)
        backend = backend or anthropic.AsyncAnthropic()
        service.probe = BackendProbe(str(backend.base_url))
        service.registry = RunRegistry(
            agent,
            backend,
            max_runs=settings.max_runs,
            max_runs_per_tenant=settings.max_runs_per_tenant,
            event_buffer=settings.event_buffer,
            retention_s=settings.retention_s,
        )
        app.state.service = service
        drain = Drain(service.registry, settings.drain_timeout_s)
        drain.install()
        try:
            yield
        finally:
            drain.uninstall()
            service.registry.draining = True
            await service.registry.cancel_all("the server stopped")
            for hook in on_shutdown:
                hook()
            if simulator is not None:
                simulator.stop()

    routes = [
        Route("/", service.index, methods=["GET"]),
        Route("/healthz", service.healthz, methods=["GET"]),
        Route("/readyz", service.readyz, methods=["GET"]),
        Route("/v1/runs", service.create_run, methods=["POST"]),
        Route("/v1/runs/{run_id}", service.get_run, methods=["GET"]),
        Route("/v1/runs/{run_id}/events", service.run_events, methods=["GET"]),
    ]
    # A page served from another origin (its base URL set to this service) needs CORS; the key goes in a header.
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "x-api-key", "Content-Type", "Last-Event-ID", "traceparent", "Prefer"],
        expose_headers=["X-Run-Id", "X-Trace-Id", "traceparent"],
    )
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[cors] if settings.cors_origins else [],
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
    )
    return OpenTelemetryMiddleware(app, excluded_urls="healthz,readyz", exclude_spans=["send", "receive"])
