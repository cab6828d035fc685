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
   last event, last event time, plus one occurrence row per distinct value (for distinct
   counts). Events are shuffled once by (entity, tile), so a hot entity spreads over its tiles
   and tasks, and every step is a hash aggregation (no sort of events); tiles are stored as a
   Delta table (``_tiles/<view>``) and reused by incremental runs.
2. *Windows without rescanning*: tiles are shuffled once by entity and every later step stays
   in those partitions. Each tile becomes a row at ``T`` (its partials) and, for each window
   ``w``, a row at ``T + w`` that *retracts* them. A running sum over these rows (O(1) per row)
   is exactly the windowed sum over ``(t - w, t]``: counts, sums and sums of squares (so means
   and standard deviations), every window at once, one sort per entity over its tiles.
   ``min``/``max`` are not invertible: a pass over the tile rows computes, per tile, the
   extremum of ``(T - w, T]`` (the value at ``T``) and of ``(T, T + w]`` (the value at
   ``T + w``, when the tile leaves); between two rows that carry a value for ``w`` nothing
   enters or leaves ``w``, so every other row takes the last one. ``last`` and ``recency`` are
   running maxima checked against the window start.
3. *Exact distinct counts*: for each (entity, value) the occurrence tiles are sorted; a value is
   active at ``t`` iff it occurred in ``(t - w, t]``, i.e. ``t`` lies in the union of
   ``[T_i, T_i + w)``. Per tile, the values that open an activity interval count ``+1`` at
   ``T`` and those that close one ``-1`` at ``T + w``, riding on the rows above: the running
   sum is the exact distinct count, with no set merged per row and no sketch error.

Long windows and lifetime aggregates therefore cost the same memory as short ones; the only
per-row buffer is the tile frame of ``min``/``max`` (at most ``window / cadence`` tiles).
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
    from pyspark.sql import Column, DataFrame

__all__ = [
    "OCC",
    "TILE",
    "TILE_LAYOUT",
    "T",
    "build_tiles",
    "features_from_tiles",
    "filter_to_column",
    "spark_type",
    "tile_end_us",
]

TILE = "_fs_tile"  # tile end, epoch microseconds (long)
OCC = "_fs_occ"  # -1 on tile rows; input index on occurrence rows (distinct counts)
TILE_LAYOUT = 2  # bumped when the tile table's columns change meaning (old tables are rebuilt)
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
    "min": ("n", "min"),
    "max": ("n", "max"),
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

    @property
    def sums(self) -> list[tuple[_Input, str, str]]:
        """The (input, kind, window key) running sums needed: counts, sums, sums of squares."""
        out: list[tuple[_Input, str, str]] = []
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
    def lasts(self) -> list[tuple[_Input, str]]:
        """(input, kind) of the ``last`` / ``lts`` partials (latest tile wins)."""
        return [
            (inp, kind)
            for inp in self.inputs
            for kind in self.kinds[inp.i]
            if kind in ("last", "lts")
        ]

    @property
    def distinct_aggs(self) -> list[Aggregation]:
        return [
            a
            for a in self.view.aggregations
            if a.function in ("count_distinct", "approx_count_distinct")
        ]


def _dcol(inp: _Input, kind: str, wk: str) -> str:
    """Column of a running sum (input, kind, window key)."""
    return f"_fs_d{inp.i}_{kind}_{wk}"


def _xcol(inp: _Input, kind: str, wk: str) -> str:
    """Column of a min/max (input, kind, window key)."""
    return f"{inp.partial(kind)}_{wk}"


