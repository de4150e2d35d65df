"""The fault matrix: every injected API or network failure gives the right attempts, waits and stop."""

from __future__ import annotations

import json

import pytest

from agentwatch import Retrying, StopReason, TextDelta
from agentwatch.sim import Fault, FaultPlan

from .support import (
    API_KEY,
    DIRECT_TASK,
    AttemptClock,
    aconsume,
    assert_stopped,
    async_client,
    consume,
    demo_agent,
    fast_limits,
    sync_client,
)

RETRIES = 2  # so a call makes at most 3 attempts
TRANSIENT = {
    "429": Fault.rate_limit(retry_after_ms=20),
    "529": Fault.overloaded(),
    "500": Fault.server_error(),
    "503": Fault.unavailable(),
    "drop": Fault.drop(),
    "malformed": Fault.malformed(),
    "midstream": Fault.midstream_error(),  # an SSE `error` event for streams, a 529 otherwise
}
ERROR_TYPES = {
    "429": "RateLimitError",
    "529": "OverloadedError",
    "500": "InternalServerError",
    "503": "ServiceUnavailableError",
    "drop": "APIConnectionError",
    "malformed": "JSONDecodeError",
}


def agent_for_faults(**limits):
    return demo_agent("faults", tools=[], limits=fast_limits(**{"max_retries": RETRIES, "timeout_s": 10, **limits}))


async def run(mode, agent, sim, task=DIRECT_TASK, **client_options):
    """(events, result) for ``mode``; the client carries API_KEY so the logs can be scanned for it."""
    if mode == "run":
        return [], agent.run(task, client=sync_client(sim, api_key=API_KEY, **client_options))
    if mode == "stream":
        return consume(agent.stream(task, client=sync_client(sim, api_key=API_KEY, **client_options)))
    if mode == "arun":
        return [], await agent.arun(task, client=async_client(sim, api_key=API_KEY))
    return await aconsume(agent.astream(task, client=async_client(sim, api_key=API_KEY)))


def assert_clean_logs(logs, result) -> None:
    """Exactly one run_end for the run, and the API key in no record."""
    ends = logs.events("run_end")
    assert len(ends) == 1 and ends[0]["stop_reason"] == result.stop_reason.value
    assert ends[0]["trace_id"] == result.trace_id
    assert API_KEY not in json.dumps(logs.records)


@pytest.mark.parametrize("mode", ["run", "stream", "arun", "astream"])
@pytest.mark.parametrize("fault", list(TRANSIENT))
async def test_one_transient_failure_is_retried_and_the_run_recovers(fresh_sim, logs, fault, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[TRANSIENT[fault]])
    events, result = await run(mode, agent_for_faults(), fresh_sim)

    assert result.stop_reason is StopReason.END_TURN, result.answer
    assert "direct answer" in result.answer
    assert len(fresh_sim.requests) == 2  # the failed attempt and one retry
    assert result.iterations == 1  # a retry is not another iteration
    (retry,) = logs.events("retry")
    if fault == "midstream":
        expected = "APIStatusError" if mode in ("stream", "astream") else "OverloadedError"
    else:
        expected = ERROR_TYPES[fault]
    assert retry["error_type"] == expected and retry["attempt"] == 1
    if mode in ("stream", "astream"):
        (retrying,) = [e for e in events if isinstance(e, Retrying)]
        assert (retrying.attempt, retrying.error_type) == (1, expected)
        assert retrying.wait_s == pytest.approx(retry["wait_s"], abs=1e-4)
        if fault == "midstream":  # text of the failed attempt came first; the retry streams it again
            first_delta = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
            assert first_delta < events.index(retrying)
            assert any(isinstance(e, TextDelta) for e in events[events.index(retrying) :])
    assert_clean_logs(logs, result)


@pytest.mark.parametrize("mode", ["run", "stream", "arun"])
@pytest.mark.parametrize("fault", list(TRANSIENT))
async def test_failures_past_max_retries_end_the_run_as_error(fresh_sim, logs, fault, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[TRANSIENT[fault]] * (RETRIES + 1))
    _, result = await run(mode, agent_for_faults(), fresh_sim)

    assert_stopped(result, StopReason.ERROR)
    assert len(fresh_sim.requests) == RETRIES + 1
    assert f"after {RETRIES + 1} attempts" in result.stop_detail
    assert len(logs.events("retry")) == RETRIES
    if fault == "midstream":
        assert result.error == ("APIStatusError" if mode == "stream" else "OverloadedError")
    else:
        assert result.error == ERROR_TYPES[fault]  # the exception class, for error.type on the root span
    assert_clean_logs(logs, result)


def test_retry_after_ms_is_honoured(fresh_sim, logs) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.rate_limit(retry_after_ms=60)])
    clock = AttemptClock()
    _, result = consume(
        agent_for_faults(retry_base_delay_s=0.0, retry_max_delay_s=1.0).stream(
            DIRECT_TASK, client=sync_client(fresh_sim, http_client=clock.client())
        )
    )

    assert result.stop_reason is StopReason.END_TURN
    assert len(clock.sent) == 2
    waited = clock.sent[1] - clock.received[0]
    # the server's wait, not the (zero) backoff; the upper bound is the 1 s cap a wrong header would hit, so a
    # busy machine's scheduling delay cannot fail it
    assert 0.06 <= waited < 1.0
    assert logs.events("retry")[0]["wait_s"] == 0.06


