"""Per-variant metrics of an A/B test, aggregated by Spark, and their comparison.

:func:`evaluate_variants` reduces scored, labelled rows to a few sums per variant in one
aggregation, plus, for AUC, one grouped count per distinct score; only those numbers reach
the driver, where :mod:`fstore_spark.ml.ab_stats` turns them into metrics and tests.

Classification metrics: ``auc`` (ties count one half, as ``sklearn.metrics.roc_auc_score``),
``precision``, ``recall``, ``accuracy``, ``f1`` at the test's ``threshold``, ``log_loss``
(predictions clipped to ``[1e-15, 1 - 1e-15]``, as scikit-learn) and ``brier``; regression:
``rmse``, ``mae``; any: ``positive_rate`` (mean label), ``mean_prediction``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import ExperimentError
from fstore_spark.ml.ab_results import ABTestResults
from fstore_spark.ml.ab_stats import compare_metric, decide_winner, metric_value, srm_p_value
from fstore_spark.ml.ab_test import ABTest

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["evaluate_variants"]

# Metrics defined only for 0/1 labels.
_BINARY = ("auc", "precision", "recall", "accuracy", "f1", "log_loss", "brier")
_EPS = 1e-15  # log loss clipping, as scikit-learn

_Stats = dict[str, dict[str, Any]]  # variant -> sufficient statistics (see ab_stats)


def _check_columns(df: DataFrame, label: str, prediction: str, binary: bool, test: str) -> None:
    """The label and prediction columns exist and, for binary metrics, labels are 0 or 1.

    The label check is one bounded action (at most five offending values are collected).
    """
    from pyspark.sql import functions as F

    types = dict(df.dtypes)
    for role, col in (("label", label), ("prediction", prediction)):
        if col not in types:
            raise ExperimentError(
                f"A/B test {test!r}: {role} column {col!r} is not in the data; columns: "
                f"{', '.join(df.columns)}."
            )
    if binary:
        bad = df.where(F.col(label).isNotNull() & ~F.col(label).cast("double").isin(0.0, 1.0))
        examples = [r[0] for r in bad.select(label).limit(5).collect()]
        if examples:
            raise ExperimentError(
                f"A/B test {test!r}: metrics {list(_BINARY)} need 0/1 labels; {label!r} has "
                f"other values such as {examples}. Fix: binarise the label or use rmse/mae."
            )


def _scored_rows(df: DataFrame, label: str, prediction: str, variant: str) -> DataFrame:
    """Every row as ``_v`` (variant), ``_y`` (label), ``_p`` (score) and ``_ok`` (usable).

    A row is usable when its variant, label and score are present and not NaN.
    """
    from pyspark.sql import functions as F

    y = F.col(label).cast("double")
    p = F.col(prediction).cast("double")
    v = F.col(variant).cast("string")
    usable = y.isNotNull() & p.isNotNull() & ~F.isnan(y) & ~F.isnan(p) & v.isNotNull()
    return df.select(v.alias("_v"), y.alias("_y"), p.alias("_p"), usable.alias("_ok"))


def _moments(name: str, c: Column) -> list[Column]:
    """Sum and sum of squares of ``c``, as ``<name>_s`` and ``<name>_ss``."""
    from pyspark.sql import functions as F

    return [F.sum(c).alias(f"{name}_s"), F.sum(c * c).alias(f"{name}_ss")]


def _aggregations(threshold: float, log_loss: bool) -> list[Column]:
    """The per-variant sums :mod:`~fstore_spark.ml.ab_stats` needs (``ll`` only if asked)."""
    from pyspark.sql import functions as F

    y, p = F.col("_y"), F.col("_p")
    pred_pos = p >= F.lit(threshold)
    pos = y == 1.0
    clipped = F.least(F.greatest(p, F.lit(_EPS)), F.lit(1 - _EPS))
    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.sum(y).alias("y_s"),
        F.sum(y * y).alias("y_ss"),
        F.sum((pos & pred_pos).cast("long")).alias("tp"),
        F.sum((~pos & pred_pos).cast("long")).alias("fp"),
        F.sum((pos & ~pred_pos).cast("long")).alias("fn"),
        F.sum(pos.cast("long")).alias("npos"),
        *_moments("p", p),
        *_moments("se", (p - y) * (p - y)),
        *_moments("ae", F.abs(p - y)),
    ]
    if log_loss:
        aggs += _moments("ll", -(y * F.log(clipped) + (1 - y) * F.log(1 - clipped)))
    return aggs


def _dropped_rows(scored: DataFrame) -> dict[str, int]:
    """Variant -> rows left out for a null or NaN label or score (one small action)."""
    from pyspark.sql import functions as F

    unusable = scored.where(~F.col("_ok")).groupBy("_v").agg(F.count(F.lit(1)).alias("n"))
    return {r["_v"]: int(r["n"]) for r in unusable.collect()}


def _auc(rows: DataFrame) -> dict[str, float | None]:
    """Variant -> AUC by the Mann-Whitney statistic; ``None`` for a variant of one class.

    Each positive scores 1 per negative with a lower score and 1/2 per negative with the same
    score. Rows are grouped per (variant, score) first, so the window runs over distinct
    scores, not rows.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    pos = F.col("_y") == 1.0
    counts = rows.groupBy("_v", "_p").agg(
        F.sum(pos.cast("long")).alias("np"), F.sum((~pos).cast("long")).alias("nn")
    )
    w = Window.partitionBy("_v").orderBy("_p").rowsBetween(Window.unboundedPreceding, -1)
    pairs = counts.withColumn("below", F.coalesce(F.sum("nn").over(w), F.lit(0)))
    got = pairs.groupBy("_v").agg(
        F.sum(F.col("np") * (F.col("below") + 0.5 * F.col("nn"))).alias("u"),
        F.sum("np").alias("P"),
        F.sum("nn").alias("N"),
    )
    return {
        r["_v"]: r["u"] / (r["P"] * r["N"]) if r["P"] and r["N"] else None for r in got.collect()
    }


