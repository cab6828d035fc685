"""Models that know their features: logged with a feature spec, scored with a lookup.

:meth:`Models.log_model` stores the training set's feature spec (and any fitted encoders) in
the model's ``MLmodel`` metadata; :meth:`Models.score_batch` reads it back, looks the features
up point-in-time for the rows to score, applies the same encoder state, and runs the model on
the executors with ``mlflow.pyfunc.spark_udf``.

Models are read from the store's tracking URI explicitly (``spark_udf`` gets a local copy, as it
cannot be told a URI); only a flavor's ``log_model`` uses MLflow's fluent API, since it logs to
the active run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import LineageError
from fstore_spark.lineage.artifacts import (
    downloaded_model,
    local_model_metadata,
    model_encoders,
    model_location,
    spec_from_metadata,
)
from fstore_spark.lineage.service import Lineage
from fstore_spark.lineage.spec import ENCODERS_METADATA_KEY, MODEL_METADATA_KEY, FeatureSpec
from fstore_spark.ml.encoders import FittedEncoder, apply_encoders
from fstore_spark.offline.training import HistoricalFeatures, to_spark_df
from fstore_spark.registry.context import StoreContext
from fstore_spark.session import is_connect

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["Models"]


class Models:
    """Logs models with their feature spec and scores rows with automatic feature lookup."""

    def __init__(self, ctx: StoreContext, lineage: Lineage) -> None:
        self._ctx = ctx
        self._lineage = lineage

    def log_model(
        self,
        model: Any,
        artifact_path: str,
        flavor: Any,
        training_set: HistoricalFeatures,
        feature_columns: list[str] | None,
        encoders: list[FittedEncoder] | None,
        **kwargs: Any,
    ) -> Any:
        """Log ``model`` with ``flavor`` and the training set's feature spec; MLflow's ModelInfo.

        Raises:
            LineageError: the flavor has no ``log_model``, or columns the model or encoders
                read are not in the training set.
        """
        module = importlib.import_module(f"mlflow.{flavor}") if isinstance(flavor, str) else flavor
        if not hasattr(module, "log_model"):
            raise LineageError(f"flavor {flavor!r} has no log_model; pass e.g. mlflow.sklearn.")
        cols = list(feature_columns or training_set.feature_columns)
        _check_inputs(training_set, cols, encoders or [])
        spec = FeatureSpec.from_training_set(training_set, self._ctx.config.project)
        spec.model_input_columns = cols
        metadata = {**kwargs.pop("metadata", {}), MODEL_METADATA_KEY: spec.to_dict()}
        if encoders:
            metadata[ENCODERS_METADATA_KEY] = [e.to_dict() for e in encoders]
        # a flavor's log_model has no run parameter: it logs to the active (fluent) run
        with self._lineage.logging_run(f"fstore_model_{artifact_path}", fluent=True) as run:
            info = module.log_model(model, name=artifact_path, metadata=metadata, **kwargs)
            run.client().set_tag(run.run_id, "fstore.model", info.model_uri)
        return info

    def score_batch(
        self,
        model_uri: str,
        entity_df: Any,
        result_type: str,
        prediction_column: str,
        timestamp_column: str | None,
    ) -> DataFrame:
        """Rows, their point-in-time features and the model's prediction (lazy).

        Raises:
            LineageError: the model cannot be read, or was not logged through the store.
        """
        from pyspark.sql import functions as F

        spec, encoders, predict = self._scoring_udf(model_uri, result_type)
        ts_col = timestamp_column or spec.timestamp_column
        labels = to_spark_df(self._ctx.spark, entity_df)
        if ts_col not in labels.columns:
            labels = labels.withColumn(ts_col, F.current_timestamp())
        ts = self._lineage.historical(
            labels,
            list(spec.features),
            timestamp_column=ts_col,
            as_of=None,
            full_feature_names=spec.full_feature_names,
            log_to_mlflow=False,
        )
        cols = list(spec.model_input_columns or spec.feature_columns)
        features = apply_encoders(ts.df, encoders)  # the state training used, if any
        return features.withColumn(prediction_column, predict(F.struct(*[F.col(c) for c in cols])))

    def _scoring_udf(
        self, model_uri: str, result_type: str
    ) -> tuple[FeatureSpec, list[FittedEncoder], Any]:
        """A model's feature spec, fitted encoders and Spark UDF, from one download.

        ``spark_udf`` resolves a model URI through MLflow's process-wide tracking URI, so it
        gets a local copy fetched from the store's URI; it copies the files it needs, so the
        copy is deleted when the UDF is built. Over Spark Connect the executors load the model
        themselves: they get its artifact location (DBFS, S3, a shared folder), which the
        cluster must be able to read.
        """
        import mlflow.pyfunc

        uri = self._lineage.tracking_uri()
        with downloaded_model(uri, model_uri) as local:
            metadata = local_model_metadata(local)
            spec = spec_from_metadata(model_uri, metadata)
            encoders = [FittedEncoder.from_dict(d) for d in model_encoders(metadata)]
            source = model_location(uri, model_uri) if is_connect(self._ctx.spark) else local
            predict = mlflow.pyfunc.spark_udf(
                self._ctx.spark, source, result_type=result_type, env_manager="local"
            )
        return spec, encoders, predict


def _check_inputs(ts: HistoricalFeatures, cols: list[str], encoders: list[FittedEncoder]) -> None:
    """Every model input is a training-set column or an encoder output; encoders' inputs too."""
    encoded = [o for e in encoders for o in e.outputs]
    unknown = [c for c in cols if c not in ts.df.columns and c not in encoded]
    if unknown:
        raise LineageError(
            f"feature_columns {unknown} are not columns of the training set nor outputs of "
            f"the encoders; it has {', '.join(ts.df.columns)}."
        )
    missing = [
        e.encoder.column
        for e in encoders
        if e.encoder.column not in ts.df.columns and e.encoder.column not in encoded
    ]
    if missing:
        raise LineageError(f"encoders read {missing}, which the training set lacks.")
