"""A/B tests of feature sets: the definition and the stable assignment of units to variants.

An :class:`ABTest` compares feature sets (each variant a feature set, usually with the model
trained on it) on live traffic for a fixed duration. It is plain, validated data with a JSON
round trip, so the registry can store and compare it.

**Assignment** is deterministic and stateless: a unit (the entity's join key values) goes to
the variant whose traffic slice holds ``sha256("<test name>:<key values>")`` mod 10,000. The
same unit always gets the same variant, two tests assign independently (the test name salts
the hash), and Spark (:func:`variant_column`) and Python (:meth:`ABTest.assign`, for online
requests) give the same answer for the same key, so batch and online traffic agree.

Metrics are computed by :func:`fstore_spark.ml.ab_metrics.evaluate_variants` and compared by
:mod:`fstore_spark.ml.ab_stats`. The store methods (:meth:`FeatureStore.start_ab_test`,
``score_ab_test``, ``ab_test_results``) keep the test in the registry, log the scored rows to
a Delta table and join the labels.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.core import format_duration, parse_duration
from fstore_spark.errors import ExperimentError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "ABTest",
    "BUCKETS",
    "HIGHER_IS_BETTER",
    "METRICS",
    "check_key_types",
    "variant_column",
]

BUCKETS = 10_000
# 15 hex digits are 60 bits: they fit a signed long in Spark's conv(), so Spark and Python
# reduce the same integer modulo BUCKETS.
_HEX_DIGITS = 15
# Separates the values of a compound key; a control character cannot occur in normal keys, so
# ("a:b", "c") and ("a", "b:c") hash differently.
_SEP = "\x1f"
# Spark types whose cast to string equals Python's str() of the value (so both sides hash alike).
_KEY_TYPES = ("string", "tinyint", "smallint", "int", "bigint")

# Known metrics and whether a higher value is better (None: no direction, e.g. a mean score).
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


def _parse_time(value: datetime | str | None) -> datetime | None:
    """An ISO string or datetime as an aware datetime (naive values are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------- validation


def _check_name(name: Any) -> None:
    """The name salts the hash and names registry entries and tables: keep it to a safe set."""
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ExperimentError(
            f"invalid A/B test name {name!r}. Fix: use letters, digits, '_' or '-'."
        )


def _check_variants(owner: str, feature_sets: Mapping[str, str] | None) -> dict[str, str]:
    """Variant -> feature set, at least two, all non-empty strings."""
    fsets = dict(feature_sets or {})
    if len(fsets) < 2:
        raise ExperimentError(f"{owner}: needs at least two variants, got {list(fsets)}.")
    for variant, fs in fsets.items():
        if not isinstance(variant, str) or not variant or not isinstance(fs, str) or not fs:
            raise ExperimentError(
                f"{owner}: variant {variant!r} -> {fs!r}: variants and feature sets are "
                "non-empty strings."
            )
    return fsets


def _check_metrics(owner: str, metrics: Sequence[str]) -> tuple[str, ...]:
    """At least one metric, each known, none repeated (the first is the primary metric)."""
    checked = tuple(metrics)
    unknown = [m for m in checked if m not in HIGHER_IS_BETTER]
    if not checked or unknown:
        raise ExperimentError(
            f"{owner}: unknown metric(s) {unknown or '(none given)'}; known: {', '.join(METRICS)}."
        )
    if len(set(checked)) != len(checked):
        raise ExperimentError(f"{owner}: metrics {list(checked)} repeat a name.")
    return checked


def _check_duration(owner: str, duration: timedelta | str) -> timedelta:
    """The duration as a positive timedelta (``"7d"`` or a timedelta)."""
    try:
        return parse_duration(duration)
    except Exception as exc:
        raise ExperimentError(f"{owner}: duration: {exc}") from exc


def _check_traffic(
    owner: str, traffic: Mapping[str, float] | None, variants: Sequence[str]
) -> dict[str, float]:
    """Variant -> share of units, in variant order: positive, summing to 1, each >= 1/BUCKETS.

    ``None`` splits equally. A share below one bucket would get no units at all.
    """
    shares = {v: 1.0 / len(variants) for v in variants} if traffic is None else dict(traffic)
    if set(shares) != set(variants):
        raise ExperimentError(
            f"{owner}: traffic names {sorted(shares)} but the variants are {sorted(variants)}."
        )
    if any(not isinstance(s, int | float) or s <= 0 for s in shares.values()) or not (
        math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9)
    ):
        raise ExperimentError(f"{owner}: traffic shares {shares} must be positive and sum to 1.")
    if min(shares.values()) * BUCKETS < 1:
        raise ExperimentError(f"{owner}: a traffic share below 1/{BUCKETS} gets no units.")
    return {v: float(shares[v]) for v in variants}


