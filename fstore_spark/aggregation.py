"""Windowed aggregation engine: raw events -> tiles -> per-entity features at change points.

**Semantics.** A feature view with aggregations emits, for each entity, rows at instants ``t``
aligned to the view's ``cadence`` (multiples of the cadence since the Unix epoch, UTC). The value
of a windowed aggregate at ``t`` covers events with ``t - window < event_ts <= t`` (an event
exactly at ``t`` counts, one exactly at ``t - window`` does not); a lifetime aggregate covers all
events with ``event_ts <= t``. Nulls in the value column are ignored. An empty window gives
``0`` for the counts and ``null`` for everything else (SQL semantics). ``stddev`` is the sample
standard deviation (``null`` below two values). ``last`` is the value of the latest event with a
non-null value (ties on the event time broken by the created timestamp, then the larger value).
``recency`` is the number of days (fractional) from the latest event to ``t``; readers add the
time elapsed since ``t`` (the as-of join and the online store do), so it is exact at any instant.
``count_distinct`` and ``approx_count_distinct`` are both computed **exactly** (see below).

Rows are emitted only where a value can change: at the end of every tile that holds events and at
``tile_end + window`` for every window (when events leave it). Between two rows nothing changes,
so an as-of lookup ("latest row at or before t") returns exactly the values at ``t``: the table
is as precise as a dense daily table and much smaller when entities are sparse.

**Algorithm (one pass over the events, every window from the tiles).**

1. *Tiles*: events are rolled up once per (entity, tile), a tile being ``(T - cadence, T]``,
   into mergeable partials: count, sum, sum of squares, min, max, ``(ts, created, value)`` of the
   last event, last event time, and the set of distinct values. This is a hash aggregation with
   map-side combining, so a hot entity never lands in one task; tiles are stored as a Delta table
   (``_tiles/<view>``) and reused by incremental runs.
2. *Windows without rescanning*: each tile contributes ``+partial`` at ``T`` and, for each window
   ``w``, a *retraction* ``-partial`` at ``T + w``. A running sum (an unbounded-preceding window,
   O(1) per row) over contributions and retractions is exactly the windowed sum over
   ``(t - w, t]``; counts, sums and sums of squares (so means and standard deviations) all work
   this way, for every window at once, with a single sort per entity over its *tiles* (not its
   events). ``min``/``max`` are not invertible and use a sliding range frame over the tiles;
   ``last`` and ``recency`` are running maxima checked against the window start.
3. *Exact distinct counts*: for each (entity, value) the occurrence tiles are sorted; a value is
   active at ``t`` iff it occurred in ``(t - w, t]``, i.e. ``t`` lies in the union of
   ``[T_i, T_i + w)``. Each merged interval contributes ``+1`` at its start and ``-1`` at its
   end, and the running sum of those is the exact distinct count, in O(1) memory per row — no
   sets are merged per row and no sketch error.

Long windows and lifetime aggregates therefore cost the same memory as short ones; the only
per-row buffer is the sliding frame of ``min``/``max`` (at most ``window / cadence`` tiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark._filters import And, Cmp, Col, FilterExpr, In, IsNull, Lit, Not, Or
from fstore_spark.definitions import Aggregation, FeatureView, normalize_dtype
from fstore_spark.errors import MaterializationError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "TILE",
    "T",
    "build_tiles",
    "features_from_tiles",
    "filter_to_column",
    "spark_type",
    "tile_end_us",
]

TILE = "_fs_tile"  # tile end, epoch microseconds (long)
T = "_fs_t"  # emission time, epoch microseconds (long)
_US = 1_000_000
_DAY_US = 86_400 * _US

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


def _us(td: timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * _US + td.microseconds


def tile_end_us(ts_us: Column, cadence: timedelta) -> Column:
    """Tile end (epoch micros) of an event time: the smallest multiple of cadence >= ts."""
    from pyspark.sql import functions as F

    cad = _us(cadence)
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


# ------------------------------------------------------------------------------------------
# Planning: which partials each aggregation needs
# ------------------------------------------------------------------------------------------

_INVERTIBLE = ("n", "s", "q")
_KINDS_BY_FUNCTION: dict[str, tuple[str, ...]] = {
    "sum": ("n", "s"),
    "count": ("n",),
    "mean": ("n", "s"),
    "stddev": ("n", "s", "q"),
    "min": ("min",),
    "max": ("max",),
    "last": ("last",),
    "recency": ("lts",),
    "count_distinct": ("set",),
    "approx_count_distinct": ("set",),
}


@dataclass(frozen=True)
class _Input:
    """One (column, filter) pair read by some aggregations; index i names its partials."""

    i: int
    column: str
    filter: str | None
    aggregation: Aggregation  # any aggregation reading this input (for the filter AST)

    def partial(self, kind: str) -> str:
        return f"_fs_p{self.i}_{kind}"


@dataclass(frozen=True)
class _Spec:
    view: FeatureView
    keys: tuple[str, ...]
    inputs: tuple[_Input, ...]
    kinds: dict[int, tuple[str, ...]]  # input index -> partial kinds needed
    input_of: dict[str, _Input]  # aggregation name -> input
    windows: tuple[int, ...]  # distinct finite windows (micros), ascending
    cadence_us: int
    input_dtypes: dict[str, str]

    @property
    def max_window_us(self) -> int:
        return max(self.windows) if self.windows else 0

    @property
    def has_lifetime(self) -> bool:
        return any(a.window is None for a in self.view.aggregations)

    def wkey(self, agg: Aggregation) -> str:
        return "L" if agg.window is None else str(self.windows.index(_us(agg.window)))


def plan_view(view: FeatureView, keys: Sequence[str], source_schema: dict[str, str]) -> _Spec:
    """Resolve a view's aggregations into the partial aggregates the tiles must hold."""
    if not view.is_aggregated:
        raise MaterializationError(
            f"feature view {view.name!r} projects columns; it has no aggregations to compute."
        )
    inputs: dict[tuple[str, str | None], _Input] = {}
    kinds: dict[int, list[str]] = {}
    input_of: dict[str, _Input] = {}
    for agg in view.aggregations:
        key = (agg.column, agg.filter)
        if key not in inputs:
            inputs[key] = _Input(len(inputs), agg.column, agg.filter, agg)
        inp = inputs[key]
        input_of[agg.name] = inp
        for k in _KINDS_BY_FUNCTION[agg.function]:
            if k not in kinds.setdefault(inp.i, []):
                kinds[inp.i].append(k)
        if agg.column != "*":
            if agg.column not in source_schema:
                raise MaterializationError(
                    f"feature view {view.name!r}: aggregation {agg.name!r} reads column "
                    f"{agg.column!r}, which the source does not have "
                    f"(columns: {', '.join(source_schema)})."
                )
            agg.check_input_dtype(source_schema[agg.column])
    windows = sorted({_us(a.window) for a in view.aggregations if a.window is not None})
    return _Spec(
        view=view,
        keys=tuple(keys),
        inputs=tuple(inputs.values()),
        kinds={i: tuple(v) for i, v in kinds.items()},
        input_of=input_of,
        windows=tuple(windows),
        cadence_us=_us(view.cadence),
        input_dtypes=dict(source_schema),
    )


