"""The simulator's HTTP side: a local Anthropic Messages API on 127.0.0.1 (stdlib only).

``Simulator`` runs a ``ThreadingHTTPServer`` on a daemon thread. Each request is checked like the real
API (auth, ``anthropic-version``, body), may be hit by an injected fault, and is answered by the
scripted model as JSON or as named SSE events. Every handler waits on one stop event, so ``stop()``
returns promptly even while requests hang or stream slowly.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from agentwatch.sim import protocol, script, validation
from agentwatch.sim.faults import Fault, FaultPicker, FaultPlan, error_reply
from agentwatch.sim.usage import CacheLedger, count_input_tokens, output_tokens
from agentwatch.telemetry.logs import child_logger

logger = child_logger("sim")

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
API_VERSIONS = ("2023-06-01", "2026-10-21")
_SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
_MIDSTREAM_EVENTS = 4  # events sent before a mid-stream error: message_start, block start, ping, a delta
_POLL_S = 0.05


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        super().__init__(address, _Handler)
        self.sim = sim

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (timeouts, retries, dropped streams) is normal here: stay quiet."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE writes and header/body writes must not wait on ACKs
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sim._track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, opened=False)

    def do_POST(self) -> None:
        self.server.sim._handle(self)

    def do_GET(self) -> None:
        self.server.sim._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def _peer_closed(conn: socket.socket) -> bool:
    """Whether the client has closed its end. Never raises."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class Simulator:
    """A local Anthropic Messages API with a scripted model and fault injection.

    ``with Simulator() as sim: anthropic.Anthropic(api_key="test", base_url=sim.base_url)``.
    ``latency_s`` is added to every response (spread over the events of a stream); ``first_chunk_s``
    is the wait before the first byte of a body. ``faults`` can be replaced while running.
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
    ) -> None:
        self.host, self.port, self.seed = host, port, seed
        self.latency_s, self.first_chunk_s = latency_s, first_chunk_s
        self._picker = FaultPicker(faults)
        self._ledger = CacheLedger()
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._connections: set[socket.socket] = set()
        self._counter = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind and serve on a daemon thread; returns self. Raises OSError when the port is taken."""
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name="agentwatch-sim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop every open connection, hung ones included. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``). Raises RuntimeError before ``start()``."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() or use it as a context manager")
        return f"http://{self.host}:{self.port}"

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
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and cached prompt prefixes; restart the fault schedule."""
        with self._lock:
            self._requests.clear()
            self._picker = FaultPicker(self._picker.plan)
        self._ledger.clear()

    def _track(self, conn: socket.socket, *, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _next_id(self, prefix: str, kind: str) -> str:
        with self._lock:
            self._counter += 1
            return protocol.make_id(prefix, self.seed, self._counter, kind)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the simulator is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    # --- request handling ------------------------------------------------------------------------
    def _handle(self, h: _Handler) -> None:
        exchange: _Exchange | None = None
        try:
            exchange = _Exchange(self, h)
            exchange.run()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            h.close_connection = True
        except Exception as exc:  # a simulator bug: answer 500 so the client does not wait, and log it
            logger.exception("agentwatch simulator failed on %s %s", h.command, h.path)
            h.close_connection = True
            if exchange is not None and not exchange.responded:
                with contextlib.suppress(OSError):
                    exchange.error(500, "api_error", f"Simulator error: {type(exc).__name__}: {exc}")

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)


class _Exchange:
    """One request and its response."""

    def __init__(self, sim: Simulator, h: _Handler) -> None:
        self.sim, self.h = sim, h
        self.responded = False
        length = h.headers.get("content-length") or ""
        raw = h.rfile.read(int(length)) if length.isdigit() and int(length) > 0 else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        self.body: Any = parsed
        fields = parsed if isinstance(parsed, dict) else {}
        model = fields.get("model")
        self.path = urlsplit(h.path).path.rstrip("/") or "/"
        self.model = model if isinstance(model, str) else None
        self.stream = fields.get("stream") is True
        self.request_id = sim._next_id("req_", "request")
        self.fault: Fault | None = None
        self.headers = {k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in h.headers.items()}
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
            )
        )

    def run(self) -> None:
        h, sim = self.h, self.sim
        if h.command == "GET" and self.path == "/health":
            return self.send_json(200, {"status": "ok"})
        if self.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH) or h.command != "POST":
            return self.error(404, "not_found_error", f"Not found: {h.command} {self.path}")
        problem = self.auth_problem()
        if problem:
            return self.error(401, "authentication_error", problem)
        version = h.headers.get("anthropic-version")
        if not version:
            return self.error(400, "invalid_request_error", "anthropic-version: header is required")
        if version not in API_VERSIONS:
            wanted = " or ".join(API_VERSIONS)
            message = f"anthropic-version: unknown version {version!r}; use {wanted}"
            return self.error(400, "invalid_request_error", message)
        is_count = self.path == COUNT_TOKENS_PATH
        self.fault = sim._picker.next_count(self.model) if is_count else sim._picker.next(self.model)
        if self.fault is not None and self.inject(self.fault):
            return None
        problem = validation.problem(self.body, count_tokens=self.path == COUNT_TOKENS_PATH)
        if problem:
            return self.error(400, "invalid_request_error", problem)
        if self.path == COUNT_TOKENS_PATH:
            self.record(200)
            return self.send_json(200, {"input_tokens": count_input_tokens(self.body)})
        return self.answer()

    def auth_problem(self) -> str | None:
        key = (self.h.headers.get("x-api-key") or "").strip()
        bearer = (self.h.headers.get("authorization") or "").strip()
        if key or (bearer.lower().startswith("bearer ") and bearer[7:].strip()):
            return None
        return (
            "Missing API key: send it in the `x-api-key` header or as `Authorization: Bearer <key>` "
            "(the simulator accepts any key)."
        )

    def inject(self, fault: Fault) -> bool:
        """Apply ``fault``; True when the response is complete, False to carry on normally."""
        reply = error_reply(fault)
        if reply is not None and not (fault.kind == "midstream_error" and self.stream):
            self.error(reply.status, reply.error_type, reply.message, reply.headers.items())
            return True
        if fault.kind == "slow":
            if self.sim._wait(fault.delay_s):
                self.h.close_connection = True
                return True
            return False
        if fault.kind in ("hang", "drop"):
            self.record(None)
            while fault.kind == "hang" and not self.sim._wait(_POLL_S):
                if _peer_closed(self.h.connection):
                    break
            self.h.close_connection = True
            return True
        if fault.kind == "malformed":
            self.record(200)
            if self.stream:
                self.start_stream()
                self.write_chunk(b'event: message_start\ndata: {"type": "message_start", "message": {\n\n')
                self.write_chunk(b"")
            else:
                self.send_bytes(200, b'{"id": "msg_', "application/json")
            return True
        return False

    def answer(self) -> None:
        sim, body = self.sim, self.body
        msg_id = sim._next_id("msg_", "message")
        reply = script.respond(body, msg_id)
        usage = sim._ledger.account(body)
        full = protocol.message(msg_id, body["model"], reply, usage, output_tokens(reply.content))
        self.record(200)
        if not self.stream:
            if sim._wait(sim.first_chunk_s + sim.latency_s):
                self.h.close_connection = True
                return
            self.send_json(200, full)
            return
        events = protocol.stream_events(full)
        if self.fault is not None and self.fault.kind == "midstream_error":
            error = protocol.error_body("overloaded_error", "Overloaded", self.request_id)
            events = [*events[:_MIDSTREAM_EVENTS], ("error", error)]
        self.send_events(events)

    # --- writing ---------------------------------------------------------------------------------
    def error(self, status: int, error_type: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.record(status)
        self.send_json(status, protocol.error_body(error_type, message, self.request_id), headers)

    def send_json(self, status: int, payload: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def send_bytes(self, status: int, data: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        h = self.h
        self.responded = True
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        h.send_header("request-id", self.request_id)
        for name, value in headers:
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    def start_stream(self) -> None:
        h = self.h
        self.responded = True
        h.send_response(200)
        h.send_header("content-type", "text/event-stream; charset=utf-8")
        h.send_header("cache-control", "no-cache")
        h.send_header("transfer-encoding", "chunked")
        h.send_header("request-id", self.request_id)
        h.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def send_events(self, events: list[protocol.Event]) -> None:
        sim = self.sim
        self.start_stream()
        gap = sim.latency_s / max(1, len(events) - 1)
        pauses: list[Callable[[], bool]] = [lambda: sim._wait(sim.first_chunk_s)]
        pauses += [lambda: sim._wait(gap)] * (len(events) - 1)
        for pause, (name, data) in zip(pauses, events, strict=True):
            if pause():
                self.h.close_connection = True
                return
            self.write_chunk(protocol.sse(name, data))
        self.write_chunk(b"")
