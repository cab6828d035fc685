"""Monitoring a view: check one Delta version of its feature table against rules, alert, record.

:func:`monitor_view` gathers what the rules need — statistics of the checked version, a
baseline and the drift against it, validation of expectations, the newest timestamp — and
nothing more; judges the rules (:func:`~fstore_spark.quality.rules.evaluate_rules`); sends the
alerts; and appends the check to ``_monitoring/<view>``, so the history of checks is a Delta
table too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import ValidationError
from fstore_spark.lakehouse.tables import (
    FEATURE_TIMESTAMP,
    read_feature_table,
    save_delta,
    to_utc,
)
from fstore_spark.quality.alerts import Alert, AlertChannel, Channel, send_alerts
from fstore_spark.quality.drift import DriftReport, detect_drift
from fstore_spark.quality.feature_table import resolve_version, select_rows
from fstore_spark.quality.rules import MonitorRule, evaluate_rules
from fstore_spark.quality.statistics import Statistics, compute_statistics, view_statistics
from fstore_spark.quality.validation import ValidationReport, validate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["MonitorResult", "monitor_view", "monitoring_table_path"]

TimeWindow = tuple[datetime | str, datetime | str]


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring check of a view.

    Attributes:
        view: View name.
        table_version: The checked Delta version.
        baseline_version: The baseline's Delta version, if any.
        checked_at: When (UTC).
        alerts: The broken rules.
        delivery_errors: Channels that failed to deliver (the alerts are still recorded).
        statistics: Statistics of the checked version.
        drift: Drift against the baseline, if the rules needed it.
    """

    view: str
    table_version: int
    baseline_version: int | None
    checked_at: datetime
    alerts: list[Alert]
    delivery_errors: list[str]
    statistics: Statistics
    drift: DriftReport | None = None

    @property
    def ok(self) -> bool:
        """Whether no rule was broken."""
        return not self.alerts

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: view, versions, time, alerts, delivery errors."""
        return {
            "view": self.view,
            "table_version": self.table_version,
            "baseline_version": self.baseline_version,
            "checked_at": self.checked_at.isoformat(),
            "alerts": [a.to_dict() for a in self.alerts],
            "delivery_errors": list(self.delivery_errors),
        }


def monitoring_table_path(project_root: str, view: str) -> str:
    """Delta table holding a view's monitoring checks and their alerts (append-only)."""
    return f"{project_root.rstrip('/')}/_monitoring/{view}"


def monitor_view(
    spark: SparkSession,
    project_root: str,
    view: str,
    features: Sequence[str],
    rules: Sequence[MonitorRule],
    *,
    version: int | None = None,
    baseline_version: int | None = None,
    baseline_window: TimeWindow | None = None,
    channels: Sequence[AlertChannel | Channel] = ("log",),
    now: datetime | None = None,
    drift_options: Mapping[str, Any] | None = None,
) -> MonitorResult:
    """Check a view's feature table (default its latest version) against rules.

    The baseline is another version (``baseline_version``), or the rows of
    ``baseline_window`` (``[start, end)`` on ``feature_timestamp``) at the baseline version
    (default: the checked version); without either, rules that need a baseline raise.
    Alerts go to ``channels`` (see :func:`~fstore_spark.quality.alerts.send_alerts`), and
    every check, with its alerts, is appended to ``_monitoring/<view>`` so the history of
    checks is a Delta table too. ``drift_options`` are passed to
    :func:`~fstore_spark.quality.drift.detect_drift`.

    Raises:
        ValidationError: a rule needs a baseline and none was given.
        NotFoundError: the view has no feature table, or not that version.
    """
    v = resolve_version(spark, project_root, view, version)
    now = now or datetime.now(UTC)
    subject = f"view {view!r} version {v}"
    has_baseline = baseline_version is not None or baseline_window is not None
    _require_baseline(rules, has_baseline, subject)  # before any Spark work
    stats = view_statistics(spark, project_root, view, features, version=v)
    current = read_feature_table(spark, project_root, view, as_of_version=v)
    base_v = baseline_version if baseline_version is not None else v
    baseline_stats: Statistics | None = None
    drift: DriftReport | None = None
    if has_baseline and any(r.needs_baseline for r in rules):
        baseline_stats, drift = _compare_with_baseline(
            spark,
            project_root,
            view,
            features,
            rules,
            current,
            version=base_v,
            window=baseline_window,
            drift_options=drift_options,
        )
    alerts = evaluate_rules(
        rules,
        stats,
        subject=subject,
        baseline=baseline_stats,
        drift=drift,
        validation=_validations(current, rules),
        newest=_newest_timestamp(current, rules),
        now=now,
    )
    errors = send_alerts(alerts, channels) if alerts else []
    checked_base = base_v if has_baseline else None
    path = monitoring_table_path(project_root, view)
    _record_check(spark, path, now, v, checked_base, alerts, errors)
    return MonitorResult(view, v, checked_base, now, alerts, errors, stats, drift)


