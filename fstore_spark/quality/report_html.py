"""The HTML of a quality report: one self-contained document, styles and plots inline.

Nothing is loaded from elsewhere (no CDN, fonts, scripts or image files), so the report opens
offline, can be mailed or attached to an MLflow run, and shows the same thing years later.
Every value taken from data or definitions is HTML-escaped. Figures that a program may want to
read back carry their exact value in a ``data-value`` attribute next to the rounded text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark._version import __version__
from fstore_spark.quality.drift import ColumnDrift
from fstore_spark.quality.report_data import Distribution, RecordedCheck
from fstore_spark.quality.report_plots import (
    BASELINE_COLOR,
    CURRENT_COLOR,
    distribution_plot,
    psi_plot,
)
from fstore_spark.quality.statistics import ColumnStatistics
from fstore_spark.quality.validation import ValidationReport

if TYPE_CHECKING:
    from fstore_spark.quality.report import QualityReport

__all__ = ["render_html"]

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;
background:#f6f8fa;font-size:14px;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}h3{font-size:15px;margin:0 0 6px}
.sub{color:#57606a;margin:0 0 16px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta th{width:170px}.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.tile{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;min-width:150px}
.tile b{display:block;font-size:20px}.tile span{color:#57606a;font-size:12px}
.bad{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}.ok{color:#1a7f37}
tr.drifted td{background:#fff1f0}
.feature{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;margin:14px 0}
.feature img{display:block;max-width:100%}
.row{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start;margin-top:6px}
.stack{display:flex;flex-direction:column;gap:10px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;margin-left:6px}
.badge.bad{background:#ffebe9}.badge.ok{background:#dafbe1}.badge.warn{background:#fff8c5}
.note{color:#57606a;font-size:12px;max-width:900px}
.key{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
code{background:#eef1f4;padding:0 4px;border-radius:3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(x: float | int | None) -> str:
    """A figure for reading: integers with separators, floats with 4 significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.4g}"


def _p(x: float) -> str:
    return f"{x:.2e}" if x < 1e-4 else f"{x:.4f}"


