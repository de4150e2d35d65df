"""Structured JSON log records through stdlib logging, stamped with the current trace and span ids.

The library only emits on the ``agentwatch`` logger; where records go is the application's choice
(``configure_json_logs`` for a file or stream; ``telemetry.setup`` adds OTLP export). Each record is
one decision: ``event`` names it, the other fields are flat keys documented in the README.

``configure_json_logs`` formats and writes on a thread of its own, in batches (every 0.1 s), so a run's
thread only hands records over (the trace context is taken on the run's thread, when the record is made).
The one exception is a run's ``run_end`` record: the run's thread writes what is still waiting itself before
the run returns (a hand-off to the writer and back would cost two thread switches per run).
Nothing is lost at exit: ``flush()`` waits for what was handed over, and closing the handler
(``logging.shutdown`` does it at interpreter exit, after an unhandled exception too) drains it first.
"""

from __future__ import annotations

import functools
import json
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from agentwatch.telemetry.content import MASK, exception_attributes, redact, redact_label
from agentwatch.telemetry.names import LOG_RUN_END, LOGGER_NAME

_REDACTED = "_agentwatch_redacted"  # set on a record once redact_record has run
_SPAN_CONTEXT = "_agentwatch_span_context"  # set on a record handed to another thread: the caller's span
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    _REDACTED,
    _SPAN_CONTEXT,
}


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place, once: its message (arguments merged in), every string field (and
    list of strings), its stack info, and its exception, which becomes the conventions' redacted
    ``exception.type``/``exception.message``/``exception.stacktrace`` fields (so no handler or
    exporter formats the raw traceback). Never raises."""
    if getattr(record, _REDACTED, False):
        return
    try:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in record_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
            elif isinstance(value, list | tuple) and any(isinstance(item, str) for item in value):
                setattr(record, key, [redact(item) if isinstance(item, str) else item for item in value])
        if record.exc_info and record.exc_info[1] is not None:
            record.__dict__.update(exception_attributes(record.exc_info[1]))
        record.exc_info = record.exc_text = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
    except Exception:  # a record that cannot be redacted is not passed on as it is
        record.msg, record.args, record.exc_info, record.exc_text, record.stack_info = MASK, None, None, None, None
    setattr(record, _REDACTED, True)


class RedactingFilter(logging.Filter):
    """Runs ``redact_record`` on every record it sees (a filter on the ``agentwatch`` logger and on the
    handlers agentwatch installs, so records of child loggers are covered too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())  # a library: silent unless the application routes the records
logger.addFilter(RedactingFilter())  # before any handler, the application's (via propagation) included


def child_logger(suffix: str) -> logging.Logger:
    """The ``agentwatch.<suffix>`` logger, redacting too: a parent's filters never see a child's records."""
    child = logger.getChild(suffix)
    if not any(isinstance(f, RedactingFilter) for f in child.filters):
        child.addFilter(RedactingFilter())
    return child


# Fields whose values repeat (names, models, outcomes): redacted once per distinct value (``redact_label``).
_LABEL_FIELDS = frozenset(
    {"event", "agent", "model", "version", "stop_reason", "finish_reason", "tool", "outcome", "error_type", "kind"}
)


def _redacted_field(key: str, value: Any) -> Any:
    if isinstance(value, str):
        return redact_label(value) if key in _LABEL_FIELDS else redact(value)
    if isinstance(value, list | tuple) and any(isinstance(item, str) for item in value):
        return [redact_label(item) if isinstance(item, str) else item for item in value]
    return value


_PLAIN = frozenset({int, float, bool, type(None)})  # field values with nothing to redact


