"""An HTML data quality report: one Delta version of a view's feature table against another.

:func:`collect_report` gathers everything the report shows: each version's kept statistics
(:func:`~fstore_spark.quality.statistics.view_statistics`), the drift tests of every numeric,
string and boolean feature (:func:`~fstore_spark.quality.drift.detect_drift`, the same figures
``store.detect_drift`` gives), the histogram and category counts for the plots (one grouped
aggregation, :mod:`report_data`), the results of given expectations, and the monitoring checks
recorded for the version. Only small results reach the driver. :func:`write_report` renders it
(:mod:`report_html`) as one self-contained HTML file, plots inline, and logs it to the active
MLflow run, if any, under ``reports/``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fstore_spark.errors import ValidationError
from fstore_spark.lakehouse.tables import (
    feature_table_path,
    read_feature_table,
    table_history,
    to_utc,
)
from fstore_spark.quality._values import is_numeric
from fstore_spark.quality.drift import DriftReport, detect_drift
from fstore_spark.quality.expectations import Expectation
from fstore_spark.quality.feature_table import resolve_version
from fstore_spark.quality.report_data import (
    CATEGORICAL_TYPES,
    Distribution,
    RecordedCheck,
    distributions,
    recorded_checks,
)
from fstore_spark.quality.statistics import Statistics, view_statistics
from fstore_spark.quality.validation import ValidationReport, validate

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "QualityReport",
    "ReportSubject",
    "collect_report",
    "compared_versions",
    "default_report_path",
    "write_report",
]

_log = logging.getLogger("fstore_spark.quality")


@dataclass(frozen=True)
class ReportSubject:
    """What a report is about and for whom.

    Attributes:
        project: The store's project.
        view: The feature view.
        identity: Who generated the report (the store's identity).
        features: The view's features, in definition order.
    """

    project: str
    view: str
    identity: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class QualityReport:
    """Everything an HTML quality report shows (see :func:`collect_report`).

    Attributes:
        subject: Project, view, identity and features.
        versions: The baseline and current Delta versions.
        committed: When each of the two versions was committed (UTC), when known.
        baseline: Statistics of the baseline version.
        current: Statistics of the current version.
        drift: Drift of the current version against the baseline (KS / chi-square, PSI).
        distributions: Per plotted feature, the counts behind its plot.
        validation: The results of the given expectations on the current version, if any.
        checks: The newest monitoring checks recorded for the current version.
        generated_at: When the report was made (UTC).
    """

    subject: ReportSubject
    versions: tuple[int, int]
    committed: tuple[datetime | None, datetime | None]
    baseline: Statistics
    current: Statistics
    drift: DriftReport
    distributions: dict[str, Distribution]
    validation: ValidationReport | None
    checks: list[RecordedCheck]
    generated_at: datetime

    def to_html(self) -> str:
        """The report as one self-contained HTML document."""
        from fstore_spark.quality.report_html import render_html

        return render_html(self)


def compared_versions(
    spark: SparkSession,
    project_root: str,
    view: str,
    baseline_version: int | None,
    version: int | None,
) -> tuple[tuple[int, int], tuple[datetime | None, datetime | None]]:
    """The two versions to compare and their commit times.

    ``version`` defaults to the latest; ``baseline_version`` to the commit before it.

    Raises:
        NotFoundError: the view has no feature table.
        ValidationError: no baseline was given and the version has no earlier commit.
    """
    current = resolve_version(spark, project_root, view, version)
    history = table_history(spark, feature_table_path(project_root, view))
    when = {int(h["version"]): h["timestamp"] for h in history}
    if baseline_version is None:
        earlier = [v for v in when if v < current]
        if not earlier:
            raise ValidationError(
                f"report of {view!r}: version {current} has no earlier version to compare "
                "with. Fix: materialize the view again, or give baseline_version=."
            )
        baseline_version = max(earlier)
    base = int(baseline_version)
    times = tuple(None if when.get(v) is None else to_utc(when[v]) for v in (base, current))
    return (base, current), (times[0], times[1])


def collect_report(
    spark: SparkSession,
    project_root: str,
    subject: ReportSubject,
    versions: tuple[int, int],
    committed: tuple[datetime | None, datetime | None],
    expectations: Sequence[Expectation] | None = None,
) -> QualityReport:
    """Gather the figures of a report on ``subject.view`` at ``versions`` (baseline, current).

    Statistics are the kept ones of each version (computed once per version); drift tests
    run on every numeric, string and boolean feature with ``detect_drift``'s defaults
    (KS / chi-square flagged at p < 0.05, PSI over 10 bins); the plot counts take one more
    aggregation; expectations, when given, are checked on the current version.

    Raises:
        NotFoundError: the view has no feature table, or not one of the versions.
    """
    view, features = subject.view, list(subject.features)
    base_v, cur_v = versions
    base_df = read_feature_table(spark, project_root, view, as_of_version=base_v)
    cur_df = read_feature_table(spark, project_root, view, as_of_version=cur_v)
    base_stats = view_statistics(spark, project_root, view, features, version=base_v)
    cur_stats = view_statistics(spark, project_root, view, features, version=cur_v)
    both = {
        f: (base_stats[f], cur_stats[f])
        for f in features
        if f in base_stats.columns and f in cur_stats.columns
    }
    tested = [
        f for f, (b, _) in both.items() if is_numeric(b.dtype) or b.dtype in CATEGORICAL_TYPES
    ]
    drift = detect_drift(base_df, cur_df, tested)
    plotted = distributions(base_df, cur_df, both)
    validation = validate(cur_df, list(expectations)) if expectations else None
    checks = recorded_checks(spark, project_root, view, cur_v)
    return QualityReport(
        subject,
        versions,
        committed,
        base_stats,
        cur_stats,
        drift,
        plotted,
        validation,
        checks,
        datetime.now(UTC),
    )


def default_report_path(config_dir: str, view: str, versions: tuple[int, int]) -> Path:
    """Default report location: ``<config_dir>/reports/<view>_v<baseline>_v<current>.html``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in view)
    return Path(config_dir, "reports", f"{safe}_v{versions[0]}_v{versions[1]}.html")


def write_report(report: QualityReport, path: str | os.PathLike[str]) -> str:
    """Write the report as one HTML file (folders created); returns its absolute path.

    When an MLflow run is active, the file is also logged to it under ``reports/``.
    """
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report.to_html(), encoding="utf-8")
    _log.info("quality report of %r written to %s", report.subject.view, target)
    _log_to_mlflow(target)
    return str(target)


def _log_to_mlflow(path: Path) -> None:
    """Log a file to the active MLflow run under ``reports/`` (nothing when no run is active).

    A run can only be active once the program imported MLflow, so MLflow is not imported here
    for programs that never use it.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or mlflow.active_run() is None:
        return
    mlflow.log_artifact(str(path), artifact_path="reports")
    _log.info("quality report logged to MLflow run %s", mlflow.active_run().info.run_id)
