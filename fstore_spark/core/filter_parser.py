"""The filter language: text -> filter tree, rejecting anything outside a small grammar.

Anything outside the grammar — statement separators, comments, quoted identifiers, function
calls, arithmetic — is rejected at definition time with the position of the offending text.

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
    >>> parse_filter("status = 'settled' AND amount >= 10")
    And(left=Cmp(op='=', left=Col(name='status'), right=Lit(value='settled')), \
right=Cmp(op='>=', left=Col(name='amount'), right=Lit(value=10)))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fstore_spark.core.filter_nodes import (
    KEYWORDS,
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
    children,
)
from fstore_spark.core.naming import is_safe_identifier
from fstore_spark.errors import DefinitionError

__all__ = ["parse_filter"]

# Bounds on nesting: deeper trees would make the recursive parser, renderer and the Spark
# translation hit Python's recursion limit; no sensible row filter comes close.
_MAX_DEPTH = 100

_ALLOWED = (
    "Allowed: column names matching ^[A-Za-z_][A-Za-z0-9_]{0,127}$, numbers such as 10, -3 or "
    "2.5, 'single-quoted strings' (write '' for a quote inside), TRUE, FALSE, NULL, the "
    "comparisons = == != <> < <= > >=, IN (...), NOT IN (...), IS NULL, IS NOT NULL, AND, OR, "
    "NOT and parentheses."
)

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
        stack.extend((child, level + 1) for child in children(node))
    return deepest


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
