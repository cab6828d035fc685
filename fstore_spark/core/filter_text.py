"""Canonical filter text: render a filter tree back to the text that definitions store.

Example:
    >>> to_text(And(Cmp("==", Col("a"), Lit(1)), IsNull(Col("b"), negated=True)))
    'a = 1 AND b IS NOT NULL'
"""

from __future__ import annotations

from decimal import Decimal

from fstore_spark.core.filter_nodes import (
    And,
    Cmp,
    Col,
    FilterExpr,
    In,
    IsNull,
    Lit,
    LiteralValue,
    Not,
    Or,
)
from fstore_spark.errors import DefinitionError

__all__ = ["to_text"]

# Binding strength of each node when rendered; a child binding more weakly than its position
# requires is wrapped in parentheses.
_OR, _AND, _NOT, _PREDICATE, _ATOM = 1, 2, 3, 4, 5


def _precedence(expr: FilterExpr) -> int:
    if isinstance(expr, Or):
        return _OR
    if isinstance(expr, And):
        return _AND
    if isinstance(expr, Not):
        return _NOT
    if isinstance(expr, Cmp | In | IsNull):
        return _PREDICATE
    return _ATOM


def _literal_text(value: LiteralValue) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr() is the shortest exact form but may use an exponent, which the grammar lacks;
        # Decimal expands it without losing digits, and the ".0" keeps it a float on re-parse.
        digits = format(Decimal(repr(value)), "f")
        return digits if "." in digits else digits + ".0"
    return "'" + value.replace("'", "''") + "'"


def _wrap(expr: FilterExpr, minimum: int) -> str:
    text = to_text(expr)
    return text if _precedence(expr) >= minimum else f"({text})"


def to_text(expr: FilterExpr) -> str:
    """Render an expression as canonical filter text.

    Canonical means: upper-case keywords, single spaces, ``=``/``!=`` spellings, and only the
    parentheses the grammar needs. It is what definitions store and hash, and
    ``parse_filter(to_text(e)) == e`` holds for every tree.

    Args:
        expr: A filter expression.

    Returns:
        The text, e.g. ``"(a = 1 OR b = 2) AND c IS NOT NULL"``.

    Example:
        >>> from fstore_spark.core.filter_parser import parse_filter
        >>> to_text(parse_filter("a==1 or (b <> 'x' and c is not null)"))
        "a = 1 OR b != 'x' AND c IS NOT NULL"
    """
    if isinstance(expr, Col):
        return expr.name
    if isinstance(expr, Lit):
        return _literal_text(expr.value)
    if isinstance(expr, Cmp):
        return f"{_wrap(expr.left, _ATOM)} {expr.op} {_wrap(expr.right, _ATOM)}"
    if isinstance(expr, In):
        keyword = "NOT IN" if expr.negated else "IN"
        values = ", ".join(_literal_text(value.value) for value in expr.values)
        return f"{_wrap(expr.expr, _ATOM)} {keyword} ({values})"
    if isinstance(expr, IsNull):
        return f"{_wrap(expr.expr, _ATOM)} IS {'NOT NULL' if expr.negated else 'NULL'}"
    if isinstance(expr, Not):
        return f"NOT {_wrap(expr.expr, _NOT)}"
    if isinstance(expr, And):
        # Left-associative: a right-hand AND needs parentheses to keep its grouping.
        return f"{_wrap(expr.left, _AND)} AND {_wrap(expr.right, _NOT)}"
    if isinstance(expr, Or):
        return f"{_wrap(expr.left, _OR)} OR {_wrap(expr.right, _AND)}"
    raise DefinitionError(
        f"cannot render {expr!r}: not a filter node. Fix: build expressions from Col, Lit, Cmp, "
        "In, IsNull, And, Or and Not."
    )
