"""What the simulator billed a run, read off the wire: a transport that tees every ``/v1/messages`` response.

Budgets must hold against what the API reports, not against the runner's own bookkeeping (the bug in
issue 11 was exactly that the two differed). The tee wraps the real HTTP transport, so the bytes are the
ones the simulator sent over loopback; a stream cut short is billed what its ``message_start`` reported.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from agentwatch.cost import Pricing
from agentwatch.result import Usage
from agentwatch.sim import Simulator

PRICING = Pricing()


@dataclass
class Bill:
    """The bytes of one ``/v1/messages`` response, as far as the client read them."""

    status: int
    raw: bytearray = field(default_factory=bytearray)

    def usage(self) -> Usage:
        """The last usage the response reported (the ``message_delta`` total, else ``message_start``)."""
        if self.status != 200:
            return Usage()
        text = self.raw.decode("utf-8", "replace")
        reported: dict[str, Any] | None = None
        if text.lstrip().startswith("{"):  # a JSON body
            reported = _json(text).get("usage")
        else:
            for line in text.splitlines():
                data = _json(line[len("data:") :]) if line.startswith("data:") else {}
                if data.get("type") == "message_start":
                    reported = dict(data.get("message", {}).get("usage") or {})
                elif data.get("type") == "message_delta" and reported is not None:
                    reported.update(data.get("usage") or {})
        if not reported:
            return Usage()
        return Usage(
            input_tokens=reported.get("input_tokens") or 0,
            output_tokens=reported.get("output_tokens") or 0,
            cache_read_tokens=reported.get("cache_read_input_tokens") or 0,
            cache_write_tokens=reported.get("cache_creation_input_tokens") or 0,
        )


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Tee(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    def __init__(self, inner: Any, bill: Bill) -> None:
        self.inner, self.bill = inner, bill

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.bill.raw += chunk
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.bill.raw += chunk
            yield chunk

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


class Meter(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """A real HTTP transport (sync and async) that keeps a ``Bill`` per ``/v1/messages`` response."""

    def __init__(self) -> None:
        self.bills: list[Bill] = []
        self._sync = httpx2.HTTPTransport()
        self._async = httpx2.AsyncHTTPTransport()

    def _tee(self, request: httpx2.Request, response: httpx2.Response) -> httpx2.Response:
        if request.url.path.rstrip("/") != "/v1/messages":
            return response
        bill = Bill(response.status_code)
        self.bills.append(bill)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, bill),
            extensions=response.extensions,
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._tee(request, self._sync.handle_request(request))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._tee(request, await self._async.handle_async_request(request))

    def usage(self) -> Usage:
        total = Usage()
        for bill in self.bills:
            total = total + bill.usage()
        return total

    def cost(self, model: str) -> float:
        return sum(PRICING.cost(model, bill.usage()) or 0.0 for bill in self.bills)

    def client(self, sim: Simulator) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key="test-key", base_url=sim.base_url, http_client=httpx2.Client(transport=self))

    def async_client(self, sim: Simulator) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key="test-key", base_url=sim.base_url, http_client=httpx2.AsyncClient(transport=self)
        )
