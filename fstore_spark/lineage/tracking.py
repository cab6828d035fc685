"""MLflow lineage: which feature set, views, Delta versions and definitions fed a run.

A training set built inside an active MLflow run (or with ``log_to_mlflow=True``) is logged
without the user writing MLflow code:

* one MLflow **dataset input** per feature view, context ``training``: a Delta source with the
  feature table's path and the exact Delta version read; plus one for the label rows
  (:mod:`fstore_spark.lineage.datasets`);
* **tags** (searchable, see :func:`runs_using_filter`) and **params**: the feature set name and
  version, every view's Delta version, definition version and hash, the label row count and
  content fingerprint, the training set's output fingerprint;
* an artifact ``feature_spec.yaml`` (:class:`~fstore_spark.lineage.spec.FeatureSpec`):
  everything needed to rebuild the training set by time travel
  (:meth:`fstore_spark.FeatureStore.reproduce_training_set`).

Everything goes through an ``MlflowClient`` bound to an explicit tracking URI and run id
(:class:`RunTarget`); nothing here reads or writes MLflow's private state.

Example::

    with mlflow.start_run() as run:
        ts = store.get_training_set("churn_v1", labels)       # logged: inputs, tags, spec
        pdf = ts.to_pandas()
        model = LogisticRegression().fit(pdf[ts.feature_columns], pdf["churned"])
        store.log_model(model, "model", flavor="sklearn", training_set=ts)
    again = store.reproduce_training_set(run.info.run_id)      # same rows, checked
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import LineageError
from fstore_spark.lineage.datasets import training_inputs
from fstore_spark.lineage.spec import SPEC_ARTIFACT, FeatureSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["TRACKING_URI_ENV", "RunTarget", "log_training_set", "runs_using_filter", "tracking_uri"]

_TAG = "fstore"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # MLflow's public variable; set_tracking_uri sets it


def tracking_uri(configured: str | None, default: str) -> str:
    """The tracking URI the store talks to.

    An explicit ``mlflow.tracking_uri`` in the config wins; else a URI the user set in MLflow —
    the ``MLFLOW_TRACKING_URI`` environment variable, which ``mlflow.set_tracking_uri`` also
    sets — as ``mlflow.get_tracking_uri()`` reports it; else ``default`` (the config's SQLite
    file beside the config), not MLflow's own default (``./mlruns`` or ``mlflow.db`` in the
    current directory), so that the store's runs do not depend on where Python was started.
    """
    if configured:
        return configured
    if os.environ.get(TRACKING_URI_ENV):
        import mlflow

        return str(mlflow.get_tracking_uri())
    return default


@dataclass(frozen=True)
class RunTarget:
    """An MLflow run to log to: its id and the tracking URI of the store that holds it."""

    tracking_uri: str
    run_id: str

    def client(self) -> Any:
        """An ``MlflowClient`` bound to this run's tracking store."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)


def _csv(items: list[str]) -> str:
    return "," + ",".join(items) + ","  # delimiters on both ends: LIKE '%,name,%' is exact


def _tags_and_params(spec: FeatureSpec) -> tuple[dict[str, str], dict[str, str]]:
    """The run tags and params describing a spec (see :func:`runs_using_filter` for tags)."""
    entity = {
        f"{_TAG}.entity_rows": str(spec.entity.get("rows")),
        f"{_TAG}.entity_fingerprint": str(spec.entity.get("fingerprint")),
    }
    tags: dict[str, str] = {
        f"{_TAG}.project": spec.project,
        f"{_TAG}.views": _csv([v["name"] for v in spec.views]),
        f"{_TAG}.features": _csv(spec.features)[:8000],
        **entity,
    }
    params = dict(entity)
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
    return tags, params


def log_training_set(
    spark: SparkSession, project_root: str, spec: FeatureSpec, run: RunTarget
) -> str:
    """Log a training set's lineage (inputs, tags, params, spec artifact) to ``run``.

    Returns:
        The run id.

    Raises:
        LineageError: MLflow rejected the logging (e.g. no such run at that tracking URI).
    """
    from mlflow.entities import Param, RunTag

    client = run.client()
    try:
        with warnings.catch_warnings():  # MLflow's hint about integer columns in the schema
            warnings.simplefilter("ignore", UserWarning)
            datasets = training_inputs(spark, project_root, spec)
        client.log_inputs(run.run_id, datasets=datasets)
        tags, params = _tags_and_params(spec)
        # params are immutable in MLflow: a second training set in the same run keeps the first
        # one's params (its tags and spec win, they are mutable)
        logged = client.get_run(run.run_id).data.params
        client.log_batch(
            run.run_id,
            params=[Param(k, v) for k, v in params.items() if k not in logged],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.log_text(run.run_id, spec.to_yaml(), SPEC_ARTIFACT)
    except Exception as exc:
        raise LineageError(
            f"could not log lineage to MLflow run {run.run_id} at {run.tracking_uri}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return run.run_id


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
