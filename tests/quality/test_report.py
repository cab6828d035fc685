"""The HTML quality report: its figures against the store's own checks, and a real browser.

Oracles: ``store.detect_drift`` and ``store.feature_statistics`` for the drift table and the
statistics (the report must show the same numbers), the generated rows for the expectation
counts, PIL for the embedded plots, and headless Chromium for how the page renders: a
screenshot that is not blank, and the DOM after load (tables and images with a size).
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from fstore_spark import DeltaSource, Entity, FeatureStore, FeatureStoreConfig, FeatureView, Field
from fstore_spark.cli import main as fstore
from fstore_spark.quality import MonitorRule, expect_between, expect_in_set, expect_not_null

CHROMIUM = Path("/usr/bin/chromium")
T0 = datetime(2024, 3, 1, tzinfo=UTC)
N = 600
CITIES_V1 = ["lisbon", "porto", "faro"]
CITIES_V2 = ["lisbon", "lisbon", "porto", "faro", "braga"]  # skewed, and one new city

# Run in the page after load: what rendered, written into the DOM for --dump-dom to show.
PROBE = """<script>addEventListener("load", () => {
  const b = document.body;
  b.dataset.images = [...document.images]
    .map(i => i.naturalWidth + "x" + i.naturalHeight).join(" ");
  b.dataset.driftRows = [...document.querySelectorAll("#drift tbody tr")]
    .map(r => r.dataset.feature + ":" + r.offsetHeight).join(" ");
  b.dataset.rules = document.querySelectorAll("#expectations tbody tr").length;
  b.dataset.sections = [...document.querySelectorAll("section.feature")]
    .map(s => s.dataset.feature + ":" + s.offsetHeight).join(" ");
});</script>"""


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            "chromium is not installed: run `apt-get install chromium` (.ci/run does)",
            pytrace=False,
        )


def _chromium(profile: Path, *args: str) -> str:
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _profiles(seed: int, version: int) -> list[tuple]:
    """Rows of the raw source: version 2 shifts income up, nulls 10% and skews the cities."""
    rng = np.random.default_rng(seed)
    shift, cities = (0.0, CITIES_V1) if version == 1 else (8.0, CITIES_V2)
    return [
        (
            f"c{i}",
            T0 + timedelta(hours=i),
            None if version == 2 and i % 10 == 0 else float(rng.normal(50 + shift, 5)),
            int(rng.poisson(3)),
            cities[i % len(cities)],
            bool(i % 3 == 0),
        )
        for i in range(N)
    ]


def _store_with_two_versions(spark, root: Path) -> tuple[FeatureStore, int, int, list[tuple]]:
    store = FeatureStore(config=FeatureStoreConfig.for_local(root, project="q"), spark=spark)
    src = DeltaSource(name="profiles", path="raw/profiles", timestamp_column="ts")
    store.apply(
        [
            Entity(name="customer", join_keys=["customer_id"]),
            FeatureView(
                name="profile",
                entities=["customer"],
                source=src,
                ttl="60d",
                features=[
                    Field(name="income", dtype="float64"),
                    Field(name="visits", dtype="int64"),
                    Field(name="city", dtype="string"),
                    Field(name="member", dtype="bool"),
                ],
            ),
        ]
    )
    schema = (
        "customer_id string, ts timestamp, income double, visits long, city string, member boolean"
    )
    versions = []
    for version in (1, 2):
        rows = _profiles(seed=version, version=version)
        spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").save(
            store.table_path("raw/profiles")
        )
        versions.append(store.materialize("profile", T0, T0 + timedelta(days=40)).table_version)
    v1, v2 = versions
    assert v1 is not None and v2 is not None and v2 > v1
    return store, v1, v2, rows


def _values(html: str, attr: str, name: str) -> list[str]:
    """The ``data-value`` attributes of the table row with ``attr="name"``."""
    row = re.search(rf'<tr {attr}="{re.escape(name)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row is not None, f"no row {attr}={name!r}"
    return re.findall(r'data-value="([^"]*)"', row.group(1))


def _check_drift_table(html: str, drift) -> None:
    """Every drift figure in the report equals the store's own ``detect_drift``."""
    assert set(re.findall(r'<tr data-feature="([^"]+)"', html)) == set(drift.columns)
    for name, d in drift.columns.items():
        statistic, p_value, psi, drifted, n_ref, n_cur = _values(html, "data-feature", name)
        assert (float(statistic), float(p_value), float(psi)) == (d.statistic, d.p_value, d.psi)
        assert (drifted, int(n_ref), int(n_cur)) == (
            repr(d.drifted),
            d.reference_count,
            d.current_count,
        )


def _check_self_contained(html: str) -> list[bytes]:
    """No external reference; returns the PNG bytes of every embedded image."""
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html and "url(" not in html
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    return [base64.b64decode(s.split(",", 1)[1]) for s in sources]


