"""Aggregations: windowed aggregates of a source column, the features of aggregated views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fstore_spark.core.codec import Serialisable
from fstore_spark.core.dtypes import INTEGER_DTYPES, NUMERIC_DTYPES, check_dtype, normalize_dtype
from fstore_spark.core.durations import check_duration, format_duration
from fstore_spark.core.filter_nodes import FilterExpr
from fstore_spark.core.filter_parser import parse_filter
from fstore_spark.core.filter_text import to_text
from fstore_spark.core.naming import check_column_name, check_name, check_str, is_safe_identifier
from fstore_spark.errors import DefinitionError

__all__ = ["AGG_FUNCTIONS", "Aggregation"]

AGG_FUNCTIONS = (
    "sum",
    "count",
    "mean",
    "min",
    "max",
    "stddev",
    "last",
    "count_distinct",
    "approx_count_distinct",
    "recency",
)
"""Aggregation functions a feature view can compute over a window."""

# Functions whose result type does not depend on the input column.
_COUNT_LIKE = ("count", "count_distinct", "approx_count_distinct", "recency")
_ANY_EVENT_FUNCTIONS = ("count", "recency")  # the only ones that accept column "*"
_NEEDS_NUMERIC = ("sum", "mean", "stddev")
_ORDERABLE_DTYPES = (*NUMERIC_DTYPES, "timestamp", "date", "string")


def _check_function(function: object, column: object, *, owner: str) -> str:
    """Return the lower-cased function name, checking it accepts ``column`` (``"*"`` or a name)."""
    if not isinstance(function, str) or function.lower() not in AGG_FUNCTIONS:
        raise DefinitionError(
            f"{owner}: unknown function {function!r}. Fix: use one of "
            f"{', '.join(AGG_FUNCTIONS)} (e.g. 'mean' rather than 'avg')."
        )
    function = function.lower()
    if column == "*":
        if function not in _ANY_EVENT_FUNCTIONS:
            raise DefinitionError(
                f"{owner}: column '*' (any event) only works with count and recency, not "
                f"{function}. Fix: name the source column to aggregate."
            )
    else:
        check_name(column, owner=owner, role="column")
    return function


def _default_name(function: str, column: str, window: timedelta | None, *, owner: str) -> str:
    """Name an aggregation ``{function}_{column}_{window}``, e.g. ``sum_amount_30d``."""
    column_part = "events" if column == "*" else column
    window_part = "lifetime" if window is None else format_duration(window)
    name = f"{function}_{column_part}_{window_part}"
    if not is_safe_identifier(name):
        raise DefinitionError(
            f"{owner}: the default name {name[:40]!r}... is longer than 128 characters. "
            "Fix: pass a shorter name=..."
        )
    return name


def _canonical_filter(text: object, *, owner: str) -> str | None:
    """Parse a row filter and return its canonical text, so equal filters store equally."""
    if text is None:
        return None
    check_str(text, owner=owner, role="filter")
    assert isinstance(text, str)
    try:
        return to_text(parse_filter(text))
    except DefinitionError as exc:
        raise DefinitionError(f"{owner}: {exc}") from exc


@dataclass(frozen=True, kw_only=True, init=False)
class Aggregation(Serialisable):
    """One windowed aggregate of a source column, computed per entity at every cadence step.

    Functions (``function``):

    * ``sum``, ``mean``, ``stddev`` (sample): numeric columns; nulls are ignored.
    * ``min``, ``max``: numeric, timestamp, date or string columns.
    * ``count``: non-null values of ``column``, or all events for ``column="*"``.
    * ``count_distinct``, ``approx_count_distinct``: distinct non-null values; both are computed
      exactly by the engine (see :mod:`fstore_spark.offline.windows`), "approx" is accepted for
      compatibility with other feature stores.
    * ``last``: value of the latest event (by event time, then created time) in the window.
    * ``recency``: days (fractional) from the latest event with a non-null ``column`` — or any
      event for ``"*"`` — to the emission time.

    The window ``(t - window, t]`` ends at each emission time ``t``; ``window=None`` aggregates
    the entity's whole history up to ``t`` ("lifetime"). ``filter`` restricts the rows
    aggregated; it is parsed with :func:`~fstore_spark.core.filter_parser.parse_filter` and
    stored in canonical form.

    Attributes:
        column: Source column, or ``"*"`` (only for ``count`` and ``recency``).
        function: One of :data:`AGG_FUNCTIONS` (given in any case, stored lower-case).
        window: Window length, or None for lifetime.
        name: Output feature name; defaults to ``f"{function}_{column}_{window}"`` (``"events"``
            stands for ``"*"``, ``"lifetime"`` for no window), e.g. ``"sum_amount_30d"``.
        filter: Canonical filter text, or None.
        description: Free text.

    Example:
        >>> agg = Aggregation(column="amount", function="sum", window="30d",
        ...                   filter="status = 'settled'")
        >>> agg.name, agg.window, agg.output_dtype("int32")
        ('sum_amount_30d', datetime.timedelta(days=30), 'int64')
        >>> Aggregation(column="*", function="count").name
        'count_events_lifetime'
        >>> Aggregation(column="amount", function="sum", window="7d").to_dict()["window"]
        '7d'
        >>> Aggregation.from_dict({"column": "amount", "function": "sum", "window": "30d"})
        ... # doctest: +ELLIPSIS
        Aggregation(column='amount', function='sum', window=datetime.timedelta(days=30), ...)
    """

    column: str
    function: str
    window: timedelta | None = None
    name: str
    filter: str | None = None
    description: str = ""

    # An explicit __init__ because the window may be given as a string while the attribute is
    # always a timedelta, and the name may be omitted while the attribute always holds one.
    def __init__(
        self,
        *,
        column: str,
        function: str,
        window: timedelta | str | None = None,
        name: str | None = None,
        filter: str | None = None,
        description: str = "",
    ) -> None:
        label = name if name is not None else f"{function}({column})"
        owner = f"aggregation {label!r}"
        function = _check_function(function, column, owner=owner)
        window_td = None if window is None else check_duration(window, owner=owner, role="window")
        if name is None:
            name = _default_name(function, column, window_td, owner=owner)
        owner = f"aggregation {name!r}"
        check_column_name(name, owner=owner, role="name")
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "window", window_td)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "filter", _canonical_filter(filter, owner=owner))
        object.__setattr__(
            self, "description", check_str(description, owner=owner, role="description")
        )

    @property
    def filter_expr(self) -> FilterExpr | None:
        """The parsed filter (an immutable AST for the Spark layer), or None without a filter."""
        return None if self.filter is None else parse_filter(self.filter)

    @property
    def is_lifetime(self) -> bool:
        """True when the aggregate covers the whole history (no window)."""
        return self.window is None

    def check_input_dtype(self, dtype: str) -> None:
        """Check that the aggregated column's dtype suits the function.

        ``sum``, ``mean`` and ``stddev`` need a numeric column; ``min`` and ``max`` a numeric,
        timestamp, date or string column; the other functions accept any dtype.

        Args:
            dtype: The column's dtype (aliases accepted).

        Raises:
            DefinitionError: If the function cannot aggregate that dtype, or the dtype is unknown.

        Example:
            >>> Aggregation(column="city", function="mean").check_input_dtype("string")
            Traceback (most recent call last):
            ...
            fstore_spark.errors.DefinitionError: aggregation 'mean_city_lifetime': function mean \
