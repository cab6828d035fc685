"""Safe filter expressions for aggregations, parsed into an immutable AST.

An aggregation may carry a row filter such as ``"status = 'settled' AND amount > 0"``. The text is
never spliced into SQL: it is parsed here into a small tree of frozen dataclasses, and the Spark
layer translates that tree node by node into ``Column`` objects. Anything outside the grammar —
statement separators, comments, quoted identifiers, function calls, arithmetic — is rejected at
definition time with the position of the offending text.

Grammar (keywords are case-insensitive)::

    expr      := or_expr
    or_expr   := and_expr ("OR" and_expr)*
    and_expr  := not_expr ("AND" not_expr)*
    not_expr  := "NOT" not_expr | predicate
    predicate := operand [ cmp_op operand
                         | ["NOT"] "IN" "(" literal ("," literal)* ")"
                         | "IS" ["NOT"] "NULL" ]
    operand   := column | literal | "(" expr ")"
    cmp_op    := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal   := number | 'string' | TRUE | FALSE | NULL

Example:
    >>> expr = parse_filter("status = 'settled' AND amount >= 10")
    >>> expr
    And(left=Cmp(op='=', left=Col(name='status'), right=Lit(value='settled')), \
right=Cmp(op='>=', left=Col(name='amount'), right=Lit(value=10)))
    >>> columns(expr)
    ('amount', 'status')
    >>> to_text(expr)
    "status = 'settled' AND amount >= 10"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from fstore_spark.errors import DefinitionError

__all__ = [
    "COMPARISON_OPS",
    "KEYWORDS",
    "SAFE_IDENTIFIER_PATTERN",
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
    "columns",
    "is_safe_identifier",
    "parse_filter",
    "to_text",
]

SAFE_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""Pattern every column, feature and object name must match (ASCII, at most 128 characters)."""

# fullmatch on the unanchored body: ``$`` in SAFE_IDENTIFIER_PATTERN would also match before a
# trailing newline, which would let "amount\n" through.
_SAFE_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"})
"""Reserved words of the filter grammar; they cannot be used as column names in a filter."""

COMPARISON_OPS = ("=", "!=", "<", "<=", ">", ">=")
"""Canonical comparison operators; ``==`` is normalised to ``=`` and ``<>`` to ``!=``."""

_OP_ALIASES = {"==": "=", "<>": "!="}

# Bounds on nesting: deeper trees would make the recursive parser, renderer and the Spark
# translation hit Python's recursion limit; no sensible row filter comes close.
_MAX_DEPTH = 100

_ALLOWED = (
    "Allowed: column names matching ^[A-Za-z_][A-Za-z0-9_]{0,127}$, numbers such as 10, -3 or "
    "2.5, 'single-quoted strings' (write '' for a quote inside), TRUE, FALSE, NULL, the "
    "comparisons = == != <> < <= > >=, IN (...), NOT IN (...), IS NULL, IS NOT NULL, AND, OR, "
    "NOT and parentheses."
)

LiteralValue: TypeAlias = str | int | float | bool | None
"""Python type of a literal in a filter."""


def is_safe_identifier(value: object) -> bool:
    """Tell whether ``value`` is a string matching :data:`SAFE_IDENTIFIER_PATTERN`.

    Names that pass can be used as Spark column names without quoting, which is why every name in
    a definition must pass.

    Args:
        value: Any object; non-strings are simply not safe.

    Returns:
        True for strings such as ``"amount"`` or ``"_x1"``; False for ``"a b"``, ``"1a"``, ``""``.

    Example:
        >>> is_safe_identifier("customer_id"), is_safe_identifier("customer-id")
        (True, False)
    """
    return isinstance(value, str) and _SAFE_IDENTIFIER_RE.fullmatch(value) is not None


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


