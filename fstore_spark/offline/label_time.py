"""Training features exact at each label's own time: windows computed from the source events.

The default training set reads an aggregated view's feature table, whose rows sit at cadence
instants, so a label at 14:37 gets the windows as of the last cadence boundary. With
``label_time_exact=True`` (see :func:`fstore_spark.offline.training.get_historical_features`)
each window of length ``w`` is evaluated at the label time ``t`` itself: it covers the events
with ``t - w < event_ts <= t`` (a lifetime aggregate: ``event_ts <= t``), with the engine's
value rules (:mod:`fstore_spark.offline.windows`, :func:`fstore_spark.offline.plan.feature_column`).

How (one sort per view, no join explosion): the distinct (join keys, label time) pairs are
unioned with the source events, projected to the keys, the time and one "present value" column
per aggregation input (the value where the input's filter holds and the value is not null,
null on label rows). Per entity, ordered by time in microseconds, a range frame
``[t - (w - 1), t]`` (peers included, so events at ``t`` count and events at ``t - w`` do not)
aggregates the event rows of each window at every label row. The label rows are kept and joined
back to the labels on (keys, label time), so every label row comes out exactly once.

The source is read at the version the feature table's materialization recorded (pinned by
``as_of``, else the latest run), or at its current version when the view was never
materialized. Everything is DataFrame API, so it runs on Spark Connect.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.core import Aggregation, FeatureView
from fstore_spark.errors import NotFoundError, PointInTimeError
from fstore_spark.lakehouse.tables import (
    definition_dtypes,
    feature_table_path,
    last_run_metadata,
    read_source,
    source_version,
    table_history,
    version_as_of,
)
from fstore_spark.offline.asof import FOUND_TS
from fstore_spark.offline.plan import (
    DISTINCT_FUNCTIONS,
    AggregationPlan,
    Input,
    filter_to_column,
    micros,
    plan_view,
    spark_type,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession, WindowSpec

__all__ = ["label_time_features", "source_as_read"]

_T = "_fs_t"  # time in epoch microseconds (label time on label rows, event time on events)
_C = "_fs_c"  # created time in epoch microseconds (0 without a created column)
_LABEL = "_fs_lbl"  # true on label rows
_LT = "_fs_lt"  # label time in micros, on the label rows being joined back
_DAY_US = 86_400 * 1_000_000


def _value_column(inp: Input) -> str:
    """The column holding an input's present value (null where it does not count)."""
    return f"_fs_v{inp.i}"


def source_as_read(
    spark: SparkSession, project_root: str, view: FeatureView, pin: int | datetime | str | None
) -> tuple[DataFrame, int | None]:
    """The view's source as the feature table version in question was computed from it.

    ``pin`` (a Delta version or instant of the feature table) selects that version's commit
    metadata; without one, the latest materialization's. Its recorded ``source_version`` is
    read; a view never materialized (and unpinned) reads the source's current version.

    Returns:
        The source rows (lazy) and the feature table's Delta version the read stands for
        (``None`` when the view was never materialized).

    Raises:
        NotFoundError: a pin on a view never materialized, or before its first commit.
        PointInTimeError: a pinned version that does not exist, or that no fstore run wrote.
    """
    path = feature_table_path(project_root, view.name)
    history = table_history(spark, path)
    if pin is None:
        meta = last_run_metadata(spark, path, history)
        table_version = history[0]["version"] if history else None
    else:
        if not history:
            raise NotFoundError(
                f"feature view {view.name!r} was never materialized, so it has no version "
                f"{pin!r} to read its source as of. Fix: leave it out of as_of."
            )
        table_version = pin if isinstance(pin, int) else version_as_of(spark, path, view.name, pin)
        if table_version > history[0]["version"] or table_version < 0:
            raise PointInTimeError(
                f"feature view {view.name!r} has no version {table_version}; the latest is "
                f"{history[0]['version']}."
            )
        older = [h for h in history if h["version"] <= table_version]
        meta = last_run_metadata(spark, path, older)
        if meta is None:
            raise PointInTimeError(
                f"version {table_version} of feature view {view.name!r} was not written by a "
                "materialization, so the source version behind it is unknown."
            )
    if meta is not None:
        _check_same_source(view, meta, table_version)
        src_version = meta.get("source_version")
    else:
        src_version = source_version(spark, view.source, project_root)
    rows = read_source(spark, view.source, project_root, as_of_version=src_version)
    return rows, table_version


