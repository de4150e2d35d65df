"""A canary shared by replicas through Redis (a real redis-server on 127.0.0.1): one share, one window,
one rollback for the fleet; a ramp that advances only when the guards pass; a Redis outage handled by
the configured policy — and two real processes rolled back together by faults in the candidate's model."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentwatch import StopReason
from agentwatch.rollout import Canary, CanaryGuards, CanaryState, Ramp, Rollback, SlidingWindow, StoreDownPolicy
from agentwatch.rollout.redis_state import RedisCanaryStore
from agentwatch.sim import Fault, FaultPlan, Simulator
from agentwatch.telemetry import names as n
from e2e.queue_stack import RedisServer
from e2e.stack import Proc
from evals.helpers import FakeAgent, make_result
from polling import wait_until

OK = make_result("ok")
ERROR = make_result("failed", stop=StopReason.ERROR)
REPLICA = Path(__file__).with_name("canary_replica.py")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def replica_canary(
    server: RedisServer, clock: Clock, *, poll: float = 1.0, seen: list[Rollback] | None = None, **kw: Any
) -> Canary:
    """One replica's canary: same agents and salt as every other replica, its own connection to Redis."""
    stable = FakeAgent(lambda task: OK, name="fleet", version="v1")
    candidate = FakeAgent(lambda task: OK, name="fleet", version="v2")
    kw.setdefault("guards", CanaryGuards(max_error_rate=0.5))
    kw.setdefault("min_runs", 4)
    return Canary(
        stable,
        candidate,
        salt="fleet-test",
        store=RedisCanaryStore(server.url, poll_interval_s=poll),
        clock=clock,
        on_rollback=(seen if seen is not None else []).append,
        **kw,
    )


def test_replicas_route_the_same_share_and_roll_back_together_within_a_poll(redis_server: RedisServer) -> None:
    clock, seen = Clock(), []
    a = replica_canary(redis_server, clock, share=0.3, seen=seen)
    b = replica_canary(redis_server, clock, share=0.3, seen=seen)
    keys = [f"user-{i}" for i in range(500)]
    assert [a.is_candidate(k) for k in keys] == [b.is_candidate(k) for k in keys]
    # One window for both: two errors from each replica reach min_runs=4 together.
    assert a.record(ERROR) is None and b.record(ERROR) is None and a.record(ERROR) is None
    rollback = b.record(ERROR)
    assert rollback is not None and rollback.runs == 4 and rollback.observed == 1.0
    assert len(seen) == 1  # announced once, by the replica whose run tripped it
    assert a.record(ERROR) is None and len(seen) == 1
    # a cached its state a moment ago; within one poll interval it reads Redis again and follows.
    clock.now += 1.0
    assert a.state is CanaryState.ROLLED_BACK and a.rollback_info == rollback
    assert not any(a.is_candidate(k) for k in keys)


async def test_async_runs_feed_the_shared_window(redis_server: RedisServer) -> None:
    clock = Clock()
    a = replica_canary(redis_server, clock, share=1.0, min_runs=3)
    b = replica_canary(redis_server, clock, share=1.0, min_runs=3)
    a.candidate = FakeAgent(lambda task: RuntimeError("bug"), name="fleet", version="v2")
    for replica in (a, b, a):
        with contextlib.suppress(RuntimeError):  # the candidate's error propagates; it is counted first
            await replica.arun("t", key="k")
    assert a.state is CanaryState.ROLLED_BACK and a.rollback_info and a.rollback_info.observed == 2 / 3
    assert (await a.arun("t", key="k")) is OK


def test_a_rollback_survives_a_redis_that_forgot_it(redis_server: RedisServer) -> None:
    clock = Clock()
    a = replica_canary(redis_server, clock, min_runs=1)
    assert a.record(ERROR) is not None
    redis_server.kill()
    redis_server.start()  # empty: no persistence
    clock.now += 1.0
    assert a.state is CanaryState.ROLLED_BACK and not a.is_candidate("anyone")
    b = replica_canary(redis_server, clock)  # a replica started after the restart learns it from Redis
    assert b.state is CanaryState.ROLLED_BACK and b.rollback_info == a.rollback_info


def test_the_window_is_pruned_by_time_in_redis(redis_server: RedisServer) -> None:
    clock = Clock()
    a = replica_canary(redis_server, clock, window=SlidingWindow(size=None, seconds=60), min_runs=3)
    b = replica_canary(redis_server, clock, window=SlidingWindow(size=None, seconds=60), min_runs=3)
    a.record(ERROR)
    b.record(ERROR)
    clock.now += 61
    a.record(OK)
    b.record(OK)
    assert a.stats().runs == 2 and b.stats().runs == 2
    assert a.record(ERROR) is None and b.state is CanaryState.ACTIVE  # 1 error in the last minute's 3 runs
    keys = redis_server.client().zcard("agentwatch:canary:fleet-test:runs")
    assert keys == 3


