"""A/B tests of feature sets: stable assignment, per-variant metrics, and their significance.

An :class:`ABTest` compares feature sets (each variant a feature set, usually with the model
trained on it) on live traffic for a fixed duration:

* **Assignment** is deterministic and stateless: a unit (the entity's join key values) goes to
  the variant whose traffic slice holds ``sha256("<test name>:<key values>")`` mod 10,000. The
  same unit always gets the same variant, two tests assign independently (the test name salts
  the hash), and Spark (:func:`variant_column`) and Python (:meth:`ABTest.assign`, for online
  requests) give the same answer for the same key, so batch and online traffic agree.
* **Metrics** are computed by Spark in one aggregation per variant plus, for AUC, one grouped
  count per distinct score (:func:`evaluate_variants`); only a few numbers per variant reach the
  driver. Classification: ``auc`` (ties count one half, as ``sklearn.metrics.roc_auc_score``),
  ``precision``, ``recall``, ``accuracy``, ``f1`` at ``threshold``, ``log_loss`` and ``brier``;
  regression: ``rmse``, ``mae``; any: ``positive_rate`` (mean label), ``mean_prediction``.
* **Significance** of each treatment against the control: AUC by the Hanley-McNeil standard
  error; precision, recall, accuracy and positive rate by a two-proportion z-test (their
  denominators: predicted positives, actual positives, all rows); log loss, Brier, MAE,
  mean prediction and RMSE (through the mean squared error) by Welch's t-test; F1 has no
  closed-form variance and gets no p-value. A sample-ratio-mismatch check (chi-square of the
  rows per variant against the traffic split) flags broken assignment or logging.

The store methods (:meth:`FeatureStore.start_ab_test`, ``score_ab_test``, ``ab_test_results``)
keep the test in the registry, log the scored rows to a Delta table and join the labels.

Example::

    test = ABTest(name="new_features_test",
                  feature_sets={"control": "fraud_v1", "treatment": "fraud_v2"},
                  models={"control": "models:/fraud/1", "treatment": "models:/fraud/2"},
                  metrics=["auc", "precision", "recall"], duration="7d")
    test = store.start_ab_test(test)          # pins fraud_v1@v3, fraud_v2@v1; starts the clock
    store.score_ab_test(test.name, requests)  # assigns, scores with each variant's model, logs
    results = store.ab_test_results(test.name, labels, label_column="is_fraud")
    results.to_pandas()                       # one row per variant and metric, with p-values
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core.definitions import format_duration, parse_duration
from fstore_spark.errors import ExperimentError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame

__all__ = [
    "ABTest",
    "ABTestResults",
    "Comparison",
    "METRICS",
    "evaluate_variants",
    "variant_column",
]

BUCKETS = 10_000
_HEX_DIGITS = 15  # 60 bits: fits a signed long in Spark's conv()
_SEP = "\x1f"

HIGHER_IS_BETTER = {
    "auc": True,
    "precision": True,
    "recall": True,
    "accuracy": True,
    "f1": True,
    "positive_rate": True,
    "log_loss": False,
    "brier": False,
    "rmse": False,
    "mae": False,
    "mean_prediction": None,
}
METRICS: tuple[str, ...] = tuple(HIGHER_IS_BETTER)
_BINARY = ("auc", "precision", "recall", "accuracy", "f1", "log_loss", "brier")
_EPS = 1e-15  # log loss clipping, as scikit-learn


def _parse_time(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ABTest:
    """An A/B test of feature sets (the seed's ``ABTest``), validated when constructed.

    Args:
        name: Test name (letters, digits, ``_``, ``-``); salts the assignment hash.
        feature_sets: Variant -> feature set (``name`` or ``name@vN``); at least two variants.
        metrics: Metrics to report (see :data:`METRICS`); the first is the primary metric
            that decides the winner.
        duration: How long the test runs from its start (``"7d"``).
        traffic: Variant -> share of units (sums to 1); default an equal split.
        models: Variant -> MLflow model URI scoring that variant (for ``score_ab_test``).
        control: The variant the others are compared with; default the first.
        threshold: Score at or above which a prediction counts as positive.
        alpha: Significance level of the comparisons.
        description: Free text.
        started_at: Set by ``FeatureStore.start_ab_test``; ``None`` for a test not started.

    Example:
        >>> t = ABTest(name="t1", feature_sets={"a": "fs_v1", "b": "fs_v2"})
        >>> t.assign("customer_42") in ("a", "b")
        True
    """

    name: str
    feature_sets: Mapping[str, str]
    metrics: Sequence[str] = ("auc", "precision", "recall")
    duration: timedelta | str = "7d"
    traffic: Mapping[str, float] | None = None
    models: Mapping[str, str] | None = None
    control: str | None = None
    threshold: float = 0.5
    alpha: float = 0.05
    description: str = ""
    started_at: datetime | str | None = None

    def __post_init__(self) -> None:
        owner = f"ABTest {self.name!r}"
        if (
            not isinstance(self.name, str)
            or not self.name
            or not all(c.isalnum() or c in "_-" for c in self.name)
        ):
            raise ExperimentError(
                f"invalid A/B test name {self.name!r}. Fix: use letters, digits, '_' or '-'."
            )
        fsets = dict(self.feature_sets or {})
        if len(fsets) < 2:
            raise ExperimentError(f"{owner}: needs at least two variants, got {list(fsets)}.")
        for variant, fs in fsets.items():
            if not isinstance(variant, str) or not variant or not isinstance(fs, str) or not fs:
                raise ExperimentError(
                    f"{owner}: variant {variant!r} -> {fs!r}: variants and feature sets are "
                    "non-empty strings."
                )
        metrics = tuple(self.metrics)
        unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
        if not metrics or unknown:
            raise ExperimentError(
                f"{owner}: unknown metric(s) {unknown or '(none given)'}; known: "
                f"{', '.join(METRICS)}."
            )
        if len(set(metrics)) != len(metrics):
            raise ExperimentError(f"{owner}: metrics {list(metrics)} repeat a name.")
        try:
            duration = parse_duration(self.duration)
        except Exception as exc:
            raise ExperimentError(f"{owner}: duration: {exc}") from exc
        traffic = (
            {v: 1.0 / len(fsets) for v in fsets} if self.traffic is None else dict(self.traffic)
        )
        if set(traffic) != set(fsets):
            raise ExperimentError(
                f"{owner}: traffic names {sorted(traffic)} but the variants are {sorted(fsets)}."
            )
        if any(not isinstance(s, int | float) or s <= 0 for s in traffic.values()) or not (
            math.isclose(sum(traffic.values()), 1.0, abs_tol=1e-9)
        ):
            raise ExperimentError(
                f"{owner}: traffic shares {traffic} must be positive and sum to 1."
            )
        if min(traffic.values()) * BUCKETS < 1:
            raise ExperimentError(f"{owner}: a traffic share below 1/{BUCKETS} gets no units.")
        models = None if self.models is None else dict(self.models)
        if models is not None and set(models) != set(fsets):
            raise ExperimentError(
                f"{owner}: models name {sorted(models)} but the variants are {sorted(fsets)}; "
                "give one model per variant."
            )
        control = self.control if self.control is not None else next(iter(fsets))
        if control not in fsets:
            raise ExperimentError(f"{owner}: control {control!r} is not a variant ({list(fsets)}).")
        if not 0.0 < float(self.alpha) < 1.0:
            raise ExperimentError(f"{owner}: alpha must be in (0, 1), got {self.alpha!r}.")
        if not isinstance(self.threshold, int | float) or not math.isfinite(self.threshold):
            raise ExperimentError(f"{owner}: threshold must be a number, got {self.threshold!r}.")
        set_ = object.__setattr__
        set_(self, "feature_sets", dict(fsets))
        set_(self, "metrics", metrics)
        set_(self, "duration", duration)
        set_(self, "traffic", {v: float(traffic[v]) for v in fsets})
        set_(self, "models", models)
        set_(self, "control", control)
        set_(self, "threshold", float(self.threshold))
        set_(self, "alpha", float(self.alpha))
        set_(self, "started_at", _parse_time(self.started_at))

    # ------------------------------------------------------------------ derived

    @property
    def variants(self) -> list[str]:
        """Variant names, in declared order."""
        return list(self.feature_sets)

    @property
    def ends_at(self) -> datetime | None:
        """``started_at + duration`` (``None`` before the test is started)."""
        start = self.started_at
        assert start is None or isinstance(start, datetime)
        return None if start is None else start + self.duration  # type: ignore[operator]

    def is_complete(self, now: datetime | None = None) -> bool:
        """Whether the test's duration has passed."""
        end = self.ends_at
        return end is not None and (now or datetime.now(UTC)) >= end

    def _cuts(self) -> list[tuple[str, int]]:
        """(variant, exclusive upper bucket) in declared order; the last ends at BUCKETS."""
        cuts, acc = [], 0.0
        traffic = dict(self.traffic or {})
        for i, v in enumerate(self.variants):
            acc += traffic[v]
            cuts.append((v, BUCKETS if i == len(traffic) - 1 else round(acc * BUCKETS)))
        return cuts

    def bucket(self, key: Any) -> int:
        """The unit's hash bucket in ``[0, 10000)`` (a value, or a tuple of join key values)."""
        values = key if isinstance(key, tuple | list) else (key,)
        parts = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, str | int):
                raise ExperimentError(
                    f"A/B test {self.name!r}: key value {v!r} ({type(v).__name__}) cannot be "
                    "assigned; join keys must be strings or integers."
                )
            parts.append(str(v))
        digest = hashlib.sha256(f"{self.name}:{_SEP.join(parts)}".encode()).hexdigest()
        return int(digest[:_HEX_DIGITS], 16) % BUCKETS

    def assign(self, key: Any) -> str:
        """The variant of one unit (as :func:`variant_column` assigns it in Spark)."""
        b = self.bucket(key)
        return next(v for v, cut in self._cuts() if b < cut)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the registry stores)."""
        started = self.started_at
        assert started is None or isinstance(started, datetime)
        return {
            "name": self.name,
            "feature_sets": dict(self.feature_sets),
            "metrics": list(self.metrics),
            "duration": format_duration(self.duration),  # type: ignore[arg-type]
            "traffic": dict(self.traffic or {}),
            "models": None if self.models is None else dict(self.models),
            "control": self.control,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "description": self.description,
            "started_at": None if started is None else started.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABTest:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))

    def definition(self) -> dict[str, Any]:
        """:meth:`to_dict` without the start time: what must match to restart the same test."""
        d = self.to_dict()
        d.pop("started_at")
        return d


def variant_column(test: ABTest, key_columns: Sequence[str]) -> Column:
    """Spark expression giving each row's variant; null when a key is null.

    Equal to :meth:`ABTest.assign` on the same key values (strings and integers).
    """
    from pyspark.sql import functions as F

    if not key_columns:
        raise ExperimentError(f"A/B test {test.name!r}: no key columns to assign units by.")
    keys = [F.col(k).cast("string") for k in key_columns]
    joined = F.concat(F.lit(f"{test.name}:"), F.concat_ws(_SEP, *keys))
    bucket = F.pmod(
        F.conv(F.substring(F.sha2(joined, 256), 1, _HEX_DIGITS), 16, 10).cast("long"),
        F.lit(BUCKETS),
    )
    cuts = test._cuts()
    expr = F.when(bucket < cuts[0][1], F.lit(cuts[0][0]))
    for v, cut in cuts[1:]:
        expr = expr.when(bucket < cut, F.lit(v))
    any_null = F.col(key_columns[0]).isNull()
    for k in key_columns[1:]:
        any_null = any_null | F.col(k).isNull()
    return F.when(any_null, F.lit(None).cast("string")).otherwise(expr)


def check_key_types(df: DataFrame, key_columns: Sequence[str], test: str) -> None:
    """Key columns must exist and be strings or integers (so Python and Spark hash alike)."""
    types = dict(df.dtypes)
    missing = [k for k in key_columns if k not in types]
    if missing:
        raise ExperimentError(
            f"A/B test {test!r}: key column(s) {missing} are not in the data; columns: "
            f"{', '.join(df.columns)}."
        )
    bad = {k: types[k] for k in key_columns if types[k] not in _KEY_TYPES}
    if bad:
        raise ExperimentError(
            f"A/B test {test!r}: key columns must be strings or integers, got {bad}. Fix: cast "
            "them (the online path hashes the same text)."
        )


_KEY_TYPES = ("string", "tinyint", "smallint", "int", "bigint")


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control on one metric."""

    metric: str
    variant: str
    control: str
    value: float | None
    control_value: float | None
    difference: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str | None
    significant: bool
    better: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class ABTestResults:
    """Per-variant metrics and comparisons of an A/B test (what ``get_results`` returns).

    Attributes:
        test: Test name.
        control: The control variant.
        metrics: Variant -> metric -> value (``None`` where undefined, e.g. AUC of one class).
        counts: Variant -> rows, positives, negatives, predicted positives.
        comparisons: Every treatment x metric against the control.
        sample_ratio_p_value: Chi-square p-value of rows per variant against the traffic
            split; below 0.001 means assignment or logging is broken (``sample_ratio_mismatch``).
        winner: The variant significantly better than the control on the primary metric
            (the best such), the control when every treatment is significantly worse, else
            ``None`` (no conclusion yet).
        complete: Whether the test's duration has passed.
    """

    test: str
    control: str
    primary_metric: str
    metrics: dict[str, dict[str, float | None]]
    counts: dict[str, dict[str, int]]
    comparisons: list[Comparison]
    sample_ratio_p_value: float | None
    winner: str | None
    complete: bool = False
    started_at: datetime | None = None
    ends_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_ratio_mismatch(self) -> bool:
        """Rows per variant are implausible under the traffic split (p < 0.001)."""
        p = self.sample_ratio_p_value
        return p is not None and p < 0.001

    def to_pandas(self) -> pd.DataFrame:
        """One row per variant and metric: value, and for treatments the comparison."""
        import pandas as pd

        rows = []
        by_key = {(c.variant, c.metric): c for c in self.comparisons}
        for variant, values in self.metrics.items():
            for metric, value in values.items():
                c = by_key.get((variant, metric))
                rows.append(
                    {
                        "variant": variant,
                        "metric": metric,
                        "value": value,
                        "rows": self.counts[variant]["rows"],
                        "difference": None if c is None else c.difference,
                        "relative_lift": None if c is None else c.relative_lift,
                        "ci_low": None if c is None else c.ci_low,
                        "ci_high": None if c is None else c.ci_high,
                        "p_value": None if c is None else c.p_value,
                        "significant": None if c is None else c.significant,
                    }
                )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also what :meth:`log_to_mlflow` stores as an artifact)."""
        return {
            "test": self.test,
            "control": self.control,
            "primary_metric": self.primary_metric,
            "metrics": self.metrics,
            "counts": self.counts,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "sample_ratio_p_value": self.sample_ratio_p_value,
            "sample_ratio_mismatch": self.sample_ratio_mismatch,
            "winner": self.winner,
            "complete": self.complete,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "ends_at": None if self.ends_at is None else self.ends_at.isoformat(),
            **self.extra,
        }

    def log_to_mlflow(self) -> None:
        """Log the results to the active MLflow run (one is started if none is active).

        Metrics ``<variant>.<metric>``, ``<variant>.rows`` and ``<variant>.<metric>.p_value``;
        tags ``fstore.ab_test`` and ``fstore.ab_test.winner``; the whole result as JSON.
        """
        import mlflow

        if mlflow.active_run() is None:
            mlflow.start_run(run_name=f"ab_test_{self.test}")
        values = {
            f"{v}.{m}": float(x)
            for v, ms in self.metrics.items()
            for m, x in ms.items()
            if x is not None and math.isfinite(x)
        }
        values.update({f"{v}.rows": float(c["rows"]) for v, c in self.counts.items()})
        for c in self.comparisons:
            if c.p_value is not None:
                values[f"{c.variant}.{c.metric}.p_value"] = c.p_value
        mlflow.log_metrics(values)
        mlflow.set_tags({"fstore.ab_test": self.test, "fstore.ab_test.winner": str(self.winner)})
        mlflow.log_dict(self.to_dict(), f"ab_test_{self.test}.json")


def _label_check(df: DataFrame, label: str, prediction: str, binary: bool, test: str) -> None:
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
        examples = [r[0] for r in bad.select(label).limit(5).collect()]  # one bounded action
        if examples:
            raise ExperimentError(
                f"A/B test {test!r}: metrics {list(_BINARY)} need 0/1 labels; {label!r} has "
                f"other values such as {examples}. Fix: binarise the label or use rmse/mae."
            )


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

    Rows with a null variant, label or prediction are left out (counted in ``extra``).

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
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    metrics = list(test.metrics)
    binary = any(m in _BINARY for m in metrics)
    _label_check(df, label_column, prediction_column, binary, test.name)
    y = F.col(label_column).cast("double")
    p = F.col(prediction_column).cast("double")
    v = F.col(variant_column).cast("string")
    usable = y.isNotNull() & p.isNotNull() & ~F.isnan(y) & ~F.isnan(p) & v.isNotNull()
    base = df.select(v.alias("_v"), y.alias("_y"), p.alias("_p"), usable.alias("_ok"))
    rows = base.where("_ok")
    thr = test.threshold
    pred_pos = F.col("_p") >= F.lit(thr)
    pos = F.col("_y") == 1.0
    pc = F.least(F.greatest(F.col("_p"), F.lit(_EPS)), F.lit(1 - _EPS))
    ll = -(F.col("_y") * F.log(pc) + (1 - F.col("_y")) * F.log(1 - pc))
    se = (F.col("_p") - F.col("_y")) * (F.col("_p") - F.col("_y"))
    ae = F.abs(F.col("_p") - F.col("_y"))

    def _moments(name: str, c: Column) -> list[Column]:
        return [F.sum(c).alias(f"{name}_s"), F.sum(c * c).alias(f"{name}_ss")]

    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col("_y")).alias("y_s"),
        F.sum(F.col("_y") * F.col("_y")).alias("y_ss"),
        F.sum((pos & pred_pos).cast("long")).alias("tp"),
        F.sum((~pos & pred_pos).cast("long")).alias("fp"),
        F.sum((pos & ~pred_pos).cast("long")).alias("fn"),
        F.sum(pos.cast("long")).alias("npos"),
        *_moments("p", F.col("_p")),
        *_moments("se", se),
        *_moments("ae", ae),
    ]
    if "log_loss" in metrics:
        aggs += _moments("ll", ll)
    stats = {r["_v"]: r.asDict() for r in rows.groupBy("_v").agg(*aggs).collect()}
    dropped = {
        r["_v"]: int(r["n"])
        for r in base.where(~F.col("_ok")).groupBy("_v").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    auc: dict[str, float | None] = {}
    if "auc" in metrics:
        # Mann-Whitney: each positive scores 1 per negative below it, 1/2 per tie
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
        for r in got.collect():
            auc[r["_v"]] = r["u"] / (r["P"] * r["N"]) if r["P"] and r["N"] else None

    values: dict[str, dict[str, float | None]] = {}
    counts_out: dict[str, dict[str, int]] = {}
    order = [x for x in test.variants if x in stats] + sorted(set(stats) - set(test.variants))
    for name in order:
        s = stats[name]
        counts_out[name] = {
            "rows": int(s["rows"]),
            "positives": int(s["npos"]),
            "negatives": int(s["rows"] - s["npos"]),
            "predicted_positives": int(s["tp"] + s["fp"]),
            "dropped_rows": dropped.get(name, 0),
        }
        values[name] = {m: _metric(m, s, auc.get(name)) for m in metrics}
    for name in test.variants:
        if name not in stats:
            counts_out[name] = {
                "rows": 0,
                "positives": 0,
                "negatives": 0,
                "predicted_positives": 0,
                "dropped_rows": dropped.get(name, 0),
            }
            values[name] = {m: None for m in metrics}
    control = str(test.control)
    comparisons = [
        _compare(m, name, control, stats.get(name), stats.get(control), auc, test.alpha)
        for name in test.variants
        if name != control
        for m in metrics
    ]
    primary = metrics[0]
    return ABTestResults(
        test=test.name,
        control=control,
        primary_metric=primary,
        metrics=values,
        counts=counts_out,
        comparisons=comparisons,
        sample_ratio_p_value=_srm(test, counts_out, exposures),
        winner=_winner(primary, control, comparisons),
        complete=test.is_complete(now),
        started_at=test.started_at,  # type: ignore[arg-type]
        ends_at=test.ends_at,
        extra={"unknown_variants": sorted(set(stats) - set(test.variants))},
    )


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _mean_var(s: Mapping[str, Any], name: str) -> tuple[float, float, int]:
    n = int(s["rows"])
    total, sq = float(s[f"{name}_s"] or 0.0), float(s[f"{name}_ss"] or 0.0)
    mean = total / n
    var = max(sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    return mean, var, n


def _metric(m: str, s: Mapping[str, Any], auc: float | None) -> float | None:
    n, tp, fp, fn = int(s["rows"]), int(s["tp"]), int(s["fp"]), int(s["fn"])
    tn = n - tp - fp - fn
    if m == "auc":
        return auc
    if m == "precision":
        return _div(tp, tp + fp)
    if m == "recall":
        return _div(tp, tp + fn)
    if m == "accuracy":
        return _div(tp + tn, n)
    if m == "f1":
        return _div(2 * tp, 2 * tp + fp + fn)
    if m == "positive_rate":
        return _div(float(s["y_s"] or 0.0), n)
    if m == "rmse":
        return math.sqrt(_mean_var(s, "se")[0])
    key = {"log_loss": "ll", "brier": "se", "mae": "ae", "mean_prediction": "p"}[m]
    return _mean_var(s, key)[0]


def _proportion(m: str, s: Mapping[str, Any]) -> tuple[float, float]:
    """(successes, trials) of a proportion metric."""
    n, tp, fp, fn = float(s["rows"]), float(s["tp"]), float(s["fp"]), float(s["fn"])
    if m == "precision":
        return tp, tp + fp
    if m == "recall":
        return tp, tp + fn
    if m == "accuracy":
        return n - fp - fn, n
    return float(s["y_s"] or 0.0), n  # positive_rate


def _hanley_mcneil(a: float, npos: int, nneg: int) -> float:
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (npos - 1) * (q1 - a * a) + (nneg - 1) * (q2 - a * a)) / (npos * nneg)
    return math.sqrt(max(var, 0.0))


def _compare(
    m: str,
    variant: str,
    control: str,
    s1: Mapping[str, Any] | None,
    s0: Mapping[str, Any] | None,
    auc: Mapping[str, float | None],
    alpha: float,
) -> Comparison:
    from scipy import stats as st

    v1 = None if s1 is None else _metric(m, s1, auc.get(variant))
    v0 = None if s0 is None else _metric(m, s0, auc.get(control))
    diff = None if v1 is None or v0 is None else v1 - v0
    lift = None if diff is None or not v0 else diff / abs(v0)
    lo = hi = pv = None
    kind = None
    z = st.norm.ppf(1 - alpha / 2)
    if diff is not None and s1 is not None and s0 is not None:
        if m == "auc":
            pos1, pos0 = int(s1["npos"]), int(s0["npos"])
            se = math.hypot(
                _hanley_mcneil(float(v1), pos1, int(s1["rows"]) - pos1),  # type: ignore[arg-type]
                _hanley_mcneil(float(v0), pos0, int(s0["rows"]) - pos0),  # type: ignore[arg-type]
            )
            kind = "z-test (Hanley-McNeil)"
            if se > 0:
                pv = float(2 * st.norm.sf(abs(diff) / se))
                lo, hi = diff - z * se, diff + z * se
        elif m in ("precision", "recall", "accuracy", "positive_rate"):
            x1, n1 = _proportion(m, s1)
            x0, n0 = _proportion(m, s0)
            kind = "two-proportion z-test"
            if n1 and n0:
                pooled = (x1 + x0) / (n1 + n0)
                se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
                if se0 > 0:
                    pv = float(2 * st.norm.sf(abs(diff) / se0))
                se = math.sqrt(v1 * (1 - v1) / n1 + v0 * (1 - v0) / n0)  # type: ignore[operator]
                lo, hi = diff - z * se, diff + z * se
        elif m in ("log_loss", "brier", "mae", "mean_prediction", "rmse"):
            key = {"log_loss": "ll", "brier": "se", "mae": "ae", "mean_prediction": "p"}.get(
                m, "se"
            )
            m1, var1, n1 = _mean_var(s1, key)
            m0, var0, n0 = _mean_var(s0, key)
            kind = "Welch t-test" + (" on squared error" if m == "rmse" else "")
            if n1 > 1 and n0 > 1 and (var1 > 0 or var0 > 0):
                res = st.ttest_ind_from_stats(
                    m1, math.sqrt(var1), n1, m0, math.sqrt(var0), n0, equal_var=False
                )
                pv = float(res.pvalue)
                se = math.sqrt(var1 / n1 + var0 / n0)
                dof = (var1 / n1 + var0 / n0) ** 2 / (
                    (var1 / n1) ** 2 / (n1 - 1) + (var0 / n0) ** 2 / (n0 - 1)
                )
                t = st.t.ppf(1 - alpha / 2, dof)
                if m != "rmse":  # rmse is tested through the MSE; no interval in rmse units
                    lo, hi = diff - t * se, diff + t * se
    significant = pv is not None and pv < alpha
    direction = HIGHER_IS_BETTER[m]
    better = None if diff is None or direction is None or diff == 0 else (diff > 0) == direction
    return Comparison(
        metric=m,
        variant=variant,
        control=control,
        value=v1,
        control_value=v0,
        difference=diff,
        relative_lift=lift,
        ci_low=lo,
        ci_high=hi,
        p_value=pv,
        test=kind,
        significant=significant,
        better=better,
    )


def _srm(
    test: ABTest,
    counts: Mapping[str, Mapping[str, int]],
    exposures: Mapping[str, int] | None,
) -> float | None:
    from scipy import stats as st

    if exposures is None:
        observed = [counts[v]["rows"] + counts[v]["dropped_rows"] for v in test.variants]
    else:
        observed = [int(exposures.get(v, 0)) for v in test.variants]
    total = sum(observed)
    if total == 0:
        return None
    traffic = dict(test.traffic or {})
    expected = [traffic[v] * total for v in test.variants]
    return float(st.chisquare(observed, expected).pvalue)


def _winner(primary: str, control: str, comparisons: Sequence[Comparison]) -> str | None:
    mine = [c for c in comparisons if c.metric == primary]
    better = [c for c in mine if c.significant and c.better]
    if better:
        best = max(
            better, key=lambda c: (c.difference or 0.0) * (1 if HIGHER_IS_BETTER[primary] else -1)
        )
        return best.variant
    if mine and all(c.significant and c.better is False for c in mine):
        return control
    return None