# ------------------------------------------------------------------------------------------
# Step 1: events -> tiles
# ------------------------------------------------------------------------------------------


def build_tiles(events: DataFrame, spec: _Spec, ts_col: str, created_col: str | None) -> DataFrame:
    """Roll events up into one row of partial aggregates per (entity, tile).

    Rows with a null join key or a null event time are dropped (they cannot be attributed).
    """
    from pyspark.sql import functions as F

    ts_us = F.unix_micros(F.col(ts_col).cast("timestamp"))
    created_us = F.unix_micros(F.col(created_col).cast("timestamp")) if created_col else F.lit(0)
    base = events.where(F.col(ts_col).isNotNull())
    for k in spec.keys:
        base = base.where(F.col(k).isNotNull())
    base = base.select(
        *[F.col(k) for k in spec.keys],
        tile_end_us(ts_us, spec.view.cadence).alias(TILE),
        ts_us.alias("_fs_ts"),
        created_us.alias("_fs_created"),
        *[F.col(c) for c in sorted({i.column for i in spec.inputs if i.column != "*"})],
        *_filter_columns(spec),
    )
    aggs: list[Column] = []
    for inp in spec.inputs:
        cond = F.col(f"_fs_f{inp.i}") if inp.filter is not None else F.lit(True)
        if inp.column == "*":
            present = cond
            value = F.lit(1)
        else:
            present = cond & F.col(inp.column).isNotNull()
            value = F.col(inp.column)
        dtype = spec.input_dtypes.get(inp.column, "int64")
        sum_type = "bigint" if dtype in ("int32", "int64") else "double"
        for kind in spec.kinds[inp.i]:
            name = inp.partial(kind)
            if kind == "n":
                aggs.append(F.count(F.when(present, F.lit(1))).alias(name))
            elif kind == "s":
                aggs.append(F.sum(F.when(present, value.cast(sum_type))).alias(name))
            elif kind == "q":
                v = value.cast("double")
                aggs.append(F.sum(F.when(present, v * v)).alias(name))
            elif kind == "min":
                aggs.append(F.min(F.when(present, value)).alias(name))
            elif kind == "max":
                aggs.append(F.max(F.when(present, value)).alias(name))
            elif kind == "last":
                s = F.struct(
                    F.col("_fs_ts").alias("ts"),
                    F.col("_fs_created").alias("created"),
                    value.alias("value"),
                )
                aggs.append(F.max(F.when(present, s)).alias(name))
            elif kind == "lts":
                aggs.append(F.max(F.when(present, F.col("_fs_ts"))).alias(name))
            elif kind == "set":
                aggs.append(F.collect_set(F.when(present, value)).alias(name))
    return base.groupBy(*spec.keys, TILE).agg(*aggs)


