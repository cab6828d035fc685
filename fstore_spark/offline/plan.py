"""The aggregation plan: which partial aggregates a view needs and how features derive from them.

A feature view's aggregations are resolved once, on the driver, into an :class:`AggregationPlan`:
the distinct *inputs* (a column and an optional filter, shared by every aggregation reading
them), the *partial kinds* each input needs in a tile, the distinct finite windows, and the
names of the columns the later steps exchange. :func:`tiles.build_tiles
<fstore_spark.offline.tiles.build_tiles>` fills the partials, :mod:`fstore_spark.offline.windows`
and :mod:`fstore_spark.offline.instants` turn them into running state, and
:func:`feature_column` turns that state into each feature's value at an instant ``t``.

Partial kinds: ``n`` (count of present values), ``s`` (sum), ``q`` (sum of squares), ``min``,
``max``, ``last`` (``(ts, created, value)`` of the latest event), ``lts`` (latest event time) and
``set`` (one occurrence row per distinct value). ``n``, ``s`` and ``q`` are *invertible*: a
window's value is a running sum of contributions and retractions.

Nothing here reads data; only :func:`feature_column`, :func:`tile_end_us` and
:func:`filter_to_column` build (lazy) Spark columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from fstore_spark.core import (
    Aggregation,
    And,
    Cmp,
    Col,
    FeatureView,
    FilterExpr,
    In,
    IsNull,
    Lit,
    Not,
    Or,
    normalize_dtype,
)
from fstore_spark.errors import MaterializationError

if TYPE_CHECKING:
    from pyspark.sql import Column

__all__ = [
    "OCC",
    "TILE",
    "TILE_LAYOUT",
    "T",
    "AggregationPlan",
    "Input",
    "feature_column",
    "filter_to_column",
    "micros",
    "plan_view",
    "spark_type",
    "tile_end_us",
]

TILE = "_fs_tile"  # tile end, epoch microseconds (long)
OCC = "_fs_occ"  # -1 on tile rows; input index on occurrence rows (distinct counts)
TILE_LAYOUT = 2  # bumped when the tile table's columns change meaning (old tables are rebuilt)
T = "_fs_t"  # emission time, epoch microseconds (long)
_US = 1_000_000
_DAY_US = 86_400 * _US
DISTINCT_FUNCTIONS = ("count_distinct", "approx_count_distinct")

_SPARK_TYPES = {
    "string": "string",
    "int32": "int",
    "int64": "bigint",
    "float32": "float",
    "float64": "double",
    "bool": "boolean",
    "timestamp": "timestamp",
    "date": "date",
}


def spark_type(dtype: str) -> str:
    """Spark SQL type name of a definition dtype (``float64`` -> ``double``...)."""
    return _SPARK_TYPES[normalize_dtype(dtype)]


def micros(td: timedelta) -> int:
    """A duration in whole microseconds (exact: no float rounding)."""
    return (td.days * 86_400 + td.seconds) * _US + td.microseconds


def tile_end_us(ts_us: Column, cadence: timedelta) -> Column:
    """Tile end (epoch micros) of an event time: the smallest multiple of cadence >= ts."""
    from pyspark.sql import functions as F

    cad = micros(cadence)
    return ((F.floor((ts_us - F.lit(1)) / F.lit(cad)) + F.lit(1)) * F.lit(cad)).cast("long")


def filter_to_column(expr: FilterExpr) -> Column:
    """Translate a parsed filter AST into a Spark Column (no SQL string is ever built)."""
    from pyspark.sql import functions as F

    if isinstance(expr, Col):
        return F.col(expr.name)
    if isinstance(expr, Lit):
        return F.lit(expr.value)
    if isinstance(expr, Cmp):
        left, right = filter_to_column(expr.left), filter_to_column(expr.right)
        ops = {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }
        return ops[expr.op]
    if isinstance(expr, In):
        col = filter_to_column(expr.expr).isin([v.value for v in expr.values])
        return ~col if expr.negated else col
    if isinstance(expr, IsNull):
        inner = filter_to_column(expr.expr)
        return inner.isNotNull() if expr.negated else inner.isNull()
    if isinstance(expr, And):
        return filter_to_column(expr.left) & filter_to_column(expr.right)
    if isinstance(expr, Or):
        return filter_to_column(expr.left) | filter_to_column(expr.right)
    if isinstance(expr, Not):
        return ~filter_to_column(expr.expr)
    raise MaterializationError(f"unsupported filter node {expr!r}")


_INVERTIBLE = ("n", "s", "q")
_KINDS_BY_FUNCTION: dict[str, tuple[str, ...]] = {
    "sum": ("n", "s"),
    "count": ("n",),
    "mean": ("n", "s"),
    "stddev": ("n", "s", "q"),
    "min": ("n", "min"),
    "max": ("n", "max"),
    "last": ("last",),
    "recency": ("lts",),
    "count_distinct": ("set",),
    "approx_count_distinct": ("set",),
}


@dataclass(frozen=True)
class Input:
    """One (column, filter) pair read by some aggregations; index ``i`` names its partials.

    Attributes:
        i: Position of the input in the plan (stable for one definition).
        column: Source column, or ``*`` for "every event".
        filter: The filter text, or ``None``.
        aggregation: Any aggregation reading this input (it carries the parsed filter).
    """

    i: int
    column: str
    filter: str | None
    aggregation: Aggregation

    def partial(self, kind: str) -> str:
        """Column of this input's partial aggregate of one kind (in tiles and in state)."""
        return f"_fs_p{self.i}_{kind}"

    @property
    def present_flag(self) -> str:
        """Column holding this input's evaluated filter (only when it has one)."""
        return f"_fs_f{self.i}"


