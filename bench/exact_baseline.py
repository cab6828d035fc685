"""An exact plain-PySpark baseline for bench_aggregation.py, and its check against fstore.

What a Spark engineer would write without the engine to get the *same* 27 features at the same
instants as the feature table: daily pre-aggregation per (customer, day), the emission days
(every day with events, plus each such day + w for each window w, where events leave w), then
one range frame over the day index per window; one shuffle, by customer. Values follow the
engine's rules: nulls ignored, an empty window gives 0 for counts and distinct counts and null
otherwise, sample standard deviation, ``last`` = the latest event's value (ties on event time
broken by the created time, then the larger value), exact distinct counts, recency =
fractional days from the latest event in the window to the row's instant (the stored value;
readers add the time elapsed since it).

Day ``d`` is the instant ``d * 1 day`` since the epoch; an event at ``ts`` belongs to the first
instant at or after it (``ceil``), so the window ``(t - w, t]`` is the frame ``[d - w + 1, d]``.
"""

from __future__ import annotations

from datetime import datetime

WINDOWS = (7, 30, 90)
FUNCTIONS = (
    "sum",
    "count",
    "mean",
    "min",
    "max",
    "stddev",
    "last",
    "approx_count_distinct",
    "recency",
)
FEATURES = [f"{fn}_{w}d" for w in WINDOWS for fn in FUNCTIONS]
KEY, TS = "customer_id", "feature_timestamp"
DAY_US = 86_400_000_000
REL_TOL = 1e-9
TOLERANCE = (
    f"sum and mean within a relative {REL_TOL:g} (or {REL_TOL:g} absolute); stddev as a "
    f"variance, within {REL_TOL:g} x (mean^2 + stddev^2), the rounding scale of a sum of "
    "squares; every other feature equal"
)
# compared with a tolerance (floating-point sums: the order of the adds differs)
FLOAT_FNS = ("sum", "mean", "stddev")


def daily_partials(spark, src: str):
    """One row per (customer, day d) with the mergeable partials of its events.

    Events are shuffled once, by customer: the daily groups, the emission rows and the window
    frames below all stay in those partitions (at these sizes a day rarely holds two events of
    a customer, so a map-side pre-aggregation would save little).
    """
    from pyspark.sql import functions as F

    ts_us = F.unix_micros("event_timestamp")
    amount = F.col("amount")
    return (
        spark.read.format("delta")
        .load(src)
        .where(F.col(KEY).isNotNull() & F.col("event_timestamp").isNotNull())
        .repartition(KEY)
        .withColumn("d", (F.floor((ts_us - 1) / DAY_US) + 1).cast("int"))  # ceil to the day
        .groupBy(KEY, "d")
        .agg(
            F.count("*").alias("events"),
            F.count(amount).alias("n"),
            F.sum(amount).alias("s"),
            F.sum(amount * amount).alias("q"),
            F.min(amount).alias("mn"),
            F.max(amount).alias("mx"),
            # latest event with an amount: (time, created, amount) orders ties as the engine
            F.max(
                F.when(
                    amount.isNotNull(),
                    F.struct(ts_us.alias("ts"), F.unix_micros("created_at").alias("c"), amount),
                )
            ).alias("last"),
            F.max(ts_us).alias("lts"),
            F.collect_set("merchant").alias("merchants"),
        )
    )


def emission_rows(daily, end_d: int):
    """Every emission day up to ``end_d`` (event days and window exits) with its partials.

    Each daily row stands at its day and, without partials, at its day + w for every window;
    rows of the same (customer, day) are then merged. Days before the output range are kept:
    their events are in the first windows.
    """
    from pyspark.sql import functions as F

    parts = [c for c in daily.columns if c not in (KEY, "d")]
    at = [F.struct(F.lit(o).alias("o"), (F.col("d") + o).alias("e")) for o in (0, *WINDOWS)]
    rows = daily.select(KEY, F.explode(F.array(*at)).alias("x"), *parts)
    rows = rows.where(F.col("x.e") <= end_d)
    own = F.col("x.o") == 0

    def mine(c: str):
        return F.when(own, F.col(c))

    return rows.groupBy(KEY, F.col("x.e").alias("d")).agg(
        *[F.sum(mine(c)).alias(c) for c in ("events", "n", "s", "q")],
        F.min(mine("mn")).alias("mn"),
        *[F.max(mine(c)).alias(c) for c in ("mx", "last", "lts")],
        F.first(mine("merchants"), ignorenulls=True).alias("merchants"),
    )