def _filter_columns(spec: _Spec) -> list[Column]:
    out = []
    for inp in spec.inputs:
        expr = inp.aggregation.filter_expr
        if expr is not None:
            out.append(filter_to_column(expr).alias(f"_fs_f{inp.i}"))
    return out


# ------------------------------------------------------------------------------------------
# Step 2 and 3: tiles -> features at change points
# ------------------------------------------------------------------------------------------


def features_from_tiles(
    tiles: DataFrame,
    spec: _Spec,
    start_us: int,
    end_us: int,
    *,
    cut_us: int | None = None,
) -> DataFrame:
    """Compute the feature rows with ``start <= t <= end`` from a tile DataFrame.

    Args:
        tiles: Tile rows (any superset of what is needed; filtered here).
        spec: The view's plan.
        start_us: First emission time to output (epoch micros, inclusive).
        end_us: Last emission time to output (inclusive).
        cut_us: When given, tiles ``<= cut_us`` are folded into one baseline row per entity
            (lifetime aggregates only) instead of being replayed; must be
            ``<= start_us - max_window``. ``None`` replays every tile (a full backfill).

    Returns:
        Keys, ``_fs_t`` (epoch micros) and the feature columns, cast to their dtypes.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = list(spec.keys)
    tiles = tiles.where(F.col(TILE) <= F.lit(end_us))
    lifetime_sets = any(
        a.window is None and a.function in ("count_distinct", "approx_count_distinct")
        for a in spec.view.aggregations
    )
    if cut_us is not None and lifetime_sets:
        cut_us = None  # exact lifetime distinct counts need every occurrence
    replay = tiles if cut_us is None else tiles.where(F.col(TILE) > F.lit(cut_us))

    # which (input, kind, window-key) running sums are needed
    sums: list[tuple[_Input, str, str]] = []
    for agg in spec.view.aggregations:
        inp = spec.input_of[agg.name]
        for kind in _KINDS_BY_FUNCTION[agg.function]:
            if kind in _INVERTIBLE:
                item = (inp, kind, spec.wkey(agg))
                if item not in sums:
                    sums.append(item)

    def dcol(inp: _Input, kind: str, wk: str) -> str:
        return f"_fs_d{inp.i}_{kind}_{wk}"

    nonsum = [
        (inp, kind)
        for inp in spec.inputs
        for kind in spec.kinds[inp.i]
        if kind in ("min", "max", "last", "lts")
    ]

    # -- contributions at T (every partial) and retractions at T + w (sums only) -----------
    contrib = [F.col(TILE).alias(T)]
    for inp, kind, wk in sums:
        contrib.append(F.col(inp.partial(kind)).alias(dcol(inp, kind, wk)))
    for inp, kind in nonsum:
        contrib.append(F.col(inp.partial(kind)).alias(inp.partial(kind)))
    rows = replay.select(*keys, *contrib)
    if spec.windows:
        # one row per tile and window at T + w: it retracts the running sums and, even when a
        # window has no sums (only min/max/last/recency), marks the instant its value changes.
        # Retraction rows are narrow (only the running-sum columns), built by one explode
        elements = []
        for wi, w in enumerate(spec.windows):
            retract = [(F.col(TILE) + F.lit(w)).alias(T)]
            for inp, kind, wk in sums:
                val = (
                    -F.col(inp.partial(kind))
                    if wk == str(wi)
                    else F.lit(None).cast(_sum_type(spec, inp, kind))
                )
                retract.append(val.alias(dcol(inp, kind, wk)))
            elements.append(F.struct(*retract))
        retractions = replay.select(*keys, F.explode(F.array(*elements)).alias("_e")).select(
            *keys, "_e.*"
        )
        retractions = retractions.where(F.col(T) <= F.lit(end_us))
        rows = rows.unionByName(retractions, allowMissingColumns=True)

    value_cols = [dcol(i, k, w) for i, k, w in sums] + [i.partial(k) for i, k in nonsum]

    # -- exact distinct counts: +1 / -1 at the ends of merged activity intervals ------------
    distinct_aggs = [
        a
        for a in spec.view.aggregations
        if a.function in ("count_distinct", "approx_count_distinct")
    ]
    if distinct_aggs:
        dd = _distinct_deltas(replay, spec, distinct_aggs, end_us)
        rows = rows.unionByName(dd, allowMissingColumns=True)
        value_cols += [f"_fs_dd_{a.name}" for a in distinct_aggs]

    # -- baseline: tiles before the cut folded into one row per entity (lifetime only) -----
    if cut_us is not None and spec.has_lifetime:
        base_aggs = []
        for inp, kind, wk in sums:
            if wk == "L":
                base_aggs.append(F.sum(inp.partial(kind)).alias(dcol(inp, kind, wk)))
        for inp, kind in nonsum:
            fn = {"min": F.min, "max": F.max, "last": F.max, "lts": F.max}[kind]
            base_aggs.append(fn(inp.partial(kind)).alias(inp.partial(kind)))
        if base_aggs:
            base = (
                tiles.where(F.col(TILE) <= F.lit(cut_us))
                .groupBy(*keys)
                .agg(*base_aggs)
                .withColumn(T, F.lit(cut_us).cast("long"))
            )
            rows = rows.unionByName(base, allowMissingColumns=True)

    # -- one row per (entity, t); one sort per entity over its tiles, not its events --------
    merged_aggs = []
    for c in value_cols:
        if c.startswith("_fs_d"):
            merged_aggs.append(F.sum(c).alias(c))
    for inp, kind in nonsum:
        fn = {"min": F.min, "max": F.max, "last": F.max, "lts": F.max}[kind]
        merged_aggs.append(fn(inp.partial(kind)).alias(inp.partial(kind)))
    merged = rows.repartition(*keys).groupBy(*keys, T).agg(*merged_aggs)

    running = Window.partitionBy(*keys).orderBy(T).rowsBetween(Window.unboundedPreceding, 0)
    out = [*keys, T]
    state: dict[str, Column] = {}
    for inp, kind, wk in sums:
        state[dcol(inp, kind, wk)] = F.sum(dcol(inp, kind, wk)).over(running)
    for a in distinct_aggs:
        state[f"_fs_dd_{a.name}"] = F.sum(f"_fs_dd_{a.name}").over(running)
    for inp, kind in nonsum:
        name = inp.partial(kind)
        if kind in ("last", "lts"):
            # tiles are in time order and each holds its own maximum, so the latest non-null
            # tile value is the running maximum: last(ignorenulls) avoids struct comparisons
            state[name] = F.last(name, ignorenulls=True).over(running)
        else:
            fn = F.min if kind == "min" else F.max
            used = {
                spec.wkey(a)
                for a in spec.view.aggregations
                if a.function == kind and spec.input_of[a.name].i == inp.i
            }
            if "L" in used:
                state[f"{name}_L"] = fn(name).over(running)
            for wi, w in enumerate(spec.windows):
                if str(wi) not in used:
                    continue  # a sliding frame costs O(window) per row: only the ones asked for
                # tiles T with t - w < T <= t; tile ends are multiples of the cadence
                frame = Window.partitionBy(*keys).orderBy(T).rangeBetween(-(w - spec.cadence_us), 0)
                state[f"{name}_{wi}"] = fn(name).over(frame)
    windowed = merged.select(*out, *[c.alias(n) for n, c in state.items()])
    windowed = windowed.where((F.col(T) >= F.lit(start_us)) & (F.col(T) <= F.lit(end_us)))

    features = [_finalize(spec, a, dcol) for a in spec.view.aggregations]
    return windowed.select(*keys, T, *features)


def _sum_type(spec: _Spec, inp: _Input, kind: str) -> str:
    if kind == "n":
        return "bigint"
    if kind == "q":
        return "double"
    dtype = spec.input_dtypes.get(inp.column, "int64")
    return "bigint" if dtype in ("int32", "int64") else "double"


def _distinct_deltas(
    tiles: DataFrame, spec: _Spec, aggs: list[Aggregation], end_us: int
) -> DataFrame:
    """Rows (keys, t, _fs_dd_<agg>) of +1/-1 at the ends of each value's activity intervals."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = list(spec.keys)
    frames = []
    for inp in {spec.input_of[a.name].i: spec.input_of[a.name] for a in aggs}.values():
        mine = [a for a in aggs if spec.input_of[a.name].i == inp.i]
        occ = tiles.select(*keys, TILE, F.explode(inp.partial("set")).alias("_fs_v"))
        order = Window.partitionBy(*keys, "_fs_v").orderBy(TILE)
        occ = occ.select(
            *keys,
            TILE,
            F.lag(TILE).over(order).alias("_prev"),
            F.lead(TILE).over(order).alias("_next"),
        )
        elements = []
        names = [f"_fs_dd_{a.name}" for a in mine]

        def element(t: Column, name: str, value: Column, names: list[str] = names) -> Column:
            # every struct lists the same fields in the same order (array needs one type)
            fields = [(value if n == name else F.lit(None)).cast("long").alias(n) for n in names]
            return F.struct(t.alias(T), *fields)

        for a in mine:
            col = f"_fs_dd_{a.name}"
            if a.window is None:
                elements.append(element(F.col(TILE), col, F.when(F.col("_prev").isNull(), 1)))
                continue
            w = _us(a.window)
            plus = F.when(F.col("_prev").isNull() | (F.col(TILE) - F.col("_prev") > w), 1)
            minus = F.when(F.col("_next").isNull() | (F.col("_next") - F.col(TILE) > w), -1)
            elements.append(element(F.col(TILE), col, plus))
            elements.append(element(F.col(TILE) + F.lit(w), col, minus))
        exploded = occ.select(*keys, F.explode(F.array(*elements)).alias("_e")).select(
            *keys, "_e.*"
        )
        value_cols = [f"_fs_dd_{a.name}" for a in mine]
        any_value = F.lit(False)
        for c in value_cols:
            any_value = any_value | F.col(c).isNotNull()
        exploded = exploded.where((F.col(T) <= F.lit(end_us)) & any_value)
        frames.append(exploded)
    result = frames[0]
    for f in frames[1:]:
        result = result.unionByName(f, allowMissingColumns=True)
    return result


