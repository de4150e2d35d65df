"""Faults with real processes: a worker SIGKILLed mid-run, Redis killed and restarted under load, a job
that kills its worker every time, and a bounded load of 500 jobs over 4 worker processes — every job
ends with exactly one result and exactly the model calls one run makes (the simulator's request log)."""

from __future__ import annotations

import collections
import re
import uuid
from pathlib import Path

import pytest
from opentelemetry import trace

from agentwatch import StopReason
from agentwatch.queue import QueueUnavailable, RunFailed, RunPending, result, submit
from agentwatch.queue.jobs import dead_letters
from agentwatch.sim import Simulator
from agentwatch.telemetry import names as n
from e2e.queue_stack import queue_agent as ref
from e2e.stack import wait_until
from otlp_receiver import OtlpReceiver
from queueing.queue_support import QUEUE, RedisServer, WorkerFactory

MARKER = re.compile(r"job-[0-9a-f]{12}")


def marker_counts(sim: Simulator) -> collections.Counter[str]:
    """Model calls per job marker, from the simulator's request log."""
    counts: collections.Counter[str] = collections.Counter()
    for record in sim.requests:
        messages = record.body.get("messages") or [{}]
        found = MARKER.search(str(messages[0].get("content")))
        if found:
            counts[found.group()] += 1
    return counts


def new_marker() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


def finished(run_id: str, broker: str) -> bool:
    try:
        result(run_id, timeout=0, broker=broker)
        return True
    except RunPending:
        return False


def test_a_job_whose_worker_is_killed_mid_run_completes_on_another_worker_once(
    redis_server: RedisServer, start_worker: WorkerFactory, otlp: OtlpReceiver
) -> None:
    with Simulator(latency_s=2.5) as sim:
        first = start_worker("calc", sim, otlp)
        marker = new_marker()
        with trace.get_tracer("test").start_as_current_span("enqueue") as enqueue:
            run_id = submit(ref("calc"), f"What is 1234 * 5678? {marker}", broker=redis_server.url)
        trace_id = format(enqueue.get_span_context().trace_id, "032x")
        # Kill once the first model call's span has been exported, while the second call is in flight.
        wait_until(
            lambda: [s for s in otlp.spans(trace_id) if s.name.startswith("chat ")],
            30,
            0.05,
            what="the first chat span",
        )
        assert marker_counts(sim)[marker] == 2, "the run must still be in its second model call"
        first.kill()

        start_worker("calc", sim, otlp)
        run = result(run_id, timeout=90, broker=redis_server.url)

    assert run.stop_reason is StopReason.END_TURN and "7,006,652" in run.answer
    assert marker_counts(sim)[marker] == 2 + 2  # the dead attempt's two calls (billed), then one whole run
    assert int(redis_server.client().get(f"agentwatch:run:{run_id}:deliveries")) == 2
    # Both attempts are in the enqueuing trace: the dead one's finished model call (its spend is visible)
    # and the second delivery's whole run.
    assert run.trace_id == trace_id

    def both_attempts() -> list:
        spans = otlp.spans(trace_id)
        chats = [s for s in spans if s.name.startswith("chat ")]
        return spans if len(chats) == 3 and any(s.name.startswith("invoke_agent") for s in spans) else []

    spans = wait_until(both_attempts, 30, 0.1, what="the spans of both attempts")
    consumers = [s for s in spans if s.kind == 5]
    assert [s.attributes[n.AW_QUEUE_DELIVERY] for s in consumers] == [2]  # the killed one never ended
    [root] = [s for s in spans if s.name.startswith("invoke_agent")]
    dead_chat = [s for s in spans if s.name.startswith("chat ") and s.parent_span_id != root.span_id]
    assert len(dead_chat) == 1 and dead_chat[0].attributes[n.AW_CALL_COST_USD] > 0


def test_a_job_that_kills_its_worker_every_time_is_dead_lettered(
    redis_server: RedisServer, start_worker: WorkerFactory, sim: Simulator
) -> None:
    start_worker("crashy", sim)
    run_id = submit(ref("crashy"), 'Crash now [[tool:crash:{"reason": "poison"}]]', broker=redis_server.url)
    with pytest.raises(RunFailed, match="poison"):
        result(run_id, timeout=120, broker=redis_server.url)
    [letter] = dead_letters(redis_server.client(), QUEUE)
    assert letter.run_id == run_id and letter.deliveries == 4 and letter.reason == "poison"
    assert "max_deliveries=3" in letter.error


def test_redis_killed_and_restarted_under_load_loses_no_job(
    tmp_path: Path, redis_server: RedisServer, start_worker: WorkerFactory
) -> None:
    durable = RedisServer(tmp_path / "durable", durable=True)
    durable.workdir.mkdir()
    durable.start()
    try:
        with Simulator(latency_s=0.2) as sim:
            start_worker("plain", sim, concurrency=2, server=durable)
            jobs = {
                submit(ref("plain"), f"Say hello {m}", broker=durable.url): m for m in (new_marker() for _ in range(30))
            }
            wait_until(lambda: sum(finished(r, durable.url) for r in jobs) >= 5, 60, 0.1, what="the first results")

            done_before = sum(finished(r, durable.url) for r in jobs)
            durable.kill()
            assert done_before < len(jobs), "the outage must hit jobs still queued or running"
            with pytest.raises(QueueUnavailable, match="was not queued"):
                submit(ref("plain"), f"Say hello {new_marker()}", broker=durable.url)
            with pytest.raises(QueueUnavailable, match="ask again once Redis is back"):
                result(next(iter(jobs)), timeout=0, broker=durable.url)
            durable.start()  # same port, same append-only file

            runs = {run_id: result(run_id, timeout=120, broker=durable.url) for run_id in jobs}
            counts = marker_counts(sim)
        assert all(run.stop_reason is StopReason.END_TURN for run in runs.values())
        assert {counts[m] for m in jobs.values()} == {1}  # every job ran exactly once
    finally:
        assert durable.proc is not None
        durable.proc.stop()


def test_500_jobs_over_4_worker_processes_each_complete_exactly_once(
    redis_server: RedisServer, start_worker: WorkerFactory
) -> None:
    with Simulator(latency_s=0.005) as sim:
        start_worker("plain", sim, concurrency=2)
        start_worker("plain", sim, concurrency=2)
        jobs = {
            submit(ref("plain"), f"Say hello {m}", broker=redis_server.url): m
            for m in (new_marker() for _ in range(500))
        }
        runs = {run_id: result(run_id, timeout=240, broker=redis_server.url) for run_id in jobs}
        counts = marker_counts(sim)
    assert len(runs) == 500 and all(run.stop_reason is StopReason.END_TURN for run in runs.values())
    assert len({run.trace_id for run in runs.values()}) == 500
    assert sum(counts.values()) == 500 and set(counts) == set(jobs.values())  # one model call per job, none twice
