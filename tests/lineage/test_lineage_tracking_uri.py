"""Lineage reads MLflow at an explicit tracking URI, whatever the process-wide one (no Spark)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fstore_spark.errors import LineageError
from fstore_spark.lineage.artifacts import (
    downloaded_model,
    load_run_spec,
    local_model_metadata,
    model_metadata,
    model_spec,
)
from fstore_spark.lineage.tracking import tracking_uri


def test_tracking_uri_config_then_mlflow_then_default(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tracking_uri("sqlite:///cfg.db", "sqlite:///default.db") == "sqlite:///cfg.db"
    assert os.environ["MLFLOW_TRACKING_URI"] == mlflow_uri  # set_tracking_uri sets it
    assert tracking_uri(None, "sqlite:///default.db") == mlflow_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(None, "sqlite:///default.db") == "sqlite:///default.db"


def test_models_and_specs_are_read_at_the_uri_asked_for(mlflow_uri: str, tmp_path: Path) -> None:
    import mlflow
    from sklearn.linear_model import Ridge

    exp = mlflow.create_experiment("e", artifact_location=str(tmp_path / "art"))
    with mlflow.start_run(experiment_id=exp) as run:
        info = mlflow.sklearn.log_model(
            Ridge().fit([[1.0], [2.0]], [1.0, 2.0]),
            name="model",
            metadata={"fstore_feature_spec": {"features": ["v:f"], "views": []}},
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    mlflow.register_model(info.model_uri, "reg")
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    mlflow.set_tracking_uri(elsewhere)  # the process-wide URI; the fixture restores it
    run_id = run.info.run_id
    for uri in (info.model_uri, f"runs:/{run_id}/model", "models:/reg/1", "models:/reg/latest"):
        assert model_spec(mlflow_uri, uri).features == ["v:f"]
        with downloaded_model(mlflow_uri, uri) as local:
            assert "MLmodel" in os.listdir(local)
            assert local_model_metadata(local) == model_metadata(mlflow_uri, uri)
    with pytest.raises(LineageError, match="no feature_spec.yaml|has no feature_spec"):
        load_run_spec(mlflow_uri, run_id)
    with pytest.raises(LineageError, match="cannot read model"):
        model_metadata(mlflow_uri, "models:/no_such_model/1")
    assert mlflow.get_tracking_uri() == elsewhere  # reading never touched the process-wide URI