def _counts(s: Mapping[str, Any] | None, dropped: int) -> dict[str, int]:
    """A variant's row counts (all zero for a variant without usable rows)."""
    if s is None:
        return {
            "rows": 0,
            "positives": 0,
            "negatives": 0,
            "predicted_positives": 0,
            "dropped_rows": dropped,
        }
    return {
        "rows": int(s["rows"]),
        "positives": int(s["npos"]),
        "negatives": int(s["rows"] - s["npos"]),
        "predicted_positives": int(s["tp"] + s["fp"]),
        "dropped_rows": dropped,
    }


def _summarise(
    test: ABTest, stats: _Stats, dropped: Mapping[str, int], auc: Mapping[str, float | None]
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, int]]]:
    """Variant -> metric values, and variant -> counts.

    Order: the test's variants with rows, then variants found in the data but not declared
    (sorted), then declared variants without rows (their metrics ``None``).
    """
    metrics = list(test.metrics)
    values: dict[str, dict[str, float | None]] = {}
    counts: dict[str, dict[str, int]] = {}
    unknown = sorted(set(stats) - set(test.variants))
    for name in [x for x in test.variants if x in stats] + unknown:
        counts[name] = _counts(stats[name], dropped.get(name, 0))
        values[name] = {m: metric_value(m, stats[name], auc.get(name)) for m in metrics}
    for name in test.variants:
        if name not in stats:
            counts[name] = _counts(None, dropped.get(name, 0))
            values[name] = {m: None for m in metrics}
    return values, counts


def evaluate_variants(
    df: DataFrame,
    test: ABTest,
    *,
    label_column: str = "label",
    prediction_column: str = "prediction",
    variant_column: str = "variant",
    now: datetime | None = None,
    exposures: Mapping[str, int] | None = None,
) -> ABTestResults:
    """Per-variant metrics of scored, labelled rows, and each treatment against the control.

    Rows with a null variant, label or prediction are left out (counted as ``dropped_rows``).
    Runs a few small Spark actions (the label check, the per-variant sums, the dropped rows
    and, for AUC, the rank sums); the rest is computed on the driver.

    Args:
        df: One row per scored unit: variant, prediction (score), label.
        test: The test (metrics, control, threshold, alpha, traffic).
        label_column: Outcome column (0/1 for classification metrics).
        prediction_column: Score column (a probability for ``log_loss``).
        variant_column: Variant column.
        now: Time for ``complete`` (default now).
        exposures: Units exposed per variant, for the sample-ratio check (default the rows
            of ``df`` per variant, usable or not).

    Raises:
        ExperimentError: a column is missing, or binary metrics get labels other than 0/1.
    """
    metrics = list(test.metrics)
    binary = any(m in _BINARY for m in metrics)
    _check_columns(df, label_column, prediction_column, binary, test.name)
    scored = _scored_rows(df, label_column, prediction_column, variant_column)
    rows = scored.where("_ok")
    aggs = _aggregations(test.threshold, "log_loss" in metrics)
    stats: _Stats = {r["_v"]: r.asDict() for r in rows.groupBy("_v").agg(*aggs).collect()}
    dropped = _dropped_rows(scored)
    auc = _auc(rows) if "auc" in metrics else {}
    values, counts = _summarise(test, stats, dropped, auc)
    control = str(test.control)
    comparisons = [
        compare_metric(m, name, control, stats.get(name), stats.get(control), auc, test.alpha)
        for name in test.variants
        if name != control
        for m in metrics
    ]
    return ABTestResults(
        test=test.name,
        control=control,
        primary_metric=metrics[0],
        metrics=values,
        counts=counts,
        comparisons=comparisons,
        sample_ratio_p_value=srm_p_value(test, counts, exposures),
        winner=decide_winner(metrics[0], control, comparisons),
        complete=test.is_complete(now),
        started_at=test.started_at,  # type: ignore[arg-type]
        ends_at=test.ends_at,
        extra={"unknown_variants": sorted(set(stats) - set(test.variants))},
    )