def _ddcol(agg: Aggregation) -> str:
    """Column of a distinct count."""
    return f"_fs_dd_{agg.name}"


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
    Views with distinct counts also get one *occurrence row* per (entity, tile, value) of each
    such input (``OCC`` = the input index, the value in its ``set`` partial column); tile rows
    have ``OCC = -1``.

    Events are shuffled once, by (entity, tile): a hot entity spreads over its tiles, and every
    aggregation below is a hash aggregation on fixed-width buffers (no sort of events). ``last``
    needs the maximum of (event time, created time, value): events are first grouped by
    (entity, tile, event time, created time) keeping the largest value, then per tile the value
    at the largest (event time, created time), packed into one ``decimal(38,0)`` — created
    times are assumed within 5e15 µs of the epoch (years 1811–2128).
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
        created_us.cast("long").alias("_fs_created"),
        *[F.col(c) for c in sorted({i.column for i in spec.inputs if i.column != "*"})],
        *_filter_columns(spec),
    ).repartition(*spec.keys, TILE)

    def present(inp: _Input) -> Column:
        cond = F.col(f"_fs_f{inp.i}") if inp.filter is not None else F.lit(True)
        return cond if inp.column == "*" else cond & F.col(inp.column).isNotNull()

    def value(inp: _Input) -> Column:
        return F.lit(1) if inp.column == "*" else F.col(inp.column)

    # stage 1 (only with `last`): per (entity, tile, ts, created), all partials + largest value
    has_last = any("last" in spec.kinds[i.i] for i in spec.inputs)
    stage: list[Column] = []  # per group of events
    final: list[Column] = []  # merging stage-1 groups into tiles (only with `last`)
    for inp in spec.inputs:
        dtype = spec.input_dtypes.get(inp.column, "int64")
        sum_type = "bigint" if dtype in ("int32", "int64") else "double"
        ok, v = present(inp), value(inp)
        for kind in spec.kinds[inp.i]:
            name = inp.partial(kind)
            if kind == "n":
                stage.append(F.count(F.when(ok, F.lit(1))).alias(name))
                final.append(F.sum(name).alias(name))
            elif kind == "s":
                stage.append(F.sum(F.when(ok, v.cast(sum_type))).alias(name))
                final.append(F.sum(name).alias(name))
            elif kind == "q":
                d = v.cast("double")
                stage.append(F.sum(F.when(ok, d * d)).alias(name))
                final.append(F.sum(name).alias(name))
            elif kind in ("min", "max", "lts"):
                fn = F.min if kind == "min" else F.max
                stage.append(fn(F.when(ok, F.col("_fs_ts") if kind == "lts" else v)).alias(name))
                final.append(fn(name).alias(name))
            elif kind == "last":
                stage.append(F.max(F.when(ok, v)).alias(name))
    if not has_last:
        tiles = base.groupBy(*spec.keys, TILE).agg(*stage)
    else:
        one = base.groupBy(*spec.keys, TILE, "_fs_ts", "_fs_created").agg(*stage)
        packed = F.col("_fs_ts").cast("decimal(38,0)") * F.lit(10**16).cast("decimal(38,0)") + (
            F.col("_fs_created") + F.lit(5 * 10**15)
        ).cast("decimal(38,0)")
        one = one.withColumn("_fs_k", packed.cast("decimal(38,0)"))
        for inp in spec.inputs:
            if "last" in spec.kinds[inp.i]:
                name = inp.partial("last")
                at = F.when(F.col(name).isNotNull(), F.col("_fs_k"))
                final.append(F.max(at).alias(f"{name}_k"))
                final.append(F.max_by(name, at).alias(name))
        tiles = one.groupBy(*spec.keys, TILE).agg(*final)
        for inp in spec.inputs:
            if "last" in spec.kinds[inp.i]:
                name = inp.partial("last")
                pk = F.col(f"{name}_k")
                div = F.lit(10**16).cast("decimal(38,0)")
                tiles = tiles.withColumn(
                    name,
                    F.when(
                        pk.isNotNull(),
                        F.struct(
                            F.floor(pk / div).cast("long").alias("ts"),
                            ((pk % div).cast("long") - F.lit(5 * 10**15)).alias("created"),
                            F.col(name).alias("value"),
                        ),
                    ),
                ).drop(f"{name}_k")
    tiles = tiles.withColumn(OCC, F.lit(-1))
    for inp in spec.inputs:
        if "set" in spec.kinds[inp.i]:
            occ = (
                base.where(present(inp))
                .groupBy(*spec.keys, TILE, value(inp).alias(inp.partial("set")))
                .agg(F.lit(inp.i).alias(OCC))
            )
            tiles = tiles.unionByName(occ, allowMissingColumns=True)
    return tiles


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

    How (three sorts per entity, each over tiles, never over events):

    1. tiles are shuffled once by entity; everything after stays in those partitions;
    2. *tile pass* (one sort by tile time): windowed min/max per tile row with a backward
       frame ``(T - w, T]`` (the value at the tile) and a forward frame ``(T, T + w]`` (the
       value at ``T + w``, when the tile leaves the window); for exact distinct counts, the
       number of values of the tile that open / close an activity interval (from the previous
       / next tile holding the same value, one extra sort per (entity, value));
    3. *emission pass*: each tile becomes one row at ``T`` (contributions) and one row per
       window at ``T + w`` (retractions and the forward min/max): running sums over these rows
       are the windowed sums, and the min/max of window ``w`` at any row is the last value
       emitted for ``w`` (nothing enters or leaves ``w`` between two such rows). Rows at the
       same instant are peers of a RANGE frame, so all see the same state; one per instant is
       kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = list(spec.keys)
    cad = spec.cadence_us
    tiles = tiles.where(F.col(TILE) <= F.lit(end_us))
    lifetime_sets = any(
        a.window is None and a.function in ("count_distinct", "approx_count_distinct")
        for a in spec.view.aggregations
    )
    if cut_us is not None and lifetime_sets:
        cut_us = None  # exact lifetime distinct counts need every occurrence
    replay = tiles if cut_us is None else tiles.where(F.col(TILE) > F.lit(cut_us))
    replay = replay.repartition(*keys)

    sums, extrema, lasts, distinct_aggs = spec.sums, spec.extrema, spec.lasts, spec.distinct_aggs
    inputs = {inp.i: inp for inp in spec.inputs}
    dcol = _dcol

    def xcol(i: int, kind: str, wk: str) -> str:
        return _xcol(inputs[i], kind, wk)

    # -- tile pass --------------------------------------------------------------------------
    by_tile = Window.partitionBy(*keys).orderBy(TILE)
    rows = replay
    tile_cols: list[Column] = []
    for i in sorted({spec.input_of[a.name].i for a in distinct_aggs}):
        inp = inputs[i]
        mine = [a for a in distinct_aggs if spec.input_of[a.name].i == i]
        # occurrence rows of this input: previous / next tile holding the same value
        v = F.col(inp.partial("set"))
        by_value = Window.partitionBy(*keys, v).orderBy(TILE)
        rows = rows.select(
            "*",
            F.lag(TILE).over(by_value).alias("_fs_prev"),
            F.lead(TILE).over(by_value).alias("_fs_next"),
        )
        peers = by_tile.rangeBetween(0, 0)
        mine_occ = (F.col(OCC) == F.lit(i)) & v.isNotNull()
        counts = []
        for a in mine:
            pc, mc = f"_fs_dp_{a.name}", f"_fs_dm_{a.name}"
            if a.window is None:
                opens = mine_occ & F.col("_fs_prev").isNull()
                closes = F.lit(False)
            else:
                w = _us(a.window)
                opens = mine_occ & (
                    F.col("_fs_prev").isNull() | (F.col(TILE) - F.col("_fs_prev") > w)
                )
                closes = mine_occ & (
                    F.col("_fs_next").isNull() | (F.col("_fs_next") - F.col(TILE) > w)
                )
            # summed over the tile's peers: the tile row carries its values' counts
            counts.append(F.sum(opens.cast("long")).over(peers).alias(pc))
            counts.append(F.sum(closes.cast("long")).over(peers).alias(mc))
        rows = rows.select(*[c for c in rows.columns if c not in ("_fs_prev", "_fs_next")], *counts)
    rows = rows.where(F.col(OCC) == F.lit(-1))
    for (i, kind), wks in extrema.items():
        fn = F.min if kind == "min" else F.max
        name = inputs[i].partial(kind)
        for wi, w in enumerate(spec.windows):
            if str(wi) not in wks:
                continue
            # tile ends are multiples of the cadence: (T - w, T] and (T, T + w] in tile units
            back = by_tile.rangeBetween(-(w - cad), 0)
            ahead = by_tile.rangeBetween(cad, w)
            tile_cols.append(fn(name).over(back).alias(f"_fs_b{i}_{kind}_{wi}"))
            tile_cols.append(fn(name).over(ahead).alias(f"_fs_a{i}_{kind}_{wi}"))
    if tile_cols:
        rows = rows.select("*", *tile_cols)

    # -- emission rows: contributions at T, retractions / forward values at T + w ----------
    out_cols: list[tuple[str, str]] = []  # (name, spark type) of every element field
    for inp, kind, wk in sums:
        out_cols.append((dcol(inp, kind, wk), _sum_type(spec, inp, kind)))
    types = dict(rows.dtypes)
    for (i, kind), wks in extrema.items():
        for wk in sorted(wks):
            out_cols.append((xcol(i, kind, wk), types[inputs[i].partial(kind)]))
    for inp, kind in lasts:
        out_cols.append((inp.partial(kind), types[inp.partial(kind)]))
    for a in distinct_aggs:
        out_cols.append((_ddcol(a), "bigint"))

    def element(t: Column, values: dict[str, Column]) -> Column:
        fields = [t.alias(T)]
        for name, typ in out_cols:
            fields.append(values.get(name, F.lit(None)).cast(typ).alias(name))
        return F.struct(*fields)

    here: dict[str, Column] = {}
    for inp, kind, wk in sums:
        here[dcol(inp, kind, wk)] = F.col(inp.partial(kind))
    for (i, kind), wks in extrema.items():
        for wk in wks:
            src = inputs[i].partial(kind) if wk == "L" else f"_fs_b{i}_{kind}_{wk}"
            here[xcol(i, kind, wk)] = F.col(src)
    for inp, kind in lasts:
        here[inp.partial(kind)] = F.col(inp.partial(kind))
    for a in distinct_aggs:
        here[_ddcol(a)] = F.col(f"_fs_dp_{a.name}")
    elements = [element(F.col(TILE), here)]
    for wi, w in enumerate(spec.windows):
        leave: dict[str, Column] = {}
        for inp, kind, wk in sums:
            if wk == str(wi):
                leave[dcol(inp, kind, wk)] = -F.col(inp.partial(kind))
        for (i, kind), wks in extrema.items():
            if str(wi) in wks:
                leave[xcol(i, kind, str(wi))] = F.col(f"_fs_a{i}_{kind}_{wi}")
        for a in distinct_aggs:
            if a.window is not None and _us(a.window) == w:
                leave[_ddcol(a)] = -F.col(f"_fs_dm_{a.name}")
        # a row at T + w even with nothing to retract: a value of window w changes there
        elements.append(element(F.col(TILE) + F.lit(w), leave))
    stream = rows.select(*keys, F.explode(F.array(*elements)).alias("_e")).select(*keys, "_e.*")
    stream = stream.where(F.col(T) <= F.lit(end_us))

    # -- baseline: tiles before the cut folded into one row per entity (lifetime only) -----
    if cut_us is not None and spec.has_lifetime:
        base_aggs = []
        for inp, kind, wk in sums:
            if wk == "L":
                base_aggs.append(F.sum(inp.partial(kind)).alias(dcol(inp, kind, wk)))
        for (i, kind), wks in extrema.items():
            if "L" in wks:
                fn = F.min if kind == "min" else F.max
                base_aggs.append(fn(inputs[i].partial(kind)).alias(xcol(i, kind, "L")))
        for inp, kind in lasts:
            base_aggs.append(F.max(inp.partial(kind)).alias(inp.partial(kind)))
        if base_aggs:
            base = (
                tiles.where((F.col(TILE) <= F.lit(cut_us)) & (F.col(OCC) == F.lit(-1)))
                .groupBy(*keys)
                .agg(*base_aggs)
                .withColumn(T, F.lit(cut_us).cast("long"))
            )
            stream = stream.unionByName(base, allowMissingColumns=True)

    # -- running state: RANGE frames so that rows at the same instant all see every peer ----
    running = Window.partitionBy(*keys).orderBy(T).rangeBetween(Window.unboundedPreceding, 0)
    state: dict[str, Column] = {}
    for inp, kind, wk in sums:
        state[dcol(inp, kind, wk)] = F.sum(dcol(inp, kind, wk)).over(running)
    for a in distinct_aggs:
        state[_ddcol(a)] = F.sum(_ddcol(a)).over(running)
    for (i, kind), wks in extrema.items():
        for wk in wks:
            name = xcol(i, kind, wk)
            if wk == "L":
                fn = F.min if kind == "min" else F.max
                state[name] = fn(name).over(running)
            else:
                # the last value emitted for this window (null when the window is empty:
                # _finalize checks the window's count)
                state[name] = F.last(name, ignorenulls=True).over(running)
    for inp, kind in lasts:
        # tiles are in time order and each holds its own maximum, so the latest non-null
        # tile value is the running maximum: last(ignorenulls) avoids struct comparisons
        state[inp.partial(kind)] = F.last(inp.partial(kind), ignorenulls=True).over(running)
    order = Window.partitionBy(*keys).orderBy(T)
    windowed = stream.select(
        *keys,
        T,
        F.lead(T).over(order).alias("_fs_next_t"),
        *[c.alias(n) for n, c in state.items()],
    )
    windowed = windowed.where(
        (F.col("_fs_next_t").isNull() | (F.col("_fs_next_t") != F.col(T)))
        & (F.col(T) >= F.lit(start_us))
        & (F.col(T) <= F.lit(end_us))
    )
    features = [_finalize(spec, a) for a in spec.view.aggregations]
    return windowed.select(*keys, T, *features)


