"""One call that sets up OTLP export of traces, metrics and logs for an application that has none.

Reads the standard ``OTEL_*`` variables: ``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the
per-signal ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT``), ``OTEL_EXPORTER_OTLP_PROTOCOL``
(``http/protobuf`` default, ``grpc`` with the ``agentwatch[grpc]`` extra), ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_METRIC_EXPORT_INTERVAL`` (ms, default 10 s).
Without an endpoint nothing is exported (no noisy connection errors to a collector that isn't there).

Safety: bounded queues; an exporter that raises or fails is counted (``agentwatch.telemetry.errors``)
and logged once; ``shutdown`` flushes within a bounded time and runs at exit and on SIGTERM.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentwatch.telemetry import names as n
from agentwatch.telemetry.instruments import instruments
from agentwatch.telemetry.logs import RedactingFilter, child_logger
from agentwatch.telemetry.logs import logger as agentwatch_logger

_warned: set[str] = set()
R = TypeVar("R")


def _report_export_failure(signal_name: str, detail: str) -> None:
    """Count an export failure; log the first one per signal only. Never raises."""
    try:
        instruments().telemetry_errors.add(1, {n.ERROR_TYPE: f"export_{signal_name}"})
        if signal_name not in _warned:
            _warned.add(signal_name)
            child_logger("telemetry").warning(
                "exporting %s failed (%s); runs are unaffected, further failures are only counted in %s",
                signal_name,
                detail,
                n.M_TELEMETRY_ERRORS[0],
            )
    except Exception:
        pass


def _guarded(signal_name: str, export: Callable[[], R], success: R, failure: R) -> R:
    """Run one export; an exception or a failure result is counted and reported, never raised."""
    try:
        result = export()
    except Exception as exc:
        _report_export_failure(signal_name, f"{type(exc).__name__}: {exc}")
        return failure
    if result is not success:
        _report_export_failure(signal_name, "the exporter reported failure")
    return result


def _quiet_shutdown(signal_name: str, shutdown: Callable[[], object]) -> None:
    try:
        shutdown()
    except Exception as exc:
        _report_export_failure(signal_name, f"shutdown: {exc}")


class GuardedSpanExporter(SpanExporter):
    """Wraps an exporter so that it never raises and its failures are counted."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return _guarded("traces", lambda: self.inner.export(spans), SpanExportResult.SUCCESS, SpanExportResult.FAILURE)

    def shutdown(self) -> None:
        _quiet_shutdown("traces", self.inner.shutdown)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return self.inner.force_flush(timeout_millis)
        except Exception:
            return False


class GuardedLogExporter(LogRecordExporter):
    """Log exporter counterpart of ``GuardedSpanExporter``."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner

    def export(self, batch: Any) -> LogRecordExportResult:
        return _guarded(
            "logs", lambda: self.inner.export(batch), LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE
        )

    def shutdown(self) -> None:
        _quiet_shutdown("logs", self.inner.shutdown)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class GuardedMetricExporter(MetricExporter):
    """Metric exporter counterpart of ``GuardedSpanExporter``."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return _guarded(
            "metrics",
            lambda: self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            MetricExportResult.SUCCESS,
            MetricExportResult.FAILURE,
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return self.inner.force_flush(timeout_millis)
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        _quiet_shutdown("metrics", lambda: self.inner.shutdown(timeout_millis=timeout_millis, **kwargs))


def _endpoint(signal_name: str) -> str | None:
    specific = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal_name.upper()}_ENDPOINT")
    return specific or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")


def _metric_interval_ms(explicit_s: float | None) -> float:
    """The metric export interval: the argument, else ``OTEL_METRIC_EXPORT_INTERVAL`` (ms), else 10 s."""
    if explicit_s is not None:
        return explicit_s * 1000
    try:
        return max(float(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "10000")), 100.0)
    except ValueError:
        return 10_000.0


def _protocol() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip().lower()


def _otlp_exporters(timeout_s: float) -> tuple[SpanExporter | None, MetricExporter | None, LogRecordExporter | None]:
    """OTLP exporters for the signals that have an endpoint; each reads its own endpoint/headers from env."""
    grpc = _protocol() == "grpc"
    if grpc:
        try:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
        except ImportError as exc:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: pip install 'agentwatch[grpc]'"
            ) from exc
        spans = GrpcSpans(timeout=timeout_s) if _endpoint("traces") else None
        metric = GrpcMetrics(timeout=timeout_s) if _endpoint("metrics") else None
        logs = GrpcLogs(timeout=timeout_s) if _endpoint("logs") else None
        return spans, metric, logs
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (
        OTLPSpanExporter(timeout=timeout_s) if _endpoint("traces") else None,
        OTLPMetricExporter(timeout=timeout_s) if _endpoint("metrics") else None,
        OTLPLogExporter(timeout=timeout_s) if _endpoint("logs") else None,
    )