def test_the_ramp_advances_only_when_the_guards_pass(
    redis_server: RedisServer, logs: Any, metric_points: Any, spans: Any
) -> None:
    clock = Clock()
    ramp = Ramp((0.1, 0.5, 1.0), min_runs=2, min_seconds=10)
    a = replica_canary(redis_server, clock, ramp=ramp, min_runs=4, window=SlidingWindow(size=4))
    b = replica_canary(redis_server, clock, ramp=ramp, min_runs=4, window=SlidingWindow(size=4))
    assert a.share == 0.1 and a.step == 0
    # Runs and time at the step, but the guards have not seen min_runs=4 yet: no step.
    clock.now += 11
    a.record(OK)
    b.record(OK)
    assert a.step == 0 and not logs.events(n.LOG_CANARY_STEP)
    # Four runs in the window, none failing: the guards pass; the run that completes them takes the step.
    a.record(OK)
    b.record(OK)
    assert b.step == 1 and b.share == 0.5
    clock.now += 1  # a follows within a poll interval
    assert a.step == 1 and a.share == 0.5
    (record,) = logs.events(n.LOG_CANARY_STEP)
    assert record["step"] == 1 and record["share"] == 0.5
    (point,) = metric_points(n.M_CANARY_STEPS[0], **{n.AW_ROLLOUT_CANDIDATE_VERSION: "v2"})
    assert point.value == 1 and point.attributes[n.AW_CANARY_SHARE] == 0.5
    (span,) = [s for s in spans.get_finished_spans() if s.name == n.EVENT_CANARY_STEP]
    assert [e.name for e in span.events] == [n.EVENT_CANARY_STEP]
    # The new step is held for its own time: its runs alone (guards still passing at 2 of 4) do not advance it.
    a.record(ERROR)
    b.record(ERROR)
    assert b.step == 1 and b.stats().error_rate == 0.5
    # Its runs and its time are there now, but the guards fail: a rollback at step 1, never step 2.
    clock.now += 11
    assert a.record(ERROR) is not None
    assert a.state is CanaryState.ROLLED_BACK and a.step == 1 and len(logs.events(n.LOG_CANARY_STEP)) == 1
    assert len(logs.events(n.LOG_CANARY_ROLLBACK)) == 1


def test_the_last_step_held_promotes(redis_server: RedisServer, logs: Any) -> None:
    clock = Clock()
    a = replica_canary(redis_server, clock, ramp=Ramp((0.5, 1.0), min_runs=1, min_seconds=0), min_runs=1)
    assert a.record(OK) is None and a.share == 1.0
    assert a.record(OK) is None and a.state is CanaryState.PROMOTED
    assert len(logs.events(n.LOG_CANARY_PROMOTE)) == 1
    b = replica_canary(redis_server, clock)
    assert b.state is CanaryState.PROMOTED and b.is_candidate("anyone")


@pytest.mark.parametrize("policy", [StoreDownPolicy.STABLE, StoreDownPolicy.LOCAL])
def test_redis_stopped_mid_test_the_policy_holds(
    redis_server: RedisServer, policy: StoreDownPolicy, logs: Any, metric_points: Any
) -> None:
    clock, seen = Clock(), []
    stable = FakeAgent(lambda task: OK, name="outage", version="v1")
    candidate = FakeAgent(lambda task: ERROR, name="outage", version=f"v2-{policy.value}")
    canary = Canary(
        stable,
        candidate,
        share=1.0,
        guards=CanaryGuards(max_error_rate=0.5),
        min_runs=3,
        store=RedisCanaryStore(redis_server.url, poll_interval_s=1.0),
        clock=clock,
        on_store_down=policy,
        on_rollback=seen.append,
    )
    canary.run("t", key="k0")  # one candidate error, in Redis
    assert candidate.calls == ["t"] and not canary.store_down
    redis_server.kill()
    clock.now += 1.0  # past the poll interval: the next routing reads Redis (within it, the cached share holds)
    for i in range(5):
        canary.run("t", key=f"k{i + 1}")
        clock.now += 0.5  # the store is tried again once per poll interval
    assert canary.store_down
    if policy is StoreDownPolicy.STABLE:
        assert len(candidate.calls) == 1 and len(stable.calls) == 5  # fail closed: stable only
        assert canary.state is CanaryState.ACTIVE and not seen
    else:
        # fail open: the share is kept and this replica's own window (3 errors) rolls it back
        assert len(candidate.calls) == 4 and len(stable.calls) == 2
        assert canary.state is CanaryState.ROLLED_BACK and len(seen) == 1
    (warning,) = logs.events(n.LOG_CANARY_STORE_DOWN)  # once per outage, not once per call
    assert warning["level"] == "warning" and warning["policy"] == policy.value
    points = metric_points(
        n.M_CANARY_STORE_ERRORS[0],
        **{n.AW_ROLLOUT_CANDIDATE_VERSION: f"v2-{policy.value}", n.AW_CANARY_STORE_POLICY: policy.value},
    )
    assert points and points[0].value >= 2 and points[0].attributes[n.ERROR_TYPE] == "ConnectionError"

    redis_server.start()  # the same port, empty (no persistence)
    clock.now += 1.0
    canary.run("t", key="after")
    assert not canary.store_down and len(logs.events(n.LOG_CANARY_STORE_UP)) == 1
    shared = RedisCanaryStore(redis_server.url)
    shared.attach(canary.salt, canary.window)
    state = shared.read(clock.now).state
    # A rollback decided locally during the outage is written to Redis for the fleet.
    assert state is (CanaryState.ACTIVE if policy is StoreDownPolicy.STABLE else CanaryState.ROLLED_BACK)