def _sum_type(spec: _Spec, inp: _Input, kind: str) -> str:
    if kind == "n":
        return "bigint"
    if kind == "q":
        return "double"
    dtype = spec.input_dtypes.get(inp.column, "int64")
    return "bigint" if dtype in ("int32", "int64") else "double"


def _finalize(spec: _Spec, agg: Aggregation) -> Column:
    """Turn running partials into the feature value of one aggregation at t."""
    from pyspark.sql import functions as F

    inp = spec.input_of[agg.name]
    wk = spec.wkey(agg)
    t = F.col(T)
    out_type = spark_type(agg.output_dtype(spec.input_dtypes.get(agg.column)))

    def run(kind: str) -> Column:
        return F.col(_dcol(inp, kind, wk))

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
        value = F.col(_xcol(inp, fn, wk))
        if agg.window is not None:
            value = F.when(run("n") > 0, value)
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
        value = F.coalesce(F.col(_ddcol(agg)), F.lit(0))
    else:  # pragma: no cover - definitions validate the function
        raise MaterializationError(f"unknown aggregation function {fn!r}")
    return value.cast(out_type).alias(agg.name)


def features_at_instants(tiles: DataFrame, spec: _Spec, start_us: int, end_us: int) -> DataFrame:
    """The rows of :func:`features_from_tiles` with ``start <= t <= end``, by direct evaluation.

    For a short range (an incremental run: a day or a few), sweeping every tile of the last
    ``max_window`` again is wasteful. Here each tile that can matter is paired with the few
    emission instants it affects, and each (entity, instant) is one grouped aggregation — a hash
    aggregation, no sort — with ``age = t - T`` deciding which window a tile belongs to. Rows
    are emitted at exactly the instants the sweep emits (a tile at ``t`` or a tile leaving a
    window at ``t``), with the same values (sums in a different order: equal to rounding).
    """
    from pyspark.sql import functions as F

    keys = list(spec.keys)
    cad = spec.cadence_us
    windows = spec.windows
    reach = spec.max_window_us  # a tile at T has an emission instant at T + w for each window
    rows = tiles.where(F.col(TILE) <= F.lit(end_us))
    first = F.greatest(F.col(TILE), F.lit(start_us))
    if spec.has_lifetime:
        last = F.lit(end_us)
    else:
        rows = rows.where(F.col(TILE) >= F.lit(start_us - reach))
        last = F.least(F.lit(end_us), F.col(TILE) + F.lit(reach))
    rows = rows.where(first <= last).select(
        "*", F.explode(F.sequence(first, last, F.lit(cad))).alias(T)
    )
    # one shuffle by (entity, instant) serves both aggregations of the occurrences below
    occurrences = rows.where(F.col(OCC) >= 0).repartition(*keys, T)
    rows = rows.where(F.col(OCC) == F.lit(-1))
    age = F.col(T) - F.col(TILE)

    def inside(wk: str) -> Column:
        return F.lit(True) if wk == "L" else age < F.lit(windows[int(wk)])

    aggs: list[Column] = []
    for inp, kind, wk in spec.sums:
        aggs.append(F.sum(F.when(inside(wk), F.col(inp.partial(kind)))).alias(_dcol(inp, kind, wk)))
    inputs = {inp.i: inp for inp in spec.inputs}
    for (i, kind), wks in spec.extrema.items():
        fn = F.min if kind == "min" else F.max
        for wk in sorted(wks):
            p = F.col(inputs[i].partial(kind))
            aggs.append(fn(F.when(inside(wk), p)).alias(_xcol(inputs[i], kind, wk)))
    for inp, kind in spec.lasts:
        name = inp.partial(kind)
        if kind == "lts":
            aggs.append(F.max(name).alias(name))
        else:  # the latest tile holding a value: tile ends are unique per entity
            order = F.when(F.col(name).isNotNull(), F.col(TILE))
            aggs.append(F.max_by(F.col(name)["ts"], order).alias(f"{name}_ts"))
            aggs.append(F.max_by(F.col(name)["value"], order).alias(f"{name}_value"))
    emit = F.lit(False)
    for w in (0, *windows):
        emit = emit | (age == F.lit(w))
    aggs.append(F.max(emit).alias("_fs_emit"))
    out = rows.groupBy(*keys, T).agg(*aggs).where(F.col("_fs_emit"))

    distinct_aggs = spec.distinct_aggs
    if distinct_aggs:
        counts = None
        for i in sorted({spec.input_of[a.name].i for a in distinct_aggs}):
            mine = [a for a in distinct_aggs if spec.input_of[a.name].i == i]
            occ = (
                occurrences.where(F.col(OCC) == F.lit(i))
                .groupBy(*keys, T, inputs[i].partial("set"))
                .agg(F.max(TILE).alias("_fs_seen"))
            )
            seen_age = F.col(T) - F.col("_fs_seen")
            per = occ.groupBy(*keys, T).agg(
                *[
                    F.sum(
                        F.when(
                            F.lit(True) if a.window is None else seen_age < F.lit(_us(a.window)),
                            F.lit(1),
                        )
                    ).alias(_ddcol(a))
                    for a in mine
                ]
            )
            counts = per if counts is None else counts.join(per, [*keys, T], "full")
        assert counts is not None
        out = out.join(counts, [*keys, T], "left")

    for inp in spec.inputs:
        if "last" in spec.kinds[inp.i]:
            name = inp.partial("last")
            out = out.withColumn(
                name,
                F.struct(F.col(f"{name}_ts").alias("ts"), F.col(f"{name}_value").alias("value")),
            )
    features = [_finalize(spec, a) for a in spec.view.aggregations]
    return out.select(*keys, T, *features)
