"""Dollar cost of Claude calls, from the ``genai-prices`` catalog (offline data) plus user overrides.

An unknown model costs ``None``, never $0: a silent zero would disable cost budgets and understate
spend dashboards. Overrides (``Pricing(overrides=...)``, a YAML/JSON file, or the file named by
``AGENTWATCH_PRICES_FILE``) win over the catalog. Arithmetic is ``Decimal``; results are floats rounded
to 10 decimal places, so no ``0.30000000000000004`` reaches a span or a metric.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pydantic
from genai_prices import types as gp_types

from agentwatch.result import Usage
from agentwatch.telemetry import names

__all__ = ["PRICES_FILE_ENV", "ModelPrice", "Pricing", "default_pricing"]

PRICES_FILE_ENV = "AGENTWATCH_PRICES_FILE"
_PROVIDER = "anthropic"
_MTOK = Decimal(1_000_000)
_PLACES = Decimal("1e-10")
logger = logging.getLogger(names.LOGGER_NAME)


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, one rate per kind of token (absolute rates: no multiplier rules)."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float

    @functools.cached_property
    def _exact(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """The rates as exact decimals, converted once per price (every call is priced with them)."""
        return _d(self.input), _d(self.cache_read), _d(self.cache_write_5m), _d(self.cache_write_1h), _d(self.output)

    def cost_decimal(self, usage: Usage) -> Decimal:
        """Exact USD cost of ``usage`` at these rates."""
        rate_input, rate_read, rate_5m, rate_1h, rate_output = self._exact
        write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        total = (
            usage.input_tokens * rate_input
            + usage.cache_read_tokens * rate_read
            + (usage.cache_write_tokens - write_1h) * rate_5m
            + write_1h * rate_1h
            + usage.output_tokens * rate_output
        )
        return total / _MTOK

    @property
    def dearest_input(self) -> float:
        """The highest rate any input token can be billed at (usually the 1-hour cache write)."""
        return max(self.input, self.cache_read, self.cache_write_5m, self.cache_write_1h)


class _OverrideRates(pydantic.BaseModel):
    """One override entry: ``input`` and ``output`` required; cache rates default to Anthropic's ratios."""

    model_config = pydantic.ConfigDict(extra="forbid")

    input: float = pydantic.Field(ge=0)
    output: float = pydantic.Field(ge=0)
    cache_read: float | None = pydantic.Field(default=None, ge=0)
    cache_write_5m: float | None = pydantic.Field(default=None, ge=0)
    cache_write_1h: float | None = pydantic.Field(default=None, ge=0)

    def to_price(self) -> ModelPrice:
        base = _d(self.input)
        return ModelPrice(
            input=self.input,
            output=self.output,
            cache_read=self.cache_read if self.cache_read is not None else self.input,
            cache_write_5m=self.cache_write_5m if self.cache_write_5m is not None else float(base * Decimal("1.25")),
            cache_write_1h=self.cache_write_1h if self.cache_write_1h is not None else float(base * 2),
        )


