"""Quality definitions and alert rules without Spark: validation up front, thresholds, PSI."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from fstore_spark.errors import DefinitionError, ValidationError
from fstore_spark.quality import (
    Alert,
    ColumnDrift,
    ColumnStatistics,
    DriftReport,
    Expectation,
    MonitorRule,
    Statistics,
    evaluate_rules,
    expect_between,
    expectations_from_spec,
    load_monitoring,
    send_alerts,
)
from fstore_spark.quality.drift import _psi


def _stats(rows: int, **cols: tuple[int, float | None]) -> Statistics:
    return Statistics(
        rows,
        {
            c: ColumnStatistics(c, "double", rows, nulls, mean=mean)
            for c, (nulls, mean) in cols.items()
        },
    )


def test_spec_maps_to_expectations_and_round_trips() -> None:
    exps = expectations_from_spec(
        "purchase_amount", {"min_value": 0, "max_value": 10000, "null_percentage": 0.01}
    )
    assert [e.kind for e in exps] == ["not_null", "between"]
    assert exps[0].mostly == pytest.approx(0.99)
    assert (exps[1].min_value, exps[1].max_value) == (0, 10000)
    for e in exps:
        assert Expectation.from_dict(e.to_dict()) == e
    with pytest.raises(DefinitionError, match="unknown key"):
        expectations_from_spec("x", {"minimum": 0})
    with pytest.raises(DefinitionError, match="null_percentage=1.5"):
        expectations_from_spec("x", {"null_percentage": 1.5})
    with pytest.raises(DefinitionError, match="unknown expectation kind"):
        Expectation("positive", ("x",))


def test_rules_fire_only_past_their_threshold() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    stats = _stats(100, a=(10, 5.0), b=(0, 1.0))
    base = _stats(100, a=(0, 4.0), b=(0, 1.0))
    drift = DriftReport(
        {
            "a": ColumnDrift("a", "numeric", "ks", 0.3, 0.001, 0.4, True, 90, 100),
            "b": ColumnDrift("b", "numeric", "ks", 0.01, 0.9, 0.01, False, 100, 100),
        },
        "ks",
        0.05,
    )
    rules = [
        MonitorRule("missing_values", 0.05),
        MonitorRule("null_fraction", 0.1, columns=("a",)),  # exactly at the limit: no alert
        MonitorRule("row_count", 101, severity="critical"),
        MonitorRule("mean_change", 0.2),
        MonitorRule("drift_psi", 0.2),
        MonitorRule("drift_p_value", 0.01),
        MonitorRule("freshness_hours", 24),
    ]
    alerts = evaluate_rules(
        rules,
        stats,
        subject="view 'v' version 3",
        baseline=base,
        drift=drift,
        newest=now - timedelta(hours=30),
        now=now,
    )
    got = [(a.metric, a.column, round(a.value, 6)) for a in alerts]
    assert got == [
        ("missing_values", "a", 0.1),
        ("row_count", None, 100.0),
        ("mean_change", "a", 0.25),
        ("drift_psi", "a", 0.4),
        ("drift_p_value", "a", 0.001),
        ("freshness_hours", None, 30.0),
    ]
    assert alerts[1].severity == "critical" and "below the threshold 101" in alerts[1].message
    with pytest.raises(ValidationError, match="needs a baseline"):
        evaluate_rules([MonitorRule("mean_change", 0.1)], stats)
    with pytest.raises(DefinitionError, match="unknown monitor metric"):
        MonitorRule("nulls", 0.1)
    with pytest.raises(DefinitionError, match="severity"):
        MonitorRule("row_count", 1, severity="page")


def test_psi_reference_values() -> None:
    assert _psi([50, 50], [50, 50]) == 0.0
    want = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert _psi([50, 50], [80, 20]) == pytest.approx(want)
    # an empty bin is floored, not infinite
    assert math.isfinite(_psi([100, 0], [50, 50]))


def test_plan_file_is_validated_before_any_work(monkeypatch) -> None:
    monkeypatch.setenv("HOOK", "https://hooks.example/abc")
    plans = load_monitoring(
        {
            "views": {
                "spend": {
                    "baseline_window": ["2024-01-01", "2024-02-01"],
                    "channels": ["log", "${HOOK}"],
                    "expectations": {"sum_7d": {"min_value": 0}},
                    "rules": [{"metric": "drift_psi", "threshold": 0.2}],
                }
            }
        }
    )
    (plan,) = plans
    assert plan.channels == ("log", "https://hooks.example/abc")
    assert [r.metric for r in plan.rules] == ["drift_psi", "expectation"]
    assert plan.rules[1].expectations == (expect_between("sum_7d", 0, None),)
    with pytest.raises(DefinitionError, match="MISSING_HOOK"):
        load_monitoring({"views": {"v": {"channels": ["${MISSING_HOOK}"]}}})
    with pytest.raises(DefinitionError, match="unknown key"):
        load_monitoring({"views": {"v": {"baseline": 1}}})
    with pytest.raises(DefinitionError, match="rule 0"):
        load_monitoring({"views": {"v": {"rules": [{"metric": "row_count", "limit": 3}]}}})


def test_a_failing_channel_does_not_stop_the_others() -> None:
    got: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("slack is down")

    alert = Alert("row_count", "warning", 0.0, 1.0, "no rows")
    errors = send_alerts([alert], [broken, got.append])
    assert got == [alert] and len(errors) == 1 and "slack is down" in errors[0]
    with pytest.raises(DefinitionError, match="unknown alert channel"):
        send_alerts([alert], ["pagerduty"])