def _finalize(spec: _Spec, agg: Aggregation, dcol: Any) -> Column:
    """Turn running partials into the feature value of one aggregation at t."""
    from pyspark.sql import functions as F

    inp = spec.input_of[agg.name]
    wk = spec.wkey(agg)
    t = F.col(T)
    out_type = spark_type(agg.output_dtype(spec.input_dtypes.get(agg.column)))

    def run(kind: str) -> Column:
        return F.col(dcol(inp, kind, wk))

    fn = agg.function
    if fn == "count":
        value = F.coalesce(run("n"), F.lit(0))
    elif fn == "sum":
        value = F.when(run("n") > 0, run("s"))
    elif fn == "mean":
        value = F.when(run("n") > 0, run("s").cast("double") / run("n"))
    elif fn == "stddev":
        n, s, q = run("n"), run("s").cast("double"), run("q")
        var = (q - s * s / n) / (n - F.lit(1))
        value = F.when(n >= 2, F.sqrt(F.greatest(var, F.lit(0.0))))
    elif fn in ("min", "max"):
        value = F.col(f"{inp.partial(fn)}_{wk}")
    elif fn == "last":
        last = F.col(inp.partial("last"))
        if agg.window is None:
            value = last["value"]
        else:
            value = F.when(last["ts"] > t - F.lit(_us(agg.window)), last["value"])
    elif fn == "recency":
        lts = F.col(inp.partial("lts"))
        days = (t - lts).cast("double") / F.lit(float(_DAY_US))
        value = days if agg.window is None else F.when(lts > t - F.lit(_us(agg.window)), days)
    elif fn in ("count_distinct", "approx_count_distinct"):
        value = F.coalesce(F.col(f"_fs_dd_{agg.name}"), F.lit(0))
    else:  # pragma: no cover - definitions validate the function
        raise MaterializationError(f"unknown aggregation function {fn!r}")
    return value.cast(out_type).alias(agg.name)
