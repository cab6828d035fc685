"""``fstore init``: a new feature repo with a config and sample data, ready to apply.

Like ``feast init``: one folder holding ``conf/feature_store.yaml``, ``feature_repo/`` with an
entity, a Parquet source and a windowed feature view, and two months of sample transactions
(written with pandas: no Spark needed) under ``data/``. Then::

    cd <folder>
    fstore apply
    fstore materialize customer_spending --start 2024-01-01 --end 2024-03-01
"""

from __future__ import annotations

from pathlib import Path

import click

from fstore_spark.cli.app import cli

__all__ = ["scaffold"]

_CONFIG = """\
# fstore_spark project configuration. Relative paths are relative to this file's folder.
project: {project}

lakehouse:
  root: ../data/lakehouse      # every feature table is a Delta table under <root>/<project>

online_store:
  url: ${{FSTORE_REDIS_URL:-redis://127.0.0.1:6379/0}}

mlflow:
  tracking_uri: sqlite:///../data/mlflow.db

spark:
  master: local[*]
  driver_memory: 2g
  options:
    spark.ui.showConsoleProgress: "false"

repo_path: ../feature_repo
"""

_REPO = '''\
"""Feature definitions of {project}: `fstore apply` registers them."""

from fstore_spark import Aggregation, Entity, FeatureSet, FeatureView, ParquetSource

customer = Entity(name="customer", join_keys={{"customer_id": "string"}})

transactions = ParquetSource(
    name="transactions",
    path="raw/transactions",  # under <lakehouse.root>/<project>
    timestamp_column="event_timestamp",
    schema={{"customer_id": "string", "amount": "float64"}},
    description="One row per card transaction (sample data from `fstore init`).",
)

customer_spending = FeatureView(
    name="customer_spending",
    entities=[customer],
    source=transactions,
    cadence="1d",
    ttl="90d",
    aggregations=[
        Aggregation(column="amount", function="sum", window="7d", name="spent_7d"),
        Aggregation(column="amount", function="sum", window="30d", name="spent_30d"),
        Aggregation(column="*", function="count", window="30d", name="transactions_30d"),
        Aggregation(column="amount", function="mean", window="30d", name="avg_amount_30d"),
    ],
    description="How much each customer spends.",
)

spending_v1 = FeatureSet(
    name="spending_v1",
    features=["customer_spending:*"],
    metadata={{"purpose": "sample"}},
)
'''

_README = """\
# {project}

Made by `fstore init`. From this folder:

    fstore plan                 # what apply would register
    fstore apply                # register feature_repo/ in the Delta registry
    fstore materialize customer_spending --start 2024-01-01 --end 2024-03-01
    fstore versions customer_spending
    fstore sync                 # to Redis (redis-server on $FSTORE_REDIS_URL)

The sample data is `data/lakehouse/{project}/raw/transactions` (Parquet).
"""


def _sample(path: Path, customers: int = 50, days: int = 60, seed: int = 7) -> int:
    """Write sample transactions (Parquet, microsecond timestamps); the number of rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = customers * days // 2
    start = pd.Timestamp("2024-01-01", tz="UTC")
    offsets = rng.integers(0, days * 86_400, n)
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in rng.integers(0, customers, n)],
            "event_timestamp": (start + pd.to_timedelta(offsets, unit="s")).astype(
                "datetime64[us, UTC]"
            ),
            "amount": np.round(rng.gamma(2.0, 30.0, n), 2),
        }
    ).sort_values("event_timestamp")
    path.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path / "part-00000.parquet", index=False, coerce_timestamps="us")
    return len(df)


def scaffold(folder: Path, project: str) -> list[Path]:
    """Write the config, the repo, the README and the sample data; the files written."""
    files = {
        folder / "conf" / "feature_store.yaml": _CONFIG.format(project=project),
        folder / "feature_repo" / "features.py": _REPO.format(project=project),
        folder / "README.md": _README.format(project=project),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    data = folder / "data" / "lakehouse" / project / "raw" / "transactions"
    _sample(data)
    return [*files, data]


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--project", help="Project name (default: the folder's name).")
def init(folder: Path, project: str | None) -> int:
    """Create a feature repo, its config and sample data in FOLDER (no Spark needed)."""
    import re

    folder = folder.resolve()
    name = project or re.sub(r"\W", "_", folder.name).strip("_") or "fstore"
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name):
        raise click.BadParameter(
            f"{name!r} is not a project name (letters, digits, _; not starting with a digit).",
            param_hint="'--project'",
        )
    if (folder / "conf" / "feature_store.yaml").exists():
        raise click.UsageError(f"{folder} already has conf/feature_store.yaml: nothing written.")
    for path in scaffold(folder, name):
        click.echo(f"created {path.relative_to(folder)}")
    click.echo(f"Next: cd {folder} && fstore apply (see README.md).")
    return 0
