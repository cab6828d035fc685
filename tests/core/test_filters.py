"""Unit tests for the filter language of fstore_spark.core: the safe parser (no Spark)."""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fstore_spark.core import (
    KEYWORDS,
    And,
    Cmp,
    Col,
    FilterExpr,
    In,
    IsNull,
    Lit,
    Not,
    Or,
    columns,
    is_safe_identifier,
    parse_filter,
    to_text,
)
from fstore_spark.errors import DefinitionError

# ---------------------------------------------------------------------------------------------
# Parsing valid expressions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount > 0", Cmp(">", Col("amount"), Lit(0))),
        ("amount>=10.5", Cmp(">=", Col("amount"), Lit(10.5))),
        ("amount > -3", Cmp(">", Col("amount"), Lit(-3))),
        ("amount>-3", Cmp(">", Col("amount"), Lit(-3))),
        ("a == 1", Cmp("=", Col("a"), Lit(1))),
        ("a <> 1", Cmp("!=", Col("a"), Lit(1))),
        ("a != 'x'", Cmp("!=", Col("a"), Lit("x"))),
        ("a < b", Cmp("<", Col("a"), Col("b"))),
        ("a <= 0", Cmp("<=", Col("a"), Lit(0))),
        ("1 = a", Cmp("=", Lit(1), Col("a"))),
        ("flag = true", Cmp("=", Col("flag"), Lit(True))),
        ("flag = FALSE", Cmp("=", Col("flag"), Lit(False))),
        ("is_refund", Col("is_refund")),
        ("not is_refund", Not(Col("is_refund"))),
        ("NOT NOT a", Not(Not(Col("a")))),
        ("email IS NULL", IsNull(Col("email"), False)),
        ("email is not null", IsNull(Col("email"), True)),
        ("c IN ('FR', 'DE')", In(Col("c"), (Lit("FR"), Lit("DE")), False)),
        ("c not in (1, -2, 3.5)", In(Col("c"), (Lit(1), Lit(-2), Lit(3.5)), True)),
        ("c IN (TRUE)", In(Col("c"), (Lit(True),), False)),
        ("a AND b", And(Col("a"), Col("b"))),
        ("a AND b AND c", And(And(Col("a"), Col("b")), Col("c"))),
        ("a OR b OR c", Or(Or(Col("a"), Col("b")), Col("c"))),
        ("a OR b AND c", Or(Col("a"), And(Col("b"), Col("c")))),
        ("(a OR b) AND c", And(Or(Col("a"), Col("b")), Col("c"))),
        ("a AND (b AND c)", And(Col("a"), And(Col("b"), Col("c")))),
        ("NOT a = 1 AND b", And(Not(Cmp("=", Col("a"), Lit(1))), Col("b"))),
        ("NOT (a OR b)", Not(Or(Col("a"), Col("b")))),
        ("((a > 1))", Cmp(">", Col("a"), Lit(1))),
        ("(a = 1) = TRUE", Cmp("=", Cmp("=", Col("a"), Lit(1)), Lit(True))),
        ("a = NULL", Cmp("=", Col("a"), Lit(None))),
        ("  a\t=\n1  ", Cmp("=", Col("a"), Lit(1))),
        ("_x1 = 0", Cmp("=", Col("_x1"), Lit(0))),
        ("Amount > 0", Cmp(">", Col("Amount"), Lit(0))),
    ],
)
def test_parse_valid(text: str, expected: FilterExpr) -> None:
    assert parse_filter(text) == expected


def test_parse_realistic_filter() -> None:
    expr = parse_filter(
        "status = 'settled' AND (channel IN ('web', 'app') OR amount >= 100) AND refund_id IS NULL"
    )
    assert expr == And(
        And(
            Cmp("=", Col("status"), Lit("settled")),
            Or(
                In(Col("channel"), (Lit("web"), Lit("app")), False),
                Cmp(">=", Col("amount"), Lit(100)),
            ),
        ),
        IsNull(Col("refund_id"), False),
    )
    assert columns(expr) == ("amount", "channel", "refund_id", "status")


def test_integer_and_decimal_literals_keep_their_type() -> None:
    assert parse_filter("a = 2") == Cmp("=", Col("a"), Lit(2))
    assert parse_filter("a = 2") != Cmp("=", Col("a"), Lit(2.0))
    assert parse_filter("a = 2.0") == Cmp("=", Col("a"), Lit(2.0))
    assert parse_filter("a = 1") != Cmp("=", Col("a"), Lit(True))


# ---------------------------------------------------------------------------------------------
# Strings and quote escaping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("name = 'O''Brien'", "O'Brien"),
        ("name = ''''", "'"),
        ("name = ''", ""),
        ("name = 'a; DROP TABLE x --'", "a; DROP TABLE x --"),
        ("name = 'say \"hi\"'", 'say "hi"'),
        ("name = 'two '' quotes '''", "two ' quotes '"),
    ],
)
def test_quote_escaping(text: str, value: str) -> None:
    expr = parse_filter(text)
    assert expr == Cmp("=", Col("name"), Lit(value))
    assert parse_filter(to_text(expr)) == expr


