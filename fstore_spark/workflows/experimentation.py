"""``ABTest`` with ``start()`` and ``get_results()``: an A/B test of feature sets on a store.

Example::

    test = ABTest(name="new_features_test",
                  feature_sets={"control": "fraud_detection_v1",
                                "treatment": "fraud_detection_v2"},
                  metrics=["auc", "precision", "recall"], duration="7d")
    test.start()                      # pins each set's latest version, starts the clock
    test.get_results()                # status: window, pinned sets, predictions per variant
    test.get_results(labels=labels_df, label_column="is_fraud")   # metrics and p-values

Traffic is assigned with :meth:`FeatureStore.assign_ab_variants` (or served with
``get_ab_online_features``), scored with ``score_ab_test`` or logged with
``log_ab_predictions``; the results join the logged predictions to the labels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.lakehouse.tables import is_delta_table, read_delta
from fstore_spark.ml import ABTest as _ABTestDefinition
from fstore_spark.workflows.binding import bound

if TYPE_CHECKING:
    from fstore_spark.ml import ABTestResults
    from fstore_spark.store import FeatureStore

__all__ = ["ABTest"]


class ABTest(_ABTestDefinition):
    """An :class:`fstore_spark.ml.ABTest` that starts itself and reports on a store."""

    def start(
        self, *, store: FeatureStore | None = None, start: datetime | str | None = None
    ) -> _ABTestDefinition:
        """Start the test on ``store`` (default store): pin the sets' versions, start the clock.

        Starting it again returns the started test; returns the stored, started test.
        """
        return bound(store).start_ab_test(self, start=start)

    def get_results(
        self,
        labels: Any = None,
        *,
        label_column: str = "label",
        store: FeatureStore | None = None,
        **options: Any,
    ) -> ABTestResults | dict[str, Any]:
        """Metrics per variant when ``labels`` are given, else the test's status.

        With labels: :meth:`FeatureStore.ab_test_results` (``options`` go there). Without:
        ``{"test", "started_at", "ends_at", "running", "feature_sets", "predictions"}``, the
        predictions logged so far per variant.
        """
        st = bound(store)
        if labels is not None:
            return st.ab_test_results(self.name, labels, label_column=label_column, **options)
        started = st.get_ab_test(self.name)
        now = datetime.now(UTC)
        return {
            "test": started.name,
            "started_at": started.started_at,
            "ends_at": started.ends_at,
            "running": bool(started.ends_at and now < started.ends_at),
            "feature_sets": dict(started.feature_sets),
            "predictions": _predictions(st, started),
        }


def _predictions(store: FeatureStore, test: _ABTestDefinition) -> dict[str, int]:
    """Predictions logged per variant (zero for a variant with none)."""
    counts = dict.fromkeys(test.feature_sets, 0)
    path = store.table_path(f"_experiments/{test.name}/predictions")
    if is_delta_table(store.spark, path):
        log = read_delta(store.spark, path)
        counts.update(
            {r["variant"]: int(r["count"]) for r in log.groupBy("variant").count().collect()}
        )
    return counts
