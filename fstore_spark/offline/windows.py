"""Windowed aggregation: the feature rows of a view computed from its tiles, in one sweep.

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

1. *Tiles* (:mod:`fstore_spark.offline.tiles`): events are rolled up once per (entity, tile)
   into mergeable partials.
2. *Windows without rescanning*: tiles are shuffled once by entity and every later step stays
   in those partitions. Each tile becomes a row at ``T`` and, for each window ``w``, a row at
   ``T + w`` (when it leaves ``w``). Counts and integer sums are exact running sums over these
   rows (added at ``T``, *retracted* at ``T + w``, O(1) per row). Floating-point sums and
   sums of squares (so means and standard deviations) and ``min``/``max`` are not kept that
   way (retracting leaves the rounding of every earlier window in a float sum, and extrema are
   not invertible): a pass over the tile rows computes, per tile, the aggregate over
   ``(T - w, T]`` (the value at ``T``) and over ``(T, T + w]`` (the value at ``T + w``, when
   the tile leaves); between two rows that carry a value for ``w`` nothing enters or leaves
   ``w``, so every other row takes the last one. A window's float sum is thus the sum of its
   own tiles, in tile order. ``last`` and ``recency`` are running maxima checked against the
   window start.
3. *Exact distinct counts*: for each (entity, value) the occurrence tiles are sorted; a value is
   active at ``t`` iff it occurred in ``(t - w, t]``, i.e. ``t`` lies in the union of
   ``[T_i, T_i + w)``. Per tile, the values that open an activity interval count ``+1`` at
   ``T`` and those that close one ``-1`` at ``T + w``, riding on the rows above: the running
   sum is the exact distinct count, with no set merged per row and no sketch error.

Long windows and lifetime aggregates therefore cost the same memory as short ones; the only
per-row buffer is the tile frame of the framed aggregates (at most ``window / cadence``
tiles).
For a few instants (a short incremental run), :mod:`fstore_spark.offline.instants` evaluates
the same rows directly instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fstore_spark.offline.plan import (
    DISTINCT_FUNCTIONS,
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
    from pyspark.sql import Column, DataFrame, WindowSpec

__all__ = ["features_from_tiles"]

# the tile an emitted row comes from; with the instant it orders an entity's rows totally
_ORIGIN = "_fs_o"


def features_from_tiles(
    tiles: DataFrame,
    plan: AggregationPlan,
    start_us: int,
    end_us: int,
    *,
    cut_us: int | None = None,
) -> DataFrame:
    """Compute the feature rows with ``start <= t <= end`` from a tile DataFrame.

    Args:
        tiles: Tile rows (any superset of what is needed; filtered here).
        plan: The view's plan.
        start_us: First emission time to output (epoch micros, inclusive).
        end_us: Last emission time to output (inclusive).
        cut_us: When given, tiles ``<= cut_us`` are folded into one baseline row per entity
            (lifetime aggregates only) instead of being replayed; must be
            ``<= start_us - max_window``. ``None`` replays every tile (a full backfill).

    Returns:
        Keys, ``_fs_t`` (epoch micros) and the feature columns, cast to their dtypes (lazy).

    How (three sorts per entity, each over tiles, never over events):

    1. tiles are shuffled once by entity; everything after stays in those partitions;
    2. *tile pass* (one sort by tile time): windowed min/max and float sums per tile row with a
       backward frame ``(T - w, T]`` (the value at the tile) and a forward frame
       ``(T, T + w]`` (the value at ``T + w``, when the tile leaves the window); for exact
       distinct counts, the number of values of the tile that open / close an activity
       interval (from the previous / next tile holding the same value, one extra sort per
       (entity, value));
    3. *emission pass*: each tile becomes one row at ``T`` (contributions) and one row per
       window at ``T + w`` (retractions and the forward frames): running sums over these rows
       are the windowed counts and integer sums, and a framed value of window ``w`` at any
       row is the last value emitted for ``w`` (nothing enters or leaves ``w`` between two
       such rows). Rows are in (instant, origin tile) order, and the last row of each
       instant, which has seen all of them, is kept.
    """
    from pyspark.sql import functions as F

    tiles = tiles.where(F.col(TILE) <= F.lit(end_us))
    lifetime_sets = any(
        a.window is None and a.function in DISTINCT_FUNCTIONS for a in plan.view.aggregations
    )
    if cut_us is not None and lifetime_sets:
        cut_us = None  # exact lifetime distinct counts need every occurrence
    replay = tiles if cut_us is None else tiles.where(F.col(TILE) > F.lit(cut_us))
    rows = (
        replay.repartition(*plan.keys)
        .transform(_with_distinct_transitions, plan)
        .where(F.col(OCC) == F.lit(-1))
        .transform(_with_window_frames, plan)
    )
    stream = _emission_rows(rows, plan, end_us)
    if cut_us is not None and plan.has_lifetime:
        stream = _with_lifetime_baseline(stream, tiles, plan, cut_us)
    return _changes(stream, plan, start_us, end_us)


def _by_tile(plan: AggregationPlan) -> WindowSpec:
    """An entity's tiles in time order (tile ends are unique per entity and kind of row)."""
    from pyspark.sql import Window

    return Window.partitionBy(*plan.keys).orderBy(TILE)


