"""Waiting in tests: poll a condition until it holds, up to a generous deadline, never a fixed sleep.

A test that sleeps "long enough" fails on a busy machine and wastes time on an idle one; polling returns
as soon as the condition holds and only fails when it does not hold for a long time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
DEADLINE_S = 30.0
_INTERVAL_S = 0.01


def wait_until(predicate: Callable[[], T], what: str, timeout: float = DEADLINE_S) -> T:
    """``predicate()`` once it is truthy; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:.0f} s")
        time.sleep(_INTERVAL_S)
    return value


async def await_until(predicate: Callable[[], T], what: str, timeout: float = DEADLINE_S) -> T:
    """``wait_until`` for async tests: the event loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(_INTERVAL_S)
    return value
