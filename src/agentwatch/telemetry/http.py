"""HTTP client spans: one span per HTTP request, under whatever span is current when it is sent.

The switch is ``Agent(http_spans=True)`` or ``AGENTWATCH_HTTP_SPANS=true`` (off by default). On the first run
with it on, agentwatch turns on the standard ``opentelemetry-instrumentation-httpx`` instrumentation
(the ``httpx`` extra) for ``httpx2`` (the Anthropic SDK's HTTP library) and, when installed, ``httpx``.
The runner keeps each ``chat`` span current while an attempt is sent and each ``execute_tool`` span while a
tool runs, so every attempt of a call (a 529, then the 200 of its retry) is a ``POST`` child of its
``chat`` span and a tool's own HTTP calls are children of its ``execute_tool`` span.

The instrumentation is process-wide, as when an application turns it on itself; an application that
already did (``HTTPX2ClientInstrumentor().instrument()``, e.g. through ``opentelemetry-instrument``) is left
as it is, so no request gets two spans. A client instrumented one by one with ``instrument_client``
keeps its single span when that happens before the first run with HTTP spans on.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import threading
from typing import Any

from agentwatch.telemetry.content import getenv
from agentwatch.telemetry.names import LOGGER_NAME

HTTP_SPANS_ENV = "AGENTWATCH_HTTP_SPANS"
EXTRA_HINT = "HTTP spans need opentelemetry-instrumentation-httpx: pip install 'agentwatch[httpx]'"
_INSTRUMENTORS = (("httpx2", "HTTPX2ClientInstrumentor"), ("httpx", "HTTPXClientInstrumentor"))
_lock = threading.Lock()
_warned = threading.Event()


def http_spans_wanted(explicit: bool | None) -> bool:
    """The argument when given, else ``AGENTWATCH_HTTP_SPANS`` (``true``/``1``/``yes``/``on``; default off)."""
    if explicit is not None:
        return explicit
    return getenv(HTTP_SPANS_ENV).strip().lower() in ("true", "1", "yes", "on")


def http_spans_available() -> bool:
    """Whether the ``httpx`` extra (``opentelemetry-instrumentation-httpx``) is installed."""
    return importlib.util.find_spec("opentelemetry.instrumentation.httpx") is not None


@functools.cache
def _instrumentors() -> tuple[Any, ...]:
    """The instrumentors of the HTTP libraries installed here (singletons: each knows whether it is on)."""
    instrumentation = importlib.import_module("opentelemetry.instrumentation.httpx")
    return tuple(
        getattr(instrumentation, name)() for module, name in _INSTRUMENTORS if importlib.util.find_spec(module)
    )


def enable_http_spans() -> None:
    """Turn on the httpx2 (and httpx) client instrumentation unless it is on already. Idempotent, thread-safe.

    Raises ``ImportError`` with the install command when the ``httpx`` extra is missing.
    """
    try:
        instrumentors = _instrumentors()
    except ImportError as exc:
        raise ImportError(f"{EXTRA_HINT} ({exc})") from exc
    if all(i.is_instrumented_by_opentelemetry for i in instrumentors):
        return
    with _lock:
        for instrumentor in instrumentors:
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()


def before_run(explicit: bool | None) -> None:
    """At the start of a run: HTTP spans on if wanted. Never raises (``Agent`` rejects an explicit
    ``http_spans=True`` without the extra at construction; the env switch without it is logged once)."""
    if not http_spans_wanted(explicit):
        return
    try:
        enable_http_spans()
    except Exception as exc:
        if not _warned.is_set():
            _warned.set()
            logging.getLogger(LOGGER_NAME).warning("%s=true is ignored: %s", HTTP_SPANS_ENV, exc)