def test_to_text_escapes_quotes() -> None:
    assert to_text(Cmp("=", Col("n"), Lit("it's"))) == "n = 'it''s'"


def test_unterminated_string_is_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"unterminated string.*position 4"):
        parse_filter("a = 'abc")
    with pytest.raises(DefinitionError, match="unterminated string"):
        parse_filter("a = 'it''s")


# ---------------------------------------------------------------------------------------------
# Injection attempts and other invalid input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("amount > 0; DROP TABLE x", r"';'.*statement separators.*position 10"),
        ("amount > 0 -- x", r"comments are not allowed at position 11"),
        ("amount > 0 /* x */", r"comments are not allowed"),
        ("`a` > 1", r"'`'.*quoted identifiers.*position 0"),
        ('a = "x"', r"double quotes.*single quotes.*position 4"),
        ("f(a) > 1", r"function calls are not allowed at position 1"),
        ("a + 1 > 2", r"arithmetic is not allowed at position 2"),
        ("a - 1 > 2", r"arithmetic is not allowed"),
        ("a -1 > 2", r"but found '-1'"),
        ("a * 2 > 2", r"arithmetic"),
        ("a > 1 OR 1=1; SELECT 1", r"';'"),
        ("a || b", r"operators other than comparisons"),
        ("a = 1 = 2", r"expected AND, OR or the end of the filter but found '='"),
        ("a >", r"expected a column, a literal or '\(' but found the end of the filter"),
        ("a = 1 AND", r"expected a column"),
        ("(a = 1", r"expected '\)' to close"),
        ("a = 1)", r"but found '\)'"),
        ("a IN ()", r"expected a literal value in the IN list"),
        ("a IN (b)", r"expected a literal value in the IN list"),
        ("a IN 1", r"expected '\(' to open the IN list"),
        ("a IN (1, NULL)", r"NULL is not allowed in an IN list"),
        ("a NOT b", r"expected IN after NOT"),
        ("a IS 1", r"expected NULL after IS"),
        ("a IS NOT 1", r"expected NULL after IS NOT"),
        ("a = .5", r"unexpected character '\.'"),
        ("a = 1e5", r"but found 'e5'"),
        ("a = $1", r"unexpected character '\$'"),
        ("", r"the filter is empty"),
        ("   ", r"the filter is empty"),
        ("a" * 129 + " = 1", r"longer than 128 characters"),
        ("é = 1", r"unexpected character 'é'"),
    ],
)
def test_invalid_filters_are_rejected(text: str, pattern: str) -> None:
    with pytest.raises(DefinitionError, match=pattern) as info:
        parse_filter(text)
    message = str(info.value)
    assert message.startswith(f"invalid filter {text!r}")
    assert "Allowed:" in message  # the message lists what is allowed


def test_non_string_filter_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="filter must be a string"):
        parse_filter(42)  # type: ignore[arg-type]


def test_deep_nesting_is_rejected_not_a_recursion_error() -> None:
    with pytest.raises(DefinitionError, match="nested more than 100 levels"):
        parse_filter("(" * 500 + "a" + ")" * 500)
    with pytest.raises(DefinitionError, match="nested more than 100 levels"):
        parse_filter("NOT " * 500 + "a")
    with pytest.raises(DefinitionError, match="use IN"):
        parse_filter(" OR ".join(f"a = {i}" for i in range(300)))
    # Within the limit is fine.
    assert columns(parse_filter(" OR ".join(f"a = {i}" for i in range(50)))) == ("a",)


# ---------------------------------------------------------------------------------------------
# AST node validation
# ---------------------------------------------------------------------------------------------


def test_col_rejects_unsafe_names_and_keywords() -> None:
    with pytest.raises(DefinitionError, match="not a safe identifier"):
        Col("a b")
    with pytest.raises(DefinitionError, match="is a filter keyword"):
        Col("null")


def test_lit_rejects_unsupported_values() -> None:
    with pytest.raises(DefinitionError, match="not a finite number"):
        Lit(float("nan"))
    with pytest.raises(DefinitionError, match="unsupported type"):
        Lit([1])  # type: ignore[arg-type]


def test_lit_equality_includes_the_type() -> None:
    assert Lit(1) == Lit(1)
    assert Lit(1) != Lit(1.0)
    assert Lit(1) != Lit(True)
    assert len({Lit(1), Lit(1.0), Lit(True)}) == 3


