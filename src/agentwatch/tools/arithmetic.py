"""Safe arithmetic: parse with ``ast`` and walk a whitelist; no ``eval``, no names, bounded work.

Every bound is checked BEFORE the expensive step: the text length before parsing, the tree size before
evaluating, and the size of a power (estimated with logarithms) before computing it. So hostile input
such as ``9**9**9**9`` or a 10 MB string is refused in microseconds.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

MAX_EXPRESSION_CHARS = 1_000
MAX_NODES = 200
MAX_DEPTH = 50
MAX_RESULT_DIGITS = 1_000  # integers and magnitudes beyond 10**1000 are refused
_MAX_INT_BITS = int(MAX_RESULT_DIGITS * math.log2(10)) + 1

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, *_BINARY, *_UNARY)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_ONLY_ARITHMETIC = "only arithmetic is allowed: numbers, + - * / // % ** (or ^), parentheses"


class CalculationError(ValueError):
    """The expression was refused or cannot be computed; the message says why."""


def normalize(expression: str) -> str:
    """Accept everyday notation: ``×`` ``÷`` ``^`` ``−`` and thousands separators (``7,006,652``)."""
    text = expression.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    return _THOUSANDS.sub("", text).strip()


def evaluate(expression: str) -> Number:
    """Compute an arithmetic expression. Raises ``CalculationError`` with a clear reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(
            f"expression is too long ({len(expression):,} characters; the limit is {MAX_EXPRESSION_CHARS:,})"
        )
    text = normalize(expression)
    if not text:
        raise CalculationError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise CalculationError(f"not a valid arithmetic expression ({detail})") from None
    _check_tree(tree)
    return _eval(tree.body)


def format_number(value: Number) -> str:
    """Integers exactly; floats to 12 significant digits without float noise (0.1+0.2 -> 0.3)."""
    if isinstance(value, int):
        return str(value)
    text = format(value, ".12g")
    return "0" if text == "-0" else text


def _check_tree(tree: ast.Expression) -> None:
    """Refuse anything but numbers and operators, and oversized trees, before evaluating anything."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise CalculationError(f"expression is too complex (more than {MAX_NODES} parts)")
        if depth > MAX_DEPTH:
            raise CalculationError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        if not isinstance(node, _ALLOWED_NODES):
            raise CalculationError(f"{_ONLY_ARITHMETIC}; found {_describe(node)}")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float)):
            raise CalculationError(f"{_ONLY_ARITHMETIC}; found the literal {node.value!r}")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Name: "a name",
        ast.Call: "a function call",
        ast.Attribute: "an attribute",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return "a comprehension"
    if isinstance(node, ast.operator | ast.unaryop):
        return f"the operator {type(node).__name__}"
    return f"unsupported syntax ({type(node).__name__})"


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        _check_operands(node.op, left, right)
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise CalculationError("division by zero") from None
        except OverflowError:
            raise CalculationError("the result is out of the range this calculator can represent") from None
        return _checked(result)
    raise CalculationError(_ONLY_ARITHMETIC)  # pragma: no cover - _check_tree refused it already


def _check_operands(op: ast.operator, left: Number, right: Number) -> None:
    if isinstance(op, ast.Pow):
        _check_power(left, right)
    elif (
        isinstance(op, ast.Mult)
        and isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > _MAX_INT_BITS + 1
    ):
        raise CalculationError(f"the result is too large (more than {MAX_RESULT_DIGITS} digits)")


def _check_power(base: Number, exponent: Number) -> None:
    """Estimate the size of ``base ** exponent`` with logarithms before computing it."""
    if base == 0 and exponent < 0:
        raise CalculationError("division by zero (zero raised to a negative power)")
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise CalculationError("the result is not a real number (negative base with a fractional exponent)")
    if abs(base) in (0, 1) or exponent == 0:
        return
    # digits of the result ~= |exponent| * |log10 |base||; compared in log space so that a huge
    # exponent cannot overflow the estimate itself.
    log_digits = math.log10(abs(exponent)) + math.log10(abs(math.log10(abs(base))))
    if log_digits > math.log10(MAX_RESULT_DIGITS):
        sign = "" if (exponent > 0) == (abs(base) > 1) else "-"
        size = "large" if not sign else "small"
        raise CalculationError(
            f"the result is too {size}: about 10**{sign}{_power_of_ten(log_digits)} "
            f"(the limit is 10**{sign}{MAX_RESULT_DIGITS})"
        )


def _power_of_ten(log_digits: float) -> str:
    return f"{10**log_digits:,.0f}" if log_digits < 15 else f"(10**{log_digits:.0f})"


def _checked(result: Number) -> Number:
    if isinstance(result, complex):  # pragma: no cover - _check_power refuses these first
        raise CalculationError("the result is not a real number")
    if isinstance(result, int):
        if result.bit_length() > _MAX_INT_BITS:
            raise CalculationError(f"the result is too large (more than {MAX_RESULT_DIGITS} digits)")
    elif not math.isfinite(result):
        raise CalculationError("the result is too large for a decimal number (over about 1.8e308)")
    return result
