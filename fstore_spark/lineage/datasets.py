"""The Delta tables a training set read, described as MLflow dataset inputs.

A logged training set shows in MLflow as one dataset input per feature view (a Delta source:
the feature table's path and the exact Delta version read) plus one for the label rows, all
with context ``training``. Building them reads only metadata (schemas, paths): no Spark job.

Label rows that are not already a versioned Delta table are snapshotted once, content-addressed,
to ``<project>/_entity_snapshots/<fingerprint>`` (:func:`snapshot_entity_df`), so a run can be
rebuilt from its id alone (:func:`read_label_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fstore_spark.lineage.spec import FeatureSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["read_label_rows", "snapshot_entity_df", "training_inputs"]


def training_inputs(spark: SparkSession, project_root: str, spec: FeatureSpec) -> list[Any]:
    """MLflow ``DatasetInput`` entities for a spec: each feature view, then the label rows.

    The label rows are left out when they have no Delta source to point at.
    """
    inputs = [
        _as_input(
            _feature_table_dataset(spark, view, project_root),
            {"fstore.role": "features", "fstore.view": view["name"]},
        )
        for view in spec.views
    ]
    entity = _entity_dataset(spark, spec)
    if entity is not None:
        inputs.append(_as_input(entity, {"fstore.role": "labels"}))
    return inputs


def _as_input(dataset: Any, tags: Mapping[str, str]) -> Any:
    """A dataset with its tags and context ``training``, as the entity ``log_inputs`` takes."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    info = dataset.to_dict()  # name, digest, source, source_type, schema, profile (all str)
    entity = Dataset(
        name=info["name"],
        digest=info["digest"],
        source_type=info["source_type"],
        source=info["source"],
        schema=info.get("schema"),
        profile=info.get("profile"),
    )
    input_tags = [InputTag(key=k, value=v) for k, v in tags.items()]
    input_tags.append(InputTag(key=MLFLOW_DATASET_CONTEXT, value="training"))
    return DatasetInput(dataset=entity, tags=input_tags)


def _delta_source(path: str | None, table: str | None, version: int | None) -> Any:
    """A Delta dataset source that records version 0 too (MLflow's drops a falsy version)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    class _Source(DeltaDatasetSource):
        def to_dict(self) -> dict[Any, Any]:
            info = super().to_dict()
            if self.delta_table_version is not None:
                info["delta_table_version"] = self.delta_table_version
            return info

    return _Source(path=path, delta_table_name=table, delta_table_version=version)


def _feature_table_dataset(spark: SparkSession, view: Mapping[str, Any], project_root: str) -> Any:
    """An MLflow dataset for one view's feature table at its Delta version (no Spark job)."""
    from mlflow.data.spark_dataset import SparkDataset

    from fstore_spark.lakehouse.tables import read_feature_table

    version = view.get("delta_version")
    df = read_feature_table(spark, project_root, view["name"], as_of_version=version)
    cols = [c for c in df.columns if c in {*view["join_keys"], *view["features"]}]
    profile = {
        "delta_version": version,
        "view_version": view.get("view_version"),
        "features": len(view["features"]),
    }

    class _Dataset(SparkDataset):  # MLflow's profile runs an RDD job; ours is metadata only
        @property
        def profile(self) -> Any:
            return profile

    return _Dataset(
        df=df.select(*cols),
        source=_delta_source(view["path"], None, version),
        name=view["name"],
        digest=f"{(view.get('definition_hash') or '')[:8]}-v{version}",
    )


def _entity_dataset(spark: SparkSession, spec: FeatureSpec) -> Any:
    """An MLflow dataset for the label rows at their Delta version; None if not in Delta."""
    from mlflow.data.spark_dataset import SparkDataset

    src = spec.entity.get("source") or {}
    if src.get("format") != "delta":
        return None
    rows = spec.entity.get("rows")

    class _Dataset(SparkDataset):  # the row count is known: no counting job
        @property
        def profile(self) -> Any:
            return {"num_rows": rows}

    source = _delta_source(src.get("path"), src.get("table"), int(src["version"]))
    fp = str(spec.entity.get("fingerprint") or "")
    return _Dataset(df=read_label_rows(spark, src), source=source, name="entity_df", digest=fp[:16])


def read_label_rows(spark: SparkSession, source: Mapping[str, Any]) -> DataFrame:
    """The label rows of an entity source (``table`` or ``path``), at its Delta ``version``."""
    from fstore_spark.lakehouse.tables import read_delta

    by_name = bool(source.get("table"))
    location = source["table"] if by_name else source["path"]
    return read_delta(spark, location, version=int(source["version"]), by_name=by_name)


def snapshot_entity_df(
    spark: SparkSession, project_root: str, labels: DataFrame, fingerprint: str
) -> dict[str, Any]:
    """Persist label rows once, content-addressed, so a run can be rebuilt from its id.

    Returns:
        The entity source: ``{"format": "delta", "path", "version"}``.
    """
    from fstore_spark.lakehouse.tables import is_delta_table, latest_version, save_delta

    path = f"{project_root}/_entity_snapshots/{fingerprint}"
    if not is_delta_table(spark, path):
        # same fingerprint = same content: a concurrent writer writes the same rows
        save_delta(labels.write.format("delta").mode("overwrite"), path)
    version = latest_version(spark, path)
    return {"format": "delta", "path": path, "version": 0 if version is None else version}