class Pricing:
    """Prices per model: overrides first, then the ``genai-prices`` catalog (Anthropic provider).

    ``overrides`` maps a model name to rates in USD per million tokens::

        Pricing(overrides={"my-model": {"input": 3.0, "output": 15.0, "cache_read": 0.3,
                                        "cache_write_5m": 3.75, "cache_write_1h": 6.0}})

    ``input`` and ``output`` are required; a missing ``cache_read`` is charged at ``input`` (never
    under-counted) and missing cache writes at Anthropic's 1.25x / 2x of ``input``. A key also matches
    dated names: ``"my-model"`` prices ``"my-model-20250101"``.
    """

    def __init__(self, overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None) -> None:
        self._overrides: dict[str, ModelPrice] = {}
        for model, rates in (overrides or {}).items():
            self._overrides[model.lower()] = rates if isinstance(rates, ModelPrice) else _parse_rates(model, rates)
        self._unknown: set[str] = set()
        self._catalog_prices: dict[str, gp_types.ModelPrice | None] = {}
        self._flat_prices: dict[str, ModelPrice] = {}  # catalog models without long-context tiers
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._override_of: dict[str, ModelPrice | None] = {}  # model -> its override (the overrides never change)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pricing:
        """Overrides from a YAML or JSON file of the same shape as ``overrides``. Raises ``ValueError``."""
        return cls(overrides=_load_overrides(Path(path)))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Pricing:
        """Overrides from the file named by ``AGENTWATCH_PRICES_FILE`` (catalog only when unset)."""
        path = (os.environ if environ is None else environ).get(PRICES_FILE_ENV)
        if not path:
            return cls()
        try:
            return cls.from_file(path)
        except ValueError as exc:
            raise ValueError(f"{exc} (the file is named by {PRICES_FILE_ENV})") from None

    def has_price(self, model: str) -> bool:
        """Whether ``model`` has a price (override or catalog). Never raises."""
        return self.prices_for(model) is not None

    def prices_for(self, model: str, *, input_tokens: int = 0) -> ModelPrice | None:
        """Per-million rates for ``model``, or None when unknown. Never raises.

        Some catalog models charge more for long prompts; ``input_tokens`` (the call's total input)
        selects that tier.
        """
        override = self._override(model)
        if override is not None:
            return override
        flat = self._flat_prices.get(model)
        if flat is not None:
            return flat
        prices = self._catalog_price(model)
        if prices is None:
            return None
        price = self._from_catalog(prices, input_tokens)
        if not _tiered(prices):  # the same for every call: built once
            with self._lock:
                self._flat_prices[model] = price
        return price

    @staticmethod
    def _from_catalog(prices: gp_types.ModelPrice, input_tokens: int) -> ModelPrice:
        rate_input = _rate(prices.input_mtok, input_tokens) or Decimal(0)
        write_5m = _rate(prices.cache_write_mtok, input_tokens) or rate_input
        return ModelPrice(
            input=float(rate_input),
            output=float(_rate(prices.output_mtok, input_tokens) or 0),
            cache_read=float(_rate(prices.cache_read_mtok, input_tokens) or rate_input),
            cache_write_5m=float(write_5m),
            cache_write_1h=float(_rate(prices.cache_write_1h_mtok, input_tokens) or write_5m),
        )

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD cost of one call, or None (with one warning per model) when the price is unknown. Never raises."""
        prices = self.prices_for(model, input_tokens=usage.total_input_tokens)
        if prices is None:
            self._warn_unknown(model)
            return None
        return _to_usd(prices.cost_decimal(usage))

    def _override(self, model: str) -> ModelPrice | None:
        if not self._overrides:
            return None
        try:
            return self._override_of[model]
        except KeyError:
            found = self._override_of[model] = self._find_override(model)
            return found

    def _find_override(self, model: str) -> ModelPrice | None:
        key = model.lower()
        if key in self._overrides:
            return self._overrides[key]
        matches = [k for k in self._overrides if key.startswith((f"{k}-", f"{k}@"))]
        return self._overrides[max(matches, key=len)] if matches else None

    def _catalog_price(self, model: str) -> gp_types.ModelPrice | None:
        """The catalog's (possibly tiered) rates for ``model``, looked up once per model: a lookup walks
        genai-prices' model matching (~70 us), too slow for every call."""
        cached = self._catalog_prices.get(model)
        if cached is None and model not in self._catalog_prices:
            calculation = self._catalog(model)
            cached = calculation.model_price if calculation is not None else None
            with self._lock:
                self._catalog_prices[model] = cached
        return cached

    def _catalog(self, model: str) -> gp_types.PriceCalculation | None:
        if model in self._unknown:
            return None
        try:
            return genai_prices.calc_price(genai_prices.Usage(), model, provider_id=_PROVIDER)
        except LookupError:
            with self._lock:
                self._unknown.add(model)
            return None
        except Exception:  # a catalog bug must not break a run: report unknown, loudly
            logger.warning("genai-prices failed to price model %r", model, exc_info=True)
            return None

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._warned:
                return
            self._warned.add(model)
        logger.warning(
            "agentwatch has no price for model %r: its cost is reported as unknown (None), not $0, and "
            "cost budgets cannot be enforced for it. Add a price override (USD per million tokens): "
            "Pricing(overrides={%r: {'input': ..., 'output': ..., 'cache_read': ..., "
            "'cache_write_5m': ..., 'cache_write_1h': ...}}), or the same mapping in a YAML/JSON file "
            "named by the %s environment variable.",
            model,
            model,
            PRICES_FILE_ENV,
        )


@functools.cache
def default_pricing() -> Pricing:
    """The process-wide ``Pricing``: catalog plus ``AGENTWATCH_PRICES_FILE`` overrides, built once.

    Raises ``ValueError`` when that file is unreadable or malformed (a price typo should not pass
    silently). ``default_pricing.cache_clear()`` rebuilds it.
    """
    return Pricing.from_env()


def _d(value: float) -> Decimal:
    return Decimal(repr(value))


def _to_usd(total: Decimal) -> float:
    return float(total.quantize(_PLACES))


def _tiered(prices: gp_types.ModelPrice) -> bool:
    """Whether any rate of ``prices`` depends on the prompt's length."""
    rates = (prices.input_mtok, prices.output_mtok, prices.cache_read_mtok, prices.cache_write_mtok)
    return any(isinstance(r, gp_types.TieredPrices) for r in (*rates, prices.cache_write_1h_mtok))


def _rate(price: Decimal | gp_types.TieredPrices | None, input_tokens: int) -> Decimal | None:
    """The rate that applies to a call with ``input_tokens`` total input (genai-prices' tier rule)."""
    if price is None or isinstance(price, Decimal):
        return price
    for tier in reversed(price.tiers):
        if input_tokens > tier.start:
            return tier.price
    return price.base


def _parse_rates(model: str, rates: Mapping[str, Any], source: str = "overrides") -> ModelPrice:
    try:
        return _OverrideRates.model_validate(rates).to_price()
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'rates'}: {err['msg']}" for err in exc.errors())
        raise ValueError(
            f"Invalid price override for model {model!r} in {source}: {problems}. Expected USD per million "
            "tokens, e.g. {'input': 3.0, 'output': 15.0, 'cache_read': 0.3, 'cache_write_5m': 3.75, "
            "'cache_write_1h': 6.0}."
        ) from None


def _load_yaml(text: str, path: Path) -> Any:
    """YAML overrides need PyYAML, which only the `yaml` extra installs (a JSON file needs nothing)."""
    try:
        import yaml
    except ImportError:
        raise ValueError(
            f"{str(path)!r} is YAML, which needs PyYAML: pip install 'agentwatch[yaml]' "
            "(or write the overrides as JSON)."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def _load_overrides(path: Path) -> dict[str, ModelPrice]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else _load_yaml(text, path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"Cannot read price overrides from {str(path)!r}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"Price overrides in {str(path)!r} must be a mapping of model name to rates; got {type(data).__name__}."
        )
    prices: dict[str, ModelPrice] = {}
    for model, rates in data.items():
        if not isinstance(rates, dict):
            raise ValueError(
                f"Invalid price override for model {model!r} in {str(path)!r}: expected a mapping of rates."
            )
        prices[str(model)] = _parse_rates(str(model), rates, repr(str(path)))
    return prices
