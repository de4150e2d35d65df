"""``@tool``: what Claude is shown (name, description, schema) and how its input is checked."""

from __future__ import annotations

import enum
import json
import threading
from typing import Annotated, Any, Literal

import jsonschema
import pydantic
import pytest

from agentwatch.tools import DEFAULT_RETRY_ON, Tool, ToolInputError, TransientToolError, tool


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Point(pydantic.BaseModel):
    lat: float
    lon: float


@tool
def weather(
    city: str,
    days: int = 1,
    unit: Unit = Unit.CELSIUS,
    detail: Literal["short", "full"] = "short",
    tags: list[str] | None = None,
    ratio: float = 0.5,
    exact: bool = False,
    where: Point | None = None,
) -> dict[str, Any]:
    """Get the weather forecast for a city.

    This second paragraph is not part of the description.

    Args:
        city: The city name,
            for example "Paris".
        days (int): How many days to forecast.
        unit: Temperature unit.

    Returns:
        The forecast.
    """
    return {"city": city, "days": days, "unit": unit.value}


def assert_clean_schema(schema: dict[str, Any]) -> None:
    """Valid JSON Schema, an object at the top, no pydantic titles and no unresolved refs."""
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    text = json.dumps(schema)
    assert '"title"' not in text
    assert "$ref" not in text


def test_name_and_description_come_from_the_function() -> None:
    assert weather.name == "weather"
    assert weather.description == "Get the weather forecast for a city."
    assert weather.to_api() == {
        "name": "weather",
        "description": "Get the weather forecast for a city.",
        "input_schema": weather.input_schema,
    }