def _check_rendering(html_path: Path, tmp_path: Path, images: int) -> None:
    """Chromium renders the page: a screenshot with content, and images with a real size."""
    from PIL import Image

    shot = tmp_path / "report.png"
    _chromium(
        tmp_path / "chromium", f"--screenshot={shot}", "--window-size=1280,2000", html_path.as_uri()
    )
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        assert rgb.size == (1280, 2000)
        colors = rgb.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 300, "the screenshot has almost no colors"
    background = sum(n for n, c in colors if c in {(255, 255, 255), (246, 248, 250)})
    assert background < 0.95 * 1280 * 2000, "the screenshot is nearly blank"

    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp_path / "chromium", "--dump-dom", probe.as_uri())
    found = dict(re.findall(r'data-(images|drift-rows|rules|sections)="([^"]*)"', dom))
    sizes = [tuple(map(int, s.split("x"))) for s in found["images"].split()]
    assert len(sizes) == images and all(w > 200 and h > 100 for w, h in sizes), sizes
    rows = dict(r.split(":") for r in found["drift-rows"].split())
    assert set(rows) == {"income", "visits", "city", "member"}
    assert all(int(h) > 0 for h in rows.values())
    assert found["rules"] == "3"
    sections = dict(s.split(":") for s in found["sections"].split())
    assert list(sections) == ["income", "visits", "city", "member"]
    assert all(int(h) > 200 for h in sections.values()), sections


def _check_cli(store: FeatureStore, lakehouse: Path, tmp_path: Path, capsys) -> None:
    """``fstore report`` writes the file and prints its path; the baseline defaults to the
    commit before the latest version."""
    config = tmp_path / "feature_store.yaml"
    config.write_text(f"project: q\nlakehouse:\n  root: {lakehouse}\n")
    expectations = tmp_path / "expectations.yaml"
    expectations.write_text("income: {min_value: 0, max_value: 55}\n")
    out = tmp_path / "out" / "profile.html"
    args = ["report", "profile", "--config", str(config), "--output", str(out)]
    code = fstore([*args, "--expectations", str(expectations)])
    printed = capsys.readouterr().out.strip()
    assert code == 0 and printed == str(out.resolve())
    html = out.read_text()
    commits = sorted(v["version"] for v in store.list_versions("profile"))
    assert f"version {commits[-1]} against baseline version {commits[-2]}" in html
    assert 'data-rule="between(income, 0, 55)"' in html


def test_html_report_matches_the_store_and_renders_in_chromium(
    spark, lakehouse: Path, tmp_path: Path, mlflow_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    from PIL import Image

    _require_chromium()  # fail now, before the Spark work
    store, v1, v2, rows = _store_with_two_versions(spark, lakehouse)
    seen: list = []
    store.monitor("profile", [MonitorRule("missing_values", 0.05)], channels=[seen.append])
    assert [a.column for a in seen] == ["income"]
    rules = [
        expect_between("income", 0, 55),
        expect_not_null("income"),
        expect_in_set("city", CITIES_V1),
    ]
    experiment = mlflow.create_experiment("reports", artifact_location=str(tmp_path / "art"))
    with mlflow.start_run(experiment_id=experiment) as run:
        written = store.report("profile", baseline_version=v1, version=v2, expectations=rules)
    path = Path(written)
    assert path == Path(lakehouse, "reports", f"profile_v{v1}_v{v2}.html").resolve()
    logged = mlflow.MlflowClient().list_artifacts(run.info.run_id, "reports")
    assert [a.path for a in logged] == [f"reports/{path.name}"]
    html = path.read_text()

    # header: project, view, versions, rows, identity
    assert "Data quality report: profile" in html and f"by {store.identity}" in html
    assert f"version {v2} against baseline version {v1}" in html and "600 → 600" in html

    # the drift table holds the store's numbers; the drifted features are the ones moved
    drift = store.detect_drift("profile", baseline_version=v1, version=v2)
    _check_drift_table(html, drift)
    assert sorted(drift.drifted_columns) == ["city", "income"]

    # statistics per feature, as kept for each version
    s1 = store.feature_statistics("profile", version=v1)
    s2 = store.feature_statistics("profile", version=v2)
    for name in ("income", "visits", "city", "member"):
        assert f'id="feature-{name}"' in html
    section = html[html.index('id="feature-income"') : html.index('id="feature-visits"')]
    assert repr(s1["income"].mean) in section and repr(s2["income"].mean) in section
    assert "braga" in html[html.index('id="feature-city"') :]  # the new city is plotted

    # expectation results: the counts of the generated rows
    incomes = [r[2] for r in rows if r[2] is not None]
    between = _values(html, "data-rule", "between(income, 0, 55)")
    assert between[:3] == ["False", repr(len(incomes)), repr(sum(x > 55 for x in incomes))]
    assert _values(html, "data-rule", "not_null(income)")[:3] == ["False", "600", "60"]
    assert _values(html, "data-rule", "in_set(city, 3 values)")[:3] == ["False", "600", "120"]
    # the recorded monitoring check and its alert
    assert 'id="monitoring"' in html and "missing_values" in html

    pngs = _check_self_contained(html)
    for png in pngs:
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.width > 200 and im.height > 100
    assert len(pngs) == 1 + 4  # the PSI chart, one plot per feature
    _check_rendering(path, tmp_path, images=len(pngs))
    _check_cli(store, lakehouse, tmp_path, capsys)


def test_cli_report_checks_the_expectations_file_before_spark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "expectations.yaml"
    bad.write_text("- income\n")
    code = fstore(["report", "v", "--expectations", str(bad), "--config", "missing.yaml"])
    err = capsys.readouterr().err
    assert code == 2 and "--expectations" in err and "column -> rules" in err
