"""Data quality: expectations, statistics per feature version, drift tests, monitoring with alerts.

Every check is a Spark aggregation over the DataFrame (one pass per kind of check); only small
results reach the driver: counts, quantiles, the top values of a column, at most ``examples``
failing values per expectation, and at most ``sample_size`` values per column for a KS test.

* **Expectations** (``expectations``: :class:`Expectation`, ``expect_*``) are rules on a column
  (not null, between, in a set, matching a pattern) or on the table (unique keys, row count).
  ``validation``: :func:`validate` evaluates them all and returns a :class:`ValidationReport`;
  :func:`split_valid` separates the rows that break a row-level rule from those that do not,
  each rejected row carrying its reasons, so bad rows can be quarantined with a count and a
  reason instead of being lost or silently kept.
* **Statistics** (``statistics``: :func:`compute_statistics`): count, nulls, NaNs, approximate
  distinct count, mean, standard deviation, min, max and quantiles of numeric columns; the most
  frequent values of the others. :func:`view_statistics` keeps them per Delta version of a
  feature table.
* **Drift** (``drift``: :func:`detect_drift`): numeric columns by the two-sample
  Kolmogorov-Smirnov test and the population stability index (PSI) over the reference's
  quantile bins; categorical columns by a chi-square test of the category counts and PSI over
  categories.
* **Monitoring** (``rules``: :class:`MonitorRule`, :func:`evaluate_rules`): thresholds on
  statistics and drift that produce :class:`Alert` objects; ``alerts``: :func:`send_alerts`
  delivers them to channels (a callable, ``"log"``, or an HTTP webhook such as a Slack incoming
  webhook); ``plans``: :func:`load_monitoring` reads a YAML plan; ``monitoring``:
  :func:`monitor_view` checks a view's feature table and records every check.

Example::

    from fstore_spark.quality import expect_between, expect_not_null, split_valid, validate

    report = validate(df, [expect_not_null("amount", mostly=0.99),
                           expect_between("amount", 0, 10_000)])
    report.success, report.failed[0].unexpected, report.failed[0].examples
    good, rejected = split_valid(df, [expect_between("amount", 0, 10_000)])
"""

from fstore_spark.quality.alerts import Alert, Channel, resolve_channels, send_alerts
from fstore_spark.quality.drift import ColumnDrift, DriftReport, detect_drift
from fstore_spark.quality.expectations import (
    Expectation,
    expect_between,
    expect_in_set,
    expect_match,
    expect_not_null,
    expect_row_count_between,
    expect_unique,
    expectations_from_spec,
)
from fstore_spark.quality.feature_table import select_rows
from fstore_spark.quality.monitoring import MonitorResult, monitor_view, monitoring_table_path
from fstore_spark.quality.plans import MonitorPlan, load_monitoring
from fstore_spark.quality.rules import MonitorRule, evaluate_rules
from fstore_spark.quality.statistics import (
    ColumnStatistics,
    Statistics,
    compute_statistics,
    statistics_table_path,
    view_statistics,
)
from fstore_spark.quality.validation import (
    ExpectationResult,
    ValidationReport,
    split_valid,
    validate,
    validate_tables,
)

__all__ = [
    "Alert",
    "ColumnDrift",
    "ColumnStatistics",
    "DriftReport",
    "Expectation",
    "ExpectationResult",
    "MonitorPlan",
    "MonitorResult",
    "MonitorRule",
    "Statistics",
    "ValidationReport",
    "compute_statistics",
    "detect_drift",
    "evaluate_rules",
    "expect_between",
    "expect_in_set",
    "expect_match",
    "expect_not_null",
    "expect_row_count_between",
    "expect_unique",
    "expectations_from_spec",
    "load_monitoring",
    "monitor_view",
    "monitoring_table_path",
    "select_rows",
    "send_alerts",
    "resolve_channels",
    "Channel",
    "split_valid",
    "statistics_table_path",
    "validate",
    "validate_tables",
    "view_statistics",
]