def test_retry_after_seconds_is_honoured_and_ms_wins_over_it(fresh_sim, logs) -> None:
    fresh_sim.faults = FaultPlan(
        schedule=[Fault.rate_limit(retry_after_s=0.08), Fault.rate_limit(retry_after_s=3, retry_after_ms=30)]
    )
    clock = AttemptClock()
    result = agent_for_faults(retry_base_delay_s=0.0, retry_max_delay_s=1.0).run(
        DIRECT_TASK, client=sync_client(fresh_sim, http_client=clock.client())
    )

    assert result.stop_reason is StopReason.END_TURN
    assert len(clock.sent) == 3
    first_wait = clock.sent[1] - clock.received[0]
    second_wait = clock.sent[2] - clock.received[1]
    assert 0.08 <= first_wait < 1.0
    assert 0.03 <= second_wait < 1.0  # retry-after-ms (30 ms) wins over retry-after (3 s, capped at 1 s)
    assert [r["wait_s"] for r in logs.events("retry")] == [0.08, 0.03]


def test_backoff_without_retry_after_grows_within_its_bounds(fresh_sim, logs) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.overloaded()] * 3)
    agent = demo_agent(
        "backoff",
        tools=[],
        limits=fast_limits(max_retries=3, retry_base_delay_s=0.02, retry_max_delay_s=0.05),
    )
    result = agent.run(DIRECT_TASK, client=sync_client(fresh_sim))

    assert result.stop_reason is StopReason.END_TURN
    waits = [r["wait_s"] for r in logs.events("retry")]
    # min(base * 2**n, max) scaled by a random 0.5-1.0
    for attempt, wait in enumerate(waits):
        ceiling = min(0.02 * 2**attempt, 0.05)
        assert ceiling / 2 <= wait <= ceiling
    assert len(waits) == 3


@pytest.mark.parametrize("mode", ["stream", "astream"])  # run and arun: see test_guards
async def test_a_hung_call_ends_at_the_run_timeout_after_one_attempt(fresh_sim, logs, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.hang()])
    _, result = await run(mode, agent_for_faults(timeout_s=0.4), fresh_sim)

    assert_stopped(result, StopReason.TIMEOUT)
    assert len(fresh_sim.requests) == 1
    assert_clean_logs(logs, result)


@pytest.mark.parametrize("mode", ["run", "stream", "arun"])
async def test_400_is_never_retried(fresh_sim, logs, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.bad_request()] * 3)
    _, result = await run(mode, agent_for_faults(), fresh_sim)

    assert_stopped(result, StopReason.ERROR)
    assert len(fresh_sim.requests) == 1
    assert "(400)" in result.stop_detail and "invalid request" in result.stop_detail.lower()
    assert logs.events("retry") == []
    assert_clean_logs(logs, result)


@pytest.mark.parametrize("mode", ["run", "stream", "arun", "astream"])
async def test_401_is_never_retried_and_says_to_check_the_key(fresh_sim, logs, mode) -> None:
    fresh_sim.faults = FaultPlan(schedule=[Fault.auth_error()] * 3)
    _, result = await run(mode, agent_for_faults(), fresh_sim)

    assert_stopped(result, StopReason.ERROR)
    assert len(fresh_sim.requests) == 1
    assert "ANTHROPIC_API_KEY" in result.answer
    assert logs.events("retry") == []
    assert_clean_logs(logs, result)


def test_faults_in_a_multi_call_run_are_retried_per_call(fresh_sim, logs) -> None:
    plan = [None, Fault.overloaded(), Fault.rate_limit(retry_after_ms=10)]
    fresh_sim.faults = FaultPlan(schedule=plan)
    agent = demo_agent("multi-fault", limits=fast_limits(max_retries=RETRIES))
    result = agent.run("What is 1234 * 5678?", client=sync_client(fresh_sim, api_key=API_KEY))

    assert result.stop_reason is StopReason.END_TURN and "7,006,652" in result.answer
    assert result.iterations == 2
    assert len(fresh_sim.requests) == 4  # call 1 clean; call 2: two failures, then success
    assert [r["error_type"] for r in logs.events("retry")] == ["OverloadedError", "RateLimitError"]
    assert_clean_logs(logs, result)


def test_random_fault_rates_never_crash_a_run_and_always_log_one_run_end(fresh_sim, logs) -> None:
    rates = {
        Fault.overloaded(): 0.15,
        Fault.drop(): 0.1,
        Fault.malformed(): 0.05,
        Fault.rate_limit(retry_after_ms=5): 0.1,
    }
    fresh_sim.faults = FaultPlan(rates=rates, seed=7)
    agent = demo_agent("random-faults", limits=fast_limits(max_retries=3))
    client = sync_client(fresh_sim, api_key=API_KEY)
    results = [agent.run("What is 1234 * 5678?", client=client) for _ in range(15)]

    assert {r.stop_reason for r in results} <= {StopReason.END_TURN, StopReason.ERROR}
    assert sum(r.ok for r in results) >= 10
    assert all("7,006,652" in r.answer for r in results if r.ok)
    ends = logs.events("run_end")
    assert sorted(e["trace_id"] for e in ends) == sorted(r.trace_id for r in results)
    assert API_KEY not in json.dumps(logs.records)
