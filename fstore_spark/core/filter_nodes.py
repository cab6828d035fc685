"""Filter expressions as an immutable tree: the nodes an aggregation's row filter parses into.

An aggregation may carry a row filter such as ``"status = 'settled' AND amount > 0"``. The text is
never spliced into SQL: it is parsed (:mod:`fstore_spark.core.filter_parser`) into a small tree of
the frozen dataclasses defined here, and the Spark layer translates that tree node by node into
``Column`` objects. Every node validates its parts, so any tree renders to text that parses back
to the same tree (:mod:`fstore_spark.core.filter_text`).

Example:
    >>> expr = And(Cmp("=", Col("status"), Lit("settled")), Cmp(">=", Col("amount"), Lit(10)))
    >>> columns(expr)
    ('amount', 'status')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias

from fstore_spark.core.naming import SAFE_IDENTIFIER_PATTERN, is_safe_identifier
from fstore_spark.errors import DefinitionError

__all__ = [
    "COMPARISON_OPS",
    "KEYWORDS",
    "And",
    "Cmp",
    "Col",
    "FilterExpr",
    "In",
    "IsNull",
    "Lit",
    "LiteralValue",
    "Not",
    "Or",
    "children",
    "columns",
]

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"})
"""Reserved words of the filter grammar; they cannot be used as column names in a filter."""

COMPARISON_OPS = ("=", "!=", "<", "<=", ">", ">=")
"""Canonical comparison operators; ``==`` is normalised to ``=`` and ``<>`` to ``!=``."""

_OP_ALIASES = {"==": "=", "<>": "!="}

LiteralValue: TypeAlias = str | int | float | bool | None
"""Python type of a literal in a filter."""


@dataclass(frozen=True)
class Col:
    """A reference to a column of the source rows.

    Attributes:
        name: A safe identifier that is not a grammar keyword (``AND``, ``IN``, ``NULL``…).

    Example:
        >>> Col("amount")
        Col(name='amount')
    """

    name: str

    def __post_init__(self) -> None:
        """Reject names the parser could not read back, so every tree renders to valid text."""
        if not is_safe_identifier(self.name):
            raise DefinitionError(
                f"filter column {self.name!r} is not a safe identifier. Fix: use letters, digits "
                f"and underscores only, not starting with a digit ({SAFE_IDENTIFIER_PATTERN})."
            )
        if self.name.upper() in KEYWORDS:
            raise DefinitionError(
                f"filter column {self.name!r} is a filter keyword. Fix: rename the column; "
                f"{', '.join(sorted(KEYWORDS))} cannot be used as column names in a filter."
            )


@dataclass(frozen=True, eq=False)
class Lit:
    """A literal value: string, integer, finite float, boolean or NULL (``None``).

    Equality includes the Python type, so ``Lit(1)``, ``Lit(1.0)`` and ``Lit(True)`` are three
    different literals (they render differently and mean different things to Spark).

    Attributes:
        value: The literal value.

    Example:
        >>> Lit(1) == Lit(1), Lit(1) == Lit(True)
        (True, False)
    """

    value: LiteralValue

    def __post_init__(self) -> None:
        """Reject values that have no literal syntax (other types, NaN, infinities)."""
        if self.value is not None and not isinstance(self.value, str | int | float | bool):
            raise DefinitionError(
                f"filter literal {self.value!r} has unsupported type {type(self.value).__name__}. "
                "Fix: use a string, integer, float, boolean or None."
            )
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise DefinitionError(
                f"filter literal {self.value!r} is not a finite number. Fix: use a finite value."
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lit):
            return NotImplemented
        return type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value))


@dataclass(frozen=True)
class Cmp:
    """A binary comparison ``left op right``.

    Attributes:
        op: One of :data:`COMPARISON_OPS`; ``==`` and ``<>`` are accepted and normalised to ``=``
            and ``!=``. Comparisons with NULL follow SQL: the result is NULL, so the row is dropped.
        left: Left operand.
        right: Right operand.

    Example:
        >>> Cmp("==", Col("a"), Lit(1)).op
        '='
    """

    op: str
    left: FilterExpr
    right: FilterExpr

    def __post_init__(self) -> None:
        """Normalise the operator spelling and check the operands are filter nodes."""
        op = _OP_ALIASES.get(self.op, self.op)
        if op not in COMPARISON_OPS:
            raise DefinitionError(
                f"filter comparison operator {self.op!r} is not supported. "
                f"Fix: use one of = == != <> < <= > >=."
            )
        object.__setattr__(self, "op", op)
        _check_node(self.left, "left operand of a comparison")
        _check_node(self.right, "right operand of a comparison")


@dataclass(frozen=True)
class In:
    """Membership test ``expr [NOT] IN (v1, v2, ...)`` against a non-empty list of literals.

    NULL is not allowed in the list: ``x NOT IN (1, NULL)`` is NULL for every row in SQL, a trap
    that silently drops all rows. Use ``IS NULL`` instead.

    Attributes:
        expr: The tested expression.
        values: The literals, as a tuple (a list is accepted and converted).
        negated: True for ``NOT IN``.

    Example:
        >>> In(Col("country"), (Lit("FR"), Lit("DE"))).values
        (Lit(value='FR'), Lit(value='DE'))
    """

    expr: FilterExpr
    values: tuple[Lit, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        """Convert the values to a tuple and check they are non-NULL literals."""
        values = tuple(self.values)
        object.__setattr__(self, "values", values)
        _check_node(self.expr, "tested expression of IN")
        if not values:
            raise DefinitionError("filter IN list is empty. Fix: list at least one value.")
        for value in values:
            if not isinstance(value, Lit):
                raise DefinitionError(
                    f"filter IN list contains {value!r}, which is not a literal. "
                    "Fix: list only literal values such as 1, 'a' or TRUE."
                )
            if value.value is None:
                raise DefinitionError(
                    "filter IN list contains NULL, which makes NOT IN match no row. "
                    "Fix: test for NULL separately with IS NULL."
                )
        if not isinstance(self.negated, bool):
            raise DefinitionError(f"filter IN: negated must be a bool, got {self.negated!r}.")


@dataclass(frozen=True)
class IsNull:
    """Null test ``expr IS [NOT] NULL``.

    Attributes:
        expr: The tested expression.
        negated: True for ``IS NOT NULL``.

    Example:
        >>> from fstore_spark.core.filter_text import to_text
        >>> to_text(IsNull(Col("email"), negated=True))
        'email IS NOT NULL'
    """

    expr: FilterExpr
    negated: bool = False

    def __post_init__(self) -> None:
        """Check the operand is a filter node."""
        _check_node(self.expr, "tested expression of IS NULL")
        if not isinstance(self.negated, bool):
            raise DefinitionError(f"filter IS NULL: negated must be a bool, got {self.negated!r}.")


@dataclass(frozen=True)
class And:
    """Logical conjunction ``left AND right`` (SQL three-valued logic).

    Attributes:
        left: Left operand.
        right: Right operand.

    Example:
        >>> from fstore_spark.core.filter_text import to_text
        >>> to_text(And(Col("a"), Col("b")))
        'a AND b'
    """

    left: FilterExpr
    right: FilterExpr

    def __post_init__(self) -> None:
        """Check both operands are filter nodes."""
        _check_node(self.left, "left operand of AND")
        _check_node(self.right, "right operand of AND")


@dataclass(frozen=True)
class Or:
    """Logical disjunction ``left OR right`` (SQL three-valued logic).

    Attributes:
        left: Left operand.
        right: Right operand.

    Example:
        >>> from fstore_spark.core.filter_text import to_text
        >>> to_text(Or(Col("a"), And(Col("b"), Col("c"))))
        'a OR b AND c'
    """

    left: FilterExpr
    right: FilterExpr

    def __post_init__(self) -> None:
        """Check both operands are filter nodes."""
        _check_node(self.left, "left operand of OR")
        _check_node(self.right, "right operand of OR")


@dataclass(frozen=True)
class Not:
    """Logical negation ``NOT expr`` (NOT NULL is NULL, so such rows stay excluded).

    Attributes:
        expr: The negated expression.

    Example:
        >>> from fstore_spark.core.filter_text import to_text
        >>> to_text(Not(Or(Col("a"), Col("b"))))
        'NOT (a OR b)'
    """

    expr: FilterExpr

    def __post_init__(self) -> None:
        """Check the operand is a filter node."""
        _check_node(self.expr, "operand of NOT")


FilterExpr: TypeAlias = Col | Lit | Cmp | In | IsNull | And | Or | Not
"""Any node of a filter expression tree."""

_NODE_TYPES = (Col, Lit, Cmp, In, IsNull, And, Or, Not)


def _check_node(value: object, role: str) -> None:
    if not isinstance(value, _NODE_TYPES):
        raise DefinitionError(
            f"filter {role} is {value!r}, which is not a filter node. "
            "Fix: build expressions from Col, Lit, Cmp, In, IsNull, And, Or and Not."
        )


def children(expr: FilterExpr) -> tuple[FilterExpr, ...]:
    """Return the direct sub-expressions of a node (none for columns and literals)."""
    if isinstance(expr, Cmp | And | Or):
        return (expr.left, expr.right)
    if isinstance(expr, In):
        return (expr.expr, *expr.values)
    if isinstance(expr, IsNull | Not):
        return (expr.expr,)
    return ()


def columns(expr: FilterExpr) -> tuple[str, ...]:
    """Return the column names an expression reads, sorted and without duplicates.

    Used to check a filter against a source schema before any data is read.

    Args:
        expr: A filter expression.

    Returns:
        Sorted unique column names; ``()`` for an expression of literals only.

    Example:
        >>> from fstore_spark.core.filter_parser import parse_filter
        >>> columns(parse_filter("b > 1 OR a = 2 OR b < 0"))
        ('a', 'b')
    """
    names: set[str] = set()
    stack: list[FilterExpr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Col):
            names.add(node.name)
        stack.extend(children(node))
    return tuple(sorted(names))
