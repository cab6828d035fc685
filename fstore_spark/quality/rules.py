"""Monitor rules: thresholds on statistics, drift, freshness and expectations.

:func:`evaluate_rules` does no Spark work: it judges rules against figures computed elsewhere
(statistics, a drift report, validation reports, the newest timestamp) and returns one
:class:`~fstore_spark.quality.alerts.Alert` per broken threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fstore_spark.errors import DefinitionError, ValidationError
from fstore_spark.quality._values import plain
from fstore_spark.quality.alerts import Alert
from fstore_spark.quality.drift import DriftReport
from fstore_spark.quality.expectations import Expectation
from fstore_spark.quality.statistics import Statistics
from fstore_spark.quality.validation import ValidationReport

__all__ = ["MonitorRule", "evaluate_rules"]

# metric -> the side of the threshold that raises an alert
_METRICS = {
    "null_fraction": "above",
    "missing_values": "above",  # alias of null_fraction
    "row_count": "below",
    "mean_change": "above",
    "freshness_hours": "above",
    "drift_psi": "above",
    "drift_p_value": "below",
    "expectation": "above",
}


@dataclass(frozen=True)
class MonitorRule:
    """A threshold on a monitored metric; breaking it raises an :class:`Alert`.

    Metrics (alert when the value is *above* the threshold unless said):

    * ``null_fraction`` (alias ``missing_values``): nulls and NaNs over rows, per column;
    * ``row_count``: rows of the table — alert when *below*;
    * ``mean_change``: ``|mean - baseline mean| / max(|baseline mean|, 1e-12)``, per column
      (needs a baseline);
    * ``freshness_hours``: hours from the newest feature timestamp to the check;
    * ``drift_psi``: PSI against the baseline, per column;
    * ``drift_p_value``: drift test p-value against the baseline, per column — alert when
      *below*;
    * ``expectation``: one alert per rule of ``expectations`` that fails (each judged by its
      own ``mostly``; the alert's value is the unexpected fraction, its threshold the allowed
      one; the rule's ``threshold`` is not used).

    A value exactly at the threshold raises no alert.

    Attributes:
        metric: One of the above.
        threshold: The limit.
        columns: Columns the rule applies to (per-column metrics); empty: every feature column.
        severity: ``warning`` or ``critical``, copied to the alerts.
        expectations: The rules checked by the ``expectation`` metric.

    Example::

        MonitorRule("missing_values", 0.05, severity="critical")
        MonitorRule("drift_psi", 0.2, columns=("amount",))
        MonitorRule("expectation", expectations=(expect_between("amount", 0, 10_000),))
    """

    metric: str
    threshold: float = 0.0
    columns: tuple[str, ...] = ()
    severity: str = "warning"
    expectations: tuple[Expectation, ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in _METRICS:
            raise DefinitionError(
                f"unknown monitor metric {self.metric!r}; valid: {', '.join(_METRICS)}."
            )
        if self.severity not in ("warning", "critical"):
            raise DefinitionError(
                f"monitor rule {self.metric}: severity {self.severity!r} must be 'warning' or "
                "'critical'."
            )
        if self.metric == "expectation" and not self.expectations:
            raise DefinitionError("monitor rule 'expectation' needs expectations=[...].")
        if isinstance(self.columns, str):  # a single column name given as a string
            object.__setattr__(self, "columns", (self.columns,))
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "expectations", tuple(self.expectations))

    @property
    def needs_baseline(self) -> bool:
        """Whether the rule compares with a baseline."""
        return self.metric in ("mean_change", "drift_psi", "drift_p_value")


@dataclass(frozen=True)
class _Evidence:
    """What the rules are judged against (the arguments of :func:`evaluate_rules`)."""

    subject: str
    stats: Statistics
    baseline: Statistics | None
    drift: DriftReport | None
    validation: Mapping[int, ValidationReport]
    newest: datetime | None
    now: datetime


def evaluate_rules(
    rules: Sequence[MonitorRule],
    stats: Statistics,
    *,
    subject: str = "",
    baseline: Statistics | None = None,
    drift: DriftReport | None = None,
    validation: Mapping[int, ValidationReport] | None = None,
    newest: datetime | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """Check rules against computed statistics (no Spark work: give it what it needs).

    Alerts come in the order of the rules, then of the columns.

    Args:
        rules: The rules.
        stats: Statistics of the checked data.
        subject: Named in every alert.
        baseline: Statistics of the baseline (``mean_change``).
        drift: Drift of the checked data against the baseline (``drift_*``).
        validation: Per rule index, the validation of its expectations (``expectation``).
        newest: Newest feature timestamp of the checked data (``freshness_hours``).
        now: The check's time (default now, UTC).

    Raises:
        ValidationError: a rule needs a baseline, drift or timestamp that was not given.
    """
    evidence = _Evidence(
        subject, stats, baseline, drift, validation or {}, newest, now or datetime.now(UTC)
    )
    alerts: list[Alert] = []
    for i, rule in enumerate(rules):
        alerts += _CHECKS[rule.metric](rule, i, evidence)
    return alerts


def _threshold_alert(
    rule: MonitorRule, value: float, what: str, column: str | None, subject: str
) -> list[Alert]:
    """One alert if ``value`` is on the alerting side of the rule's threshold, else none."""
    direction = _METRICS[rule.metric]
    broken = value > rule.threshold if direction == "above" else value < rule.threshold
    if not broken:
        return []
    where = f" of {column!r}" if column else ""
    message = (
        f"{subject}: {what}{where} is {value:.6g}, {direction} the threshold {rule.threshold:.6g}."
    )
    return [Alert(rule.metric, rule.severity, value, rule.threshold, message, column, subject)]


def _rule_columns(rule: MonitorRule, available: Iterable[str]) -> list[str]:
    """The rule's own columns, or every available one when it names none."""
    return list(rule.columns) if rule.columns else list(available)


def _null_fraction(rule: MonitorRule, _i: int, ev: _Evidence) -> list[Alert]:
    """``null_fraction`` / ``missing_values``: per column, nulls and NaNs over rows."""
    alerts: list[Alert] = []
    for c in _rule_columns(rule, ev.stats.columns):
        alerts += _threshold_alert(rule, ev.stats[c].null_fraction, "null fraction", c, ev.subject)
    return alerts


def _row_count(rule: MonitorRule, _i: int, ev: _Evidence) -> list[Alert]:
    """``row_count``: rows of the checked data."""
    return _threshold_alert(rule, float(ev.stats.rows), "row count", None, ev.subject)


def _freshness(rule: MonitorRule, _i: int, ev: _Evidence) -> list[Alert]:
    """``freshness_hours``: hours from the newest feature timestamp to the check."""
    if ev.newest is None:
        raise ValidationError(
            f"{ev.subject}: rule freshness_hours needs the newest feature timestamp."
        )
    hours = (ev.now - ev.newest).total_seconds() / 3600.0
    return _threshold_alert(rule, hours, "hours since newest row", None, ev.subject)


def _mean_change(rule: MonitorRule, _i: int, ev: _Evidence) -> list[Alert]:
    """``mean_change``: relative change of each numeric column's mean against the baseline.

    Columns without a mean on either side (non-numeric, empty, absent from the baseline) are
    skipped: there is nothing to compare.
    """
    if ev.baseline is None:
        raise ValidationError(f"{ev.subject}: rule mean_change needs a baseline.")
    alerts: list[Alert] = []
    for c in _rule_columns(rule, ev.stats.columns):
        cur, base = ev.stats[c], ev.baseline.columns.get(c)
        if not cur.numeric or base is None or cur.mean is None or base.mean is None:
            continue
        change = abs(cur.mean - base.mean) / max(abs(base.mean), 1e-12)
        alerts += _threshold_alert(rule, change, "relative change of the mean", c, ev.subject)
    return alerts


def _drift(rule: MonitorRule, _i: int, ev: _Evidence) -> list[Alert]:
    """``drift_psi`` / ``drift_p_value``: per column of the drift report (others skipped)."""
    if ev.drift is None:
        raise ValidationError(f"{ev.subject}: rule {rule.metric} needs a baseline to compare with.")
    alerts: list[Alert] = []
    for c in _rule_columns(rule, ev.drift.columns):
        if c not in ev.drift.columns:
            continue
        d = ev.drift[c]
        if rule.metric == "drift_psi":
            alerts += _threshold_alert(rule, d.psi, "PSI against the baseline", c, ev.subject)
        else:
            what = f"{d.test} p-value against the baseline"
            alerts += _threshold_alert(rule, d.p_value, what, c, ev.subject)
    return alerts


def _expectations(rule: MonitorRule, i: int, ev: _Evidence) -> list[Alert]:
    """``expectation``: one alert per failing rule, each judged by its own ``mostly``."""
    report = ev.validation.get(i)
    if report is None:
        raise ValidationError(f"{ev.subject}: rule {i} (expectation) was not validated.")
    alerts: list[Alert] = []
    for r in report.failed:
        e = r.expectation
        allowed = 1.0 - e.mostly if e.row_level else 0.0
        message = (
            f"{ev.subject}: expectation {e.name} failed: {r.unexpected} of "
            f"{r.evaluated} rows unexpected ({r.unexpected_fraction:.2%}, allowed "
            f"{allowed:.2%}), examples {[plain(x) for x in r.examples]}."
        )
        alerts.append(
            Alert(
                rule.metric,
                rule.severity,
                r.unexpected_fraction,
                allowed,
                message,
                e.column,
                ev.subject,
            )
        )
    return alerts


_CHECKS: dict[str, Callable[[MonitorRule, int, _Evidence], list[Alert]]] = {
    "null_fraction": _null_fraction,
    "missing_values": _null_fraction,
    "row_count": _row_count,
    "mean_change": _mean_change,
    "freshness_hours": _freshness,
    "drift_psi": _drift,
    "drift_p_value": _drift,
    "expectation": _expectations,
}
