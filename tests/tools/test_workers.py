"""The daemon worker pool behind sync tools: reuse, hung workers abandoned, never blocking exit."""

from __future__ import annotations

import threading
import time

from agentwatch.tools.workers import DaemonWorkers


def run_and_wait(pool: DaemonWorkers) -> str:
    done = threading.Event()
    names: list[str] = []

    def job() -> None:
        names.append(threading.current_thread().name + str(threading.get_ident()))
        done.set()

    pool.submit(job)
    assert done.wait(5)
    return names[0]


def test_an_idle_worker_is_reused() -> None:
    pool = DaemonWorkers()
    first = run_and_wait(pool)
    time.sleep(0.05)  # let the worker return to the idle list
    assert run_and_wait(pool) == first


def test_a_hung_worker_is_abandoned_and_a_new_one_serves_the_next_call() -> None:
    pool = DaemonWorkers()
    release = threading.Event()
    pool.submit(lambda: release.wait(10))
    started = time.perf_counter()
    run_and_wait(pool)  # does not wait for the hung one
    assert time.perf_counter() - started < 1
    release.set()


def test_idle_workers_beyond_the_limit_exit() -> None:
    pool = DaemonWorkers(max_idle=1)
    gate = threading.Event()
    for _ in range(3):
        pool.submit(lambda: gate.wait(5))
    gate.set()
    time.sleep(0.2)
    assert len(pool._idle) == 1