def emit(
    level: int,
    message: str,
    fields: dict[str, Any],
    span: trace.Span | None = None,
    parent: otel_context.Context | None = None,
    *,
    message_redacted: bool = False,
) -> None:
    """Log one record on the ``agentwatch`` logger with ``fields`` as record attributes.

    ``span`` (in ``parent``, the context it was started in) is the span the record belongs to; without
    one, the current span. The record reads it directly where it can; the ``logging`` path makes it
    current around the handlers (OTel's ``LoggingHandler`` takes the trace context from the current one).

    Builds the record directly (no caller lookup: the source line of a library record tells nobody
    anything), redacted as it is built (the fields are known here, so ``redact_record`` has nothing left to
    do), and hands it to the logger's filters and handlers. The caller checks ``isEnabledFor``.

    When the only place the record can go is one ``configure_json_logs`` handler (see ``_sole_json_sink``),
    no ``LogRecord`` is made and no handler chain walked: the redacted message and fields, the time and the
    current span context go to that handler's queue, and the JSON line is the same.
    """
    extra: dict[str, Any] = {}
    for key, value in fields.items():  # _redacted_field, with the common cases inline
        kind = type(value)
        if kind in _PLAIN:
            extra[key] = value
        elif kind is str:
            extra[key] = redact_label(value) if key in _LABEL_FIELDS else redact(value)
        else:
            extra[key] = _redacted_field(key, value)
    if not message_redacted:  # the caller may have built it from redacted labels and numbers only
        message = redact(message)
    sink = _sole_json_sink(level)
    if sink is not None:
        context = (span if span is not None else trace.get_current_span()).get_span_context()
        sink.enqueue_direct(_Direct(level, message, extra, context, time.time()))
        return
    extra[_REDACTED] = True
    record = logger.makeRecord(logger.name, level, "agentwatch", 0, message, (), None, extra=extra)
    if span is None:
        logger.handle(record)
        return
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        logger.handle(record)
    finally:
        otel_context.detach(token)


class _Direct:
    """An ``agentwatch`` record for a ``QueuedJsonHandler`` that is its only destination (no ``LogRecord``)."""

    __slots__ = ("context", "created", "fields", "level", "message")

    def __init__(self, level: int, message: str, fields: dict[str, Any], context: Any, created: float) -> None:
        self.level = level
        self.message = message
        self.fields = fields
        self.context = context
        self.created = created


