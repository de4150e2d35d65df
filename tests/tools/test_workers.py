"""The daemon worker pool behind sync tools: reuse, hung workers abandoned, never blocking exit."""

from __future__ import annotations

import threading

from agentwatch.tools.workers import DaemonWorkers
from polling import DEADLINE_S, wait_until


def run_and_wait(pool: DaemonWorkers) -> str:
    done = threading.Event()
    names: list[str] = []

    def job() -> None:
        names.append(threading.current_thread().name + str(threading.get_ident()))
        done.set()

    pool.submit(job)
    assert done.wait(DEADLINE_S)
    return names[0]


def test_an_idle_worker_is_reused() -> None:
    pool = DaemonWorkers()
    first = run_and_wait(pool)
    wait_until(lambda: pool._idle, "the worker to return to the idle list")
    assert run_and_wait(pool) == first


def test_a_hung_worker_is_abandoned_and_a_new_one_serves_the_next_call() -> None:
    pool = DaemonWorkers()
    release = threading.Event()
    pool.submit(lambda: release.wait(2 * DEADLINE_S))
    run_and_wait(pool)  # served while the hung one still hangs (it outlasts run_and_wait's deadline)
    release.set()


def test_idle_workers_beyond_the_limit_exit() -> None:
    pool = DaemonWorkers(max_idle=1)
    gate = threading.Event()
    for _ in range(3):
        pool.submit(lambda: gate.wait(DEADLINE_S), name="idle-limit-worker")
    gate.set()
    wait_until(
        lambda: sum(t.name == "idle-limit-worker" for t in threading.enumerate()) == 1, "two of three workers to exit"
    )
    assert len(pool._idle) == 1
