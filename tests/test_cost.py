"""Cost: the published worked example to the cent-fraction, cache tiers, overrides, unknowns."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwatch.cost import PRICES_FILE_ENV, ModelPrice, Pricing, default_pricing
from agentwatch.result import Usage

HAIKU_EXAMPLE = Usage(input_tokens=1_000, cache_read_tokens=2_000, cache_write_tokens=500, output_tokens=300)


@pytest.fixture
def pricing() -> Pricing:
    return Pricing()


@pytest.mark.parametrize("model", ["claude-haiku-4-5-20251001", "claude-haiku-4-5"])
def test_haiku_worked_example(pricing: Pricing, model: str) -> None:
    # (1000*1 + 2000*0.10 + 500*1.25 + 300*5) / 1e6
    assert pricing.cost(model, HAIKU_EXAMPLE) == 0.003325


def test_one_hour_cache_writes_use_the_one_hour_rate(pricing: Pricing) -> None:
    usage = Usage(
        input_tokens=1_000,
        cache_read_tokens=2_000,
        cache_write_tokens=500,
        cache_write_1h_tokens=200,
        output_tokens=300,
    )
    # 300 5m writes at 1.25 and 200 1h writes at 2.00 instead of 500 at 1.25
    assert pricing.cost("claude-haiku-4-5", usage) == 0.003475


def test_other_models_and_no_float_artefacts(pricing: Pricing) -> None:
    assert pricing.cost("claude-sonnet-4-5", HAIKU_EXAMPLE) == 0.009975
    assert pricing.cost("claude-opus-4-5", HAIKU_EXAMPLE) == 0.016625
    assert pricing.cost("claude-haiku-4-5", Usage(input_tokens=100_000, output_tokens=40_000)) == 0.3
    assert pricing.cost("claude-haiku-4-5", Usage()) == 0.0


def test_prices_for(pricing: Pricing) -> None:
    assert pricing.prices_for("claude-haiku-4-5-20251001") == ModelPrice(
        input=1.0, output=5.0, cache_read=0.1, cache_write_5m=1.25, cache_write_1h=2.0
    )
    long_prompt = pricing.prices_for("claude-sonnet-4-5", input_tokens=300_000)
    assert long_prompt is not None and long_prompt.input == 6.0  # the long-context tier
    assert pricing.prices_for("no-such-model") is None
    assert pricing.has_price("claude-haiku-4-5") and not pricing.has_price("no-such-model")


def test_unknown_model_is_none_and_warns_once(pricing: Pricing, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentwatch"):
        assert pricing.cost("my-private-model", HAIKU_EXAMPLE) is None
        assert pricing.cost("my-private-model", HAIKU_EXAMPLE) is None
        assert pricing.prices_for("my-private-model") is None
    warnings = [r for r in caplog.records if r.name == "agentwatch" and "my-private-model" in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "not $0" in message and "overrides=" in message and PRICES_FILE_ENV in message


def test_override_wins_and_matches_dated_names() -> None:
    pricing = Pricing(
        overrides={
            "claude-haiku-4-5": {
                "input": 2.0,
                "output": 10.0,
                "cache_read": 0.2,
                "cache_write_5m": 2.5,
                "cache_write_1h": 4.0,
            },
            "my-model": ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write_5m=3.75, cache_write_1h=6.0),
        }
    )
    assert pricing.cost("claude-haiku-4-5-20251001", HAIKU_EXAMPLE) == 0.00665
    assert pricing.cost("my-model", HAIKU_EXAMPLE) == 0.009975
    assert pricing.cost("claude-sonnet-4-5", HAIKU_EXAMPLE) == 0.009975  # catalog still used for the rest


def test_override_defaults_for_missing_cache_rates() -> None:
    prices = Pricing(overrides={"m": {"input": 2, "output": 8}}).prices_for("m")
    assert prices == ModelPrice(input=2.0, output=8.0, cache_read=2.0, cache_write_5m=2.5, cache_write_1h=4.0)


@pytest.mark.parametrize(
    ("rates", "problem"),
    [
        ({"input": 1.0}, "output: Field required"),
        ({"input": -1.0, "output": 1.0}, "input: Input should be greater than or equal to 0"),
        (
            {"input": 1.0, "output": 1.0, "cache_wirte_5m": 1.0},
            "cache_wirte_5m: Extra inputs are not permitted",
        ),
        ({"input": "cheap", "output": 1.0}, "input: Input should be a valid number"),
    ],
)
def test_bad_overrides_are_clear_errors(rates: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match="Invalid price override for model 'm'") as caught:
        Pricing(overrides={"m": rates})
    assert problem in str(caught.value)


def test_override_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("claude-haiku-4-5:\n  input: 2\n  output: 10\n  cache_read: 0.2\n  cache_write_5m: 2.5\n")
    assert Pricing.from_file(path).cost("claude-haiku-4-5", HAIKU_EXAMPLE) == 0.00665


def test_override_file_json(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-model": {"input": 3, "output": 15}}))
    assert Pricing.from_file(str(path)).cost("my-model", Usage(input_tokens=1_000_000)) == 3.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2]", "must be a mapping"),
        ("m: 3", "expected a mapping of rates"),
        ("m: {input: 1}", "output: Field required"),
        ("m: [unclosed", "Cannot read price overrides"),
    ],
)
def test_bad_override_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"prices\.yaml") as caught:
        Pricing.from_file(path)
    assert problem in str(caught.value)


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Cannot read price overrides"):
        Pricing.from_file(tmp_path / "absent.yaml")


def test_env_file_and_default_pricing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.yml"
    path.write_text("claude-haiku-4-5: {input: 2, output: 10, cache_read: 0.2, cache_write_5m: 2.5}\n")
    monkeypatch.setenv(PRICES_FILE_ENV, str(path))
    default_pricing.cache_clear()
    try:
        assert default_pricing() is default_pricing()
        assert default_pricing().cost("claude-haiku-4-5", HAIKU_EXAMPLE) == 0.00665
        monkeypatch.setenv(PRICES_FILE_ENV, str(tmp_path / "absent.yml"))
        default_pricing.cache_clear()
        with pytest.raises(ValueError, match=PRICES_FILE_ENV):
            default_pricing()
        monkeypatch.delenv(PRICES_FILE_ENV)
        default_pricing.cache_clear()
        assert default_pricing().cost("claude-haiku-4-5", HAIKU_EXAMPLE) == 0.003325
    finally:
        default_pricing.cache_clear()


def test_dearest_input_worked_example(pricing: Pricing) -> None:
    prices = pricing.prices_for("claude-haiku-4-5")
    assert prices is not None and prices.dearest_input == 2.0  # the 1-hour cache write


_MODELS = [
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-3-haiku",
    "claude-2.1",
    "override",
]
_PRICING = Pricing(overrides={"override": {"input": 3, "output": 15, "cache_read": 0.3}})


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(_MODELS),
    uncached=st.integers(0, 400_000),
    read=st.integers(0, 400_000),
    write=st.integers(0, 100_000),
    write_1h_share=st.floats(0, 1),
    output=st.integers(0, 64_000),
    extra_output=st.integers(0, 1_000),
)
def test_dearest_input_rate_bounds_any_mix_of_input(
    model: str,
    uncached: int,
    read: int,
    write: int,
    write_1h_share: float,
    output: int,
    extra_output: int,
) -> None:
    """The worst case the budget guards assume (all input at the dearest rate, plus ``max_tokens`` of
    output) is never below what the call is billed."""
    usage = Usage(
        input_tokens=uncached,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=int(write * write_1h_share),
        output_tokens=output,
    )
    cost = _PRICING.cost(model, usage)
    prices = _PRICING.prices_for(model, input_tokens=usage.total_input_tokens)
    assert cost is not None and prices is not None
    bound = (usage.total_input_tokens * prices.dearest_input + (output + extra_output) * prices.output) / 1e6
    assert cost <= bound * (1 + 1e-9) + 1e-10  # float bound vs a cost rounded to 10 places
