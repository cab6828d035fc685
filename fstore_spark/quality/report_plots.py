"""The plots of an HTML quality report, as inline PNG data URIs drawn with matplotlib.

Every plot is drawn on its own :class:`matplotlib.figure.Figure` (no pyplot, so no global
state and no display backend) from the small figures of :mod:`report_data` and the kept
statistics, and returned as a ``data:image/png;base64,...`` URI: the report stays one file.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fstore_spark.quality.report_data import Distribution
from fstore_spark.quality.statistics import ColumnStatistics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["BASELINE_COLOR", "CURRENT_COLOR", "distribution_plot", "psi_plot"]

BASELINE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"
_DPI = 96
_PSI_BANDS = ((0.1, "#e0b000", "0.1 moderate"), (0.2, "#c0392b", "0.2 large"))


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _data_uri(fig: Figure) -> str:
    """The figure as a PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


def distribution_plot(
    dist: Distribution,
    baseline: ColumnStatistics,
    current: ColumnStatistics,
    labels: tuple[str, str],
) -> str:
    """Baseline against current: histogram and quantiles (numeric), or category shares.

    ``labels`` name the two sides in the legends (baseline first, e.g. ``("v3", "v5")``).
    """
    base_label, cur_label = labels
    if dist.kind == "categorical":
        return _categories_plot(dist, base_label, cur_label)
    fig = _figure(7.0, 2.9)
    hist_ax, q_ax = fig.subplots(1, 2, width_ratios=(3, 2))
    _histogram(hist_ax, dist, base_label, cur_label)
    _quantiles(q_ax, baseline, current, base_label, cur_label)
    return _data_uri(fig)


def _histogram(ax: Axes, dist: Distribution, base_label: str, cur_label: str) -> None:
    """Overlaid histograms of the two sides, as shares of their non-null values."""
    for counts, color, label in (
        (dist.baseline, BASELINE_COLOR, base_label),
        (dist.current, CURRENT_COLOR, cur_label),
    ):
        shares = Distribution.shares(counts)
        ax.stairs(shares, dist.edges, fill=True, alpha=0.35, color=color)
        ax.stairs(
            shares, dist.edges, color=color, linewidth=1.2, label=f"{label} (n={sum(counts):,})"
        )
    _style(ax)
    ax.set_ylabel("share of values", fontsize=8)
    title = "histogram" + (
        " (1st-99th percentile; outliers in the end bins)" if dist.clipped else ""
    )
    ax.set_title(title, fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False)


def _quantiles(
    ax: Axes, baseline: ColumnStatistics, current: ColumnStatistics, base_label: str, cur_label: str
) -> None:
    """The kept quantiles (1% ... 99%) of both sides, with min and max at 0 and 100%."""
    for stats, color, label in (
        (baseline, BASELINE_COLOR, base_label),
        (current, CURRENT_COLOR, cur_label),
    ):
        points = _quantile_points(stats.quantiles, stats.min, stats.max)
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, color=color, linewidth=1.2, label=label)
    _style(ax)
    ax.set_xlabel("percentile", fontsize=8)
    ax.set_title("quantiles", fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False)


def _quantile_points(
    quantiles: Mapping[str, float], low: float | None, high: float | None
) -> list[tuple[float, float]]:
    """(percentile, value) pairs: min at 0, the kept quantiles, max at 100."""
    points = [(float(p) * 100, v) for p, v in quantiles.items()]
    if low is not None:
        points.append((0.0, low))
    if high is not None:
        points.append((100.0, high))
    return sorted(points)


def _categories_plot(dist: Distribution, base_label: str, cur_label: str) -> str:
    """Horizontal bars: each category's share of the non-null values on both sides."""
    n = len(dist.labels)
    fig = _figure(7.0, max(1.6, 0.28 * n + 0.9))
    ax = fig.subplots()
    ys = range(n)
    height = 0.4
    for offset, counts, color, label in (
        (-height / 2, dist.baseline, BASELINE_COLOR, base_label),
        (height / 2, dist.current, CURRENT_COLOR, cur_label),
    ):
        shares = Distribution.shares(counts)
        ys_side = [y + offset for y in ys]
        ax.barh(ys_side, shares, height=height, color=color, label=f"{label} (n={sum(counts):,})")
    ax.set_yticks(list(ys), [_short(label) for label in dist.labels])
    ax.invert_yaxis()
    _style(ax)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("share of non-null values", fontsize=8)
    ax.set_title("most frequent values", fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _data_uri(fig)


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def psi_plot(psi: Mapping[str, float]) -> str:
    """PSI per feature as horizontal bars, with the 0.1 and 0.2 bands marked."""
    names = list(psi)
    fig = _figure(8.6, max(1.5, 0.3 * len(names) + 0.8))
    ax = fig.subplots()
    colors = ["#c0392b" if v >= 0.2 else "#e0b000" if v >= 0.1 else "#3c8d5a" for v in psi.values()]
    ax.barh(range(len(names)), list(psi.values()), color=colors, height=0.6)
    ax.set_yticks(range(len(names)), [_short(n) for n in names])
    ax.invert_yaxis()
    for x, color, label in _PSI_BANDS:
        ax.axvline(x, color=color, linestyle="--", linewidth=0.8, label=label)
    _style(ax)
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("population stability index", fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _data_uri(fig)
