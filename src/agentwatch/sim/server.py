"""The simulator's HTTP side: a local Anthropic Messages API on 127.0.0.1.

``Simulator`` runs one asyncio event loop on a daemon thread; HTTP/1.1 is parsed by h11 (the sans-IO
protocol library under httpx). Every connection is a coroutine, not a thread, so thousands of
concurrent requests that wait out a simulated latency cost timers, not threads; the listen backlog is
large enough that a burst of new connections queues instead of being refused. Each request is checked
like the real API (auth, ``anthropic-version``, body, ``max_tokens`` limit), may be hit by an injected
fault, and is answered by the scripted model as JSON or as named SSE events.

Bounds: a connection that sends no complete request (idle keep-alive, or a half-sent request) within
``idle_timeout_s`` is closed; headers are capped at 64 KiB and bodies at the API's 32 MB (413 beyond);
the request log keeps the last ``request_log_size`` requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import h11

from agentwatch.sim import protocol, script, validation
from agentwatch.sim.faults import Fault, FaultPicker, FaultPlan, error_reply
from agentwatch.sim.ids import make_id
from agentwatch.sim.ratelimit import Admission, RateLimit, RateLimiter
from agentwatch.sim.usage import CacheLedger, count_input_tokens, output_tokens
from agentwatch.telemetry.logs import child_logger

logger = child_logger("sim")

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
API_VERSIONS = ("2023-06-01", "2026-10-21")
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 32_000_000  # the Messages API's request size limit (413 request_too_large above it)
DEFAULT_BACKLOG = 4096  # Linux caps it at net.core.somaxconn (4096 on current kernels)
_SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
_MIDSTREAM_EVENTS = 4  # events sent before a mid-stream error: message_start, block start, ping, a delta
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator received (auth header values redacted), for tests to inspect."""

    path: str
    model: str | None
    stream: bool
    fault: str | None
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    status: int | None = None  # None: no HTTP response (hang, drop)
    request_id: str = ""
    usage: dict[str, Any] | None = None  # what the request was billed (the response's usage); None: nothing


class _TooLarge(Exception):
    """The request body is over ``MAX_BODY_BYTES``."""


