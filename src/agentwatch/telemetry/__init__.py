"""Telemetry set-up, in short paths: ``configure_telemetry`` (OTLP export from the ``OTEL_*`` variables),
``configure_json_logs`` (JSON lines to a file or stream), ``set_redactor`` (the hook every recorded content
and error message passes through), and ``Telemetry`` (what ``configure_telemetry`` returns).

``configure_telemetry`` and ``Telemetry`` need the OTel SDK (the ``otlp`` extra), so they load on first use:
importing this package, as every run does, stays lean.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentwatch.telemetry.content import set_redactor
from agentwatch.telemetry.logs import configure_json_logs

if TYPE_CHECKING:
    from agentwatch.telemetry.setup import Telemetry, configure_telemetry

__all__ = ["Telemetry", "configure_json_logs", "configure_telemetry", "set_redactor"]

_NEED_THE_SDK = frozenset({"Telemetry", "configure_telemetry"})


def __getattr__(name: str) -> Any:
    if name not in _NEED_THE_SDK:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        setup = importlib.import_module("agentwatch.telemetry.setup")
    except ImportError as exc:
        raise ImportError(
            f"agentwatch.telemetry.{name} needs the OpenTelemetry SDK: pip install 'agentwatch[otlp]' ({exc})"
        ) from exc
    return getattr(setup, name)
