"""Windowed aggregation evaluated directly at a few instants (short incremental runs).

:func:`fstore_spark.offline.windows.features_from_tiles` sweeps every tile of the last
``max_window``; for a run of a day or a few that is wasteful. Here each tile that can matter is
paired with the few emission instants it affects, and each (entity, instant) is one grouped
aggregation — a hash aggregation, no sort — with ``age = t - T`` deciding which windows a tile
belongs to. The rows and values are those of the sweep (see :mod:`fstore_spark.offline.windows`
for the semantics), sums added in a different order: equal to rounding. Floating-point sums
are added in tile order, so a rerun over the same tiles gives the same bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fstore_spark.offline.plan import (
    OCC,
    TILE,
    AggregationPlan,
    T,
    distinct_column,
    extremum_column,
    feature_column,
    micros,
    running_sum_column,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["features_at_instants"]


def features_at_instants(
    tiles: DataFrame, plan: AggregationPlan, start_us: int, end_us: int
) -> DataFrame:
    """The sweep's feature rows with ``start <= t <= end``, evaluated directly.

    Same result as :func:`~fstore_spark.offline.windows.features_from_tiles`: rows are
    emitted at exactly the instants the sweep emits (a tile at ``t`` or a tile leaving a
    window at ``t``), with the same values.

    Returns:
        Keys, ``_fs_t`` (epoch micros) and the feature columns, cast to their dtypes (lazy).
    """
    from pyspark.sql import functions as F

    keys = list(plan.keys)
    rows = _tiles_at_instants(tiles, plan, start_us, end_us)
    # one shuffle by (entity, instant) serves both aggregations of the occurrences below
    occurrences = rows.where(F.col(OCC) >= 0).repartition(*keys, T)
    rows = rows.where(F.col(OCC) == F.lit(-1))
    if plan.has_float_sums:  # each instant's tiles added in time order: the same bits every run
        rows = rows.repartition(*keys, T).sortWithinPartitions(*keys, T, TILE)
    out = (
        rows.groupBy(*keys, T)
        .agg(*_window_aggregates(plan), _emitted(plan).alias("_fs_emit"))
        .where(F.col("_fs_emit"))
    )
    if plan.distinct_aggs:
        out = out.join(_distinct_counts(occurrences, plan), [*keys, T], "left")
    out = _with_last_structs(out, plan)
    features = [feature_column(plan, a) for a in plan.view.aggregations]
    return out.select(*keys, T, *features)


def _tiles_at_instants(
    tiles: DataFrame, plan: AggregationPlan, start_us: int, end_us: int
) -> DataFrame:
    """Each tile that can matter, once per cadence instant in ``[start, end]`` it can affect.

    A tile at ``T`` affects ``T`` and every instant up to ``T + max_window`` (or ``end`` when
    some aggregation is lifetime); ``T`` becomes column ``_fs_t``.
    """
    from pyspark.sql import functions as F

    reach = plan.max_window_us  # a tile at T has an emission instant at T + w for each window
    rows = tiles.where(F.col(TILE) <= F.lit(end_us))
    first = F.greatest(F.col(TILE), F.lit(start_us))
    if plan.has_lifetime:
        last = F.lit(end_us)
    else:
        rows = rows.where(F.col(TILE) >= F.lit(start_us - reach))
        last = F.least(F.lit(end_us), F.col(TILE) + F.lit(reach))
    return rows.where(first <= last).select(
        "*", F.explode(F.sequence(first, last, F.lit(plan.cadence_us))).alias(T)
    )


def _age() -> Column:
    """How long before the instant a tile ended (0 for the tile ending at the instant)."""
    from pyspark.sql import functions as F

    return F.col(T) - F.col(TILE)


def _window_aggregates(plan: AggregationPlan) -> list[Column]:
    """Sums, extrema and ``last`` parts over the tiles inside each window at the instant."""
    from pyspark.sql import functions as F

    age = _age()

    def inside(wk: str) -> Column:
        return F.lit(True) if wk == "L" else age < F.lit(plan.windows[int(wk)])

    aggs: list[Column] = []
    for inp, kind, wk in plan.sums:
        name = running_sum_column(inp, kind, wk)
        aggs.append(F.sum(F.when(inside(wk), F.col(inp.partial(kind)))).alias(name))
    for (i, kind), wks in plan.extrema.items():
        fn = F.min if kind == "min" else F.max
        inp = plan.inputs[i]
        for wk in sorted(wks):
            p = F.col(inp.partial(kind))
            aggs.append(fn(F.when(inside(wk), p)).alias(extremum_column(inp, kind, wk)))
    for inp, kind in plan.lasts:
        name = inp.partial(kind)
        if kind == "lts":
            aggs.append(F.max(name).alias(name))
        else:  # the latest tile holding a value: tile ends are unique per entity
            order = F.when(F.col(name).isNotNull(), F.col(TILE))
            aggs.append(F.max_by(F.col(name)["ts"], order).alias(f"{name}_ts"))
            aggs.append(F.max_by(F.col(name)["value"], order).alias(f"{name}_value"))
    return aggs


def _emitted(plan: AggregationPlan) -> Column:
    """Whether the sweep emits a row at the instant: some tile ends there or leaves a window."""
    from pyspark.sql import functions as F

    age = _age()
    emit = F.lit(False)
    for w in (0, *plan.windows):
        emit = emit | (age == F.lit(w))
    return F.max(emit)


def _distinct_counts(occurrences: DataFrame, plan: AggregationPlan) -> DataFrame:
    """Exact distinct counts per (entity, instant): values whose latest tile is in the window."""
    from pyspark.sql import functions as F

    keys = list(plan.keys)
    counts: DataFrame | None = None
    for inp, mine in plan.distinct_groups():
        occ = (
            occurrences.where(F.col(OCC) == F.lit(inp.i))
            .groupBy(*keys, T, inp.partial("set"))
            .agg(F.max(TILE).alias("_fs_seen"))
        )
        seen_age = F.col(T) - F.col("_fs_seen")
        per = occ.groupBy(*keys, T).agg(
            *[
                F.sum(
                    F.when(
                        F.lit(True) if a.window is None else seen_age < F.lit(micros(a.window)),
                        F.lit(1),
                    )
                ).alias(distinct_column(a))
                for a in mine
            ]
        )
        counts = per if counts is None else counts.join(per, [*keys, T], "full")
    assert counts is not None
    return counts


def _with_last_structs(out: DataFrame, plan: AggregationPlan) -> DataFrame:
    """Reassemble each ``last`` state as the ``(ts, value)`` struct ``feature_column`` reads."""
    from pyspark.sql import functions as F

    for inp in plan.inputs:
        if "last" in plan.kinds[inp.i]:
            name = inp.partial("last")
            out = out.withColumn(
                name,
                F.struct(F.col(f"{name}_ts").alias("ts"), F.col(f"{name}_value").alias("value")),
            )
    return out