@dataclass
class Telemetry:
    """The providers ``configure_telemetry`` installed; ``shutdown`` flushes them within a bound."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    log_handler: logging.Handler
    shutdown_timeout_s: float = 5.0
    _done: bool = field(default=False, init=False)

    def force_flush(self, timeout_s: float = 5.0) -> None:
        """Export what is queued now (used by short-lived programs). Bounded by ``timeout_s``."""
        self._bounded(
            lambda: (
                self.tracer_provider.force_flush(int(timeout_s * 1000)),
                self.meter_provider.force_flush(int(timeout_s * 1000)),
                self.logger_provider.force_flush(int(timeout_s * 1000)),
            ),
            timeout_s,
        )

    def shutdown(self) -> None:
        """Flush and stop all providers, at most ``shutdown_timeout_s`` in total. Idempotent; never raises."""
        if self._done:
            return
        self._done = True
        agentwatch_logger.removeHandler(self.log_handler)

        def stop_all() -> None:
            self.tracer_provider.shutdown()
            self.meter_provider.shutdown(timeout_millis=self.shutdown_timeout_s * 1000)
            self.logger_provider.shutdown()

        self._bounded(stop_all, self.shutdown_timeout_s)

    @staticmethod
    def _bounded(work: Callable[[], object], timeout_s: float) -> None:
        worker = threading.Thread(target=lambda: _quietly(work), name="agentwatch-telemetry-flush", daemon=True)
        worker.start()
        worker.join(timeout_s)


def _quietly(work: Callable[[], object]) -> None:
    try:
        work()
    except Exception as exc:
        _report_export_failure("shutdown", f"{type(exc).__name__}: {exc}")


def configure_telemetry(
    service_name: str | None = None,
    *,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[Any] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
    export_timeout_s: float = 5.0,
    metric_interval_s: float | None = None,
    shutdown_timeout_s: float = 5.0,
    install_signal_handler: bool = True,
    resource_attributes: dict[str, Any] | None = None,
) -> Telemetry:
    """Install global tracer, meter and logger providers exporting over OTLP per the ``OTEL_*`` env.

    Extra exporters/readers (e.g. the demo's console tree, an in-memory exporter in tests) are added
    beside OTLP. ``resource_attributes`` describe where it runs (e.g. the FaaS attributes of a Lambda
    function). Call once at start-up; if the application already set providers, use those instead
    (agentwatch emits through the global API either way).
    """
    service = service_name or os.environ.get("OTEL_SERVICE_NAME", "agentwatch")
    resource = Resource.create({"service.name": service, **(resource_attributes or {})})
    spans_out, metrics_out, logs_out = _otlp_exporters(export_timeout_s)
    for name in ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.exporter.otlp.proto.grpc"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # failures are reported once by the guards instead

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # ours is bounded
    for exporter in [*([spans_out] if spans_out else []), *span_exporters]:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                GuardedSpanExporter(exporter),
                max_queue_size=4096,
                schedule_delay_millis=1000,
                export_timeout_millis=export_timeout_s * 1000,
            )
        )
    readers = list(metric_readers)
    if metrics_out is not None:
        readers.append(
            PeriodicExportingMetricReader(
                GuardedMetricExporter(metrics_out),
                export_interval_millis=_metric_interval_ms(metric_interval_s),
                export_timeout_millis=export_timeout_s * 1000,
            )
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for log_exporter in [*([logs_out] if logs_out else []), *log_exporters]:
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(GuardedLogExporter(log_exporter), max_queue_size=4096, schedule_delay_millis=1000)
        )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    set_logger_provider(logger_provider)
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    handler.addFilter(RedactingFilter())  # records of child loggers skip the agentwatch logger's filter
    agentwatch_logger.addHandler(handler)
    if agentwatch_logger.level == logging.NOTSET or agentwatch_logger.level > logging.INFO:
        agentwatch_logger.setLevel(logging.INFO)

    telemetry = Telemetry(tracer_provider, meter_provider, logger_provider, handler, shutdown_timeout_s)
    atexit.register(telemetry.shutdown)
    if install_signal_handler and threading.current_thread() is threading.main_thread():
        _chain_sigterm(telemetry)
    return telemetry


def _chain_sigterm(telemetry: Telemetry) -> None:
    """On SIGTERM flush telemetry (bounded), then do what the previous handler would have done."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        telemetry.shutdown()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