def _with_distinct_transitions(rows: DataFrame, plan: AggregationPlan) -> DataFrame:
    """Add, per tile and distinct count, how many values open / close an activity interval.

    For each occurrence row the previous and next tile holding the same value are found; a
    value opens an interval at ``T`` when it was absent from ``(T - w, T)`` and closes one at
    ``T + w`` when it is absent from ``(T, T + w]``. Summed over the tile's peers (its tile row
    and its occurrence rows), the tile row carries the counts: ``_fs_dp_<name>`` (opened) and
    ``_fs_dm_<name>`` (closed).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    peers = _by_tile(plan).rangeBetween(0, 0)
    prev, nxt = F.col("_fs_prev"), F.col("_fs_next")
    for inp, mine in plan.distinct_groups():
        v = F.col(inp.partial("set"))
        by_value = Window.partitionBy(*plan.keys, v).orderBy(TILE)
        rows = rows.select(
            "*",
            F.lag(TILE).over(by_value).alias("_fs_prev"),
            F.lead(TILE).over(by_value).alias("_fs_next"),
        )
        mine_occ = (F.col(OCC) == F.lit(inp.i)) & v.isNotNull()
        counts = []
        for a in mine:
            if a.window is None:
                opens = mine_occ & prev.isNull()
                closes = F.lit(False)
            else:
                w = micros(a.window)
                opens = mine_occ & (prev.isNull() | (F.col(TILE) - prev > w))
                closes = mine_occ & (nxt.isNull() | (nxt - F.col(TILE) > w))
            counts.append(F.sum(opens.cast("long")).over(peers).alias(f"_fs_dp_{a.name}"))
            counts.append(F.sum(closes.cast("long")).over(peers).alias(f"_fs_dm_{a.name}"))
        rows = rows.select(*[c for c in rows.columns if c not in ("_fs_prev", "_fs_next")], *counts)
    return rows


def _with_window_frames(rows: DataFrame, plan: AggregationPlan) -> DataFrame:
    """Add per tile row each window's min/max and floating-point sums behind and ahead of it.

    ``_fs_b_<state>`` is the aggregate over ``(T - w, T]`` (the window's value at ``T``),
    ``_fs_a_<state>`` over ``(T, T + w]`` (its value at ``T + w``, once this tile left), where
    ``<state>`` is the state column it feeds (:func:`_frame_states`).
    """
    from pyspark.sql import functions as F

    by_tile, cad = _by_tile(plan), plan.cadence_us
    tile_cols: list[Column] = []
    for state, (partial, fn, w) in _frame_states(plan).items():
        agg = {"min": F.min, "max": F.max, "sum": F.sum}[fn]
        # tile ends are multiples of the cadence: (T - w, T] and (T, T + w] in tile units
        tile_cols.append(
            agg(partial).over(by_tile.rangeBetween(-(w - cad), 0)).alias(f"_fs_b_{state}")
        )
        tile_cols.append(agg(partial).over(by_tile.rangeBetween(cad, w)).alias(f"_fs_a_{state}"))
    return rows.select("*", *tile_cols) if tile_cols else rows


def _frame_states(plan: AggregationPlan) -> dict[str, tuple[str, str, int]]:
    """State columns computed over tile frames: ``{state: (partial, function, window)}``.

    Windowed min/max (not invertible) and windowed floating-point sums. A floating-point sum
    kept by adding each tile on entry and subtracting it on exit would carry the rounding of
    every earlier window: after months of amounts near 500, a window holding 0.0 and 0.01
    would read a variance off by 1e-10 (against 5e-5) and a window of zeros a sum of 1e-13.
    Summed over the window's own tiles, it is the sum a query over the window would give.
    Integer sums and counts are exact either way and stay running sums (one add per row).
    """
    out: dict[str, tuple[str, str, int]] = {}
    for (i, kind), wks in plan.extrema.items():
        inp = plan.inputs[i]
        for wi, w in enumerate(plan.windows):
            if str(wi) in wks:
                out[extremum_column(inp, kind, str(wi))] = (inp.partial(kind), kind, w)
    for inp, kind, wk in plan.sums:
        if wk != "L" and plan.sum_type(inp, kind) == "double":
            w = plan.windows[int(wk)]
            out[running_sum_column(inp, kind, wk)] = (inp.partial(kind), "sum", w)
    return out


def _emission_rows(rows: DataFrame, plan: AggregationPlan, end_us: int) -> DataFrame:
    """Each tile row exploded into its row at ``T`` and one row per window at ``T + w``.

    Every emitted row has the same fields (:func:`_element_fields`); a field a row does not
    set is null, which running sums skip and ``last(ignorenulls)`` passes over. ``_fs_o`` is
    the tile a row comes from: (instant, origin) is unique per entity and orders the rows.
    """
    from pyspark.sql import functions as F

    fields = _element_fields(rows, plan)

    def element(t: Column, values: dict[str, Column]) -> Column:
        cols = [t.alias(T), F.col(TILE).alias(_ORIGIN)] + [
            values.get(name, F.lit(None)).cast(typ).alias(name) for name, typ in fields
        ]
        return F.struct(*cols)

    elements = [element(F.col(TILE), _contributions(plan))]
    for wi, w in enumerate(plan.windows):
        # a row at T + w even with nothing to retract: a value of window w changes there
        elements.append(element(F.col(TILE) + F.lit(w), _departures(plan, wi, w)))
    keys = list(plan.keys)
    stream = rows.select(*keys, F.explode(F.array(*elements)).alias("_e")).select(*keys, "_e.*")
    return stream.where(F.col(T) <= F.lit(end_us))


def _element_fields(rows: DataFrame, plan: AggregationPlan) -> list[tuple[str, str]]:
    """(name, Spark type) of every field of an emitted row, in a fixed order."""
    out: list[tuple[str, str]] = []
    for inp, kind, wk in plan.sums:
        out.append((running_sum_column(inp, kind, wk), plan.sum_type(inp, kind)))
    types = dict(rows.dtypes)
    for (i, kind), wks in plan.extrema.items():
        for wk in sorted(wks):
            inp = plan.inputs[i]
            out.append((extremum_column(inp, kind, wk), types[inp.partial(kind)]))
    for inp, kind in plan.lasts:
        out.append((inp.partial(kind), types[inp.partial(kind)]))
    for a in plan.distinct_aggs:
        out.append((distinct_column(a), "bigint"))
    return out


def _contributions(plan: AggregationPlan) -> dict[str, Column]:
    """The fields of a tile's row at ``T``: what the tile adds, or each window's value there."""
    from pyspark.sql import functions as F

    framed = _frame_states(plan)
    here: dict[str, Column] = {}
    for inp, kind, wk in plan.sums:
        name = running_sum_column(inp, kind, wk)
        here[name] = F.col(f"_fs_b_{name}" if name in framed else inp.partial(kind))
    for (i, kind), wks in plan.extrema.items():
        inp = plan.inputs[i]
        for wk in wks:
            name = extremum_column(inp, kind, wk)
            here[name] = F.col(inp.partial(kind) if wk == "L" else f"_fs_b_{name}")
    for inp, kind in plan.lasts:
        here[inp.partial(kind)] = F.col(inp.partial(kind))
    for a in plan.distinct_aggs:
        here[distinct_column(a)] = F.col(f"_fs_dp_{a.name}")
    return here


def _departures(plan: AggregationPlan, wi: int, w: int) -> dict[str, Column]:
    """The fields of a tile's row at ``T + w``: retractions and window ``w``'s framed values."""
    from pyspark.sql import functions as F

    framed = _frame_states(plan)
    leave: dict[str, Column] = {}
    for inp, kind, wk in plan.sums:
        if wk == str(wi):
            name = running_sum_column(inp, kind, wk)
            leave[name] = F.col(f"_fs_a_{name}") if name in framed else -F.col(inp.partial(kind))
    for (i, kind), wks in plan.extrema.items():
        if str(wi) in wks:
            name = extremum_column(plan.inputs[i], kind, str(wi))
            leave[name] = F.col(f"_fs_a_{name}")
    for a in plan.distinct_aggs:
        if a.window is not None and micros(a.window) == w:
            leave[distinct_column(a)] = -F.col(f"_fs_dm_{a.name}")
    return leave


def _with_lifetime_baseline(
    stream: DataFrame, tiles: DataFrame, plan: AggregationPlan, cut_us: int
) -> DataFrame:
    """Fold the tiles up to the cut into one row per entity at the cut (lifetime state only).

    Tiles before the cut only matter for lifetime aggregates (every window starts after it),
    so instead of being replayed they contribute their totals once.
    """
    from pyspark.sql import functions as F

    base_aggs = []
    for inp, kind, wk in plan.sums:
        if wk == "L":
            base_aggs.append(F.sum(inp.partial(kind)).alias(running_sum_column(inp, kind, wk)))
    for (i, kind), wks in plan.extrema.items():
        if "L" in wks:
            fn = F.min if kind == "min" else F.max
            inp = plan.inputs[i]
            base_aggs.append(fn(inp.partial(kind)).alias(extremum_column(inp, kind, "L")))
    for inp, kind in plan.lasts:
        base_aggs.append(F.max(inp.partial(kind)).alias(inp.partial(kind)))
    if not base_aggs:
        return stream
    base = (
        tiles.where((F.col(TILE) <= F.lit(cut_us)) & (F.col(OCC) == F.lit(-1)))
        .repartition(*plan.keys)
        .sortWithinPartitions(*plan.keys, TILE)  # each entity's tiles added in time order
        .groupBy(*plan.keys)
        .agg(*base_aggs)
        .withColumn(T, F.lit(cut_us).cast("long"))
        .withColumn(_ORIGIN, F.lit(cut_us).cast("long"))  # the only row at the cut
    )
    return stream.unionByName(base, allowMissingColumns=True)


def _running_state(plan: AggregationPlan) -> dict[str, Column]:
    """Every state column as a running aggregate over an entity's emitted rows.

    The rows are in the total order (instant, origin tile), so floating-point sums are added in
    the same order on every run however the rows were shuffled; the last row of an instant has
    seen every row of that instant (:func:`_changes` keeps only it).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    running = _in_order(plan).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    state: dict[str, Column] = {}
    framed = _frame_states(plan)
    for inp, kind, wk in plan.sums:
        name = running_sum_column(inp, kind, wk)
        if name in framed:
            # the value last emitted for its window (nothing entered or left since; stale once
            # the window is empty, which feature_column checks with the window's count)
            state[name] = F.last(name, ignorenulls=True).over(running)
        else:
            state[name] = F.sum(name).over(running)
    for a in plan.distinct_aggs:
        state[distinct_column(a)] = F.sum(distinct_column(a)).over(running)
    for (i, kind), wks in plan.extrema.items():
        for wk in wks:
            name = extremum_column(plan.inputs[i], kind, wk)
            if wk == "L":
                fn = F.min if kind == "min" else F.max
                state[name] = fn(name).over(running)
            else:
                # the last value emitted for this window (null when the window is empty:
                # feature_column checks the window's count)
                state[name] = F.last(name, ignorenulls=True).over(running)
    for inp, kind in plan.lasts:
        # tiles are in time order and each holds its own maximum, so the latest non-null
        # tile value is the running maximum: last(ignorenulls) avoids struct comparisons
        state[inp.partial(kind)] = F.last(inp.partial(kind), ignorenulls=True).over(running)
    return state


def _in_order(plan: AggregationPlan) -> WindowSpec:
    """An entity's emitted rows by instant, then by the tile they come from (a total order)."""
    from pyspark.sql import Window

    return Window.partitionBy(*plan.keys).orderBy(T, _ORIGIN)


def _changes(stream: DataFrame, plan: AggregationPlan, start_us: int, end_us: int) -> DataFrame:
    """One feature row per (entity, instant) in ``[start, end]``: the state after its peers."""
    from pyspark.sql import functions as F

    keys = list(plan.keys)
    windowed = stream.select(
        *keys,
        T,
        F.lead(T).over(_in_order(plan)).alias("_fs_next_t"),
        *[c.alias(n) for n, c in _running_state(plan).items()],
    )
    windowed = windowed.where(
        (F.col("_fs_next_t").isNull() | (F.col("_fs_next_t") != F.col(T)))
        & (F.col(T) >= F.lit(start_us))
        & (F.col(T) <= F.lit(end_us))
    )
    features = [feature_column(plan, a) for a in plan.view.aggregations]
    return windowed.select(*keys, T, *features)
