"""Lineage for a store: training sets logged to MLflow, rebuilt from a run, searched by feature.

The store's training-set calls come here: a training set is built by
:class:`~fstore_spark.offline.training_sets.TrainingSets` and, inside an active MLflow run (or
when asked), logged with its feature spec (:mod:`fstore_spark.lineage.tracking`).

MLflow is reached through ``MlflowClient`` with an explicit tracking URI and run id. With no
active run, the store logs to a run of its own that it finishes (:meth:`Lineage.logging_run`);
the process-wide tracking URI, active run and experiment are left as they were.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from fstore_spark.errors import LineageError, NotFoundError
from fstore_spark.lineage.artifacts import load_run_spec
from fstore_spark.lineage.datasets import read_label_rows, snapshot_entity_df
from fstore_spark.lineage.spec import FeatureSpec
from fstore_spark.lineage.tracking import (
    TRACKING_URI_ENV,
    RunTarget,
    log_training_set,
    runs_using_filter,
    tracking_uri,
)
from fstore_spark.offline.training import HistoricalFeatures, dataframe_fingerprint
from fstore_spark.offline.training_sets import TrainingSets
from fstore_spark.registry.context import StoreContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["Lineage", "should_log"]


def should_log(log_to_mlflow: bool | None) -> bool:
    """Explicit choice, else log when an MLflow run is active (no import if MLflow isn't used)."""
    if log_to_mlflow is not None:
        return log_to_mlflow
    mlflow = sys.modules.get("mlflow")
    return mlflow is not None and mlflow.active_run() is not None


class Lineage:
    """Builds training sets with lineage, and rebuilds or finds them from MLflow runs."""

    def __init__(self, ctx: StoreContext, training: TrainingSets) -> None:
        self._ctx = ctx
        self._training = training

    def tracking_uri(self) -> str:
        """The MLflow tracking URI the store talks to (see :func:`tracking.tracking_uri`)."""
        cfg = self._ctx.config
        return tracking_uri(cfg.mlflow.tracking_uri, cfg.tracking_uri)

    @contextmanager
    def logging_run(self, name: str, *, fluent: bool = False) -> Iterator[RunTarget]:
        """The run to log to while the block runs: the active MLflow run, else a new one.

        The active run (the user's) is left as it is: it lives in the tracking store of
        MLflow's fluent API, so its target is ``mlflow.get_tracking_uri()``. Without one, a run
        named ``name`` is created with an ``MlflowClient`` in the configured experiment of the
        store's tracking URI (:meth:`tracking_uri`) and finished when the block ends (``FAILED``
        if it raised). With ``fluent`` (for a flavor's ``log_model``, which only logs to the
        active run) that run is made active for the block, at the store's tracking URI, and
        the process-wide tracking URI is restored afterwards. The active experiment is never
        changed.
        """
        import mlflow
        from mlflow.tracking import MlflowClient

        active = mlflow.active_run()
        if active is not None:
            yield RunTarget(tracking_uri=mlflow.get_tracking_uri(), run_id=active.info.run_id)
            return
        uri = self.tracking_uri()
        client = MlflowClient(tracking_uri=uri)
        run = client.create_run(self._experiment_id(client), run_name=name)
        target = RunTarget(tracking_uri=uri, run_id=run.info.run_id)
        status = "FAILED"
        try:
            if fluent:
                with _active(target):
                    yield target
            else:
                yield target
            status = "FINISHED"
        finally:
            client.set_terminated(target.run_id, status=status)

    def _experiment_id(self, client: Any) -> str:
        """The configured experiment's id at ``client``'s tracking URI, created if absent."""
        cfg = self._ctx.config
        found = client.get_experiment_by_name(cfg.mlflow.experiment)
        if found is not None:
            return str(found.experiment_id)
        return str(
            client.create_experiment(cfg.mlflow.experiment, artifact_location=cfg.artifact_location)
        )

    def historical(
        self,
        entity_df: Any,
        refs: list[str],
        *,
        timestamp_column: str,
        as_of: Mapping[str, int | datetime | str] | None,
        full_feature_names: bool,
        log_to_mlflow: bool | None,
        feature_set: tuple[str, int | None] | None = None,
        registry_version: int | None = None,
        label_time_exact: bool = False,
    ) -> HistoricalFeatures:
        """A training set (see :meth:`TrainingSets.build`), logged to MLflow when asked."""
        ts, labels = self._training.build(
            entity_df,
            refs,
            timestamp_column=timestamp_column,
            as_of=as_of,
            full_feature_names=full_feature_names,
            feature_set=feature_set,
            registry_version=registry_version,
            label_time_exact=label_time_exact,
        )
        if should_log(log_to_mlflow):
            self._log(ts, labels)
        return ts

    def _log(self, ts: HistoricalFeatures, labels: DataFrame) -> None:
        """Log a training set's lineage to the active run (label rows snapshotted if needed)."""
        spark, root = self._ctx.spark, self._ctx.root
        if ts.entity_source is None and ts.entity_fingerprint is not None:
            ts.entity_source = snapshot_entity_df(spark, root, labels, ts.entity_fingerprint)
        spec = FeatureSpec.from_training_set(
            ts, self._ctx.config.project, output=dataframe_fingerprint(ts.df)
        )
        with self.logging_run("fstore_training_set") as run:
            ts.mlflow_run_id = log_training_set(spark, root, spec, run)

    def reproduce(self, run_id: str, entity_df: Any, verify: bool) -> HistoricalFeatures:
        """Rebuild a run's training set by time travel; with ``verify``, check fingerprints.

        Raises:
            LineageError: no spec in the run; labels or a Delta version no longer readable
                (vacuumed); a fingerprint differs.
        """
        spec = load_run_spec(self.tracking_uri(), run_id)
        if entity_df is None:
            entity_df = self._logged_labels(run_id, spec)
        fs = spec.feature_set
        try:
            ts = self.historical(
                entity_df,
                list(spec.features),
                timestamp_column=spec.timestamp_column,
                as_of=dict(spec.as_of),
                full_feature_names=spec.full_feature_names,
                log_to_mlflow=False,
                label_time_exact=spec.label_time_exact,
                feature_set=None if fs is None else (fs["name"], fs.get("version")),
                registry_version=spec.registry_version,
            )
        except NotFoundError as exc:
            raise LineageError(
                f"run {run_id}: a recorded version is no longer readable ({exc}). Delta time "
                "travel needs the files: check VACUUM retention on the feature tables."
            ) from exc
        if verify:
            _verify(run_id, spec, ts)
        return ts

    def _logged_labels(self, run_id: str, spec: FeatureSpec) -> DataFrame:
        """The label rows a run recorded, read at their recorded Delta version."""
        src = spec.entity.get("source")
        if not src:
            raise LineageError(
                f"run {run_id}: the spec records no readable label rows. Fix: pass the "
                "original entity_df=..."
            )
        try:
            return read_label_rows(self._ctx.spark, src)
        except Exception as exc:
            raise LineageError(f"run {run_id}: cannot read the label rows at {src}: {exc}") from exc

    def runs_using(
        self, ref: str, experiment_names: list[str] | None, max_results: int
    ) -> list[dict[str, Any]]:
        """MLflow runs whose training sets used a view or a feature, newest first."""
        from mlflow.tracking import MlflowClient

        view = ref.split(":", 1)[0]
        client = MlflowClient(tracking_uri=self.tracking_uri())
        if experiment_names is None:
            ids = [e.experiment_id for e in client.search_experiments()]
        else:
            found = [client.get_experiment_by_name(n) for n in experiment_names]
            ids = [e.experiment_id for e in found if e is not None]
        if not ids:
            return []
        runs = client.search_runs(
            ids,
            filter_string=runs_using_filter(ref),
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
        return [_run_summary(r, view) for r in runs]


@contextmanager
def _active(run: RunTarget) -> Iterator[None]:
    """``run`` as MLflow's active run for the block, at its tracking URI; then as before.

    ``mlflow.set_tracking_uri`` sets the process-wide URI and the ``MLFLOW_TRACKING_URI``
    variable together; restoring sets back the variable's value, or unsets both when the
    variable was not set (MLflow's default applies again).
    """
    import mlflow

    before = os.environ.get(TRACKING_URI_ENV)
    switch = mlflow.get_tracking_uri() != run.tracking_uri
    if switch:
        mlflow.set_tracking_uri(run.tracking_uri)
    try:
        with mlflow.start_run(run_id=run.run_id):
            yield
    finally:
        if switch:
            mlflow.set_tracking_uri(cast(str, before))  # None unsets: MLflow's default


def _run_summary(run: Any, view: str) -> dict[str, Any]:
    """What :meth:`Lineage.runs_using` reports of one run."""
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "delta_version": tags.get(f"fstore.view.{view}"),
        "feature_set": tags.get("fstore.feature_set.name"),
        "feature_set_version": tags.get("fstore.feature_set.version"),
    }


def _verify(run_id: str, spec: FeatureSpec, ts: HistoricalFeatures) -> None:
    """Check a rebuilt training set's label and output fingerprints against the run's."""
    want = spec.entity.get("fingerprint")
    if want is not None and ts.entity_fingerprint != want:
        raise LineageError(
            f"run {run_id}: the label rows differ from those of the run (fingerprint "
            f"{ts.entity_fingerprint} rows {ts.entity_rows}, expected {want} rows "
            f"{spec.entity.get('rows')})."
        )
    if spec.output is not None:
        rows, fp = dataframe_fingerprint(ts.df)
        if fp != spec.output["fingerprint"]:
            raise LineageError(
                f"run {run_id}: rebuilt training set differs (fingerprint {fp}, "
                f"{rows} rows; logged {spec.output['fingerprint']}, "
                f"{spec.output['rows']} rows)."
            )
