"""Structured JSON log records through stdlib logging, stamped with the current trace and span ids.

The library only emits on the ``agentwatch`` logger; where records go is the application's choice
(``configure_json_logs`` for a file or stream; ``telemetry.setup`` adds OTLP export). Each record is
one decision: ``event`` names it, the other fields are flat keys documented in the README.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any

from opentelemetry import trace

from agentwatch.telemetry.content import MASK, exception_attributes, redact
from agentwatch.telemetry.names import LOGGER_NAME

_REDACTED = "_agentwatch_redacted"  # set on a record once redact_record has run
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", _REDACTED}


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


def emit(level: int, message: str, fields: dict[str, Any]) -> None:
    """Log one record on the ``agentwatch`` logger with ``fields`` as record attributes.

    Builds the record directly (no caller lookup: the source line of a library record tells nobody
    anything) and hands it to the logger's filters and handlers. The caller checks ``isEnabledFor``.
    """
    logger.handle(logger.makeRecord(logger.name, level, "agentwatch", 0, message, (), None, extra=fields))


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode  # built once: json.dumps builds one per call


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


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
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            out["trace_id"] = format(context.trace_id, "032x")
            out["span_id"] = format(context.span_id, "016x")
        out.update(record_fields(record))
        return _encode(out)


def configure_json_logs(target: str | Path | IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send ``agentwatch`` records as JSON lines to a file path or stream (default stderr); returns the handler."""
    handler: logging.Handler
    if isinstance(target, str | Path):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(target, encoding="utf-8")
    else:
        handler = logging.StreamHandler(target or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler
