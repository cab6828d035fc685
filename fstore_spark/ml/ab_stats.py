"""Significance of an A/B test, from a few sufficient statistics per variant (no Spark).

Each variant arrives as one mapping of sums computed by Spark
(:func:`fstore_spark.ml.ab_metrics.evaluate_variants`):

* ``rows``: usable rows; ``npos``: rows with label 1; ``y_s``: sum of labels;
* ``tp``, ``fp``, ``fn``: the confusion counts at the test's threshold;
* ``<m>_s`` and ``<m>_ss``: sum and sum of squares of a per-row quantity ``<m>``: ``p`` the
  prediction, ``se`` the squared error, ``ae`` the absolute error, ``ll`` the log loss.

From them :func:`metric_value` gives each metric, and :func:`compare_metric` tests each
treatment against the control: AUC by the Hanley-McNeil standard error; precision, recall,
accuracy and positive rate by a two-proportion z-test (their denominators: predicted
positives, actual positives, all rows); log loss, Brier, MAE, mean prediction and RMSE
(through the mean squared error) by Welch's t-test; F1 has no closed-form variance and gets no
p-value. :func:`srm_p_value` is the sample-ratio-mismatch check (chi-square of the rows per
variant against the traffic split), which flags broken assignment or logging, and
:func:`decide_winner` reads the comparisons of the primary metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from fstore_spark.ml.ab_results import Comparison
from fstore_spark.ml.ab_test import HIGHER_IS_BETTER, ABTest

__all__ = ["compare_metric", "decide_winner", "metric_value", "srm_p_value"]

# Metrics that are the mean of a per-row quantity, and that quantity's statistics prefix
# (RMSE is tested through the mean squared error).
_MEANS = {"log_loss": "ll", "brier": "se", "mae": "ae", "mean_prediction": "p", "rmse": "se"}
_PROPORTIONS = ("precision", "recall", "accuracy", "positive_rate")


def _div(a: float, b: float) -> float | None:
    """``a / b``, or ``None`` when the denominator is 0 (an undefined rate, not 0)."""
    return a / b if b else None


def _mean_var(s: Mapping[str, Any], name: str) -> tuple[float, float, int]:
    """(mean, sample variance, n) of a per-row quantity from its sum and sum of squares."""
    n = int(s["rows"])
    total, sq = float(s[f"{name}_s"] or 0.0), float(s[f"{name}_ss"] or 0.0)
    mean = total / n
    # rounding can make sq - n*mean^2 slightly negative for a constant quantity
    var = max(sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    return mean, var, n


def metric_value(m: str, s: Mapping[str, Any], auc: float | None) -> float | None:
    """One metric of one variant from its statistics (``auc`` is computed apart, by ranks).

    Returns ``None`` where the metric is undefined (e.g. precision with no predicted
    positives, AUC of one class).
    """
    n, tp, fp, fn = int(s["rows"]), int(s["tp"]), int(s["fp"]), int(s["fn"])
    tn = n - tp - fp - fn
    if m == "auc":
        return auc
    if m == "precision":
        return _div(tp, tp + fp)
    if m == "recall":
        return _div(tp, tp + fn)
    if m == "accuracy":
        return _div(tp + tn, n)
    if m == "f1":
        return _div(2 * tp, 2 * tp + fp + fn)
    if m == "positive_rate":
        return _div(float(s["y_s"] or 0.0), n)
    if m == "rmse":
        return math.sqrt(_mean_var(s, "se")[0])
    return _mean_var(s, _MEANS[m])[0]


def _proportion(m: str, s: Mapping[str, Any]) -> tuple[float, float]:
    """(successes, trials) of a proportion metric."""
    n, tp, fp, fn = float(s["rows"]), float(s["tp"]), float(s["fp"]), float(s["fn"])
    if m == "precision":
        return tp, tp + fp
    if m == "recall":
        return tp, tp + fn
    if m == "accuracy":
        return n - fp - fn, n
    return float(s["y_s"] or 0.0), n  # positive_rate


def _hanley_mcneil(a: float, npos: int, nneg: int) -> float:
    """Standard error of an AUC ``a`` from ``npos`` positives and ``nneg`` negatives."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (npos - 1) * (q1 - a * a) + (nneg - 1) * (q2 - a * a)) / (npos * nneg)
    return math.sqrt(max(var, 0.0))


