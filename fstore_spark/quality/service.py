"""Quality checks of a store's feature tables: validation, statistics, drift, monitoring, reports.

Each check reads a view's feature table (latest, or a Delta version, optionally a time
window) and hands it to the engine functions of this package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import NotFoundError, ValidationError
from fstore_spark.lakehouse.tables import read_feature_table
from fstore_spark.quality import (
    Channel,
    DriftReport,
    Expectation,
    MonitorPlan,
    MonitorResult,
    MonitorRule,
    Statistics,
    ValidationReport,
    detect_drift,
    load_monitoring,
    monitor_view,
    resolve_channels,
    select_rows,
    validate,
    validate_tables,
    view_statistics,
)
from fstore_spark.quality.report import (
    ReportSubject,
    collect_report,
    compared_versions,
    default_report_path,
    write_report,
)
from fstore_spark.registry.context import StoreContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["Quality"]

Window = tuple[datetime | str, datetime | str]


class Quality:
    """Validates, describes, compares and monitors the feature tables of a store."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def _features(self, view: str) -> list[str]:
        fv = self._ctx.registry.get("feature_view", view).obj
        return list(fv.feature_names)

    def _rows(self, view: str, version: int | None, window: Window | None) -> DataFrame:
        table = read_feature_table(self._ctx.spark, self._ctx.root, view, as_of_version=version)
        return select_rows(table, window)

    def validate(
        self,
        view: str,
        expectations: list[Expectation],
        version: int | None,
        window: Window | None,
        fail: bool,
    ) -> ValidationReport:
        """Check expectations on a view's rows; raise when ``fail`` and a rule fails."""
        report = validate(self._rows(view, version, window), expectations)
        if fail:
            report.raise_on_failure()
        return report

    def validate_tables(
        self,
        tables: Mapping[str, DataFrame],
        expectations: list[Expectation],
        window: Window | None,
        fail: bool,
    ) -> ValidationReport:
        """Check expectations on several views' rows (a feature set's) as one report."""
        rows = {name: select_rows(df, window) for name, df in tables.items()}
        report = validate_tables(rows, expectations)
        if fail:
            report.raise_on_failure()
        return report

    def statistics(self, view: str, version: int | None, recompute: bool) -> Statistics:
        """Statistics of a view's features at a Delta version (kept per version)."""
        return view_statistics(
            self._ctx.spark,
            self._ctx.root,
            view,
            self._features(view),
            version=version,
            recompute=recompute,
        )

    def drift(
        self,
        view: str,
        baseline: tuple[int | None, Window | None],
        current: tuple[int | None, Window | None, DataFrame | None],
        features: list[str] | None,
        method: str,
        threshold: float | None,
        **options: Any,
    ) -> DriftReport:
        """Drift between a baseline (version, window) and current rows or given data.

        Raises:
            ValidationError: neither a baseline version nor a baseline window was given.
        """
        baseline_version, baseline_window = baseline
        version, window, data = current
        if baseline_version is None and baseline_window is None:
            raise ValidationError(
                f"drift of {view!r}: give baseline_version= or baseline_window=(start, end)."
            )
        names = self._features(view)
        base = self._rows(view, baseline_version, baseline_window)
        cur = data if data is not None else self._rows(view, version, window)
        cols = [f for f in (features or names) if f in cur.columns]
        return detect_drift(base, cur, cols, method=method, threshold=threshold, **options)

    def drift_tables(
        self,
        base: Mapping[str, tuple[DataFrame, list[str]]],
        current: DataFrame | Mapping[str, DataFrame],
        windows: tuple[Window | None, Window | None],
        method: str,
        threshold: float | None,
        **options: Any,
    ) -> DriftReport:
        """Drift of several views' features (a feature set's) as one report.

        ``base`` maps each view to its baseline rows and the features to compare; ``current``
        is one DataFrame holding the features (a training set) or each view's current rows.
        Each feature is tested once, against the rows of the view that holds it.
        """
        base_window, window = windows
        columns: dict[str, Any] = {}
        report = None
        for view, (rows, features) in base.items():
            cur = current if not isinstance(current, Mapping) else current[view]
            cols = [f for f in features if f in cur.columns]
            if not cols:
                continue
            report = detect_drift(
                select_rows(rows, base_window),
                cur if not isinstance(current, Mapping) else select_rows(cur, window),
                cols,
                method=method,
                threshold=threshold,
                **options,
            )
            columns.update(report.columns)
        if report is None:
            raise ValidationError(
                "drift: the current data has none of the feature set's features. Fix: pass "
                "data with the set's feature columns (e.g. a training set of the set)."
            )
        return DriftReport(columns, report.method, report.threshold)

    def monitor(self, view: str, rules: list[MonitorRule], **options: Any) -> MonitorResult:
        """Check a view against monitor rules, send alerts, record the check.

        The alert channels are resolved with the config's ``alerts`` settings first: an
        unknown or unconfigured channel fails before any Spark work.
        """
        channels = self.channels(options.pop("channels", ("log",)))
        return monitor_view(
            self._ctx.spark,
            self._ctx.root,
            view,
            self._features(view),
            rules,
            channels=channels,
            **options,
        )

    def channels(self, channels: Any) -> list[Channel]:
        """Alert channels resolved with the config's ``alerts`` settings (checked now)."""
        return resolve_channels(list(channels), self._ctx.config.alerts)

    def run_plan(
        self, plan: str | Mapping[str, Any] | list[MonitorPlan], views: list[str] | None
    ) -> list[MonitorResult]:
        """Monitor every view of a plan (or only ``views``); the plan is validated first.

        Raises:
            NotFoundError: a view in ``views`` is not in the plan.
            DefinitionError: an alert channel of the plan is unknown or not configured.
        """
        plans = plan if isinstance(plan, list) else load_monitoring(plan)
        names = [p.view for p in plans]
        unknown = sorted(set(views or []) - set(names))
        if unknown:
            raise NotFoundError(
                f"view(s) {unknown} are not in the monitoring plan; it has {names}."
            )
        chosen = [p for p in plans if views is None or p.view in views]
        channels = [self.channels(p.channels) for p in chosen]  # every plan's, before any check
        return [
            self.monitor(
                p.view,
                list(p.rules),
                baseline_version=p.baseline_version,
                baseline_window=p.baseline_window,
                channels=senders,
            )
            for p, senders in zip(chosen, channels, strict=True)
        ]

    def report(
        self,
        view: str,
        versions: tuple[int | None, int | None],
        path: str | os.PathLike[str] | None,
        expectations: list[Expectation] | None,
    ) -> str:
        """Write an HTML quality report of a view's version against a baseline; returns its path.

        ``versions``: the baseline (default: the commit before the current one) and the current
        version (default: the latest). The default path is
        ``<config_dir>/reports/<view>_v<baseline>_v<current>.html``. Reading the view's rows
        needs the right to read it (its access policy).

        Raises:
            NotFoundError: the view, its feature table or a version does not exist.
            AccessDeniedError: the store's identity may not read the view.
            ValidationError: no baseline was given and the version has no earlier one.
        """
        ctx = self._ctx
        subject = ReportSubject(ctx.config.project, view, ctx.identity, tuple(self._features(view)))
        ctx.check_read([view])
        chosen, committed = compared_versions(ctx.spark, ctx.root, view, *versions)
        report = collect_report(ctx.spark, ctx.root, subject, chosen, committed, expectations)
        target = (
            path if path is not None else default_report_path(ctx.config.config_dir, view, chosen)
        )
        return write_report(report, target)
