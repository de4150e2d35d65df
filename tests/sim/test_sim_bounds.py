"""The simulator's resource bounds: a ring-buffer request log, max_tokens at the model's real limit, idle and
half-sent connections timed out, oversized bodies refused, many idle connections costing no threads."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import anthropic
import httpx2
import pytest

from agentwatch.sim import Simulator
from agentwatch.sim.models import max_output_tokens

from .conftest import MODEL

DEADLINE_S = 30.0
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _closed_by_server(sock: socket.socket) -> bool:
    """Blocks until the server closes ``sock`` (recv returns b"") or the deadline passes."""
    sock.settimeout(DEADLINE_S)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_request_log_keeps_only_the_newest(client_factory: Callable[..., Simulator]) -> None:
    sim = client_factory(request_log_size=3)
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url, max_retries=0) as client:
        for i in range(5):
            client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": f"n{i}"}])
    assert [r.body["messages"][0]["content"] for r in sim.requests] == ["n2", "n3", "n4"]


@pytest.mark.parametrize(("model", "limit"), [(MODEL, 64_000), ("claude-opus-4-1-20250805", 32_000), ("x", 128_000)])
def test_max_tokens_above_the_model_limit_is_the_apis_400(
    client: anthropic.Anthropic, sim: Simulator, model: str, limit: int
) -> None:
    assert max_output_tokens(model) == limit
    hi = [{"role": "user", "content": "hi"}]
    assert client.messages.create(model=model, max_tokens=limit, messages=hi, timeout=DEADLINE_S)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=model, max_tokens=400_000_000, messages=hi, timeout=DEADLINE_S)  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    expected = f"max_tokens: 400000000 > {limit}, which is the maximum allowed number of output tokens for {model}"
    assert body["error"]["message"] == expected and sim.requests[-1].status == 400


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n", b"POST /v1/mess"],
    ids=["idle", "half-sent-headers", "half-sent-line"],
)
def test_idle_and_half_sent_connections_are_closed(client_factory: Callable[..., Simulator], sent: bytes) -> None:
    sim = client_factory(idle_timeout_s=0.2)
    with socket.create_connection((sim.host, sim.port)) as sock:
        sock.sendall(sent)
        assert _closed_by_server(sock)


def test_half_sent_body_is_closed(client_factory: Callable[..., Simulator]) -> None:
    sim = client_factory(idle_timeout_s=0.2)
    with socket.create_connection((sim.host, sim.port)) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        assert _closed_by_server(sock)


def test_thousand_idle_connections_hold_no_threads_and_health_still_answers(
    client_factory: Callable[..., Simulator],
) -> None:
    sim = client_factory(idle_timeout_s=DEADLINE_S)
    threads = threading.active_count()
    sockets = [socket.create_connection((sim.host, sim.port)) for _ in range(1000)]
    try:
        for sock in sockets[::2]:
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")  # half of them half-sent
        assert httpx2.get(f"{sim.base_url}/health", timeout=DEADLINE_S).json() == {"status": "ok"}
        assert threading.active_count() == threads
    finally:
        for sock in sockets:
            sock.close()


def test_body_over_the_api_size_limit_is_413_without_reading_it(sim: Simulator) -> None:
    with socket.create_connection((sim.host, sim.port)) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 40000000\r\n\r\n{")
        sock.settimeout(DEADLINE_S)
        reply = b""
        while b"}" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ") and b'"request_too_large"' in reply


def test_malformed_http_is_a_400(sim: Simulator) -> None:
    with socket.create_connection((sim.host, sim.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        sock.settimeout(DEADLINE_S)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ") and b"invalid_request_error" in reply


def test_bad_bounds_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="request_log_size must be at least 1"):
        Simulator(request_log_size=0)
    with pytest.raises(ValueError, match="idle_timeout_s must be a positive"):
        Simulator(idle_timeout_s=0)