def _check_same_source(view: FeatureView, meta: dict[str, Any], version: int | None) -> None:
    """Refuse to read a source version recorded for another source.

    A run records its source's name and version; when the view now reads another source,
    that version number means nothing in the new table.
    """
    recorded = meta.get("source")
    if recorded is not None and recorded != view.source.name:
        raise PointInTimeError(
            f"version {version} of feature view {view.name!r} was computed from source "
            f"{recorded!r}, but the view now reads {view.source.name!r}, so its events as of "
            "that version cannot be read. Fix: materialize the view from its current source (or "
            "pin a version computed from it), or read without label_time_exact."
        )


def label_time_features(
    labels: DataFrame,
    events: DataFrame,
    view: FeatureView,
    keys: list[str],
    names: Mapping[str, str],
    ts_col: str,
    bounds: tuple[datetime, datetime] | None,
) -> DataFrame:
    """Attach the requested aggregations of ``view``, evaluated at each label's time.

    Args:
        labels: Label rows holding ``keys`` and ``ts_col``.
        events: The view's source rows (see :func:`source_as_read`).
        view: An aggregated feature view.
        keys: Its join keys.
        names: Requested aggregation name -> output column.
        ts_col: Label time column.
        bounds: (earliest, latest) label time, to prune events; ``None`` without labels.

    Returns:
        The label rows (each exactly once, columns unchanged), the output columns cast to the
        features' dtypes, and ``FOUND_TS`` set to the label time (so readers that add the time
        elapsed since a feature row, as for ``recency``, add nothing). Null keys or a null label
        time give null features.
    """
    from pyspark.sql import functions as F

    plan = plan_view(view, keys, definition_dtypes(events.schema))
    aggs = [a for a in view.aggregations if a.name in names]
    stacked = _stack(labels, events, plan, ts_col, bounds)
    values = stacked.select(
        *[F.col(k).alias(f"_fs_k{i}") for i, k in enumerate(keys)],
        F.col(_T),
        F.col(_LABEL),
        *[_aggregate(plan, a).alias(names[a.name]) for a in aggs],
    ).where(F.col(_LABEL))
    cond = F.col(_LT) == F.col(_T)
    for i, k in enumerate(keys):
        cond = cond & (_quoted(k) == F.col(f"_fs_k{i}"))
    timed = labels.withColumn(_LT, F.unix_micros(_quoted(ts_col).cast("timestamp")))
    return timed.join(values, cond, "left").select(
        *[_quoted(c) for c in labels.columns],
        *[_quoted(names[a.name]) for a in aggs],
        _quoted(ts_col).cast("timestamp").alias(FOUND_TS),
    )