needs a numeric column, but 'city' is string. Fix: aggregate a numeric column (int32, int64, \
float32, float64) or use count, count_distinct, approx_count_distinct, last or recency.
        """
        owner = f"aggregation {self.name!r}"
        dtype = check_dtype(dtype, owner=owner, role=f"dtype of column {self.column!r}")
        if self.function in _NEEDS_NUMERIC and dtype not in NUMERIC_DTYPES:
            raise DefinitionError(
                f"{owner}: function {self.function} needs a numeric column, but {self.column!r} "
                f"is {dtype}. Fix: aggregate a numeric column ({', '.join(NUMERIC_DTYPES)}) or "
                "use count, count_distinct, approx_count_distinct, last or recency."
            )
        if self.function in ("min", "max") and dtype not in _ORDERABLE_DTYPES:
            raise DefinitionError(
                f"{owner}: function {self.function} needs an orderable column, but "
                f"{self.column!r} is {dtype}. Fix: aggregate a column of type "
                f"{', '.join(_ORDERABLE_DTYPES)}, or use count or last."
            )

    def output_dtype(self, input_dtype: str | None) -> str:
        """Return the dtype of the aggregate given the dtype of its input column.

        ``sum`` gives ``int64`` for integer input, else ``float64``; the counts give ``int64``;
        ``mean``, ``stddev`` and ``recency`` give ``float64``; ``min``, ``max`` and ``last`` keep
        the input dtype.

        Args:
            input_dtype: The aggregated column's dtype, or None when unknown (or for ``"*"``);
                only the count-like functions (``count``, ``count_distinct``,
                ``approx_count_distinct``, ``recency``) resolve without it.

        Returns:
            One of :data:`DTYPES`.

        Raises:
            DefinitionError: If the input dtype does not suit the function, or is needed but
                unknown.

        Example:
            >>> Aggregation(column="amount", function="max").output_dtype("double")
            'float64'
            >>> Aggregation(column="*", function="recency").output_dtype(None)
            'float64'
        """
        if input_dtype is None:
            if self.function not in _COUNT_LIKE:
                raise DefinitionError(
                    f"aggregation {self.name!r}: the output type of {self.function} depends on "
                    f"the dtype of column {self.column!r}, which is unknown. Fix: declare the "
                    f"source schema, e.g. schema={{{self.column!r}: 'float64', ...}}."
                )
            return "float64" if self.function == "recency" else "int64"
        self.check_input_dtype(input_dtype)
        dtype = normalize_dtype(input_dtype)
        if self.function == "sum":
            return "int64" if dtype in INTEGER_DTYPES else "float64"
        if self.function in ("count", "count_distinct", "approx_count_distinct"):
            return "int64"
        if self.function in ("mean", "stddev", "recency"):
            return "float64"
        return dtype  # min, max, last