class Simulator:
    """A local Anthropic Messages API with a scripted model and fault injection.

    ``with Simulator() as sim: anthropic.Anthropic(api_key="test", base_url=sim.base_url)``.
    ``latency_s`` is added to every response (spread over the events of a stream); ``first_chunk_s``
    is the wait before the first byte of a body. ``faults`` can be replaced while running.
    ``request_log_size`` bounds ``requests`` (oldest dropped first); ``idle_timeout_s`` closes
    connections that send no complete request for that long; ``backlog`` is the listen queue.
    ``rate_limits`` maps model prefixes (or ``"*"``) to per-minute limits, enforced with the API's
    ``anthropic-ratelimit-*`` headers and 429s (see ``ratelimit``); without it nothing is limited.
    """

    def __init__(
        self,
        port: int = 0,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        first_chunk_s: float = 0.0,
        request_log_size: int = 10_000,
        idle_timeout_s: float = 60.0,
        backlog: int = DEFAULT_BACKLOG,
        rate_limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        if request_log_size < 1:
            raise ValueError(f"request_log_size must be at least 1, got {request_log_size}")
        if not idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be a positive number of seconds, got {idle_timeout_s}")
        self.host, self.port, self.seed = host, port, seed
        self.latency_s, self.first_chunk_s = latency_s, first_chunk_s
        self.idle_timeout_s, self.backlog = idle_timeout_s, backlog
        self._picker = FaultPicker(faults)
        self._ledger = CacheLedger()
        self._limiter = RateLimiter(rate_limits) if rate_limits else None
        self._lock = threading.Lock()
        self._requests: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._counter = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind and serve on a daemon thread; returns self. Raises OSError when the port is taken."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._serve, args=(ready, failure), name="agentwatch-sim", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection, hung ones included. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop_requested.set)
        thread.join(timeout=10)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``). Raises RuntimeError before ``start()``."""
        if self._thread is None:
            raise RuntimeError("the simulator is not running; call start() or use it as a context manager")
        return f"http://{self.host}:{self.port}"

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        asyncio.run(self._main(ready, failure))

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._connection, self.host, self.port, backlog=self.backlog, reuse_address=True
            )
        except OSError as exc:
            failure.append(exc)
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stop_requested.wait()
        server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    # --- state -----------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultPlan | None:
        """The fault plan in force; assigning one (or None) restarts its schedule."""
        return self._picker.plan

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        with self._lock:
            self._picker = FaultPicker(plan)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the most recent requests (up to ``request_log_size``), oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and cached prompt prefixes; restart the fault schedule; refill every
        rate-limit bucket."""
        with self._lock:
            self._requests.clear()
            self._picker = FaultPicker(self._picker.plan)
            if self._limiter is not None:
                self._limiter = RateLimiter(self._limiter.limits)
        self._ledger.clear()

    def _next_id(self, prefix: str, kind: str) -> str:
        with self._lock:
            self._counter += 1
            return make_id(prefix, self.seed, kind, self._counter)

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    # --- connections -----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until the client closes it, goes idle, or a reply ends it."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        wire = _Wire(conn, reader, writer, self.idle_timeout_s)
        try:
            while True:
                try:
                    received = await wire.read_request()
                except _TooLarge:
                    too_large = f"Request exceeds the maximum allowed size of {MAX_BODY_BYTES} bytes."
                    request_id = self._next_id("req_", "request")
                    await wire.send_json(
                        413, protocol.error_body("request_too_large", too_large, request_id), request_id
                    )
                    return
                except h11.RemoteProtocolError as exc:
                    request_id = self._next_id("req_", "request")
                    bad = protocol.error_body("invalid_request_error", f"Malformed HTTP request: {exc}", request_id)
                    await wire.send_json(400, bad, request_id)
                    return
                if received is None:
                    return
                exchange = _Exchange(self, wire, *received)
                if not await exchange.run() or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, TimeoutError, h11.ProtocolError):
            pass  # a client that hangs up or goes idle is normal here (timeouts, retries, dropped streams)
        except asyncio.CancelledError:
            pass  # stop() cancels every connection; end as finished, or asyncio logs the task as failed
        finally:
            writer.close()
            self._connections.discard(task)


class _Wire:
    """One connection's HTTP/1.1 framing: read a whole request, write a response or a stream."""

    def __init__(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_s: float
    ) -> None:
        self.conn, self.reader, self.writer, self.idle_s = conn, reader, writer, idle_s

    async def read_request(self) -> tuple[h11.Request, bytes] | None:
        """The next request and its body; None when the client closed. TimeoutError when it idles."""
        request: h11.Request | None = None
        body = bytearray()
        async with asyncio.timeout(self.idle_s):
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    self.conn.receive_data(await self.reader.read(_READ_CHUNK))
                elif isinstance(event, h11.Request):
                    request = event
                    length = dict(event.headers).get(b"content-length", b"0")
                    if length.isdigit() and int(length) > MAX_BODY_BYTES:
                        raise _TooLarge
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY_BYTES:
                        raise _TooLarge
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    return request, bytes(body)
                else:  # ConnectionClosed, or PAUSED after a request h11 will not reuse
                    return None

    async def wait_for_close(self) -> None:
        """Read and discard until the client closes its end."""
        while await self.reader.read(_READ_CHUNK):
            pass

    async def write(self, *events: h11.Event) -> None:
        """Send ``events``; a client that stops reading for ``idle_s`` is dropped, not buffered for."""
        if self.writer.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self.writer.write(b"".join(self.conn.send(e) or b"" for e in events))
        if self.writer.transport.get_write_buffer_size():  # the kernel did not take it all: wait, bounded
            async with asyncio.timeout(self.idle_s):
                await self.writer.drain()

    async def respond(self, status: int, headers: Iterable[tuple[str, str]], body: bytes | None = None) -> None:
        """Send a whole response (``body``), or only the head of a chunked one (``body=None``)."""
        reason = _REASONS.get(status, b"")
        head = h11.Response(status_code=status, headers=list(headers), reason=reason)
        if body is None:
            await self.write(head)
        else:
            await self.write(head, h11.Data(data=body), h11.EndOfMessage())

    async def send_json(
        self, status: int, payload: dict[str, Any], request_id: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        data = json.dumps(payload).encode()
        head = [("content-type", "application/json"), ("content-length", str(len(data))), ("request-id", request_id)]
        await self.respond(status, [*head, *headers], data)


_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus} | {529: b"Overloaded"}


