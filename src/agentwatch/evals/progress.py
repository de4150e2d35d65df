"""A plain-text progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise (CI logs)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Progress:
    """Counts finished trials. Thread-safe; never raises (a broken stream only stops the drawing)."""

    def __init__(self, total: int, label: str = "eval", stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._last_decile = -1
        try:
            self._tty = self.stream.isatty()
        except Exception:
            self._tty = False

    def advance(self, passed: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += not passed
            self._draw()

    def close(self) -> None:
        with self._lock:
            if self._tty:
                self._write("\n")

    def line(self) -> str:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        passed = self.done - self.failed
        return f"{self.label} [{bar}] {self.done}/{self.total} trials · {passed} passed · {self.failed} failed"

    def _draw(self) -> None:
        if self._tty:
            self._write("\r" + self.line())
            return
        decile = 10 * self.done // self.total
        if decile != self._last_decile:
            self._last_decile = decile
            self._write(self.line() + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:
            self._tty = False