def _sole_json_sink(level: int) -> QueuedJsonHandler | None:
    """The ``QueuedJsonHandler`` if a record at ``level`` would reach it and nothing else: the logger has only
    its redacting filter, no record factory adds fields, no other handler (the application's, OTLP's, or a
    parent's through propagation) would see it. Otherwise None, and records take the ``logging`` path."""
    if logger.disabled or len(logger.filters) != 1 or logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    if logger.propagate and logging.root.handlers:
        return None
    sink = None
    for handler in logger.handlers:
        if type(handler) is QueuedJsonHandler and not handler.filters and level >= handler.level:
            if sink is not None or handler._writer is None:
                return None
            sink = handler
        elif type(handler) is not logging.NullHandler:
            return None
    return sink


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode  # built once: json.dumps builds one per call


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _format_direct(item: _Direct) -> str:
    """The line ``JsonFormatter`` writes for the same record."""
    created = item.created
    out: dict[str, Any] = {
        "ts": f"{_utc_second(int(created))}.{int((created - int(created)) * 1000):03d}Z",
        "level": logging.getLevelName(item.level).lower(),
        "logger": LOGGER_NAME,
        "message": item.message,
    }
    context = item.context
    if context.is_valid:
        out["trace_id"] = format(context.trace_id, "032x")
        out["span_id"] = format(context.span_id, "016x")
    out.update(item.fields)
    return _encode(out)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: UTC time, level, event, message, trace_id, span_id, then the fields
    (redacted; an exception as redacted ``exception.*`` fields)."""

    def format(self, record: logging.LogRecord) -> str:
        redact_record(record)
        out: dict[str, Any] = {
            "ts": f"{_utc_second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = record.__dict__.get(_SPAN_CONTEXT) or trace.get_current_span().get_span_context()
        if context.is_valid:
            out["trace_id"] = format(context.trace_id, "032x")
            out["span_id"] = format(context.span_id, "016x")
        out.update(record_fields(record))
        return _encode(out)


class _Flush:
    """A marker in the queue: the writer sets ``done`` once every record before it is written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class QueuedJsonHandler(logging.handlers.QueueHandler):
    """Hands records to a writer thread that formats them as JSON lines and appends them to ``stream``.

    The caller's thread keeps only what cannot wait: the record and its trace context. The writer wakes
    every ``interval_s`` and writes what arrived as one batch (waking it per record would make every run
    wait for the other thread to take the GIL). ``flush`` returns once everything handed over so far is
    written; ``close`` drains, then stops. A run's ``run_end`` record is written before the run returns, so a
    process killed right after a run still has its last line: the run's thread writes what is waiting itself
    (waking the writer and waiting for it costs two thread switches, far more than formatting a few lines on
    a busy machine). More than ``max_pending`` records waiting (a stalled disk) makes the caller wait for the
    writer rather than lose a record.
    """

    def __init__(
        self, stream: IO[str], *, owns_stream: bool, interval_s: float = 0.1, max_pending: int = 65_536
    ) -> None:
        self.pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
        super().__init__(self.pending)
        self.setFormatter(JsonFormatter())
        self.stream = stream
        self.owns_stream = owns_stream
        self.interval_s = interval_s
        self.max_pending = max_pending
        self._writer: threading.Thread | None = None
        self._start()
        os.register_at_fork(after_in_child=functools.partial(_restart_in_child, weakref.ref(self)))

    def _start(self) -> None:
        self._write_lock = threading.Lock()  # one writer at a time: the thread, or a run writing its run_end
        self._wake = threading.Event()
        self._stopping = False
        self._writer = threading.Thread(target=self._write_loop, name="agentwatch-json-logs", daemon=True)
        self._writer.start()

    def prepare(self, record: logging.LogRecord) -> Any:
        """The record as it is, plus the current span (the writer thread has no context of its own)."""
        record.__dict__[_SPAN_CONTEXT] = trace.get_current_span().get_span_context()
        if record.args:  # render now: the arguments may change after the call
            record.msg, record.args = record.getMessage(), None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        if self.pending.qsize() >= self.max_pending:
            self.flush()
        self.pending.put_nowait(record)
        if record.__dict__.get("event") == LOG_RUN_END and self._writer is not None:
            self._write_pending()  # on the run's thread: on disk before the run returns, no thread hand-off

    def enqueue_direct(self, item: _Direct) -> None:
        """``enqueue`` for a record ``emit`` did not make a ``LogRecord`` for (this handler is its only sink)."""
        if self.pending.qsize() >= self.max_pending:
            self.flush()
        self.pending.put_nowait(item)
        if item.fields.get("event") == LOG_RUN_END:
            self._write_pending()

    def _write_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._write_pending()
        self._write_pending()

    def _write_pending(self) -> None:
        with self._write_lock:
            self._write_pending_locked()

    def _write_pending_locked(self) -> None:
        lines: list[str] = []
        flushes: list[_Flush] = []
        while True:
            try:
                item = self.pending.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Flush):
                flushes.append(item)
                continue
            try:
                lines.append(_format_direct(item) if type(item) is _Direct else self.format(item))
            except Exception:
                if type(item) is _Direct:
                    sys.stderr.write(f"agentwatch could not format a JSON log line: {item.fields.get('event')}\n")
                else:
                    self.handleError(item)
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except Exception as exc:
                sys.stderr.write(f"agentwatch could not write {len(lines)} JSON log lines: {exc}\n")
        for marker in flushes:
            marker.done.set()

    def flush(self) -> None:
        writer = self._writer
        if writer is None or not writer.is_alive():
            return
        marker = _Flush()
        self.pending.put_nowait(marker)
        self._wake.set()
        marker.done.wait(10.0)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._stopping = True
            self._wake.set()
            writer.join(10.0)  # writes every record queued before it, then ends
            if self.owns_stream:
                self.stream.close()
        super().close()


def _restart_in_child(ref: weakref.ref[QueuedJsonHandler]) -> None:
    """A forked child (a prefork worker) has no writer thread: give it its own, with a fresh queue."""
    handler = ref()
    if handler is not None and handler._writer is not None:
        handler.pending = queue.SimpleQueue()
        handler.queue = handler.pending
        handler._start()


def configure_json_logs(target: str | Path | IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send ``agentwatch`` records as JSON lines to a file path or stream (default stderr); returns the handler.

    Records are written on a writer thread (see the module docstring); ``handler.flush()`` waits for them.
    """
    if isinstance(target, str | Path):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        handler = QueuedJsonHandler(open(target, "a", encoding="utf-8"), owns_stream=True)  # noqa: SIM115
    else:
        handler = QueuedJsonHandler(target or sys.stderr, owns_stream=False)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler
