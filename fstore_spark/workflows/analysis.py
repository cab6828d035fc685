"""``FeatureSelector``: correlation and feature selection over a feature group.

Example::

    selector = FeatureSelector()
    corr = selector.correlation_analysis(feature_group="customer_behavior")
    important = selector.select_features(method="mutual_info", target="conversion", top_k=10)
    # ['customer_behavior:sum_purchase_amount_30d', ...]: references for create_feature_set

Without ``data=``, selection builds its training data from the feature group: each event of
the group's source is a label row (its ``target`` column is the label), with the group's
features as of the event's time (point-in-time join, so an event's own amount counts in its
windows, as it would online right after the event). Aggregates of the target column itself
are never candidates: they would carry the label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fstore_spark.errors import ValidationError
from fstore_spark.lakehouse.tables import read_source
from fstore_spark.ml.selection import correlation_matrix, select_features
from fstore_spark.workflows.binding import bound

if TYPE_CHECKING:
    import pandas as pd

    from fstore_spark.core import FeatureView
    from fstore_spark.offline.training import HistoricalFeatures
    from fstore_spark.store import FeatureStore

__all__ = ["FeatureSelector"]

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


class FeatureSelector:
    """Correlations and the most informative features of a feature group (or of given data).

    Args:
        store: The store to read from (default: :func:`~fstore_spark.workflows.default_store`).
    """

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.feature_group: str | None = None

    @property
    def store(self) -> FeatureStore:
        """The bound store."""
        return bound(self._store)

    def correlation_analysis(
        self, feature_group: str | None = None, *, data: Any = None
    ) -> pd.DataFrame:
        """Pearson correlation of a group's numeric features (latest feature table) or of data.

        The group becomes this selector's group for :meth:`select_features`.
        """
        if data is not None:
            return correlation_matrix(getattr(data, "df", data))
        group = self._group(feature_group)
        table = self.store.read_view(group)
        view = self.store.get_feature_view(group)
        kinds = dict(table.dtypes)
        cols = [f for f in view.feature_names if kinds.get(f, "").startswith(_NUMERIC)]
        return correlation_matrix(table, cols)

    def select_features(
        self,
        method: str = "mutual_info",
        target: str = "label",
        top_k: int = 10,
        *,
        data: Any = None,
        feature_group: str | None = None,
        max_correlation: float | None = None,
    ) -> list[str]:
        """The ``top_k`` features most related to ``target``, best first.

        With ``data`` (a training set or DataFrame holding ``target``), the column names; with
        a feature group (this selector's, or ``feature_group``), ``group:feature`` references
        ready for :meth:`FeatureStore.create_feature_set`. ``method``: ``mutual_info`` or
        ``correlation`` (see :func:`fstore_spark.ml.select_features`).
        """
        if data is not None:
            return select_features(
                data, target, method=method, top_k=top_k, max_correlation=max_correlation
            )
        group = self._group(feature_group)
        view = self.store.get_feature_view(group)
        training = self._group_training_set(view, target)
        # a window over the target itself would leak the label into its own features
        leaks = {a.name for a in view.aggregations if a.column == target}
        candidates = [f for f in view.feature_names if f not in leaks]
        picked = select_features(
            training,
            target,
            candidates,
            method=method,
            top_k=top_k,
            max_correlation=max_correlation,
        )
        return [f"{group}:{f}" for f in picked]

    def _group(self, feature_group: str | None) -> str:
        group = feature_group or self.feature_group
        if group is None:
            raise ValidationError(
                "no feature group: pass feature_group=... (or data=...), or run "
                "correlation_analysis(feature_group=...) first."
            )
        self.feature_group = group
        return group

    def _group_training_set(self, view: FeatureView, target: str) -> HistoricalFeatures:
        """The group's source events as labels (``target``), with the group's features."""
        store = self.store
        group = view.name
        events = read_source(store.spark, view.source, store.config.project_root)
        if target not in events.columns:
            raise ValidationError(
                f"target {target!r} is not a column of {group!r}'s source "
                f"{view.source.name!r} (columns: {', '.join(events.columns)}). Fix: pass "
                "data=<a training set with the target>."
            )
        keys = [k for e in view.entities for k in store.get_entity(e).join_keys]
        ts = view.source.timestamp_column
        labels = events.select(*keys, ts, target).where(events[target].isNotNull())
        return store.get_historical_features(labels, [f"{group}:*"], timestamp_column=ts)
