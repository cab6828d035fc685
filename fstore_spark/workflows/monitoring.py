"""``DriftMonitor`` and ``FeatureMonitor``: a baseline to compare with, metrics to watch.

Example::

    drift = DriftMonitor()
    drift.set_baseline(feature_set.id, start_date="2024-01-01", end_date="2024-01-31")
    report = drift.check_drift(current_data=test_df, method="ks_test", threshold=0.05)
    report.drifted_columns

    monitor = FeatureMonitor()
    monitor.add_metric("missing_values", threshold=0.05, alert_channel="slack")
    monitor.start_monitoring(feature_set.id, frequency="1h")

``start_monitoring`` checks the set's views now (alerts go to the metrics' channels, every
check is recorded in the view's monitoring table) and stores the monitor with its frequency in
the registry (category ``schedule``), where ``fstore scheduler`` runs it at that frequency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.core import format_duration, parse_duration, resolve_feature_refs
from fstore_spark.errors import DefinitionError, ValidationError
from fstore_spark.lakehouse.tables import to_utc
from fstore_spark.offline.training import to_spark_df
from fstore_spark.quality import MonitorRule, resolve_channels
from fstore_spark.workflows.binding import bound

if TYPE_CHECKING:
    from fstore_spark.core.feature_set_versions import FeatureSetVersion
    from fstore_spark.quality import DriftReport, MonitorResult
    from fstore_spark.store import FeatureStore

__all__ = ["DriftMonitor", "FeatureMonitor"]

_Time = datetime | str


class DriftMonitor:
    """Drift of current data against a baseline period of a feature set or view.

    Args:
        store: The store (default: :func:`~fstore_spark.workflows.default_store`).
    """

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.baseline: tuple[str | FeatureSetVersion, tuple[_Time, _Time] | None, int | None]
        self.baseline = ("", None, None)

    def set_baseline(
        self,
        target: str | FeatureSetVersion,
        start_date: _Time | None = None,
        end_date: _Time | None = None,
        *,
        version: int | None = None,
    ) -> None:
        """The baseline: rows with ``start_date <= feature_timestamp < end_date``.

        ``target`` is a feature set (``name``, ``name@vN``: its views at the pinned versions)
        or a view (its latest table, or Delta ``version``).
        """
        if (start_date is None) != (end_date is None):
            raise ValidationError("set_baseline: give both start_date and end_date, or neither.")
        window = None if start_date is None or end_date is None else (start_date, end_date)
        if window is not None and to_utc(window[0]) >= to_utc(window[1]):
            raise ValidationError(f"set_baseline: start_date {start_date} is not before end_date.")
        self.baseline = (target, window, version)

    def check_drift(
        self,
        current_data: Any = None,
        method: str = "ks_test",
        threshold: float | None = None,
        *,
        features: list[str] | None = None,
        window: tuple[_Time, _Time] | None = None,
    ) -> DriftReport:
        """Test each feature of ``current_data`` (Spark or pandas) against the baseline.

        Without ``current_data``, the target's current rows in ``window`` are compared.
        ``method``: ``ks_test`` (KS for numbers, chi-square for categories; flag when the
        p-value is below ``threshold``, default 0.05) or ``psi`` (default threshold 0.2).
        """
        target, base_window, version = self.baseline
        if not target:
            raise ValidationError("no baseline: call set_baseline(...) first.")
        store = bound(self._store)
        current = None
        if current_data is not None:  # a training set, or Spark / pandas data
            current = to_spark_df(store.spark, getattr(current_data, "df", current_data))
        return store.detect_drift(
            target,
            baseline_version=version,
            baseline_window=base_window,
            window=window,
            current=current,
            features=features,
            method=method,
            threshold=threshold,
        )


class FeatureMonitor:
    """Metrics with thresholds and alert channels, checked on a feature set or view.

    Args:
        store: The store (default: :func:`~fstore_spark.workflows.default_store`).
    """

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.metrics: list[tuple[MonitorRule, str | Callable[..., Any]]] = []

    def add_metric(
        self,
        metric: str,
        threshold: float,
        alert_channel: str | Callable[..., Any] = "log",
        *,
        columns: tuple[str, ...] = (),
        severity: str = "warning",
    ) -> MonitorRule:
        """Watch ``metric`` (see :class:`~fstore_spark.quality.MonitorRule`) against a threshold.

        ``alert_channel``: ``slack``, ``email``, ``webhook``, ``log``, an http(s) URL or a
        callable; a named channel must be configured (``alerts:`` in the config): checked
        now, not when an alert fires.
        """
        resolve_channels([alert_channel], bound(self._store).config.alerts)
        rule = MonitorRule(metric, threshold, columns=tuple(columns), severity=severity)
        self.metrics.append((rule, alert_channel))
        return rule

    def start_monitoring(
        self, target: str | FeatureSetVersion, frequency: str = "1h"
    ) -> list[MonitorResult]:
        """Check ``target`` now, and store the monitor with its ``frequency`` in the registry.

        ``target``: a feature set (each of its views, the set's features only) or a view.
        Returns one result per view checked.
        """
        every = format_duration(parse_duration(frequency))
        results = self.check(target)
        store = bound(self._store)
        name = target if isinstance(target, str) else target.id
        entry = {
            "kind": "monitor",
            "target": name,
            "frequency": every,
            "rules": [_rule_dict(r, ch) for r, ch in self.metrics],
        }
        store.registry.apply([], settings={("schedule", f"monitor:{name}"): entry})
        return results

    def check(self, target: str | FeatureSetVersion) -> list[MonitorResult]:
        """Check ``target`` once against every metric (one result per view)."""
        if not self.metrics:
            raise DefinitionError("no metrics: call add_metric(...) first.")
        store = bound(self._store)
        plan = self._views(store, target)
        return [self._check(store, view, cols) for view, cols in plan.items()]

    @classmethod
    def from_schedule(
        cls, entry: dict[str, Any], store: FeatureStore | None = None
    ) -> FeatureMonitor:
        """The monitor a ``schedule`` registry entry stores (see :meth:`start_monitoring`)."""
        from fstore_spark.quality import Expectation

        monitor = cls(store)
        for d in entry["rules"]:
            rule = MonitorRule(
                d["metric"],
                d["threshold"],
                columns=tuple(d["columns"]),
                severity=d["severity"],
                expectations=tuple(Expectation.from_dict(e) for e in d["expectations"]),
            )
            monitor.metrics.append((rule, d["channel"]))
        return monitor

    def _check(self, store: FeatureStore, view: str, columns: list[str] | None) -> MonitorResult:
        """One view against every metric, each alerting on its own channel."""
        by_channel: dict[int, list[MonitorRule]] = {}
        channels: dict[int, Any] = {}
        for rule, ch in self.metrics:
            chosen = (
                rule if columns is None or rule.columns else replace(rule, columns=tuple(columns))
            )
            by_channel.setdefault(id(ch), []).append(chosen)
            channels[id(ch)] = ch
        results = [
            store.monitor(view, rules, channels=[channels[k]]) for k, rules in by_channel.items()
        ]
        if len(results) == 1:
            return results[0]
        first = results[0]
        alerts = [a for r in results for a in r.alerts]
        return replace(first, alerts=alerts)

    @staticmethod
    def _views(store: FeatureStore, target: str | FeatureSetVersion) -> dict[str, list[str] | None]:
        """View -> the set's features in it (``None``: every feature of a plain view)."""
        names = {s.name for s in store.list_feature_sets()}
        name = target if isinstance(target, str) else target.id
        if name.split("@")[0] not in names:
            return {name: None}
        fsv = store.get_feature_set_version(name)
        views = {v.name: v for v in store.list_feature_views()}
        out: dict[str, list[str] | None] = {}
        for ref in resolve_feature_refs(list(fsv.features), views):
            cols = out.setdefault(ref.view, [])
            assert cols is not None
            cols.append(ref.feature)
        return out


def _rule_dict(rule: MonitorRule, channel: str | Callable[..., Any]) -> dict[str, Any]:
    """A metric as stored in a schedule (a callable channel is stored as ``log``)."""
    d = asdict(rule)
    d["expectations"] = [e.to_dict() for e in rule.expectations]
    d["channel"] = channel if isinstance(channel, str) else "log"
    return d
