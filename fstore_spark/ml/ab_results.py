"""The outcome of an A/B test: per-variant metrics, comparisons with the control, the winner.

Plain data, filled by :func:`fstore_spark.ml.ab_metrics.evaluate_variants`, with three views:
a pandas table (:meth:`ABTestResults.to_pandas`), a JSON-ready dict
(:meth:`ABTestResults.to_dict`) and an MLflow run (:meth:`ABTestResults.log_to_mlflow`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import LineageError
from fstore_spark.lineage.tracking import RunTarget

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ABTestResults", "Comparison"]

# Below this p-value the rows per variant are implausible under the traffic split.
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control on one metric.

    Attributes:
        metric: The metric compared.
        variant: The treatment.
        control: The control variant.
        value: The treatment's value (``None`` where undefined).
        control_value: The control's value.
        difference: ``value - control_value``.
        relative_lift: ``difference / |control_value|`` (``None`` when the control is 0).
        ci_low: Lower bound of the ``1 - alpha`` confidence interval of the difference.
        ci_high: Upper bound of that interval.
        p_value: Two-sided p-value (``None`` when the metric has no test, e.g. F1, or the
            data has no variance).
        test: The test used (``"two-proportion z-test"``...).
        significant: ``p_value < alpha``.
        better: Whether the treatment is better (by the metric's direction); ``None`` for
            no difference or a metric without a direction.
    """

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
    """Per-variant metrics and comparisons of an A/B test (``FeatureStore.ab_test_results``).

    Attributes:
        test: Test name.
        control: The control variant.
        primary_metric: The metric that decides the winner (the test's first).
        metrics: Variant -> metric -> value (``None`` where undefined, e.g. AUC of one class).
        counts: Variant -> rows, positives, negatives, predicted positives, dropped rows.
        comparisons: Every treatment x metric against the control.
        sample_ratio_p_value: Chi-square p-value of rows per variant against the traffic
            split; below 0.001 means assignment or logging is broken (``sample_ratio_mismatch``).
        winner: The variant significantly better than the control on the primary metric
            (the best such), the control when every treatment is significantly worse, else
            ``None`` (no conclusion yet).
        complete: Whether the test's duration has passed.
        started_at: When the test started.
        ends_at: When its duration ends.
        extra: Further facts (``unknown_variants``: variants in the data but not the test).
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
        return p is not None and p < SRM_ALPHA

    def to_pandas(self) -> pd.DataFrame:
        """One row per variant and metric: value, and for treatments the comparison.

        Rows follow :attr:`metrics` (variants, then metrics, in order); the comparison
        columns are null for the control.
        """
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

    def log_to_mlflow(self, run: RunTarget | None = None) -> None:
        """Log the results to ``run``, by default the active MLflow run.

        Metrics ``<variant>.<metric>``, ``<variant>.rows`` and ``<variant>.<metric>.p_value``
        (undefined and non-finite values are left out); tags ``fstore.ab_test`` and
        ``fstore.ab_test.winner``; the whole result as JSON. Through an ``MlflowClient`` bound
        to the run's tracking URI: nothing process-wide changes.

        Raises:
            LineageError: no run given and none active (start one with ``mlflow.start_run()``,
                or use ``store.ab_test_results(..., log_to_mlflow=True)``).
        """
        import mlflow
        from mlflow.entities import Metric, RunTag

        if run is None:
            active = mlflow.active_run()
            if active is None:
                raise LineageError(
                    f"A/B test {self.test!r}: no active MLflow run to log to. Fix: call it "
                    "inside mlflow.start_run(), or use store.ab_test_results(..., "
                    "log_to_mlflow=True), which logs to a run of its own."
                )
            run = RunTarget(tracking_uri=mlflow.get_tracking_uri(), run_id=active.info.run_id)
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
        now = int(time.time() * 1000)
        tags = {"fstore.ab_test": self.test, "fstore.ab_test.winner": str(self.winner)}
        client = run.client()
        client.log_batch(
            run.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in values.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.log_dict(run.run_id, self.to_dict(), f"ab_test_{self.test}.json")