class _Inference(NamedTuple):
    """What a significance test says about a difference (bounds and p-value may be unknown)."""

    test: str | None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


def _auc_z_test(
    diff: float, v1: float, v0: float, s1: Mapping[str, Any], s0: Mapping[str, Any], alpha: float
) -> _Inference:
    """z-test of an AUC difference with independent Hanley-McNeil standard errors."""
    from scipy import stats as st

    pos1, pos0 = int(s1["npos"]), int(s0["npos"])
    se = math.hypot(
        _hanley_mcneil(v1, pos1, int(s1["rows"]) - pos1),
        _hanley_mcneil(v0, pos0, int(s0["rows"]) - pos0),
    )
    if se <= 0:
        return _Inference("z-test (Hanley-McNeil)")
    z = st.norm.ppf(1 - alpha / 2)
    p = float(2 * st.norm.sf(abs(diff) / se))
    return _Inference("z-test (Hanley-McNeil)", p, diff - z * se, diff + z * se)


def _proportion_z_test(
    m: str,
    diff: float,
    v1: float,
    v0: float,
    s1: Mapping[str, Any],
    s0: Mapping[str, Any],
    alpha: float,
) -> _Inference:
    """Two-proportion z-test: pooled standard error for the p-value, unpooled for the interval.

    The pooled p-value equals the chi-square test of the 2x2 table without correction.
    """
    from scipy import stats as st

    kind = "two-proportion z-test"
    x1, n1 = _proportion(m, s1)
    x0, n0 = _proportion(m, s0)
    if not (n1 and n0):
        return _Inference(kind)
    pooled = (x1 + x0) / (n1 + n0)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p = float(2 * st.norm.sf(abs(diff) / se0)) if se0 > 0 else None
    se = math.sqrt(v1 * (1 - v1) / n1 + v0 * (1 - v0) / n0)
    z = st.norm.ppf(1 - alpha / 2)
    return _Inference(kind, p, diff - z * se, diff + z * se)


def _welch_t_test(
    m: str, diff: float, s1: Mapping[str, Any], s0: Mapping[str, Any], alpha: float
) -> _Inference:
    """Welch's t-test of a difference of means, with the Welch-Satterthwaite interval.

    RMSE is tested through the mean squared error, so it gets a p-value but no interval (one
    in squared units would not bound the RMSE difference).
    """
    from scipy import stats as st

    kind = "Welch t-test" + (" on squared error" if m == "rmse" else "")
    m1, var1, n1 = _mean_var(s1, _MEANS[m])
    m0, var0, n0 = _mean_var(s0, _MEANS[m])
    if not (n1 > 1 and n0 > 1 and (var1 > 0 or var0 > 0)):
        return _Inference(kind)
    res = st.ttest_ind_from_stats(m1, math.sqrt(var1), n1, m0, math.sqrt(var0), n0, equal_var=False)
    if m == "rmse":
        return _Inference(kind, float(res.pvalue))
    se = math.sqrt(var1 / n1 + var0 / n0)
    dof = (var1 / n1 + var0 / n0) ** 2 / ((var1 / n1) ** 2 / (n1 - 1) + (var0 / n0) ** 2 / (n0 - 1))
    t = st.t.ppf(1 - alpha / 2, dof)
    return _Inference(kind, float(res.pvalue), diff - t * se, diff + t * se)