@dataclass(frozen=True)
class AggregationPlan:
    """A view's aggregations resolved into inputs, partial kinds and windows.

    Window keys name a window in column names: ``"0"``, ``"1"``... index :attr:`windows`;
    ``"L"`` is the lifetime.
    """

    view: FeatureView
    keys: tuple[str, ...]
    inputs: tuple[Input, ...]
    kinds: dict[int, tuple[str, ...]]  # input index -> partial kinds needed
    input_of: dict[str, Input]  # aggregation name -> input
    windows: tuple[int, ...]  # distinct finite windows (micros), ascending
    cadence_us: int
    input_dtypes: dict[str, str]

    @property
    def max_window_us(self) -> int:
        """The longest finite window (0 without any)."""
        return max(self.windows) if self.windows else 0

    @property
    def has_lifetime(self) -> bool:
        """Whether some aggregation has no window (covers every event up to ``t``)."""
        return any(a.window is None for a in self.view.aggregations)

    @property
    def has_float_sums(self) -> bool:
        """Whether some running sum is floating point (its value depends on the order of adds).

        Those sums are added in a fixed order (events and tiles sorted first), so the same
        data gives the same bits however Spark partitions and shuffles it.
        """
        return any(self.sum_type(inp, kind) == "double" for inp, kind, _ in self.sums)

    def wkey(self, agg: Aggregation) -> str:
        """The window key of an aggregation."""
        return "L" if agg.window is None else str(self.windows.index(micros(agg.window)))

    def input_by_index(self, i: int) -> Input:
        """The input at position ``i``."""
        return self.inputs[i]

    @property
    def sums(self) -> list[tuple[Input, str, str]]:
        """The (input, kind, window key) running sums needed: counts, sums, sums of squares."""
        out: list[tuple[Input, str, str]] = []
        for agg in self.view.aggregations:
            inp = self.input_of[agg.name]
            for kind in _KINDS_BY_FUNCTION[agg.function]:
                if kind in _INVERTIBLE and (inp, kind, self.wkey(agg)) not in out:
                    out.append((inp, kind, self.wkey(agg)))
        return out

    @property
    def extrema(self) -> dict[tuple[int, str], set[str]]:
        """min/max: (input index, kind) -> the window keys asked for ("L" = lifetime)."""
        out: dict[tuple[int, str], set[str]] = {}
        for agg in self.view.aggregations:
            if agg.function in ("min", "max"):
                out.setdefault((self.input_of[agg.name].i, agg.function), set()).add(self.wkey(agg))
        return out

    @property
    def lasts(self) -> list[tuple[Input, str]]:
        """(input, kind) of the ``last`` / ``lts`` partials (latest tile wins)."""
        return [
            (inp, kind)
            for inp in self.inputs
            for kind in self.kinds[inp.i]
            if kind in ("last", "lts")
        ]

    @property
    def distinct_aggs(self) -> list[Aggregation]:
        """The exact distinct counts, in declared order."""
        return [a for a in self.view.aggregations if a.function in DISTINCT_FUNCTIONS]

    def distinct_groups(self) -> list[tuple[Input, list[Aggregation]]]:
        """Distinct counts grouped by the input they read, inputs in plan order."""
        aggs = self.distinct_aggs
        return [
            (self.inputs[i], [a for a in aggs if self.input_of[a.name].i == i])
            for i in sorted({self.input_of[a.name].i for a in aggs})
        ]

    def sum_type(self, inp: Input, kind: str) -> str:
        """Spark type of a running sum: counts are bigint, integer sums stay exact."""
        if kind == "n":
            return "bigint"
        if kind == "q":
            return "double"
        dtype = self.input_dtypes.get(inp.column, "int64")
        return "bigint" if dtype in ("int32", "int64") else "double"


def running_sum_column(inp: Input, kind: str, wk: str) -> str:
    """Column of a running sum (input, kind, window key)."""
    return f"_fs_d{inp.i}_{kind}_{wk}"


def extremum_column(inp: Input, kind: str, wk: str) -> str:
    """Column of a min/max (input, kind, window key)."""
    return f"{inp.partial(kind)}_{wk}"