def test_bad_policy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'stable' or 'local'"):
        Canary(FakeAgent(lambda t: OK), FakeAgent(lambda t: OK), on_store_down="maybe")
    with pytest.raises(ValueError, match="increasing shares"):
        Ramp((0.5, 0.1))


# --- two real processes ------------------------------------------------------------------------------


def start_replicas(tmp_path: Path, server: RedisServer, sim: Simulator, salt: str, **flags: Any) -> list[Proc]:
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
    replicas = []
    for name in ("a", "b"):
        argv = [sys.executable, str(REPLICA), f"--name={name}", f"--redis={server.url}", f"--sim={sim.base_url}"]
        argv += [f"--status={tmp_path / f'{name}.json'}", f"--go={tmp_path / 'go'}", f"--stop={tmp_path / 'stop'}"]
        replicas.append(Proc(f"replica-{name}", [*argv, f"--salt={salt}", *extra], tmp_path).start())
    wait_until(lambda: all(status(tmp_path, p).get("ready") for p in replicas), "both replicas ready", 90)
    (tmp_path / "go").touch()
    return replicas


def status(tmp_path: Path, replica: Proc) -> dict[str, Any]:
    assert replica.process is not None
    if replica.process.poll() is not None:
        raise AssertionError(f"{replica.name} exited:\n{replica.log_tail()}")
    path = tmp_path / f"{replica.name.removeprefix('replica-')}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def both(tmp_path: Path, replicas: list[Proc], check: Callable[[dict[str, Any]], bool], what: str) -> None:
    wait_until(lambda: all(check(status(tmp_path, p)) for p in replicas), what, 180)


def stop(tmp_path: Path, replicas: list[Proc]) -> list[dict[str, Any]]:
    """Stop both replicas; what each saw, last."""
    (tmp_path / "stop").touch()
    for replica in replicas:
        assert replica.process is not None
        replica.process.wait(timeout=60)
        replica.stop()
    return [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("a", "b")]


def test_two_processes_share_one_canary_and_faults_in_the_candidate_roll_both_back(
    tmp_path: Path, redis_server: RedisServer, fresh_sim: Simulator
) -> None:
    fresh_sim.faults = FaultPlan(rates={Fault.server_error(): 1.0}, only_models=["claude-sonnet-4-6"])
    replicas = start_replicas(tmp_path, redis_server, fresh_sim, "fleet-fault")
    try:
        both(tmp_path, replicas, lambda s: s.get("state") == "rolled_back", "both replicas to see the rollback")
        # Both keep serving, from stable only, well past a poll interval after the rollback.
        mark = max(status(tmp_path, p)["runs"] for p in replicas)
        both(tmp_path, replicas, lambda s: s.get("runs", 0) > mark + 20, "both replicas to serve 20 more runs")
    finally:
        final = stop(tmp_path, replicas)
    assert sum(s["rollbacks_announced"] for s in final) == 1  # one rollback for the fleet
    assert all(s["candidate_after_rollback_seen"] == 0 for s in final)
    assert all(s["shares_seen"] == [0.2] for s in final)  # the ramp never left its first step
    client = redis_server.client()
    rollback = json.loads(client.hget("agentwatch:canary:fleet-fault:state", "rollback") or "{}")
    assert rollback["guard"] == "error_rate" and rollback["observed"] == 1.0 and rollback["runs"] >= 6
    candidate_calls = [r for r in fresh_sim.requests if r.model == "claude-sonnet-4-6"]
    assert candidate_calls and all(r.status == 500 for r in candidate_calls)
    assert all(r.status == 200 for r in fresh_sim.requests if r.model != "claude-sonnet-4-6")


def test_two_processes_ramp_up_together_when_the_guards_pass(
    tmp_path: Path, redis_server: RedisServer, fresh_sim: Simulator
) -> None:
    replicas = start_replicas(tmp_path, redis_server, fresh_sim, "fleet-ramp")
    try:
        both(tmp_path, replicas, lambda s: s.get("state") == "promoted", "both replicas to see the promotion")
    finally:
        final = stop(tmp_path, replicas)
    assert all(s["rollbacks_announced"] == 0 for s in final)
    assert any(s["shares_seen"] == [0.2, 0.6, 1.0] for s in final)
    assert all(s["shares_seen"] == sorted(s["shares_seen"]) for s in final)  # never backwards
    client = redis_server.client()
    assert client.hget("agentwatch:canary:fleet-ramp:state", "state") == b"promoted"