def _require_baseline(rules: Sequence[MonitorRule], has_baseline: bool, subject: str) -> None:
    """Fail fast when a rule compares with a baseline and the check was given none."""
    if has_baseline or not any(r.needs_baseline for r in rules):
        return
    names = sorted({r.metric for r in rules if r.needs_baseline})
    raise ValidationError(
        f"{subject}: rule(s) {names} compare with a baseline. Fix: give baseline_version= "
        "or baseline_window=(start, end)."
    )


def _compare_with_baseline(
    spark: SparkSession,
    project_root: str,
    view: str,
    features: Sequence[str],
    rules: Sequence[MonitorRule],
    current: DataFrame,
    *,
    version: int,
    window: TimeWindow | None,
    drift_options: Mapping[str, Any] | None,
) -> tuple[Statistics, DriftReport | None]:
    """Statistics of the baseline, and its drift against the current data if a rule needs it.

    The baseline is the rows of ``window`` at Delta ``version`` (all of them without a
    window). A whole version has kept statistics (read back, or computed and kept); a window
    of rows is described on the fly, as it is not a version of its own.
    """
    table = read_feature_table(spark, project_root, view, as_of_version=version)
    baseline = select_rows(table, window)
    cols = [f for f in features if f in current.columns and f in baseline.columns]
    if window is None:
        stats = view_statistics(spark, project_root, view, features, version=version)
    else:
        stats = compute_statistics(baseline, cols, table_version=version)
    drift = None
    if any(r.metric.startswith("drift_") for r in rules):
        drift = detect_drift(baseline, current, cols, **dict(drift_options or {}))
    return stats, drift


def _validations(current: DataFrame, rules: Sequence[MonitorRule]) -> dict[int, ValidationReport]:
    """Per index of an ``expectation`` rule, the validation of its expectations."""
    return {
        i: validate(current, r.expectations)
        for i, r in enumerate(rules)
        if r.metric == "expectation"
    }


def _newest_timestamp(current: DataFrame, rules: Sequence[MonitorRule]) -> datetime | None:
    """The newest feature timestamp, if a ``freshness_hours`` rule needs it.

    An empty table counts as last fed at the epoch, so its freshness rule fires.
    """
    from pyspark.sql import functions as F

    if not any(r.metric == "freshness_hours" for r in rules):
        return None
    row = current.agg(F.max(FEATURE_TIMESTAMP).alias("m")).first()
    if row is not None and row["m"] is not None:
        return to_utc(row["m"])
    return datetime(1970, 1, 1, tzinfo=UTC)


def _record_check(
    spark: SparkSession,
    path: str,
    now: datetime,
    version: int,
    baseline_version: int | None,
    alerts: Sequence[Alert],
    errors: Sequence[str],
) -> None:
    """Append one check, with its alerts and delivery errors as JSON, to the monitoring log."""
    record = spark.createDataFrame(
        [
            (
                now.astimezone(UTC).replace(tzinfo=None),
                version,
                baseline_version,
                len(alerts),
                json.dumps([a.to_dict() for a in alerts]),
                json.dumps(list(errors)),
            )
        ],
        "checked_at timestamp, table_version long, baseline_version long, alert_count int, "
        "alerts string, delivery_errors string",
    )
    save_delta(record.write.format("delta").mode("append"), path)
