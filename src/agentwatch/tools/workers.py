"""Reusable daemon threads for sync tools: a thread start per tool call costs ~100 us; a hand-off ~20 us.

A worker stuck in a hung tool is simply abandoned (it is a daemon, so it never holds up interpreter
exit); the pool starts a new worker whenever none is idle. Idle workers beyond ``max_idle`` exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class DaemonWorkers:
    """Runs callables on daemon threads, reusing idle ones. Thread-safe."""

    def __init__(self, max_idle: int = 8) -> None:
        self._max_idle = max_idle
        self._idle: list[queue.SimpleQueue[Callable[[], object]]] = []
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], object], name: str = "agentwatch-tool") -> None:
        """Run ``work`` on an idle worker, or a new one. ``work`` must not raise (it is its own guard)."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        inbox.put(work)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], object]]) -> None:
        while True:
            work = inbox.get()
            work()
            with self._lock:
                if len(self._idle) >= self._max_idle:
                    return
                self._idle.append(inbox)


workers = DaemonWorkers()