def test_schema_types_defaults_and_required() -> None:
    schema = weather.input_schema
    assert_clean_schema(schema)
    props = schema["properties"]
    assert schema["required"] == ["city"]
    assert props["city"]["type"] == "string"
    assert props["days"] == {"type": "integer", "default": 1, "description": "How many days to forecast."}
    assert props["ratio"]["type"] == "number"
    assert props["exact"]["type"] == "boolean"
    assert props["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert props["unit"]["default"] == "celsius"
    assert props["detail"]["enum"] == ["short", "full"]
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    nested = next(s for s in props["where"]["anyOf"] if s.get("type") == "object")
    assert nested["required"] == ["lat", "lon"]


def test_parameter_descriptions_from_google_args_section() -> None:
    props = weather.input_schema["properties"]
    assert props["city"]["description"] == 'The city name, for example "Paris".'
    assert props["unit"]["description"] == "Temperature unit."
    assert "description" not in props["tags"]


def test_numpy_style_docstring() -> None:
    @tool
    def area(width: float, height: float) -> float:
        """Area of a rectangle.

        Parameters
        ----------
        width : float
            Width in metres.
        height : float
            Height in metres,
            never negative.

        Returns
        -------
        float
        """
        return width * height

    props = area.input_schema["properties"]
    assert area.description == "Area of a rectangle."
    assert props["width"]["description"] == "Width in metres."
    assert props["height"]["description"] == "Height in metres, never negative."


def test_annotated_field_description_and_constraints() -> None:
    @tool
    def pick(count: Annotated[int, pydantic.Field(ge=1, le=10, description="How many.")]) -> int:
        """Pick some."""
        return count

    assert pick.input_schema["properties"]["count"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "description": "How many.",
    }
    with pytest.raises(ToolInputError, match="count"):
        pick.validate({"count": 0})


def test_no_parameters_and_no_docstring() -> None:
    @tool
    def ping() -> str:
        return "pong"

    assert ping.description == ""
    assert_clean_schema(ping.input_schema)
    assert ping.input_schema["properties"] == {}
    assert ping.validate(None) == {}
    assert ping.validate({}) == {}


def test_overrides_and_options() -> None:
    class Flaky(Exception):
        pass

    @tool(name="lookup-v2", description="Look a thing up.", timeout_s=2.5, retries=2, retry_on=(Flaky,))
    def lookup(key: str) -> str:
        """Ignored docstring."""
        return key

    assert isinstance(lookup, Tool)
    assert (lookup.name, lookup.description, lookup.timeout_s, lookup.retries) == (
        "lookup-v2",
        "Look a thing up.",
        2.5,
        2,
    )
    assert lookup.retry_on == (Flaky,)
    assert weather.retries == 0
    assert weather.retry_on == DEFAULT_RETRY_ON
    assert TransientToolError in DEFAULT_RETRY_ON and TimeoutError in DEFAULT_RETRY_ON


def test_calling_the_tool_calls_the_function() -> None:
    assert weather("Paris", days=2) == {"city": "Paris", "days": 2, "unit": "celsius"}
    assert weather.__name__ == "weather"
    assert weather.__doc__ is not None and "Args:" in weather.__doc__


async def test_async_function() -> None:
    @tool
    async def fetch(url: str) -> str:
        """Fetch a URL."""
        return url.upper()

    assert fetch.is_async and not weather.is_async
    assert await fetch("x") == "X"
    assert fetch.input_schema["properties"]["url"]["type"] == "string"


def test_parameter_names_that_shadow_basemodel_attributes() -> None:
    @tool
    def odd(json: str, schema: int, model_config: bool = False) -> str:
        """Odd names."""
        return f"{json}{schema}{model_config}"

    assert set(odd.input_schema["properties"]) == {"json", "schema", "model_config"}
    assert odd.validate({"json": "a", "schema": "3"}) == {"json": "a", "schema": 3, "model_config": False}


def test_bad_definitions_fail_at_decoration_time() -> None:
    with pytest.raises(TypeError, match=r"\*args"):

        @tool
        def varargs(*args: int) -> None:
            """No."""

    with pytest.raises(TypeError, match=r"\*\*options"):

        @tool
        def varkw(**options: int) -> None:
            """No."""

    with pytest.raises(TypeError, match="JSON Schema cannot describe"):

        @tool
        def needs_lock(lock: threading.Lock) -> None:
            """No."""

    with pytest.raises(ValueError, match="name"):
        tool(lambda x: x)
    with pytest.raises(ValueError, match="timeout_s"):
        tool(timeout_s=0)(weather.fn)
    with pytest.raises(ValueError, match="retries"):
        tool(retries=-1)(weather.fn)


def test_decorating_a_tool_again_wraps_the_original_function() -> None:
    renamed = tool(name="forecast")(weather)
    assert renamed.fn is weather.fn
    assert renamed.name == "forecast"
    assert weather.name == "weather"


def test_validate_coerces_and_returns_python_values() -> None:
    args = weather.validate({"city": "Oslo", "days": "3", "unit": "fahrenheit", "where": {"lat": 1, "lon": 2}})
    assert args["days"] == 3
    assert args["unit"] is Unit.FAHRENHEIT
    assert args["where"] == Point(lat=1, lon=2)
    assert args["tags"] is None


def test_validate_accepts_a_json_string() -> None:
    assert weather.validate('{"city": "Rome"}')["city"] == "Rome"


def test_validation_error_lists_every_problem_readably() -> None:
    with pytest.raises(ToolInputError) as caught:
        weather.validate({"days": "many", "detail": "medium", "cty": "Paris"})
    message = str(caught.value)
    assert message.startswith("Invalid input for tool 'weather':")
    lines = message.splitlines()[1:]
    assert "- city: required field is missing" in lines
    assert any(line.startswith("- days: ") and "valid integer" in line and "'many'" in line for line in lines)
    assert any(line.startswith("- detail: ") and "'short' or 'full'" in line for line in lines)
    assert "- cty: unexpected field (not a parameter of this tool)" in lines


@pytest.mark.parametrize("raw", [[1, 2], 42, "not json", '"a string"'])
def test_validation_rejects_non_objects(raw: object) -> None:
    with pytest.raises(ToolInputError, match="weather"):
        weather.validate(raw)


def test_positional_only_parameters_are_supported() -> None:
    @tool
    def scale(value: float, /, factor: float = 2.0) -> float:
        """Scale a value."""
        return value * factor

    args = scale.validate({"value": 3, "factor": 3})
    assert scale.invoke(args) == 9.0
