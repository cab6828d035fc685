"""Step 1 of the aggregation engine: raw events rolled up into tiles of partial aggregates.

A tile is ``(T - cadence, T]`` for a tile end ``T`` aligned to the view's cadence; each
(entity, tile) becomes one row of mergeable partials (see :mod:`fstore_spark.offline.plan`):
count, sum, sum of squares, min, max, ``(ts, created, value)`` of the last event and the last
event time. Views with distinct counts also get one *occurrence row* per (entity, tile, value).

Events are shuffled once, by (entity, tile), so a hot entity spreads over its tiles and tasks,
and every step is a hash aggregation on fixed-width buffers. Views with floating-point sums sort
each task's events first, so that the sums are bit-identical between runs (see
:func:`_attributable_events`). The tiles are
stored as a Delta table and reused by incremental runs (:mod:`fstore_spark.offline.writes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fstore_spark.offline.plan import (
    OCC,
    TILE,
    AggregationPlan,
    Input,
    filter_to_column,
    tile_end_us,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["build_tiles"]

# ``last`` packs (event time, created time) into one decimal so that a single max finds the
# latest event; created times are offset by this much to stay positive
_CREATED_OFFSET = 5 * 10**15
_PACK = 10**16


def build_tiles(
    events: DataFrame, plan: AggregationPlan, ts_col: str, created_col: str | None
) -> DataFrame:
    """Roll events up into one row of partial aggregates per (entity, tile).

    Rows with a null join key or a null event time are dropped (they cannot be attributed).
    Views with distinct counts also get one *occurrence row* per (entity, tile, value) of each
    such input (``OCC`` = the input index, the value in its ``set`` partial column); tile rows
    have ``OCC = -1``.

    ``last`` needs the maximum of (event time, created time, value): events are first grouped
    by (entity, tile, event time, created time) keeping the largest value, then per tile the
    value at the largest (event time, created time), packed into one ``decimal(38,0)`` —
    created times are assumed within 5e15 µs of the epoch (years 1811–2128).

    Returns:
        A lazy DataFrame: keys, ``TILE``, the partial columns and ``OCC``.
    """
    from pyspark.sql import functions as F

    base = _attributable_events(events, plan, ts_col, created_col)
    stage, final = _partial_aggregates(plan)
    if any("last" in plan.kinds[i.i] for i in plan.inputs):
        tiles = _tiles_with_last(base, plan, stage, final)
    else:
        tiles = base.groupBy(*plan.keys, TILE).agg(*stage)
    tiles = tiles.withColumn(OCC, F.lit(-1))
    return _with_occurrences(tiles, base, plan)


def _attributable_events(
    events: DataFrame, plan: AggregationPlan, ts_col: str, created_col: str | None
) -> DataFrame:
    """Events with keys and a time, reduced to the columns the tiles read, shuffled once.

    The shuffle is by (entity, tile): every aggregation below groups by a superset of it.
    """
    from pyspark.sql import functions as F

    ts_us = F.unix_micros(F.col(ts_col).cast("timestamp"))
    created_us = F.unix_micros(F.col(created_col).cast("timestamp")) if created_col else F.lit(0)
    base = events.where(F.col(ts_col).isNotNull())
    for k in plan.keys:
        base = base.where(F.col(k).isNotNull())
    shuffled = base.select(
        *[F.col(k) for k in plan.keys],
        tile_end_us(ts_us, plan.view.cadence).alias(TILE),
        ts_us.alias("_fs_ts"),
        created_us.cast("long").alias("_fs_created"),
        *[F.col(c) for c in sorted({i.column for i in plan.inputs if i.column != "*"})],
        *_filter_columns(plan),
    ).repartition(*plan.keys, TILE)
    if not plan.has_float_sums:
        return shuffled
    # Floating-point sums depend on the order of their adds, and the order in which a shuffle
    # delivers events varies between runs on a cluster. Sorted by every column, each tile's
    # events are added in one fixed order (the aggregation runs in this stage, in this order),
    # so the same events give the same bits on any cluster and any source file layout.
    return shuffled.sortWithinPartitions(*shuffled.columns)


def _filter_columns(plan: AggregationPlan) -> list[Column]:
    """Each filtered input's filter, evaluated once per event into a boolean column."""
    out = []
    for inp in plan.inputs:
        expr = inp.aggregation.filter_expr
        if expr is not None:
            out.append(filter_to_column(expr).alias(inp.present_flag))
    return out