def test_cmp_normalises_and_validates_operators() -> None:
    assert Cmp("==", Col("a"), Lit(1)).op == "="
    assert Cmp("<>", Col("a"), Lit(1)).op == "!="
    with pytest.raises(DefinitionError, match="operator 'LIKE'"):
        Cmp("LIKE", Col("a"), Lit("x"))
    with pytest.raises(DefinitionError, match="not a filter node"):
        Cmp("=", "a", Lit(1))  # type: ignore[arg-type]


def test_in_validates_values() -> None:
    assert In(Col("a"), [Lit(1)]).values == (Lit(1),)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="IN list is empty"):
        In(Col("a"), ())
    with pytest.raises(DefinitionError, match="not a literal"):
        In(Col("a"), (Col("b"),))  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="NULL"):
        In(Col("a"), (Lit(None),))


def test_nodes_are_immutable_and_hashable() -> None:
    expr = parse_filter("a = 1 AND b IN (2, 3)")
    assert hash(expr) == hash(parse_filter("a = 1 AND b IN (2, 3)"))
    assert isinstance(expr, And)
    with pytest.raises(AttributeError):
        expr.left = Col("z")  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# columns() and to_text()
# ---------------------------------------------------------------------------------------------


def test_columns_sorted_unique() -> None:
    assert columns(parse_filter("b = 1 OR a = b OR NOT c IS NULL OR 'x' IN ('x')")) == (
        "a",
        "b",
        "c",
    )
    assert columns(parse_filter("1 = 1")) == ()


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a==1 or (b <> 'x' and c is not null)", "a = 1 OR b != 'x' AND c IS NOT NULL"),
        ("(a OR b) and c", "(a OR b) AND c"),
        ("a and (b and c)", "a AND (b AND c)"),
        ("a or (b or c)", "a OR (b OR c)"),
        ("not (a = 1)", "NOT a = 1"),
        ("not (a and b)", "NOT (a AND b)"),
        ("x not in ( 1,2 )", "x NOT IN (1, 2)"),
        ("(a = 1) = true", "(a = 1) = TRUE"),
        ("a = 0.1", "a = 0.1"),
        ("a = 100000000000000000000.0", "a = 100000000000000000000.0"),
        ("a = 0.00001", "a = 0.00001"),
    ],
)
def test_to_text_is_canonical(text: str, canonical: str) -> None:
    expr = parse_filter(text)
    assert to_text(expr) == canonical
    assert parse_filter(canonical) == expr


def test_to_text_floats_never_use_exponents() -> None:
    for value in (1e-7, 1e22, 5e-324, -2.5e-10, 1.7976931348623157e308):
        text = to_text(Lit(value))
        assert "e" not in text.lower()
        assert parse_filter(text) == Lit(value)


# ---------------------------------------------------------------------------------------------
# Property: to_text / parse_filter round trip on generated trees
# ---------------------------------------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name.upper() not in KEYWORDS
)
_non_null_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_literals = st.one_of(st.none(), _non_null_values).map(Lit)
_leaves: st.SearchStrategy[FilterExpr] = st.one_of(_names.map(Col), _literals)


def _extend(children: st.SearchStrategy[FilterExpr]) -> st.SearchStrategy[FilterExpr]:
    return st.one_of(
        st.builds(
            Cmp, st.sampled_from(["=", "==", "!=", "<>", "<", "<=", ">", ">="]), children, children
        ),
        st.builds(
            In,
            children,
            st.lists(_non_null_values.map(Lit), min_size=1, max_size=4).map(tuple),
            st.booleans(),
        ),
        st.builds(IsNull, children, st.booleans()),
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Not, children),
    )


_exprs = st.recursive(_leaves, _extend, max_leaves=16)


@settings(max_examples=300)
@given(_exprs)
def test_to_text_parse_round_trip(expr: FilterExpr) -> None:
    text = to_text(expr)
    assert parse_filter(text) == expr
    assert to_text(parse_filter(text)) == text  # canonical text is a fixed point


@given(_exprs)
def test_columns_matches_the_tree(expr: FilterExpr) -> None:
    found = columns(expr)
    assert list(found) == sorted(set(found))
    assert all(is_safe_identifier(name) for name in found)
    assert columns(parse_filter(to_text(expr))) == found


# ---------------------------------------------------------------------------------------------
# Module hygiene
# ---------------------------------------------------------------------------------------------


FILTER_MODULES = [
    "fstore_spark.core.filter_nodes",
    "fstore_spark.core.filter_parser",
    "fstore_spark.core.filter_text",
]


@pytest.mark.parametrize("name", FILTER_MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
    assert result.attempted > 0


@pytest.mark.parametrize("name", FILTER_MODULES)
def test_module_does_not_import_pyspark(name: str) -> None:
    tree = ast.parse(Path(importlib.import_module(name).__file__ or "").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert "pyspark" not in imported
    assert imported <= {
        "__future__",
        "math",
        "re",
        "dataclasses",
        "decimal",
        "typing",
        "fstore_spark",
    }
