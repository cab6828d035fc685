"""MLflow lineage: which feature set, views, Delta versions and definitions fed a run or a model.

A training set built inside an active MLflow run (or with ``log_to_mlflow=True``) is logged
without the user writing MLflow code:

* one MLflow **dataset input** per feature view, context ``training``: a Delta source with the
  feature table's path and the exact Delta version read; plus one for the label rows;
* **tags** (searchable, see :func:`runs_using_filter`) and **params**: the feature set name and
  version, every view's Delta version, definition version and hash, the label row count and
  content fingerprint, the training set's output fingerprint;
* an artifact ``feature_spec.yaml`` (:class:`FeatureSpec`): everything needed to rebuild the
  training set by time travel (:meth:`fstore_spark.FeatureStore.reproduce_training_set`).

Label rows that are not already a versioned Delta table are snapshotted once, content-addressed,
to ``<project>/_entity_snapshots/<fingerprint>`` so a run can be rebuilt from its id alone.

Models logged with :meth:`fstore_spark.FeatureStore.log_model` carry the feature spec in their
``MLmodel`` metadata (key ``fstore_feature_spec``), which is how
:meth:`~fstore_spark.FeatureStore.score_batch` knows which features to look up.

Example::

    with mlflow.start_run() as run:
        ts = store.get_training_set("churn_v1", labels)       # logged: inputs, tags, spec
        pdf = ts.to_pandas()
        model = LogisticRegression().fit(pdf[ts.feature_columns], pdf["churned"])
        store.log_model(model, "model", flavor="sklearn", training_set=ts)
    again = store.reproduce_training_set(run.info.run_id)      # same rows, checked
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark._version import __version__
from fstore_spark.errors import LineageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fstore_spark.offline.training import HistoricalFeatures

__all__ = [
    "FeatureSpec",
    "SPEC_ARTIFACT",
    "MODEL_METADATA_KEY",
    "log_training_set",
    "runs_using_filter",
    "snapshot_entity_df",
    "tracking_uri",
]

SPEC_ARTIFACT = "feature_spec.yaml"
MODEL_METADATA_KEY = "fstore_feature_spec"
ENCODERS_METADATA_KEY = "fstore_encoders"  # fitted encoders (FittedEncoder.to_dict()), in order
_SPEC_FORMAT = 1
_TAG = "fstore"


@dataclass
class FeatureSpec:
    """Everything a training set was built from — the content of ``feature_spec.yaml``.

    Attributes:
        project: Feature store project.
        features: Feature references in output order (``view:feature``).
        feature_columns: Output column names of the features, in order.
        views: Per view: ``name, features, join_keys, delta_version, view_version,
            definition_hash, path``.
        timestamp_column: Label time column.
        full_feature_names: Whether columns are ``view__feature``.
        registry_version: Registry version the definitions were read from.
        entity: ``rows``, ``fingerprint``, ``columns`` and ``source`` (where to re-read them).
        feature_set: ``{"name", "version"}`` when built from a feature set.
        output: ``rows`` and ``fingerprint`` of the training set itself, when computed.
        created_at: When the spec was written (UTC, ISO 8601).
        fstore_version: Library version that wrote it.
        model_input_columns: For a model's spec, the columns the model takes, in order.
    """

    project: str
    features: list[str]
    feature_columns: list[str]
    views: list[dict[str, Any]]
    timestamp_column: str
    full_feature_names: bool = False
    registry_version: int | None = None
    entity: dict[str, Any] = field(default_factory=dict)
    feature_set: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    created_at: str = ""
    fstore_version: str = __version__
    model_input_columns: list[str] | None = None

    @classmethod
    def from_training_set(
        cls, ts: HistoricalFeatures, project: str, *, output: tuple[int, str] | None = None
    ) -> FeatureSpec:
        """Describe a training set (``output`` = its (rows, fingerprint) when computed)."""
        return cls(
            project=project,
            features=[str(r) for r in ts.feature_refs],
            feature_columns=list(ts.feature_columns),
            views=[
                {
                    "name": i.view,
                    "features": list(i.features),
                    "join_keys": list(ts.join_keys.get(i.view, [])),
                    "delta_version": i.delta_version,
                    "view_version": i.view_version,
                    "definition_hash": i.definition_hash,
                    "path": i.path,
                }
                for i in ts.inputs
            ],
            timestamp_column=ts.timestamp_column,
            full_feature_names=ts.full_feature_names,
            registry_version=ts.registry_version,
            entity={
                "rows": ts.entity_rows,
                "fingerprint": ts.entity_fingerprint,
                "columns": list(ts.entity_columns),
                "source": ts.entity_source,
            },
            feature_set=(
                None
                if ts.feature_set is None
                else {"name": ts.feature_set, "version": ts.feature_set_version}
            ),
            output=None if output is None else {"rows": output[0], "fingerprint": output[1]},
            created_at=datetime.now(UTC).isoformat(),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-compatible dict."""
        return {
            "format_version": _SPEC_FORMAT,
            "fstore_version": self.fstore_version,
            "project": self.project,
            "created_at": self.created_at,
            "feature_set": self.feature_set,
            "registry_version": self.registry_version,
            "timestamp_column": self.timestamp_column,
            "full_feature_names": self.full_feature_names,
            "features": list(self.features),
            "feature_columns": list(self.feature_columns),
            "views": [dict(v) for v in self.views],
            "entity": dict(self.entity),
            "output": None if self.output is None else dict(self.output),
            "model_input_columns": self.model_input_columns,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """Parse :meth:`to_dict` output.

        Raises:
            LineageError: not a feature spec, or written by a newer format.
        """
        if not isinstance(d, Mapping) or "features" not in d or "views" not in d:
            raise LineageError("not an fstore feature spec (no 'features'/'views').")
        if int(d.get("format_version", 1)) > _SPEC_FORMAT:
            raise LineageError(
                f"feature spec format {d.get('format_version')} is newer than this library "
                f"understands ({_SPEC_FORMAT}). Fix: upgrade fstore_spark."
            )
        return cls(
            project=str(d.get("project", "")),
            features=list(d["features"]),
            feature_columns=list(d.get("feature_columns") or []),
            views=[dict(v) for v in d["views"]],
            timestamp_column=str(d.get("timestamp_column", "event_timestamp")),
            full_feature_names=bool(d.get("full_feature_names", False)),
            registry_version=d.get("registry_version"),
            entity=dict(d.get("entity") or {}),
            feature_set=d.get("feature_set"),
            output=d.get("output"),
            created_at=str(d.get("created_at", "")),
            fstore_version=str(d.get("fstore_version", "")),
            model_input_columns=d.get("model_input_columns"),
        )

    def to_yaml(self) -> str:
        """The spec as YAML (what ``feature_spec.yaml`` holds)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_yaml(cls, text: str) -> FeatureSpec:
        """Parse ``feature_spec.yaml``."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LineageError(f"feature spec is not valid YAML: {exc}") from exc
        return cls.from_dict(data)

    @property
    def as_of(self) -> dict[str, int]:
        """Per view, the Delta version to time travel to (views with a known version)."""
        return {
            v["name"]: int(v["delta_version"])
            for v in self.views
            if v.get("delta_version") is not None
        }


# ------------------------------------------------------------------------------ MLflow plumbing


def tracking_uri(configured: str | None, default: str) -> str:
    """The tracking URI the store talks to.

    An explicit ``mlflow.tracking_uri`` in the config wins; else a URI the user set in MLflow
    (``MLFLOW_TRACKING_URI`` or ``mlflow.set_tracking_uri``); else the config default (a SQLite
    file beside the config).
    """
    if configured:
        return configured
    from mlflow.tracking._tracking_service import utils

    if utils.is_tracking_uri_set():  # type: ignore[no-untyped-call]
        return str(utils.get_tracking_uri())
    return default


@contextlib.contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """Point the fluent MLflow API at ``uri`` for a block, then restore what it was."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    was_set = utils.is_tracking_uri_set()  # type: ignore[no-untyped-call]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if was_set:
            mlflow.set_tracking_uri(previous)
        else:
            utils._tracking_uri = None  # back to "not set", as before


def _delta_source(path: str | None, table: str | None, version: int | None) -> Any:
    """A Delta dataset source that records version 0 too (MLflow's drops a falsy version)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    class _Source(DeltaDatasetSource):
        def to_dict(self) -> dict[Any, Any]:
            info = super().to_dict()
            if self._delta_table_version is not None:
                info["delta_table_version"] = self._delta_table_version
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
    from mlflow.data.spark_dataset import SparkDataset

    src = spec.entity.get("source") or {}
    if src.get("format") != "delta":
        return None
    reader = spark.read.format("delta").option("versionAsOf", int(src["version"]))
    df = reader.table(src["table"]) if src.get("table") else reader.load(src["path"])
    rows = spec.entity.get("rows")

    class _Dataset(SparkDataset):
        @property
        def profile(self) -> Any:
            return {"num_rows": rows}

    source = _delta_source(src.get("path"), src.get("table"), int(src["version"]))
    fp = str(spec.entity.get("fingerprint") or "")
    return _Dataset(df=df, source=source, name="entity_df", digest=fp[:16])


def snapshot_entity_df(
    spark: SparkSession, project_root: str, labels: DataFrame, fingerprint: str
) -> dict[str, Any]:
    """Persist label rows once, content-addressed, so a run can be rebuilt from its id.

    Returns:
        The entity source: ``{"format": "delta", "path", "version"}``.
    """
    from fstore_spark.lakehouse.tables import is_delta_table, latest_version

    path = f"{project_root}/_entity_snapshots/{fingerprint}"
    if not is_delta_table(spark, path):
        # same fingerprint = same content: a concurrent writer writes the same rows
        labels.write.format("delta").mode("overwrite").save(path)
    version = latest_version(spark, path)
    return {"format": "delta", "path": path, "version": 0 if version is None else version}


def _csv(items: list[str]) -> str:
    return "," + ",".join(items) + ","  # delimiters on both ends: LIKE '%,name,%' is exact


def log_training_set(spark: SparkSession, project_root: str, spec: FeatureSpec) -> str:
    """Log a training set's lineage to the active MLflow run; return the run id.

    Raises:
        LineageError: no active run, or MLflow rejected the logging.
    """
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise LineageError("no active MLflow run to log the training set to.")
    try:
        with warnings.catch_warnings():  # MLflow's hint about integer columns in the schema
            warnings.simplefilter("ignore", UserWarning)
            for view in spec.views:
                mlflow.log_input(
                    _feature_table_dataset(spark, view, project_root),
                    context="training",
                    tags={"fstore.role": "features", "fstore.view": view["name"]},
                )
            entity = _entity_dataset(spark, spec)
            if entity is not None:
                mlflow.log_input(entity, context="training", tags={"fstore.role": "labels"})
        tags: dict[str, str] = {
            f"{_TAG}.project": spec.project,
            f"{_TAG}.views": _csv([v["name"] for v in spec.views]),
            f"{_TAG}.features": _csv(spec.features)[:8000],
            f"{_TAG}.entity_rows": str(spec.entity.get("rows")),
            f"{_TAG}.entity_fingerprint": str(spec.entity.get("fingerprint")),
        }
        params: dict[str, str] = {
            f"{_TAG}.entity_rows": str(spec.entity.get("rows")),
            f"{_TAG}.entity_fingerprint": str(spec.entity.get("fingerprint")),
        }
        if spec.output is not None:
            tags[f"{_TAG}.output_fingerprint"] = str(spec.output["fingerprint"])
        if spec.feature_set is not None:
            for k in ("name", "version"):
                tags[f"{_TAG}.feature_set.{k}"] = str(spec.feature_set[k])
                params[f"{_TAG}.feature_set.{k}"] = str(spec.feature_set[k])
        for v in spec.views:
            name = v["name"]
            tags[f"{_TAG}.view.{name}"] = str(v["delta_version"])
            tags[f"{_TAG}.view.{name}.features"] = _csv(list(v["features"]))[:8000]
            for k in ("delta_version", "view_version", "definition_hash"):
                tags[f"{_TAG}.view.{name}.{k}"] = str(v.get(k))
                params[f"{_TAG}.view.{name}.{k}"] = str(v.get(k))
        mlflow.set_tags(tags)
        # params are immutable in MLflow: a second training set in the same run keeps the first
        # one's params (its tags and spec win, they are mutable)
        logged = mlflow.get_run(run.info.run_id).data.params
        mlflow.log_params({k: val for k, val in params.items() if k not in logged})
        mlflow.log_text(spec.to_yaml(), SPEC_ARTIFACT)
    except LineageError:
        raise
    except Exception as exc:
        raise LineageError(
            f"could not log lineage to MLflow run {run.info.run_id} at "
            f"{mlflow.get_tracking_uri()}: {type(exc).__name__}: {exc}"
        ) from exc
    return str(run.info.run_id)


def load_run_spec(uri: str, run_id: str) -> FeatureSpec:
    """Read ``feature_spec.yaml`` of a run.

    Raises:
        LineageError: no such run, or the run has no feature spec.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        client.get_run(run_id)
    except Exception as exc:
        raise LineageError(f"no MLflow run {run_id!r} at {uri}: {exc}") from exc
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{SPEC_ARTIFACT}")
    except Exception as exc:
        raise LineageError(
            f"MLflow run {run_id} has no {SPEC_ARTIFACT} artifact: it did not build a training "
            "set through fstore_spark with lineage logging (inside an active run or with "
            "log_to_mlflow=True)."
        ) from exc
    return FeatureSpec.from_yaml(text)


def model_spec(model_uri: str) -> FeatureSpec:
    """The feature spec stored with a model by ``FeatureStore.log_model``.

    Raises:
        LineageError: the model was not logged through the feature store.
    """
    from mlflow.models import get_model_info

    try:
        info = get_model_info(model_uri)
    except Exception as exc:
        raise LineageError(f"cannot read model {model_uri!r}: {exc}") from exc
    meta = (info.metadata or {}).get(MODEL_METADATA_KEY)
    if meta is None:
        raise LineageError(
            f"model {model_uri!r} has no feature spec in its metadata. Fix: log it with "
            "store.log_model(model, artifact_path, flavor, training_set=...)."
        )
    return FeatureSpec.from_dict(meta)


def model_encoders(model_uri: str) -> list[dict[str, Any]]:
    """The fitted encoders stored with a model by ``FeatureStore.log_model`` (as dicts).

    Raises:
        LineageError: the model cannot be read.
    """
    from mlflow.models import get_model_info

    try:
        info = get_model_info(model_uri)
    except Exception as exc:
        raise LineageError(f"cannot read model {model_uri!r}: {exc}") from exc
    return list((info.metadata or {}).get(ENCODERS_METADATA_KEY) or [])


def runs_using_filter(ref: str) -> str:
    """MLflow search filter for runs that used a view (``"view"``) or a feature (``"view:f"``)."""
    from fstore_spark.core import is_safe_identifier

    view, _, feature = ref.partition(":")
    for part in (view, feature) if feature else (view,):
        if not is_safe_identifier(part):
            raise LineageError(f"{ref!r}: expected 'view' or 'view:feature' with safe names.")
    if feature:
        return f"tags.`{_TAG}.view.{view}.features` LIKE '%,{feature},%'"
    return f"tags.`{_TAG}.view.{view}` LIKE '%'"