def _present(inp: Input) -> Column:
    """Whether an event counts for an input: its filter holds and its value is not null."""
    from pyspark.sql import functions as F

    cond = F.col(inp.present_flag) if inp.filter is not None else F.lit(True)
    return cond if inp.column == "*" else cond & F.col(inp.column).isNotNull()


def _value(inp: Input) -> Column:
    """The value an input aggregates (``1`` for ``*``)."""
    from pyspark.sql import functions as F

    return F.lit(1) if inp.column == "*" else F.col(inp.column)


def _partial_aggregates(plan: AggregationPlan) -> tuple[list[Column], list[Column]]:
    """Aggregates over events (``stage``) and, for views with ``last``, their merge (``final``).

    Without ``last`` the stage aggregates produce the tiles directly. With it, the stage runs
    per (entity, tile, event time, created time) and ``final`` merges those groups into tiles;
    the ``last`` merge itself is added by :func:`_tiles_with_last`.
    """
    from pyspark.sql import functions as F

    stage: list[Column] = []
    final: list[Column] = []
    for inp in plan.inputs:
        dtype = plan.input_dtypes.get(inp.column, "int64")
        sum_type = "bigint" if dtype in ("int32", "int64") else "double"
        ok, v = _present(inp), _value(inp)
        for kind in plan.kinds[inp.i]:
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
    return stage, final


def _tiles_with_last(
    base: DataFrame, plan: AggregationPlan, stage: list[Column], final: list[Column]
) -> DataFrame:
    """Tiles of a view with ``last``: two hash aggregations, the latest event found by a max.

    The first groups events by (entity, tile, event time, created time); the second merges
    those groups per tile, taking each ``last`` value at the largest packed (time, created)
    key, which is then unpacked into the ``(ts, created, value)`` struct.
    """
    from pyspark.sql import functions as F

    wide = "decimal(38,0)"
    one = base.groupBy(*plan.keys, TILE, "_fs_ts", "_fs_created").agg(*stage)
    packed = F.col("_fs_ts").cast(wide) * F.lit(_PACK).cast(wide) + (
        F.col("_fs_created") + F.lit(_CREATED_OFFSET)
    ).cast(wide)
    one = one.withColumn("_fs_k", packed.cast(wide))
    lasts = [inp.partial("last") for inp in plan.inputs if "last" in plan.kinds[inp.i]]
    merge = list(final)
    for name in lasts:
        at = F.when(F.col(name).isNotNull(), F.col("_fs_k"))
        merge.append(F.max(at).alias(f"{name}_k"))
        merge.append(F.max_by(name, at).alias(name))
    tiles = one.groupBy(*plan.keys, TILE).agg(*merge)
    for name in lasts:
        pk = F.col(f"{name}_k")
        div = F.lit(_PACK).cast(wide)
        unpacked = F.struct(
            F.floor(pk / div).cast("long").alias("ts"),
            ((pk % div).cast("long") - F.lit(_CREATED_OFFSET)).alias("created"),
            F.col(name).alias("value"),
        )
        tiles = tiles.withColumn(name, F.when(pk.isNotNull(), unpacked)).drop(f"{name}_k")
    return tiles


def _with_occurrences(tiles: DataFrame, base: DataFrame, plan: AggregationPlan) -> DataFrame:
    """Tile rows plus one occurrence row per (entity, tile, value) of each distinct input."""
    from pyspark.sql import functions as F

    for inp in plan.inputs:
        if "set" in plan.kinds[inp.i]:
            occ = (
                base.where(_present(inp))
                .groupBy(*plan.keys, TILE, _value(inp).alias(inp.partial("set")))
                .agg(F.lit(inp.i).alias(OCC))
            )
            tiles = tiles.unionByName(occ, allowMissingColumns=True)
    return tiles
