"""The metric instruments, created once from the global meter (a proxy until a provider is set); every
string attribute value they record passes through the redactor."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from functools import cache
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation, _Gauge
from opentelemetry.util.types import Attributes

from agentwatch import __version__
from agentwatch.telemetry import names as n
from agentwatch.telemetry.content import redact_label


def meter() -> Meter:
    """agentwatch's meter from the global provider, so it works with whatever the application set up."""
    return metrics.get_meter(n.INSTRUMENTATION_SCOPE, __version__, schema_url=n.SCHEMA_URL)


def histogram(spec: tuple[str, str], description: str, buckets: tuple[float, ...]) -> _RedactedHistogram:
    name, unit = spec
    inner = meter().create_histogram(
        name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets)
    )
    return _RedactedHistogram(inner)


def counter(spec: tuple[str, str], description: str) -> _RedactedCounter:
    name, unit = spec
    return _RedactedCounter(meter().create_counter(name, unit=unit, description=description))


def gauge(spec: tuple[str, str], description: str) -> _Gauge:
    name, unit = spec
    return _RedactedGauge(meter().create_gauge(name, unit=unit, description=description))


class RedactedAttributes(dict[str, Any]):
    """An attribute set whose string values went through the redactor already: recorded as it is, without a
    second pass (the recorder builds these once per agent/model/outcome and reuses them on every point)."""


def redacted(attributes: Attributes) -> Attributes:
    """``attributes`` with every string value through the redactor (cached: label values repeat)."""
    if not attributes or type(attributes) is RedactedAttributes:
        return attributes
    return RedactedAttributes({k: redact_label(v) if isinstance(v, str) else v for k, v in attributes.items()})


class _RedactedCounter(Counter):
    """A counter whose attribute values pass through the redactor before they are recorded."""

    def __init__(self, inner: Counter) -> None:  # the API class has no state to set up
        self._inner = inner

    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._inner.add(amount, redacted(attributes), context)


class _SummedCounter(Counter):
    """A monotonic counter summed here and reported to the SDK at each collection, as an observable counter.

    For the counters recorded on every run, LLM call or tool call: an increment is one dict update under a
    lock instead of the SDK's per-measurement work (attribute cleaning and copy, hashing, aggregation and
    exemplar locks), about 10 us. What is exported is the same: a monotonic sum with the same name, unit and
    attributes (the SDK turns the totals into deltas for a delta exporter). What it has not: exemplars, which
    the dashboards take from the histograms only (``agentwatch.run.cost.usd``, the durations, the tokens),
    so ``context`` is accepted and not used.
    """

    def __init__(self, spec: tuple[str, str], description: str) -> None:  # the API class has no state to set up
        name, unit = spec
        self._sums: dict[frozenset[tuple[str, Any]], list[Any]] = {}  # attribute set -> [total, attributes]
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._new_lock)
        self._inner = meter().create_observable_counter(
            name, callbacks=[self._observe], unit=unit, description=description
        )

    def _new_lock(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at fork time

    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        """Add ``amount`` for ``attributes``. Like the SDK, drops a negative or non-finite amount."""
        if amount < 0 or not math.isfinite(amount):
            return
        attributes = redacted(attributes)
        key = frozenset(attributes.items()) if attributes else frozenset()
        with self._lock:
            entry = self._sums.get(key)
            if entry is None:
                self._sums[key] = [amount, dict(attributes or {})]
            else:
                entry[0] += amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            return [Observation(total, attributes) for total, attributes in self._sums.values()]


class _RedactedHistogram(Histogram):
    """A histogram whose attribute values pass through the redactor before they are recorded."""

    def __init__(self, inner: Histogram) -> None:  # the API class has no state to set up
        self._inner = inner

    def record(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._inner.record(amount, redacted(attributes), context)


class _RedactedGauge(_Gauge):
    """A synchronous gauge whose attribute values pass through the redactor before they are recorded."""

    def __init__(self, inner: _Gauge) -> None:  # the API class has no state to set up
        self._inner = inner

    def set(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._inner.set(amount, redacted(attributes), context)


class Instruments:
    """Every metric the runner records; see names.py for the Prometheus series of each."""

    def __init__(self) -> None:
        self.token_usage = histogram(n.M_TOKEN_USAGE, "Tokens per LLM call, by token type", n.TOKEN_BUCKETS)
        self.operation_duration = histogram(
            n.M_OPERATION_DURATION, "Duration of an LLM call, retries included", n.DURATION_BUCKETS
        )
        self.time_to_first_chunk = histogram(
            n.M_TIME_TO_FIRST_CHUNK, "Time to the first streamed chunk", n.DURATION_BUCKETS
        )
        self.tool_duration = histogram(n.M_TOOL_DURATION, "Duration of a tool call", n.DURATION_BUCKETS)
        # recorded on every tool call, run and LLM call: summed here, observed at collection (no exemplars)
        self.tool_calls = _SummedCounter(n.M_TOOL_CALLS, "Tool calls, by tool and outcome")
        self.runs = _SummedCounter(n.M_RUNS, "Agent runs, by agent and stop reason")
        self.run_duration = histogram(n.M_RUN_DURATION, "Wall-clock duration of a run", n.RUN_DURATION_BUCKETS)
        self.run_cost = histogram(n.M_RUN_COST, "Cost of a run in US dollars", n.COST_BUCKETS)
        self.spend = _SummedCounter(n.M_SPEND, "Money spent on LLM calls in US dollars, by model and agent")
        self.run_iterations = histogram(n.M_RUN_ITERATIONS, "LLM calls per run", n.ITERATION_BUCKETS)
        self.retries = counter(n.M_RETRIES, "Retried LLM call attempts, by error type")
        self.tool_retries = counter(n.M_TOOL_RETRIES, "Retried tool call attempts, by tool and error type")
        self.budget_stops = counter(n.M_BUDGET_STOPS, "Runs stopped by a budget, by budget kind")
        self.telemetry_errors = counter(n.M_TELEMETRY_ERRORS, "Failures inside agentwatch's own telemetry")
        self.count_tokens_fallbacks = counter(
            n.M_COUNT_TOKENS_FALLBACKS, "count_tokens failures near a budget; the byte estimate was used instead"
        )


@cache
def instruments() -> Instruments:
    """The process-wide instruments. Never raises (the OTel API is no-op safe)."""
    return Instruments()
