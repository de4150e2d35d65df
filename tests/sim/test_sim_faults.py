"""Injected faults surface in the real SDK as the exceptions production code must handle."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import anthropic
import httpx2
import pytest

from agentwatch.sim import Fault, FaultPlan, Simulator

from .conftest import MODEL

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
PARAMS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello"}],
}


def _create(client: anthropic.Anthropic, **overrides: Any) -> anthropic.types.Message:
    return client.messages.create(**{**PARAMS, **overrides})


def test_rate_limit_carries_retry_after_headers(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_s=3, retry_after_ms=2500)])
    with pytest.raises(anthropic.RateLimitError) as caught:
        _create(client)
    headers = caught.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("3", "2500")
    assert headers["request-id"].startswith("req_")
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error" and body["request_id"] == headers["request-id"]
    assert body["error"]["type"] == "rate_limit_error" and body["error"]["message"]
    assert _create(client).stop_reason == "end_turn"  # the schedule is over: normal again


@pytest.mark.parametrize(
    ("fault", "exception", "status"),
    [
        (Fault.overloaded(), anthropic.OverloadedError, 529),
        (Fault.server_error(), anthropic.InternalServerError, 500),
        (Fault.unavailable(), anthropic.ServiceUnavailableError, 503),
        (Fault.auth_error(), anthropic.AuthenticationError, 401),
        (Fault.bad_request(), anthropic.BadRequestError, 400),
        (Fault.midstream_error(), anthropic.OverloadedError, 529),  # non-stream: like overloaded
    ],
    ids=lambda v: getattr(v, "kind", None) or getattr(v, "__name__", str(v)),
)
def test_status_faults_raise_the_sdk_class(
    sim: Simulator, client: anthropic.Anthropic, fault: Fault, exception: type[Exception], status: int
) -> None:
    sim.faults = FaultPlan(schedule=[fault])
    with pytest.raises(exception) as caught:
        _create(client)
    assert isinstance(caught.value, anthropic.APIStatusError) and caught.value.status_code == status
    assert sim.requests[-1].fault == fault.kind and sim.requests[-1].status == status


def test_sdk_retries_honour_retry_after(sim: Simulator) -> None:
    sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_ms=10), Fault.rate_limit(retry_after_s=0.01)])
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url, max_retries=2) as client:
        raw = client.messages.with_raw_response.create(**PARAMS)
    assert raw.retries_taken == 2 and raw.parse().stop_reason == "end_turn"
    assert [r.status for r in sim.requests] == [429, 429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in sim.requests] == ["0", "1", "2"]


def test_drop_is_a_connection_error(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.faults = FaultPlan(schedule=[Fault.drop()])
    with pytest.raises(anthropic.APIConnectionError) as caught:
        _create(client)
    assert not isinstance(caught.value, anthropic.APITimeoutError)
    assert _create(client).stop_reason == "end_turn"


def test_hang_times_out_without_blocking_others(sim: Simulator) -> None:
    sim.faults = FaultPlan(schedule=[Fault.hang()])
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url, max_retries=0, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            _create(client)
        assert 0.25 < time.monotonic() - started < 30  # the client's timeout ended it, not the server
        assert _create(client.with_options(timeout=30)).stop_reason == "end_turn"
    assert sim.requests[0].fault == "hang" and sim.requests[0].status is None


def test_slow_delays_then_answers(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.faults = FaultPlan(schedule=[Fault.slow(0.3)])
    started = time.monotonic()
    assert _create(client).stop_reason == "end_turn"
    assert time.monotonic() - started >= 0.3


def test_malformed_json_body(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.faults = FaultPlan(schedule=[Fault.malformed()])
    with pytest.raises((anthropic.APIResponseValidationError, json.JSONDecodeError)):
        _create(client)


def test_malformed_stream_event(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.faults = FaultPlan(schedule=[Fault.malformed()])
    with pytest.raises((anthropic.APIResponseValidationError, json.JSONDecodeError)):  # noqa: SIM117
        with client.messages.stream(**PARAMS) as stream:
            stream.get_final_message()


def test_midstream_error_after_some_events(sim: Simulator, client: anthropic.Anthropic) -> None:
    sim.faults = FaultPlan(schedule=[Fault.midstream_error()])
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:  # noqa: SIM117
        with client.messages.stream(**PARAMS) as stream:
            seen.extend(event.type for event in stream)
    assert caught.value.status_code == 200
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "overloaded_error"
    assert seen[:2] == ["message_start", "content_block_start"] and "message_stop" not in seen


def test_stop_returns_promptly_with_a_hung_request() -> None:
    sim = Simulator(faults=FaultPlan(schedule=[Fault.hang()])).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx2.post(f"{sim.base_url}/v1/messages", json=PARAMS, headers=HEADERS, timeout=120)
        except httpx2.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 30
    while not sim.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.requests, "the hung request never arrived"
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 30  # not held until the client's 120 s timeout
    caller.join(timeout=30)
    assert not caller.is_alive() and errors  # the client saw the connection go


def test_schedule_counts_only_selected_models_and_reset_restarts_it(
    sim: Simulator, client: anthropic.Anthropic
) -> None:
    sim.faults = FaultPlan(schedule=[None, Fault.overloaded()], only_models={"candidate"})
    assert _create(client, model="baseline").stop_reason == "end_turn"
    assert _create(client, model="candidate").stop_reason == "end_turn"  # schedule[0] is None
    assert _create(client, model="baseline").stop_reason == "end_turn"
    with pytest.raises(anthropic.OverloadedError):
        _create(client, model="candidate")
    sim.reset()
    assert sim.requests == []
    _create(client, model="candidate")
    with pytest.raises(anthropic.OverloadedError):
        _create(client, model="candidate")


def _fault_sequence(plan: FaultPlan, n: int) -> list[str | None]:
    with Simulator(faults=plan) as sim, httpx2.Client(base_url=sim.base_url, headers=HEADERS) as http:
        for _ in range(n):
            http.post("/v1/messages", json=PARAMS)
        return [r.fault for r in sim.requests]


def test_rates_are_seeded_and_follow_the_schedule() -> None:
    plan = FaultPlan(schedule=[Fault.server_error()], rates={Fault.overloaded(): 0.5}, seed=3)
    first = _fault_sequence(plan, 40)
    assert first == _fault_sequence(plan, 40)
    assert first[0] == "server_error"
    assert 8 < first[1:].count("overloaded") < 32 and first[1:].count(None) > 8
    assert _fault_sequence(FaultPlan(rates={Fault.overloaded(): 0.5}, seed=4), 40) != first


def test_plan_validation_and_specs() -> None:
    with pytest.raises(ValueError, match="sum to"):
        FaultPlan(rates={Fault.overloaded(): 0.7, Fault.server_error(): 0.5})
    with pytest.raises(ValueError, match="unknown fault"):
        Fault.from_spec("explode")
    assert Fault.from_spec("slow:2.5") == Fault.slow(2.5)
    assert Fault.from_spec("rate_limit:3") == Fault.rate_limit(retry_after_s=3)