def distinct_column(agg: Aggregation) -> str:
    """Column of a distinct count."""
    return f"_fs_dd_{agg.name}"


def plan_view(
    view: FeatureView, keys: Sequence[str], source_schema: dict[str, str]
) -> AggregationPlan:
    """Resolve a view's aggregations into the partial aggregates the tiles must hold.

    Raises:
        MaterializationError: the view has no aggregations, or one reads a column the source
            lacks (or of an unsuitable dtype).
    """
    if not view.is_aggregated:
        raise MaterializationError(
            f"feature view {view.name!r} projects columns; it has no aggregations to compute."
        )
    inputs: dict[tuple[str, str | None], Input] = {}
    kinds: dict[int, list[str]] = {}
    input_of: dict[str, Input] = {}
    for agg in view.aggregations:
        key = (agg.column, agg.filter)
        if key not in inputs:
            inputs[key] = Input(len(inputs), agg.column, agg.filter, agg)
        inp = inputs[key]
        input_of[agg.name] = inp
        for k in _KINDS_BY_FUNCTION[agg.function]:
            if k not in kinds.setdefault(inp.i, []):
                kinds[inp.i].append(k)
        _check_input_column(view, agg, source_schema)
    windows = sorted({micros(a.window) for a in view.aggregations if a.window is not None})
    return AggregationPlan(
        view=view,
        keys=tuple(keys),
        inputs=tuple(inputs.values()),
        kinds={i: tuple(v) for i, v in kinds.items()},
        input_of=input_of,
        windows=tuple(windows),
        cadence_us=micros(view.cadence),
        input_dtypes=dict(source_schema),
    )


def _check_input_column(view: FeatureView, agg: Aggregation, schema: dict[str, str]) -> None:
    """The column an aggregation reads exists in the source, with a dtype it accepts."""
    if agg.column == "*":
        return
    if agg.column not in schema:
        raise MaterializationError(
            f"feature view {view.name!r}: aggregation {agg.name!r} reads column "
            f"{agg.column!r}, which the source does not have "
            f"(columns: {', '.join(schema)})."
        )
    agg.check_input_dtype(schema[agg.column])


def feature_column(plan: AggregationPlan, agg: Aggregation) -> Column:
    """The value of one aggregation at ``T`` from the running state columns.

    Empty windows give ``0`` for counts and null otherwise; ``last`` and ``recency`` check the
    carried event time against the window start; the value is cast to the feature's dtype.
    """
    out_type = spark_type(agg.output_dtype(plan.input_dtypes.get(agg.column)))
    if agg.function in ("count", "sum", "mean", "stddev"):
        value = _from_running_sums(plan, agg)
    else:
        value = _from_carried_state(plan, agg)
    return value.cast(out_type).alias(agg.name)


def _from_running_sums(plan: AggregationPlan, agg: Aggregation) -> Column:
    """count, sum, mean and sample standard deviation from the window's n, s and q."""
    from pyspark.sql import functions as F

    inp, wk = plan.input_of[agg.name], plan.wkey(agg)

    def run(kind: str) -> Column:
        return F.col(running_sum_column(inp, kind, wk))

    fn = agg.function
    if fn == "count":
        return F.coalesce(run("n"), F.lit(0))
    if fn == "sum":
        return F.when(run("n") > 0, run("s"))
    if fn == "mean":
        return F.when(run("n") > 0, run("s").cast("double") / run("n"))
    n, s, q = run("n"), run("s").cast("double"), run("q")
    var = (q - s * s / n) / (n - F.lit(1))
    return F.when(n >= 2, F.sqrt(F.greatest(var, F.lit(0.0))))


def _from_carried_state(plan: AggregationPlan, agg: Aggregation) -> Column:
    """min/max, last, recency and distinct counts from their carried state at ``T``."""
    from pyspark.sql import functions as F

    inp, wk = plan.input_of[agg.name], plan.wkey(agg)
    t = F.col(T)

    def in_window(event_us: Column) -> Column:
        assert agg.window is not None
        return event_us > t - F.lit(micros(agg.window))

    fn = agg.function
    if fn in ("min", "max"):
        value = F.col(extremum_column(inp, fn, wk))
        if agg.window is not None:  # the extremum carried is stale once the window is empty
            value = F.when(F.col(running_sum_column(inp, "n", wk)) > 0, value)
        return value
    if fn == "last":
        last = F.col(inp.partial("last"))
        if agg.window is None:
            return last["value"]
        return F.when(in_window(last["ts"]), last["value"])
    if fn == "recency":
        lts = F.col(inp.partial("lts"))
        days = (t - lts).cast("double") / F.lit(float(_DAY_US))
        return days if agg.window is None else F.when(in_window(lts), days)
    if fn in DISTINCT_FUNCTIONS:
        return F.coalesce(F.col(distinct_column(agg)), F.lit(0))
    raise MaterializationError(f"unknown aggregation function {fn!r}")  # pragma: no cover
