"""Definitions discovered from a feature repo folder and from YAML (no Spark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fstore_spark.core import FeatureView, validate_objects
from fstore_spark.errors import DefinitionError
from fstore_spark.registry.repo import load_definitions, load_repo, load_yaml_definitions

ROOT = Path(__file__).resolve().parents[2]


def test_seed_repo_is_discovered() -> None:
    objs = load_repo(ROOT / "feature_repo")
    names = {o.name for o in objs}
    assert {
        "customer",
        "customer_transactions",
        "customer_demographics",
        "customer_transaction_features",
        "customer_demographic_features",
        "churn_features_v1",
    } <= names
    validate_objects(objs)


def test_example_yaml_loads_and_resolves_source_names() -> None:
    objs = load_yaml_definitions(ROOT / "conf" / "definitions.example.yaml")
    views = [o for o in objs if isinstance(o, FeatureView)]
    assert [v.name for v in views] == ["merchant_payment_features"]
    assert views[0].source.name == "merchant_payments"
    assert views[0].aggregations[0].window.days == 7
    validate_objects(objs)
    both = load_definitions(ROOT / "feature_repo", [ROOT / "conf" / "definitions.example.yaml"])
    assert len(both) == len(load_repo(ROOT / "feature_repo")) + len(objs)


def test_yaml_errors_name_file_and_item(tmp_path: Path) -> None:
    f = tmp_path / "defs.yaml"
    f.write_text("entities:\n  - {name: 'bad name', join_keys: [id]}\n")
    with pytest.raises(DefinitionError, match=r"defs\.yaml: entities\[0\]"):
        load_yaml_definitions(f)
    f.write_text("views: []\n")
    with pytest.raises(DefinitionError, match=r"unknown top-level section"):
        load_yaml_definitions(f)
    f.write_text("feature_views:\n  - {name: v, entities: [c], source: nowhere, features: []}\n")
    with pytest.raises(DefinitionError, match=r"unknown source 'nowhere'"):
        load_yaml_definitions(f)


def test_repo_skips_private_files_and_reports_import_errors(tmp_path: Path) -> None:
    (tmp_path / "_private.py").write_text("raise RuntimeError('must not run')\n")
    (tmp_path / "ok.py").write_text(
        "from fstore_spark.core import Entity\ne = Entity(name='c', join_keys=['id'])\n"
    )
    assert [o.name for o in load_repo(tmp_path)] == ["c"]
    (tmp_path / "broken.py").write_text("import does_not_exist\n")
    with pytest.raises(DefinitionError, match=r"broken\.py: failed to import"):
        load_repo(tmp_path)
    with pytest.raises(DefinitionError, match="not a folder"):
        load_repo(tmp_path / "missing")


def test_repo_files_import_each_other_from_the_repo_root(tmp_path: Path) -> None:
    """The layout of a seed repo: ``features/`` imports ``data_sources/`` as a package."""
    import sys

    (tmp_path / "data_sources").mkdir()
    (tmp_path / "data_sources" / "sources.py").write_text(
        "from fstore_spark.core import DeltaSource\n"
        "transactions = DeltaSource(name='txns', path='raw/t', timestamp_column='ts')\n"
    )
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "customer_features.py").write_text(
        "from data_sources.sources import transactions\n"
        "from fstore_spark.core import Entity, FeatureView, Field\n"
        "customer = Entity(name='customer', join_keys=['customer_id'])\n"
        "view = FeatureView(name='v', entities=['customer'], source=transactions, ttl='1d',\n"
        "                   features=[Field(name='amount', dtype='float64')])\n"
    )
    path_before = list(sys.path)
    objs = load_repo(tmp_path)
    assert sorted(o.name for o in objs) == ["customer", "txns", "v"]  # the source once
    validate_objects(objs)
    assert sys.path == path_before
    assert "data_sources" not in sys.modules and "data_sources.sources" not in sys.modules
