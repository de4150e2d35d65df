"""The built-in calculator: right answers, and every hostile input refused fast without evaluating it."""

from __future__ import annotations

import ast
import inspect
import operator
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentwatch.telemetry import names
from agentwatch.tools import arithmetic, calculator, execute_tool
from agentwatch.tools.arithmetic import CalculationError


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1234 * 5678", "7006652"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** 10", "1024"),
        ("2 ^ 10", "1024"),
        ("7,006,652 × 2", "14013304"),
        ("10 ÷ 4", "2.5"),
        ("10 − 4", "6"),
        ("8,100,000,000 / 148,940,000", "54.3843158319"),
        ("-3 ** 2", "-9"),
        ("(-3) ** 2", "9"),
        ("+5 - -5", "10"),
        ("(1 + 2) * (3 + 4)", "21"),
        ("17 // 5", "3"),
        ("17 % 5", "2"),
        ("-7 // 2", "-4"),
        ("2 ** -2", "0.25"),
        ("2 ** 0.5", "1.41421356237"),
        ("1 / 3", "0.333333333333"),
        ("1e3 * 2", "2000"),
        ("1_000 + 1", "1001"),
        ("-0.0", "0"),
        ("299792458 * 60", "17987547480"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("123456789012345678901234567890 + 1", "123456789012345678901234567891"),
    ],
)
def test_correct_results(expression: str, expected: str) -> None:
    assert calculator(expression) == expected


def test_large_integers_are_exact() -> None:
    assert calculator("2 ** 3000") == str(2**3000)
    assert calculator("10 ** 999 * 10") == "1" + "0" * 1000


def balanced(depth: int) -> str:
    """A wide but shallow expression: 2**depth ones added pairwise."""
    return "1" if depth == 0 else f"({balanced(depth - 1)}+{balanced(depth - 1)})"


ATTACKS = {
    "9**9**9**9": "too large",
    "10**10**10": "too large",
    "2**-100000": "too small",
    "2**10**500": "too large",
    "(10**999) * (10**999)": "too large",
    "10**999 * 10**999 * 10**999": "too large",
    "1e308 * 10": "too large",
    "1e999": "too large",
    "1.5 ** 2000": "out of the range",
    "1" * 10_000_000: "too long",
    "1+" * 600 + "1": "too long",
    balanced(7): "too complex",
    "+".join(["1"] * 300): "nested too deeply",
    "-" * 200 + "1": "nested too deeply",
    "(" * 250 + "1" + ")" * 250: "not a valid arithmetic expression",
    "__import__('os').system('x')": "function call",
    "().__class__": "attribute",
    "(lambda: 1)()": "function call",
    "[x for x in range(10**9)]": "comprehension",
    "x": "a name",
    "a.b": "attribute",
    "'abc' * 10": "literal 'abc'",
    "[1, 2][0]": "subscript",
    "True + 1": "literal True",
    "1j * 2": "literal 1j",
    "1 if 2 else 3": "IfExp",
    "1 < 2": "comparison",
    "1 and 2": "boolean operator",
    "1 | 2": "operator BitOr",
    "~1": "operator Invert",
    "1, 2": "Tuple",
    "1 / 0": "division by zero",
    "5 % 0": "division by zero",
    "0 ** -1": "division by zero",
    "(-8) ** (1/3)": "not a real number",
    "": "empty",
    "1 +": "not a valid arithmetic expression",
    "import os": "not a valid arithmetic expression",
}


@pytest.mark.parametrize(("expression", "reason"), list(ATTACKS.items()), ids=lambda v: str(v)[:30])
def test_hostile_or_invalid_input_is_refused_fast(expression: str, reason: str) -> None:
    # CPU time of this thread, not wall-clock: other processes and threads cannot inflate it. Refusing
    # takes microseconds; computing any of these (9**9**9**9, 10**10**10, ...) would take hours.
    started = time.thread_time()
    with pytest.raises(CalculationError) as caught:
        calculator(expression)
    assert time.thread_time() - started < 1.0
    assert reason in str(caught.value)


def test_refused_trees_are_never_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(node: ast.expr) -> float:
        raise AssertionError(f"evaluated {ast.dump(node)}")

    monkeypatch.setattr(arithmetic, "_eval", fail)
    for expression in ["__import__('os').system('x')", "().__class__", "(lambda: 1)()", "x + 1", "open('f')"]:
        with pytest.raises(CalculationError, match="only arithmetic is allowed"):
            calculator(expression)


def test_no_eval_exec_or_compile_in_the_implementation() -> None:
    tree = ast.parse(inspect.getsource(arithmetic))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_errors_reach_the_model_as_error_results() -> None:
    outcome = execute_tool(
        {"calculator": calculator},
        "calculator",
        {"expression": "9**9**9**9"},
        timeout_s=5,
        max_output_chars=1000,
    )
    assert outcome.is_error and outcome.outcome == names.TOOL_ERROR
    assert outcome.content.startswith("ToolError: CalculationError: the result is too large")
    ok = execute_tool(
        {"calculator": calculator},
        "calculator",
        {"expression": "1234 * 5678"},
        timeout_s=5,
        max_output_chars=1000,
    )
    assert (ok.content, ok.is_error) == ("7006652", False)


def test_ten_megabyte_expression_through_the_executor_is_refused_fast() -> None:
    # CPU time of the whole process (the tool runs on a worker thread); a hang would end as a timeout.
    started = time.process_time()
    outcome = execute_tool(
        {"calculator": calculator},
        "calculator",
        {"expression": "1" * 10_000_000},
        timeout_s=5,
        max_output_chars=500,
    )
    assert time.process_time() - started < 1.0
    assert "too long" in outcome.content


_OPS: dict[str, Callable[[int, int], int]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@st.composite
def int_expressions(draw: st.DrawFn, depth: int = 3) -> tuple[str, int]:
    """A random +,-,* expression over small integers, with its value computed independently."""
    if depth == 0 or draw(st.booleans()):
        value = draw(st.integers(-1000, 1000))
        return (f"({value})", value)
    op = draw(st.sampled_from(sorted(_OPS)))
    left_text, left = draw(int_expressions(depth - 1))
    right_text, right = draw(int_expressions(depth - 1))
    return (f"({left_text} {op} {right_text})", _OPS[op](left, right))


@given(int_expressions())
def test_integer_arithmetic_matches_python(case: tuple[str, int]) -> None:
    text, value = case
    assert calculator(text) == str(value)