def _example(value: Any) -> str:
    """An offending value as shown: numbers rounded, null as ``null``, text escaped."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return _num(value)
    return _e(value)


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _cell(text: str, value: Any = None, cls: str = "n") -> str:
    """A table cell; ``value`` (exact) goes in ``data-value`` for programs reading the report."""
    data = "" if value is None else f' data-value="{_e(repr(value))}"'
    return f'<td class="{cls}"{data}>{text}</td>'


def _table(head: Sequence[str], rows: Iterable[str], attrs: str = "") -> str:
    cols = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table{attrs}><thead><tr>{cols}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _when(ts: datetime | None) -> str:
    return "unknown" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _change(base: float, cur: float) -> str:
    """The change from baseline to current, absolute and relative to the baseline."""
    if isinstance(base, int) and isinstance(cur, int):
        return f"{cur - base:+,}" + (f" ({(cur - base) / abs(base):+.1%})" if base else "")
    if not base:
        return f"{cur - base:+,.4g}"
    return f"{cur - base:+,.4g} ({(cur - base) / abs(base):+.1%})"


def _header(r: QualityReport) -> str:
    s, (bv, cv) = r.subject, r.versions
    rows = [
        ("Project", _e(s.project)),
        ("Feature view", f"<code>{_e(s.view)}</code>"),
        ("Baseline", f"version {bv}, committed {_when(r.committed[0])}"),
        ("Current", f"version {cv}, committed {_when(r.committed[1])}"),
        (
            "Rows",
            f"{r.baseline.rows:,} → {r.current.rows:,}, {_change(r.baseline.rows, r.current.rows)}",
        ),
        (
            "Generated",
            f"{_when(r.generated_at)} by {_e(s.identity)} (fstore_spark {_e(__version__)})",
        ),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<h1>Data quality report: {_e(s.view)}</h1>"
        f'<p class="sub">Project {_e(s.project)} · version {cv} against baseline version {bv}</p>'
        f'<table class="meta" id="header">{body}</table>'
    )


def _tiles(r: QualityReport) -> str:
    d = r.drift
    large = [c for c in d.columns.values() if c.psi >= 0.2]
    tiles = [
        (f"{r.current.rows:,}", f"rows (baseline {r.baseline.rows:,})", ""),
        (
            f"{len(d.drifted_columns)} of {len(d.columns)}",
            f"features drifted (test p < {d.threshold:g})",
            "bad" if d.drifted else "ok",
        ),
        (f"{len(large)}", "features with PSI ≥ 0.2", "bad" if large else "ok"),
    ]
    if r.validation is not None:
        v = r.validation
        passed = len(v.results) - len(v.failed)
        tiles.append(
            (f"{passed} of {len(v.results)}", "expectations hold", "ok" if v.success else "bad")
        )
    alerts = sum(len(c.alerts) for c in r.checks)
    if r.checks:
        tiles.append(
            (f"{alerts}", f"alerts in {len(r.checks)} recorded check(s)", "bad" if alerts else "ok")
        )
    body = "".join(
        f'<div class="tile"><b class="{c}">{_e(a)}</b><span>{_e(b)}</span></div>'
        for a, b, c in tiles
    )
    return f'<div class="tiles" id="summary">{body}</div>'


def _psi_band(psi: float) -> tuple[str, str]:
    if psi >= 0.2:
        return "large shift", "bad"
    if psi >= 0.1:
        return "moderate", "warn"
    return "stable", "ok"


def _drift_row(d: ColumnDrift) -> str:
    band, cls = _psi_band(d.psi)
    test = "KS" if d.test == "ks" else "chi²"
    flag = '<span class="bad">drifted</span>' if d.drifted else '<span class="ok">no</span>'
    sampled = " *" if d.sampled else ""
    return (
        f'<tr data-feature="{_e(d.column)}"{" class=drifted" if d.drifted else ""}>'
        f'<td><a href="#feature-{_e(d.column)}">{_e(d.column)}</a></td><td>{d.kind}</td>'
        f"<td>{test}{sampled}</td>"
        + _cell(f"{d.statistic:.4g}", d.statistic)
        + _cell(_p(d.p_value), d.p_value)
        + _cell(f"{d.psi:.4f}", d.psi)
        + f'<td class="{cls}">{band}</td>'
        + _cell(flag, d.drifted, cls="")
        + _cell(f"{d.reference_count:,}", d.reference_count)
        + _cell(f"{d.current_count:,}", d.current_count)
        + "</tr>"
    )


def _drift(r: QualityReport) -> str:
    d = r.drift
    rows = [_drift_row(c) for c in d.columns.values()]
    head = [
        "feature",
        "type",
        "test",
        "statistic",
        "p-value",
        "PSI",
        "PSI band",
        "drifted",
        "baseline values",
        "current values",
    ]
    sampled = (
        " * KS test on a seeded sample of 20,000 values per side."
        if any(c.sampled for c in d.columns.values())
        else ""
    )
    plot = psi_plot({c: x.psi for c, x in d.columns.items()}) if d.columns else ""
    return (
        '<h2 id="drift-section">Drift</h2>'
        + _table(head, rows, ' id="drift"')
        + f'<p class="note">Numeric features: two-sample Kolmogorov–Smirnov test on the non-null '
        f"values; string and boolean features: chi-square test on the counts of the baseline's "
        f"50 most frequent values plus one bucket for the rest. A feature is flagged as drifted "
        f"when p &lt; {d.threshold:g}. PSI (population stability index) is computed over the "
        f"baseline's deciles or the same categories: below 0.1 stable, 0.1 to 0.2 moderate, above "
        f"0.2 a large shift. With many rows the tests flag even tiny shifts; PSI tells their size."
        f"{sampled}</p>" + (f'<img alt="PSI per feature" src="{plot}">' if plot else "")
    )


def _expectations(v: ValidationReport) -> str:
    rows = []
    for res in v.results:
        ok = '<span class="ok">pass</span>' if res.success else '<span class="bad">FAIL</span>'
        examples = ", ".join(_example(x) for x in dict.fromkeys(res.examples))
        observed = "" if res.observed is None else _num(res.observed)
        name = _e(res.expectation.name)
        rows.append(
            f'<tr data-rule="{name}"><td><code>{name}</code></td>'
            + _cell(ok, res.success, cls="")
            + _cell(f"{res.evaluated:,}", res.evaluated)
            + _cell(f"{res.unexpected:,}", res.unexpected)
            + _cell(_pct(res.unexpected_fraction), res.unexpected_fraction)
            + _cell(f"{res.expectation.mostly:g}", res.expectation.mostly)
            + _cell(observed, res.observed)
            + f"<td>{examples}</td></tr>"
        )
    head = [
        "expectation",
        "result",
        "evaluated",
        "unexpected",
        "unexpected %",
        "mostly",
        "observed",
        "examples",
    ]
    return (
        f'<h2 id="expectations-section">Expectations</h2><p class="note">Checked on the current '
        f"version ({v.rows:,} rows).</p>" + _table(head, rows, ' id="expectations"')
    )


def _checks(checks: Sequence[RecordedCheck], version: int) -> str:
    rows = []
    for c in checks:
        base = "–" if c.baseline_version is None else str(c.baseline_version)
        if not c.alerts:
            rows.append(
                f'<tr><td>{_when(c.checked_at)}</td><td class="n">{base}</td>'
                '<td class="ok">ok</td><td></td><td></td><td>no alert</td></tr>'
            )
        for a in c.alerts:
            sev = "bad" if a.get("severity") == "critical" else "warn"
            rows.append(
                f'<tr><td>{_when(c.checked_at)}</td><td class="n">{base}</td>'
                f'<td class="{sev}">{_e(a.get("severity", ""))}</td>'
                f"<td>{_e(a.get('metric', ''))}</td>"
                f"<td>{_e(a.get('column') or '')}</td><td>{_e(a.get('message', ''))}</td></tr>"
            )
    head = ["checked", "baseline", "severity", "metric", "feature", "alert"]
    return (
        f'<h2 id="monitoring-section">Monitoring</h2><p class="note">The newest {len(checks)} '
        f"monitoring check(s) recorded for version {version}.</p>"
        + _table(head, rows, ' id="monitoring"')
    )


def _stats_rows(b: ColumnStatistics, c: ColumnStatistics) -> list[str]:
    figures: list[tuple[str, float | None, float | None]] = [
        ("rows", b.count, c.count),
        ("nulls", b.nulls, c.nulls),
    ]
    if b.nans or c.nans:
        figures.append(("NaNs", b.nans, c.nans))
    figures.append(("distinct (approx.)", b.distinct, c.distinct))
    if b.numeric:
        figures += [
            ("mean", b.mean, c.mean),
            ("std. dev.", b.stddev, c.stddev),
            ("min", b.min, c.min),
        ]
        for q in sorted(set(b.quantiles) | set(c.quantiles), key=float):
            figures.append((f"{float(q):.0%}", b.quantiles.get(q), c.quantiles.get(q)))
        figures.append(("max", b.max, c.max))
    rows = []
    for name, x, y in figures:
        change = _change(x, y) if x is not None and y is not None else ""
        rows.append(
            f"<tr><th>{name}</th>"
            + _cell(_num(x), x)
            + _cell(_num(y), y)
            + f'<td class="n">{change}</td></tr>'
        )
    rows.insert(
        2,
        f"<tr><th>null share</th><td class=n>{_pct(b.null_fraction)}</td>"
        f"<td class=n>{_pct(c.null_fraction)}</td><td></td></tr>",
    )
    return rows


def _category_rows(dist: Distribution) -> list[str]:
    base, cur = Distribution.shares(dist.baseline), Distribution.shares(dist.current)
    return [
        f"<tr><td>{_e(label)}</td>" + _cell(_pct(x), n) + _cell(_pct(y), m) + "</tr>"
        for label, x, y, n, m in zip(
            dist.labels, base, cur, dist.baseline, dist.current, strict=True
        )
    ]


def _feature(r: QualityReport, name: str) -> str:
    b, c = r.baseline.columns[name], r.current.columns[name]
    d = r.drift.columns.get(name)
    badge = ""
    if d is not None:
        band, cls = _psi_band(d.psi)
        label = "drifted" if d.drifted else "no drift"
        badge = (
            f'<span class="badge {"bad" if d.drifted else "ok"}">{label}, p={_p(d.p_value)}</span>'
            f'<span class="badge {cls}">PSI {d.psi:.3f}, {band}</span>'
        )
    dist = r.distributions.get(name)
    labels = (f"v{r.versions[0]}", f"v{r.versions[1]}")
    img = (
        f'<img alt="distribution of {_e(name)}" src="{distribution_plot(dist, b, c, labels)}">'
        if dist is not None
        else '<p class="note">No plot: no values, or a type without one.</p>'
    )
    head = ["", f"baseline v{r.versions[0]}", f"current v{r.versions[1]}", "change"]
    tables = _table(head, _stats_rows(b, c), ' class="stats"')
    if dist is not None and dist.kind == "categorical":
        cat_head = ["value", f"share v{r.versions[0]}", f"share v{r.versions[1]}"]
        tables += _table(cat_head, _category_rows(dist), ' class="categories"')
    return (
        f'<section class="feature" id="feature-{_e(name)}" data-feature="{_e(name)}">'
        f"<h3>{_e(name)} <code>{_e(b.dtype)}</code>{badge}</h3>"
        f'<div class="row">{img}<div class="stack">{tables}</div></div>'
        "</section>"
    )


def render_html(report: QualityReport) -> str:
    """The report as one HTML document (plots as inline PNG, no external reference)."""
    features = [
        f
        for f in report.subject.features
        if f in report.baseline.columns and f in report.current.columns
    ]
    legend = (
        f'<p class="note">Plots: <span class="key" style="background:{BASELINE_COLOR}"></span>'
        f'baseline v{report.versions[0]}<span class="key" style="background:{CURRENT_COLOR}">'
        f"</span>current v{report.versions[1]}; shares of the non-null values.</p>"
    )
    parts = [_header(report), _tiles(report), _drift(report)]
    if report.validation is not None:
        parts.append(_expectations(report.validation))
    if report.checks:
        parts.append(_checks(report.checks, report.versions[1]))
    parts.append('<h2 id="features-section">Features</h2>' + legend)
    parts += [_feature(report, f) for f in features]
    title = f"Data quality: {report.subject.view} v{report.versions[1]} vs v{report.versions[0]}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        + "".join(parts)
        + "</main></body></html>\n"
    )