def _check_models(
    owner: str, models: Mapping[str, str] | None, variants: Sequence[str]
) -> dict[str, str] | None:
    """Variant -> model URI, one per variant, or ``None`` (the caller scores)."""
    checked = None if models is None else dict(models)
    if checked is not None and set(checked) != set(variants):
        raise ExperimentError(
            f"{owner}: models name {sorted(checked)} but the variants are {sorted(variants)}; "
            "give one model per variant."
        )
    return checked


def _check_control(owner: str, control: str | None, variants: Sequence[str]) -> str:
    """The control variant; default the first declared."""
    chosen = control if control is not None else variants[0]
    if chosen not in variants:
        raise ExperimentError(f"{owner}: control {chosen!r} is not a variant ({list(variants)}).")
    return chosen


def _check_levels(owner: str, alpha: float, threshold: float) -> tuple[float, float]:
    """``alpha`` in (0, 1) and a finite ``threshold``, as floats."""
    if not 0.0 < float(alpha) < 1.0:
        raise ExperimentError(f"{owner}: alpha must be in (0, 1), got {alpha!r}.")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ExperimentError(f"{owner}: threshold must be a number, got {threshold!r}.")
    return float(alpha), float(threshold)


# ---------------------------------------------------------------------- the definition


@dataclass(frozen=True)
class ABTest:
    """An A/B test of feature sets, validated and normalised when constructed.

    Rules: a name of letters, digits, ``_`` and ``-``; at least two variants; known, distinct
    metrics; a positive duration; traffic shares that are positive and sum to 1; one model
    per variant when models are given; a control among the variants. A violation raises
    :class:`~fstore_spark.errors.ExperimentError` naming the fix. After construction the
    mappings are plain dicts in variant order, ``duration`` a timedelta and ``started_at`` an
    aware datetime.

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
        """Validate every field (in declaration order) and store the normalised values."""
        _check_name(self.name)
        owner = f"ABTest {self.name!r}"
        fsets = _check_variants(owner, self.feature_sets)
        variants = list(fsets)
        metrics = _check_metrics(owner, self.metrics)
        duration = _check_duration(owner, self.duration)
        traffic = _check_traffic(owner, self.traffic, variants)
        models = _check_models(owner, self.models, variants)
        control = _check_control(owner, self.control, variants)
        alpha, threshold = _check_levels(owner, self.alpha, self.threshold)
        set_ = object.__setattr__  # frozen: normalise through the back door, once
        set_(self, "feature_sets", fsets)
        set_(self, "metrics", metrics)
        set_(self, "duration", duration)
        set_(self, "traffic", traffic)
        set_(self, "models", models)
        set_(self, "control", control)
        set_(self, "threshold", threshold)
        set_(self, "alpha", alpha)
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
        """Whether the test's duration has passed at ``now`` (default the current time)."""
        end = self.ends_at
        return end is not None and (now or datetime.now(UTC)) >= end

    # ------------------------------------------------------------------ assignment

    def _cuts(self) -> list[tuple[str, int]]:
        """(variant, exclusive upper bucket) in declared order; the last ends at BUCKETS."""
        cuts, acc = [], 0.0
        traffic = dict(self.traffic or {})
        for i, v in enumerate(self.variants):
            acc += traffic[v]
            cuts.append((v, BUCKETS if i == len(traffic) - 1 else round(acc * BUCKETS)))
        return cuts

    def bucket(self, key: Any) -> int:
        """The unit's hash bucket in ``[0, 10000)`` (a value, or a tuple of join key values).

        Raises:
            ExperimentError: a key value is not a string or an integer (floats and booleans
                have no text that Spark and Python both write the same way).
        """
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


# ---------------------------------------------------------------------- assignment in Spark


def variant_column(test: ABTest, key_columns: Sequence[str]) -> Column:
    """Spark expression giving each row's variant; null when a key is null.

    Equal to :meth:`ABTest.assign` on the same key values (strings and integers). Lazy: a
    column expression built from ``sha2``, ``conv`` and ``pmod``, no UDF.

    Raises:
        ExperimentError: ``key_columns`` is empty.
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
    # concat_ws skips nulls, so a partial key would hash as another unit: null it instead
    any_null = F.col(key_columns[0]).isNull()
    for k in key_columns[1:]:
        any_null = any_null | F.col(k).isNull()
    return F.when(any_null, F.lit(None).cast("string")).otherwise(expr)


def check_key_types(df: DataFrame, key_columns: Sequence[str], test: str) -> None:
    """Key columns must exist and be strings or integers (so Python and Spark hash alike).

    Raises:
        ExperimentError: a key column is missing or has another type.
    """
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
