"""Numbers in text for the scripted model: find arithmetic, evaluate it safely, read and print numbers.

The scripted model needs to spot "What is 1234 * 5678?" (or "12 times 3", "7 ÷ 2", "2 ** 10"), turn
it into a normalized expression for a ``calculator`` tool, find the biggest number in a search result
("8.1 billion (8,100,000,000)"), and print results the way people read them ("7,006,652").
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

MAX_SCAN = 2000
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_OPERATOR = r"\*\*|[-+*/]"
_EXPRESSION = re.compile(
    rf"[(\s]*(?:{NUMBER})[)\s]*(?:(?:{_OPERATOR})[(\s]*(?:{NUMBER})[)\s]*)+",
)
_TOKEN = re.compile(rf"{NUMBER}|\*\*|[-+*/()]")
_WORD_OPERATORS = (
    (re.compile(r"\bmultiplied\s+by\b", re.I), "*"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\bdivided\s+by\b", re.I), "/"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.I), "**"),
)
_SYMBOLS = {"×": "*", "÷": "/", "−": "-", "^": "**"}
_SCALED = re.compile(rf"({NUMBER})(\s+(?:thousand|million|billion|trillion)\b)?", re.I)
_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in ``text``, normalized ("1234 * 5678"), or None.

    Only the first ``MAX_SCAN`` characters are read: tasks are short, and the pattern backtracks.
    """
    text = text[:MAX_SCAN]
    for word, symbol in _WORD_OPERATORS:
        text = word.sub(f" {symbol} ", text)
    for symbol, replacement in _SYMBOLS.items():
        text = text.replace(symbol, f" {replacement} ")
    matches = [m.group(0) for m in _EXPRESSION.finditer(text)]
    if not matches:
        return None
    raw = max(matches, key=len)
    parts = [t.replace(",", "") for t in _TOKEN.findall(raw)]
    if parts.count("(") != parts.count(")"):
        parts = [t for t in parts if t not in "()"]
    while parts and parts[0] == ")":
        parts.pop(0)
    while parts and parts[-1] == "(":
        parts.pop()
    return " ".join(parts).replace("( ", "(").replace(" )", ")")


def evaluate(expression: str) -> float | None:
    """Value of a plain arithmetic expression (numbers, + - * / **, parentheses), or None. Never raises."""
    try:
        tree = ast.parse(expression, mode="eval")
        return _value(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError):
        return None


def _value(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 10**6):
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    raise ValueError("not arithmetic")


def pretty(expression: str) -> str:
    """An expression as people write it: ``1234 * 5678`` → ``1234 × 5678``."""
    return expression.replace("**", "^").replace("*", "×").replace("/", "÷")


def format_number(value: float) -> str:
    """Thousands separators, no useless decimals: 7006652.0 → "7,006,652", 54.384597 → "54.3846"."""
    if float(value).is_integer() and abs(value) < 1e21:
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def plain_number(value: float) -> str:
    """The raw form of a number: 7006652.0 → "7006652", 0.5 → "0.5"."""
    if float(value).is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(float(value))


def numbers(text: str) -> list[Decimal]:
    """Every number in ``text``, with scale words applied ("8.1 billion" → 8100000000)."""
    found: list[Decimal] = []
    for match in _SCALED.finditer(text):
        try:
            value = Decimal(match.group(1).replace(",", ""))
        except InvalidOperation:
            continue
        if match.group(2):
            value *= _SCALE[match.group(2).strip().lower()]
        found.append(value)
    return found


def first_number(text: str) -> Decimal | None:
    """The first number in ``text`` (a sign directly before it counts), or None."""
    match = re.search(rf"-?(?:{NUMBER})(?:[eE][-+]?\d+)?", text)
    if match is None:
        return None
    try:
        return Decimal(match.group(0).replace(",", ""))
    except InvalidOperation:
        return None