class _Exchange:
    """One request and its response."""

    def __init__(self, sim: Simulator, wire: _Wire, request: h11.Request, raw: bytes) -> None:
        self.sim, self.wire = sim, wire
        self.method = request.method.decode("latin-1")
        self.request_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers}
        self.responded = False
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self.body: Any = parsed
        fields = parsed if isinstance(parsed, dict) else {}
        model = fields.get("model")
        self.path = urlsplit(request.target.decode("latin-1")).path.rstrip("/") or "/"
        self.model = model if isinstance(model, str) else None
        self.stream = fields.get("stream") is True
        self.request_id = sim._next_id("req_", "request")
        self.fault: Fault | None = None
        self.admission: Admission | None = None
        self.billed: dict[str, Any] | None = None
        self.headers = {k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in self.request_headers.items()}
        self.fields = fields

    def record(self, status: int | None) -> None:
        self.sim._record(
            RequestRecord(
                path=self.path,
                model=self.model,
                stream=self.stream,
                fault=self.fault.kind if self.fault else None,
                headers=self.headers,
                body=self.fields,
                status=status,
                request_id=self.request_id,
                usage=self.billed,
            )
        )

    async def run(self) -> bool:
        """Answer the request; False when the connection must close afterwards (or already did)."""
        try:
            return await self.dispatch()
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a simulator bug: answer 500 so the client does not wait, and log it
            logger.exception("agentwatch simulator failed on %s %s", self.method, self.path)
            if not self.responded:
                await self.error(500, "api_error", f"Simulator error: {type(exc).__name__}: {exc}")
            return False

    async def dispatch(self) -> bool:
        sim = self.sim
        if self.method == "GET" and self.path == "/health":
            return await self.send_json(200, {"status": "ok"})
        if self.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH) or self.method != "POST":
            return await self.error(404, "not_found_error", f"Not found: {self.method} {self.path}")
        problem = self.auth_problem()
        if problem:
            return await self.error(401, "authentication_error", problem)
        version = self.request_headers.get("anthropic-version")
        if not version:
            return await self.error(400, "invalid_request_error", "anthropic-version: header is required")
        if version not in API_VERSIONS:
            wanted = " or ".join(API_VERSIONS)
            message = f"anthropic-version: unknown version {version!r}; use {wanted}"
            return await self.error(400, "invalid_request_error", message)
        is_count = self.path == COUNT_TOKENS_PATH
        self.fault = sim._picker.next_count(self.model) if is_count else sim._picker.next(self.model)
        if self.fault is not None:
            done = await self.inject(self.fault)
            if done is not None:
                return done
        problem = validation.problem(self.body, count_tokens=self.path == COUNT_TOKENS_PATH)
        if problem:
            return await self.error(400, "invalid_request_error", problem)
        if self.path == COUNT_TOKENS_PATH:
            self.record(200)
            return await self.send_json(200, {"input_tokens": count_input_tokens(self.body)})
        if sim._limiter is not None:
            self.admission = sim._limiter.admit(
                self.body["model"], count_input_tokens(self.body), self.body["max_tokens"]
            )
            if self.admission is not None and self.admission.refused:
                retry = [("retry-after", str(self.admission.retry_after_s))]
                return await self.error(429, "rate_limit_error", self.admission.refused, retry)
        return await self.answer()

    def auth_problem(self) -> str | None:
        key = (self.request_headers.get("x-api-key") or "").strip()
        bearer = (self.request_headers.get("authorization") or "").strip()
        if key or (bearer.lower().startswith("bearer ") and bearer[7:].strip()):
            return None
        return (
            "Missing API key: send it in the `x-api-key` header or as `Authorization: Bearer <key>` "
            "(the simulator accepts any key)."
        )

    async def inject(self, fault: Fault) -> bool | None:
        """Apply ``fault``: whether to keep the connection once the response is complete, or None to
        carry on normally."""
        reply = error_reply(fault)
        if reply is not None and not (fault.kind == "midstream_error" and self.stream):
            return await self.error(reply.status, reply.error_type, reply.message, reply.headers.items())
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
            return None
        if fault.kind in ("hang", "drop"):
            self.record(None)
            if fault.kind == "hang":
                await self.wire.wait_for_close()
            return False
        if fault.kind == "malformed":
            self.record(200)
            self.responded = True
            if self.stream:
                await self.wire.respond(200, self.stream_headers())
                broken = b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'
                await self.wire.write(h11.Data(data=broken), h11.EndOfMessage())
            else:
                await self.wire.respond(200, self.json_headers(12), b'{"id": "msg_')
            return True
        return None

    async def answer(self) -> bool:
        sim, body = self.sim, self.body
        msg_id = sim._next_id("msg_", "message")
        reply = script.respond(body, msg_id)
        usage = sim._ledger.account(body)
        used = output_tokens(reply.content)
        full = protocol.message(msg_id, body["model"], reply, usage, used)
        if sim._limiter is not None and self.admission is not None:
            sim._limiter.settle(self.admission, usage.cache_read_input_tokens, used)
        self.billed = full["usage"]
        self.record(200)
        if not self.stream:
            await asyncio.sleep(sim.first_chunk_s + sim.latency_s)
            return await self.send_json(200, full)
        events = protocol.stream_events(full)
        if self.fault is not None and self.fault.kind == "midstream_error":
            error = protocol.error_body("overloaded_error", "Overloaded", None)
            events = [*events[:_MIDSTREAM_EVENTS], ("error", error)]
        await self.send_events(events)
        return True

    # --- writing ---------------------------------------------------------------------------------
    def json_headers(self, length: int) -> list[tuple[str, str]]:
        return [("content-type", "application/json"), ("content-length", str(length)), ("request-id", self.request_id)]

    def stream_headers(self) -> list[tuple[str, str]]:
        return [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("request-id", self.request_id),
            *self.limit_headers(),
        ]

    async def error(self, status: int, error_type: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> bool:
        self.record(status)
        return await self.send_json(status, protocol.error_body(error_type, message, self.request_id), headers)

    def limit_headers(self) -> list[tuple[str, str]]:
        return list(self.admission.headers.items()) if self.admission is not None else []

    async def send_json(self, status: int, payload: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> bool:
        self.responded = True
        await self.wire.send_json(status, payload, self.request_id, [*headers, *self.limit_headers()])
        return True

    async def send_events(self, events: list[protocol.Event]) -> None:
        sim = self.sim
        self.responded = True
        await self.wire.respond(200, self.stream_headers())
        gap = sim.latency_s / max(1, len(events) - 1)
        for i, (name, data) in enumerate(events):
            await asyncio.sleep(sim.first_chunk_s if i == 0 else gap)
            await self.wire.write(h11.Data(data=protocol.sse(name, data)))
        await self.wire.write(h11.EndOfMessage())