def window_features(w: int) -> list:
    """The 9 features of window ``w`` days at each row, from a range frame over the days."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    frame = Window.partitionBy(KEY).orderBy("d").rangeBetween(-(w - 1), 0)
    t_us = F.col("d").cast("long") * DAY_US
    n, s, q = (F.sum(c).over(frame) for c in ("n", "s", "q"))
    events = F.sum("events").over(frame)
    var = (q - s * s / n) / (n - 1)  # the engine's formula (clamped at 0 like it)
    last = F.max("last").over(frame)
    lts = F.max("lts").over(frame)
    merchants = F.array_distinct(F.flatten(F.collect_list("merchants").over(frame)))
    cols = {
        "sum": F.when(n > 0, s),
        "count": F.coalesce(events, F.lit(0)).cast("long"),
        "mean": F.when(n > 0, s / n),
        "min": F.min("mn").over(frame),
        "max": F.max("mx").over(frame),
        "stddev": F.when(n >= 2, F.sqrt(F.greatest(var, F.lit(0.0)))),
        "last": last["amount"],
        "approx_count_distinct": F.coalesce(F.size(merchants), F.lit(0)).cast("long"),
        "recency": (t_us - lts).cast("double") / F.lit(float(DAY_US)),
    }
    return [cols[fn].alias(f"{fn}_{w}d") for fn in FUNCTIONS]


def exact_baseline(spark, src: str, out: str, start: datetime, end: datetime) -> None:
    """Write the 27 exact features at every emission instant in ``[start, end]`` to Delta."""
    from pyspark.sql import functions as F

    start_d = -(-int(start.timestamp()) // 86_400)  # first instant at or after start
    end_d = int(end.timestamp()) // 86_400
    rows = emission_rows(daily_partials(spark, src), end_d)
    feats = [c for w in WINDOWS for c in window_features(w)]
    (
        rows.select(KEY, "d", *feats)
        .where(F.col("d") >= start_d)
        .select(KEY, F.timestamp_micros(F.col("d").cast("long") * DAY_US).alias(TS), *FEATURES)
        .write.format("delta")
        .mode("overwrite")
        .save(out)
    )


def _same(fn: str, a, b, mean=None):
    """Whether two values of a feature of function ``fn`` agree (nulls equal nulls).

    Floating-point sums carry rounding from the order of their adds: ``sum`` and ``mean`` are
    compared relatively (absolutely near 0, where a relative bound means nothing); ``stddev``
    comes from ``(q - s^2 / n) / (n - 1)``, whose rounding scales with the second moment, not
    with the variance, so it is compared as a variance on that scale (given the window's
    ``mean``).
    """
    from pyspark.sql import functions as F

    if fn not in FLOAT_FNS:
        return a.eqNullSafe(b)
    tol = F.lit(REL_TOL)
    if fn == "stddev":
        scale = mean * mean + F.greatest(a * a, b * b)
        close = F.abs(a * a - b * b) <= tol * scale
    else:
        close = F.abs(a - b) <= tol * F.greatest(F.abs(a), F.abs(b), F.lit(1.0))
    return a.eqNullSafe(b) | F.coalesce(close, F.lit(False))


def _strictly_same(a, b):
    """Equal within a plain relative ``REL_TOL`` (reported, not failed)."""
    from pyspark.sql import functions as F

    close = F.abs(a - b) <= F.lit(REL_TOL) * F.greatest(F.abs(a), F.abs(b))
    return a.eqNullSafe(b) | F.coalesce(close, F.lit(False))


def compare(ours, theirs) -> tuple[int, dict[str, int], dict[str, int]]:
    """Rows compared, mismatches per check and, per floating-point feature, the values that
    differ by more than a plain relative ``REL_TOL`` (within the tolerance: not failures).

    ``only in fstore`` / ``only in baseline`` count rows present on one side; every feature
    counts the rows present on both where it differs.
    """
    from pyspark.sql import functions as F

    a = ours.select(KEY, TS, *[F.col(f).alias(f"a_{f}") for f in FEATURES], F.lit(1).alias("_a"))
    b = theirs.select(KEY, TS, *[F.col(f).alias(f"b_{f}") for f in FEATURES], F.lit(1).alias("_b"))
    both = F.col("_a").isNotNull() & F.col("_b").isNotNull()
    checks = {
        "only in fstore": F.col("_b").isNull(),
        "only in baseline": F.col("_a").isNull(),
    }
    loose = {}
    for f in FEATURES:
        fn, w = f.rsplit("_", 1)
        x, y = F.col(f"a_{f}"), F.col(f"b_{f}")
        checks[f] = both & ~_same(fn, x, y, F.col(f"a_mean_{w}"))
        if fn in FLOAT_FNS:
            loose[f] = both & ~_strictly_same(x, y)
    joined = a.join(b, [KEY, TS], "full_outer")
    sums = {**checks, **{f"~{k}": c for k, c in loose.items()}}
    out = joined.agg(
        F.count("*").alias("rows"),
        *[F.coalesce(F.sum(c.cast("int")), F.lit(0)).alias(k) for k, c in sums.items()],
    ).first()
    return out["rows"], {k: out[k] for k in checks}, {k: out[f"~{k}"] for k in loose}


def mismatch_examples(ours, theirs, feature: str, strict: bool = False, limit: int = 3) -> list:
    """A few rows where ``feature`` differs (``strict``: beyond a plain relative tolerance)."""
    from pyspark.sql import functions as F

    fn, w = feature.rsplit("_", 1)
    a = ours.select(KEY, TS, F.col(feature).alias("fstore"), F.col(f"mean_{w}").alias("_m"))
    b = theirs.select(KEY, TS, F.col(feature).alias("baseline"))
    j = a.join(b, [KEY, TS], "full_outer")
    x, y = F.col("fstore"), F.col("baseline")
    differ = ~_strictly_same(x, y) if strict else ~_same(fn, x, y, F.col("_m"))
    return j.where(differ).drop("_m").limit(limit).collect()