def _quoted(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _stack(
    labels: DataFrame,
    events: DataFrame,
    plan: AggregationPlan,
    ts_col: str,
    bounds: tuple[datetime, datetime] | None,
) -> DataFrame:
    """The events a label can see, and the distinct (keys, label time) rows, in one frame.

    Events need a key and a time; those after the latest label cannot be seen, and without a
    lifetime aggregate neither can those at or before the earliest label minus the longest
    window. Label rows carry null values, so no aggregate counts them.
    """
    from pyspark.sql import functions as F

    keys = list(plan.keys)
    src = plan.view.source
    missing = [k for k in keys if k not in events.columns]
    if missing:
        raise PointInTimeError(
            f"feature view {plan.view.name!r}: source {src.name!r} lacks join key column(s) "
            f"{missing}; columns: {', '.join(events.columns)}."
        )
    created = src.created_timestamp_column
    created_us = F.unix_micros(F.col(created).cast("timestamp")) if created else F.lit(0)
    ev = events.select(
        *keys,
        F.unix_micros(F.col(src.timestamp_column).cast("timestamp")).alias(_T),
        created_us.cast("long").alias(_C),
        F.lit(False).alias(_LABEL),
        *[_present_value(inp).alias(_value_column(inp)) for inp in plan.inputs],
    )
    seen = F.col(_T).isNotNull()
    for k in keys:
        seen = seen & F.col(k).isNotNull()
    if bounds is None:
        seen = F.lit(False)
    else:
        lo, hi = (F.unix_micros(F.lit(b).cast("timestamp")) for b in bounds)  # as collected
        seen = seen & (F.col(_T) <= hi)
        if not plan.has_lifetime:
            seen = seen & (F.col(_T) > lo - F.lit(plan.max_window_us))
    key_types = {f.name: f.dataType for f in events.schema.fields}
    lab = labels.select(
        *[_quoted(k).cast(key_types[k]).alias(k) for k in keys],
        F.unix_micros(_quoted(ts_col).cast("timestamp")).alias(_T),
    )
    present = F.col(_T).isNotNull()
    for k in keys:
        present = present & F.col(k).isNotNull()
    lab = lab.where(present).distinct().withColumn(_LABEL, F.lit(True))
    return ev.where(seen).unionByName(lab, allowMissingColumns=True)


def _present_value(inp: Input) -> Column:
    """An event's value for an input where it counts (filter holds, value not null), else null.

    ``*`` counts every event (where the filter holds) with the value 1.
    """
    from pyspark.sql import functions as F

    expr = inp.aggregation.filter_expr
    ok = F.lit(True) if expr is None else filter_to_column(expr)
    value = F.lit(1) if inp.column == "*" else F.col(inp.column)
    if inp.column != "*":
        ok = ok & value.isNotNull()
    return F.when(ok, value)


def _frame(plan: AggregationPlan, agg: Aggregation) -> WindowSpec:
    """The entity's rows in ``(t - w, t]`` (or ``<= t`` for a lifetime), peers included."""
    from pyspark.sql import Window

    ordered = Window.partitionBy(*plan.keys).orderBy(_T)
    if agg.window is None:
        return ordered.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    return ordered.rangeBetween(-(micros(agg.window) - 1), Window.currentRow)


def _aggregate(plan: AggregationPlan, agg: Aggregation) -> Column:
    """One aggregation over its window at each row's time, with the engine's value rules."""
    from pyspark.sql import functions as F

    inp, fn = plan.input_of[agg.name], agg.function
    v, w = F.col(_value_column(inp)), _frame(plan, agg)
    out_type = spark_type(agg.output_dtype(plan.input_dtypes.get(agg.column)))
    if fn in ("count", "sum", "mean", "stddev"):
        value = _moment(plan, inp, fn, w)
    elif fn == "min":
        value = F.min(v).over(w)
    elif fn == "max":
        value = F.max(v).over(w)
    elif fn == "last":
        # the latest (time, created) wins, then the larger value; as in the tiles, an event
        # whose created time is null never is the last one
        latest = F.struct(F.col(_T).alias("ts"), F.col(_C).alias("created"), v.alias("value"))
        value = F.max(F.when(v.isNotNull() & F.col(_C).isNotNull(), latest)).over(w)["value"]
    elif fn == "recency":
        lts = F.max(F.when(v.isNotNull(), F.col(_T))).over(w)
        value = (F.col(_T) - lts).cast("double") / F.lit(float(_DAY_US))
    elif fn in DISTINCT_FUNCTIONS:
        value = F.size(F.collect_set(v).over(w))
    else:  # pragma: no cover - Aggregation checks the function
        raise PointInTimeError(f"unknown aggregation function {fn!r}")
    return value.cast(out_type)


def _moment(plan: AggregationPlan, inp: Input, fn: str, w: WindowSpec) -> Column:
    """count, sum, mean and sample stddev from the window's n, s and q (as the engine does)."""
    from pyspark.sql import functions as F

    v = F.col(_value_column(inp))
    n = F.count(v).over(w)
    s = F.sum(v.cast(plan.sum_type(inp, "s"))).over(w)
    if fn == "count":
        return n
    if fn == "sum":
        return F.when(n > 0, s)
    if fn == "mean":
        return F.when(n > 0, s.cast("double") / n)
    d = v.cast("double")
    q = F.sum(d * d).over(w)
    var = (q - s.cast("double") * s.cast("double") / n) / (n - F.lit(1))
    return F.when(n >= 2, F.sqrt(F.greatest(var, F.lit(0.0))))