# --------------------------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TWO_CHAR_OPS = ("<=", ">=", "!=", "<>", "==")
_ONE_CHAR_OPS = ("=", "<", ">")
_CHAR_HINTS = {
    ";": "statement separators are not allowed",
    "`": "quoted identifiers are not allowed; write column names unquoted",
    '"': "double quotes are not allowed; write strings in single quotes",
    "+": "arithmetic is not allowed",
    "-": "arithmetic is not allowed",
    "*": "arithmetic is not allowed",
    "/": "arithmetic is not allowed",
    "%": "arithmetic is not allowed",
    "|": "operators other than comparisons are not allowed",
    "&": "operators other than comparisons are not allowed",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "keyword", "number", "string", "op", "(", ")", ",", "end"
    text: str
    pos: int
    value: LiteralValue = None


def _error(text: str, pos: int, problem: str) -> DefinitionError:
    snippet = text[pos : pos + 20] if pos < len(text) else "<end of filter>"
    return DefinitionError(
        f"invalid filter {text!r}: {problem} at position {pos} (near {snippet!r}). {_ALLOWED}"
    )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if text.startswith("--", i) or text.startswith("/*", i):
            raise _error(text, i, "comments are not allowed")
        if char == "'":
            i = _read_string(text, i, tokens)
            continue
        number = _NUMBER_RE.match(text, i)
        if number is not None:
            literal = number.group()
            value: int | float = float(literal) if "." in literal else int(literal)
            tokens.append(_Token("number", literal, i, value))
            i = number.end()
            continue
        word = _WORD_RE.match(text, i)
        if word is not None:
            name = word.group()
            if name.upper() in KEYWORDS:
                tokens.append(_Token("keyword", name.upper(), i))
            elif not is_safe_identifier(name):
                raise _error(text, i, f"column name {name[:30]!r}... is longer than 128 characters")
            else:
                tokens.append(_Token("name", name, i))
            i = word.end()
            continue
        two = text[i : i + 2]
        if two in _TWO_CHAR_OPS:
            tokens.append(_Token("op", two, i))
            i += 2
            continue
        if char in _ONE_CHAR_OPS:
            tokens.append(_Token("op", char, i))
            i += 1
            continue
        if char in "(),":
            tokens.append(_Token(char, char, i))
            i += 1
            continue
        hint = _CHAR_HINTS.get(char, "this character is not part of the filter grammar")
        raise _error(text, i, f"unexpected character {char!r}: {hint}")
    tokens.append(_Token("end", "", n))
    return tokens


def _read_string(text: str, start: int, tokens: list[_Token]) -> int:
    """Read a single-quoted string starting at ``start``; return the index after it."""
    parts: list[str] = []
    i = start + 1
    while True:
        close = text.find("'", i)
        if close < 0:
            raise _error(text, start, "unterminated string (a closing ' is missing)")
        parts.append(text[i:close])
        if text.startswith("''", close):  # '' is an escaped quote inside the string
            parts.append("'")
            i = close + 2
            continue
        tokens.append(_Token("string", text[start : close + 1], start, "".join(parts)))
        return close + 1


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


class _Parser:
    """Recursive-descent parser over the token list; one instance per parse."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._index = 0
        self._nesting = 0

    def parse(self) -> FilterExpr:
        if self._peek().kind == "end":
            raise _error(self._text, 0, "the filter is empty")
        expr = self._or()
        token = self._peek()
        if token.kind != "end":
            raise self._unexpected(token, "expected AND, OR or the end of the filter")
        return expr

    # -- token helpers -------------------------------------------------------------------------

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _accept_keyword(self, keyword: str) -> bool:
        token = self._peek()
        if token.kind == "keyword" and token.text == keyword:
            self._index += 1
            return True
        return False

    def _expect(self, kind: str, text: str, what: str) -> None:
        token = self._peek()
        if token.kind != kind or token.text != text:
            raise self._unexpected(token, f"expected {what}")
        self._index += 1

    def _unexpected(self, token: _Token, expected: str) -> DefinitionError:
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return _error(self._text, token.pos, f"{expected} but found {found}")

    def _enter(self, token: _Token) -> None:
        self._nesting += 1
        if self._nesting > _MAX_DEPTH:
            raise _error(
                self._text, token.pos, f"expression nested more than {_MAX_DEPTH} levels deep"
            )

    # -- grammar rules -------------------------------------------------------------------------

    def _or(self) -> FilterExpr:
        left = self._and()
        while self._accept_keyword("OR"):
            left = Or(left, self._and())
        return left

    def _and(self) -> FilterExpr:
        left = self._not()
        while self._accept_keyword("AND"):
            left = And(left, self._not())
        return left

    def _not(self) -> FilterExpr:
        token = self._peek()
        if self._accept_keyword("NOT"):
            self._enter(token)
            expr: FilterExpr = Not(self._not())
            self._nesting -= 1
            return expr
        return self._predicate()

    def _predicate(self) -> FilterExpr:
        left = self._operand()
        token = self._peek()
        if token.kind == "op":
            self._advance()
            return Cmp(token.text, left, self._operand())
        if self._accept_keyword("IS"):
            negated = self._accept_keyword("NOT")
            self._expect("keyword", "NULL", "NULL after IS" + (" NOT" if negated else ""))
            return IsNull(left, negated)
        if self._accept_keyword("NOT"):
            self._expect("keyword", "IN", "IN after NOT (as in 'x NOT IN (1, 2)')")
            return In(left, self._in_list(), negated=True)
        if self._accept_keyword("IN"):
            return In(left, self._in_list(), negated=False)
        if token.kind == "(":
            raise _error(self._text, token.pos, "function calls are not allowed")
        return left

    def _operand(self) -> FilterExpr:
        token = self._peek()
        if token.kind == "(":
            self._advance()
            self._enter(token)
            expr = self._or()
            self._expect(")", ")", "')' to close the '(' at position " + str(token.pos))
            self._nesting -= 1
            return expr
        if token.kind == "name":
            self._advance()
            return Col(token.text)
        if token.kind in ("number", "string"):
            self._advance()
            return Lit(token.value)
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE", "NULL"):
            self._advance()
            return Lit({"TRUE": True, "FALSE": False, "NULL": None}[token.text])
        raise self._unexpected(token, "expected a column, a literal or '('")

    def _in_list(self) -> tuple[Lit, ...]:
        self._expect("(", "(", "'(' to open the IN list")
        values = [self._in_literal()]
        while self._peek().kind == ",":
            self._advance()
            values.append(self._in_literal())
        self._expect(")", ")", "',' or ')' in the IN list")
        return tuple(values)

    def _in_literal(self) -> Lit:
        token = self._peek()
        if token.kind in ("number", "string"):
            self._advance()
            return Lit(token.value)
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE"):
            self._advance()
            return Lit(token.text == "TRUE")
        if token.kind == "keyword" and token.text == "NULL":
            raise _error(
                self._text,
                token.pos,
                "NULL is not allowed in an IN list (NOT IN with NULL matches no row; "
                "use IS NULL instead)",
            )
        raise self._unexpected(token, "expected a literal value in the IN list")


def _depth(expr: FilterExpr) -> int:
    """Height of the tree, computed without recursion (long AND/OR chains are left-deep)."""
    deepest = 0
    stack: list[tuple[FilterExpr, int]] = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(node))
    return deepest


def _children(expr: FilterExpr) -> tuple[FilterExpr, ...]:
    if isinstance(expr, Cmp | And | Or):
        return (expr.left, expr.right)
    if isinstance(expr, In):
        return (expr.expr, *expr.values)
    if isinstance(expr, IsNull | Not):
        return (expr.expr,)
    return ()


def parse_filter(text: str) -> FilterExpr:
    """Parse a filter expression into an immutable AST, rejecting anything outside the grammar.

    The result is pure data: it is never turned back into SQL text for Spark; the Spark layer
    maps each node to a ``Column`` operation, so user text cannot inject SQL.

    Args:
        text: The filter, e.g. ``"channel IN ('web', 'app') AND amount > 0"``. Keywords are
            case-insensitive; column names are case-preserving.

    Returns:
        The root node. ``a AND b AND c`` groups to the left: ``And(And(a, b), c)``.

    Raises:
        DefinitionError: On empty text, unknown characters (``;``, backticks, double quotes,
            arithmetic), comments, function calls, misplaced tokens, NULL inside IN, or nesting
            deeper than 100 levels. The message names the position and what is allowed.

    Example:
        >>> parse_filter("NOT is_refund")
        Not(expr=Col(name='is_refund'))
        >>> parse_filter("note = 'it''s'")
        Cmp(op='=', left=Col(name='note'), right=Lit(value="it's"))
    """
    if not isinstance(text, str):
        raise DefinitionError(
            f"filter must be a string, got {type(text).__name__} {text!r}. "
            'Fix: pass an expression such as "amount > 0".'
        )
    expr = _Parser(text).parse()
    if _depth(expr) > _MAX_DEPTH:
        raise _error(
            text,
            0,
            f"expression nested more than {_MAX_DEPTH} levels deep (use IN (...) instead of "
            "long OR chains)",
        )
    return expr


def columns(expr: FilterExpr) -> tuple[str, ...]:
    """Return the column names an expression reads, sorted and without duplicates.

    Used to check a filter against a source schema before any data is read.

    Args:
        expr: A filter expression.

    Returns:
        Sorted unique column names; ``()`` for an expression of literals only.

    Example:
        >>> columns(parse_filter("b > 1 OR a = 2 OR b < 0"))
        ('a', 'b')
    """
    names: set[str] = set()
    stack: list[FilterExpr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Col):
            names.add(node.name)
        stack.extend(_children(node))
    return tuple(sorted(names))


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