def _infer(
    m: str,
    diff: float,
    v1: float,
    v0: float,
    s1: Mapping[str, Any],
    s0: Mapping[str, Any],
    alpha: float,
) -> _Inference:
    """The significance test that fits metric ``m`` (none for F1)."""
    if m == "auc":
        return _auc_z_test(diff, v1, v0, s1, s0, alpha)
    if m in _PROPORTIONS:
        return _proportion_z_test(m, diff, v1, v0, s1, s0, alpha)
    if m in _MEANS:
        return _welch_t_test(m, diff, s1, s0, alpha)
    return _Inference(None)


def compare_metric(
    m: str,
    variant: str,
    control: str,
    s1: Mapping[str, Any] | None,
    s0: Mapping[str, Any] | None,
    auc: Mapping[str, float | None],
    alpha: float,
) -> Comparison:
    """Compare ``variant`` (statistics ``s1``) with ``control`` (``s0``) on metric ``m``.

    Args:
        m: The metric.
        variant: The treatment's name.
        control: The control's name.
        s1: The treatment's statistics (``None`` when it has no usable rows).
        s0: The control's statistics (``None`` when it has no usable rows).
        auc: Variant -> AUC (computed by ranks, not from the statistics).
        alpha: Significance level: of the test, and ``1 - alpha`` confidence intervals.

    Returns:
        The comparison; value, difference, interval and p-value are ``None`` where
        undefined (a variant without rows, an undefined metric, no variance).
    """
    v1 = None if s1 is None else metric_value(m, s1, auc.get(variant))
    v0 = None if s0 is None else metric_value(m, s0, auc.get(control))
    diff = None if v1 is None or v0 is None else v1 - v0
    lift = None if diff is None or not v0 else diff / abs(v0)
    found = _Inference(None)
    if diff is not None and s1 is not None and s0 is not None:
        assert v1 is not None and v0 is not None  # a difference needs both values
        found = _infer(m, diff, v1, v0, s1, s0, alpha)
    direction = HIGHER_IS_BETTER[m]
    better = None if diff is None or direction is None or diff == 0 else (diff > 0) == direction
    return Comparison(
        metric=m,
        variant=variant,
        control=control,
        value=v1,
        control_value=v0,
        difference=diff,
        relative_lift=lift,
        ci_low=found.ci_low,
        ci_high=found.ci_high,
        p_value=found.p_value,
        test=found.test,
        significant=found.p_value is not None and found.p_value < alpha,
        better=better,
    )


def srm_p_value(
    test: ABTest,
    counts: Mapping[str, Mapping[str, int]],
    exposures: Mapping[str, int] | None,
) -> float | None:
    """Chi-square p-value of the units per variant against the test's traffic split.

    Args:
        test: The test (variants and traffic).
        counts: Variant -> ``rows`` and ``dropped_rows`` (used when ``exposures`` is None:
            every logged row, usable or not, was an exposure).
        exposures: Units exposed per variant, when known apart from the logged rows.

    Returns:
        The p-value, or ``None`` when no unit was exposed.
    """
    from scipy import stats as st

    if exposures is None:
        observed = [counts[v]["rows"] + counts[v]["dropped_rows"] for v in test.variants]
    else:
        observed = [int(exposures.get(v, 0)) for v in test.variants]
    total = sum(observed)
    if total == 0:
        return None
    traffic = dict(test.traffic or {})
    expected = [traffic[v] * total for v in test.variants]
    return float(st.chisquare(observed, expected).pvalue)


def decide_winner(primary: str, control: str, comparisons: Sequence[Comparison]) -> str | None:
    """The winner on the ``primary`` metric.

    The treatment significantly better than the control by the largest difference; else the
    control when every treatment is significantly worse; else ``None`` (no conclusion yet).
    """
    mine = [c for c in comparisons if c.metric == primary]
    better = [c for c in mine if c.significant and c.better]
    if better:
        best = max(
            better, key=lambda c: (c.difference or 0.0) * (1 if HIGHER_IS_BETTER[primary] else -1)
        )
        return best.variant
    if mine and all(c.significant and c.better is False for c in mine):
        return control
    return None
