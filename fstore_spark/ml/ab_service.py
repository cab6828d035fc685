"""A/B tests of feature sets, run by a store: start, assign, score, log, evaluate.

A started test is kept in the registry (category ``ab_test``) with each variant's feature set
pinned to ``name@vN``; it never changes afterwards, so it is read once per store. Predictions
go to a Delta log per test (``_experiments/<test>/predictions``), keyed by (join keys,
``event_timestamp``) so that logging a request twice keeps its first prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.core import resolve_feature_refs
from fstore_spark.core.feature_set_versions import parse_feature_set_id
from fstore_spark.errors import EntityRowError, ExperimentError, LineageError, NotFoundError
from fstore_spark.lakehouse.tables import is_delta_table, read_delta
from fstore_spark.lakehouse.writes import insert_new_rows
from fstore_spark.lineage.artifacts import model_spec
from fstore_spark.lineage.service import Lineage
from fstore_spark.ml.ab_metrics import evaluate_variants
from fstore_spark.ml.ab_results import ABTestResults
from fstore_spark.ml.ab_test import ABTest, check_key_types, variant_column
from fstore_spark.ml.models import Models
from fstore_spark.offline.training import to_spark_df
from fstore_spark.online.catalog import OnlineServing
from fstore_spark.registry.context import StoreContext
from fstore_spark.registry.feature_sets import FeatureSets

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["ABTests"]


class ABTests:
    """Starts A/B tests of feature sets and runs them: assignment, scoring, logging, results."""

    def __init__(
        self,
        ctx: StoreContext,
        feature_sets: FeatureSets,
        lineage: Lineage,
        models: Models,
        online: OnlineServing,
    ) -> None:
        self._ctx = ctx
        self._sets = feature_sets
        self._lineage = lineage
        self._models = models
        self._online = online
        self._started: dict[str, tuple[ABTest, list[str]]] = {}  # started tests are immutable

    # ------------------------------------------------------------------ definition

    def start(self, test: ABTest, start: datetime | str | None) -> ABTest:
        """Pin each variant's feature set, check the models, store the started test.

        Raises:
            ExperimentError: a model was not trained on its variant's feature set, or the name
                is taken by a different test. Nothing is written.
        """
        existing = self._entry(test.name)
        if existing is not None:
            if existing["requested"] == test.definition():
                return self.get(test.name)
            raise ExperimentError(
                f"A/B test {test.name!r} is already started with another definition "
                f"({existing['requested']}). Fix: start the new test under a new name."
            )
        pinned = {v: self._sets.version(fs).id for v, fs in test.feature_sets.items()}
        for variant, uri in (test.models or {}).items():
            self._check_model(test, variant, uri, parse_feature_set_id(pinned[variant])[0])
        when = start if start is not None else datetime.now(UTC)
        started = replace(test, feature_sets=pinned, started_at=when)
        entry = {"test": started.to_dict(), "requested": test.definition()}
        self._ctx.apply([], settings={("ab_test", test.name): entry})
        return started

    def _check_model(self, test: ABTest, variant: str, uri: str, feature_set: str) -> None:
        """A variant's model must have been logged from the variant's feature set."""
        try:
            spec = model_spec(self._lineage.tracking_uri(), uri)
        except LineageError as exc:
            raise ExperimentError(
                f"A/B test {test.name!r}: model {uri!r} of variant {variant!r}: {exc}"
            ) from exc
        got = (spec.feature_set or {}).get("name")
        if got != feature_set:
            raise ExperimentError(
                f"A/B test {test.name!r}: the model of variant {variant!r} ({uri}) was "
                f"trained on feature set {got!r}, not {feature_set!r}. Fix: log the variant's "
                "model from store.get_training_set(<its feature set>, ...)."
            )

    def get(self, name: str | ABTest) -> ABTest:
        """A started test, as stored.

        Raises:
            NotFoundError: no test of that name was started.
        """
        name = name if isinstance(name, str) else name.name
        entry = self._entry(name)
        if entry is None:
            raise NotFoundError(
                f"A/B test {name!r} is not started. Fix: store.start_ab_test(ABTest(...))."
            )
        return ABTest.from_dict(entry["test"])

    def _entry(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._ctx.registry.get("ab_test", name).definition)
        except NotFoundError:
            return None

    def serving(self, test: str | ABTest) -> tuple[ABTest, list[str]]:
        """A started test and its unit keys, read from the registry once per store."""
        name = test if isinstance(test, str) else test.name
        if name not in self._started:
            started = self.get(name)
            self._started[name] = (started, self._unit_keys(started))
        return self._started[name]

    def _unit_keys(self, test: ABTest) -> list[str]:
        """The units of a test: the join keys of the control's feature set."""
        fsv = self._sets.version(test.feature_sets[str(test.control)])
        snap = self._ctx.snapshot(fsv.registry_version)
        keys: list[str] = []
        for ref in resolve_feature_refs(list(fsv.features), snap.views):
            keys += [k for k in snap.join_keys(ref.view) if k not in keys]
        return keys

    # ------------------------------------------------------------------ traffic

    def assign(self, test: str | ABTest, entity_df: Any, key_columns: list[str] | None) -> Any:
        """Rows with their ``variant`` and ``feature_set`` columns (lazy)."""
        from pyspark.sql import functions as F

        started, unit_keys = self.serving(test)
        df = to_spark_df(self._ctx.spark, entity_df)
        keys = key_columns or unit_keys
        check_key_types(df, keys, started.name)
        variant = variant_column(started, keys)
        return df.withColumn("variant", variant).withColumn(
            "feature_set", _feature_set_of(started)[F.col("variant")]
        )

    def online_features(self, test: str | ABTest, entity_row: Mapping[str, Any]) -> dict[str, Any]:
        """One request's variant, feature set and features (one Redis round trip)."""
        started, keys = self.serving(test)
        missing = [k for k in keys if k not in entity_row]
        if missing:
            raise EntityRowError(
                f"A/B test {started.name!r}: the entity row lacks join key(s) {missing}; it has "
                f"{sorted(entity_row)}."
            )
        variant = started.assign(tuple(entity_row[k] for k in keys))
        fs = started.feature_sets[variant]
        resp = self._online.read(None, [dict(entity_row)], parse_feature_set_id(fs)[0])
        row = resp.to_dict()
        features = {c: vals[0] for c, vals in row.items() if c not in keys}
        return {"variant": variant, "feature_set": fs, "features": features}

    # ------------------------------------------------------------------ predictions

    def log_path(self, name: str) -> str:
        """Location of a test's prediction log."""
        return self._ctx.table_path(f"_experiments/{name}/predictions")

    def log_predictions(
        self,
        test: str | ABTest,
        predictions: Any,
        prediction_column: str,
        timestamp_column: str,
        key_columns: list[str] | None,
    ) -> str:
        """Insert scored requests not logged yet; returns the log's path.

        Raises:
            ExperimentError: missing columns, or rows scored under the wrong variant.
        """
        started, unit_keys = self.serving(test)
        df = to_spark_df(self._ctx.spark, predictions)
        keys = key_columns or unit_keys
        check_key_types(df, keys, started.name)
        _require_columns(started, df, [prediction_column, timestamp_column])
        assigned = variant_column(started, keys)
        _check_variants(started, df, assigned)
        rows = _log_rows(started, df, keys, assigned, prediction_column, timestamp_column)
        path = self.log_path(started.name)
        insert_new_rows(self._ctx.spark, path, rows, [*keys, "event_timestamp"])
        return path

    def score(
        self,
        test: str | ABTest,
        entity_df: Any,
        timestamp_column: str,
        score_index: int | None,
        log: bool,
    ) -> DataFrame:
        """Score each request with its variant's model; logged and read back when ``log``.

        Raises:
            ExperimentError: the test has no models.
        """
        from pyspark.sql import functions as F

        started, keys = self.serving(test)
        if not started.models:
            raise ExperimentError(
                f"A/B test {started.name!r} has no models to score with. Fix: give "
                "ABTest(models={variant: model_uri}), or score yourself and call "
                "log_ab_predictions."
            )
        requests = to_spark_df(self._ctx.spark, entity_df)
        if timestamp_column not in requests.columns:  # one instant for every variant's query
            requests = requests.withColumn(timestamp_column, F.lit(datetime.now(UTC)))
        assigned = self.assign(started, requests, keys)
        parts = [
            self._score_variant(started, keys, assigned, model, timestamp_column, score_index)
            for model in started.models.items()
        ]
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        if not log:
            return out
        path = self.log_predictions(started, out, "prediction", "event_timestamp", keys)
        wanted = requests.select(
            *keys, F.col(timestamp_column).cast("timestamp").alias("event_timestamp")
        ).distinct()
        logged = read_delta(self._ctx.spark, path)
        return logged.join(wanted, [*keys, "event_timestamp"], "left_semi")

    def _score_variant(
        self,
        test: ABTest,
        keys: list[str],
        assigned: DataFrame,
        model: tuple[str, str],
        timestamp_column: str,
        score_index: int | None,
    ) -> DataFrame:
        """One variant's rows scored by its model (``(variant, model uri)``), as the log's rows."""
        from pyspark.sql import functions as F

        variant, uri = model
        rows = assigned.where(F.col("variant") == variant).drop("variant", "feature_set")
        result_type = "double" if score_index is None else "array<double>"
        scored = self._models.score_batch(uri, rows, result_type, "prediction", timestamp_column)
        score = (
            F.col("prediction").cast("double")
            if score_index is None
            else F.element_at("prediction", score_index + 1)
        )
        return scored.select(
            *[F.col(k) for k in keys],
            F.col(timestamp_column).alias("event_timestamp"),
            F.lit(variant).alias("variant"),
            F.lit(test.feature_sets[variant]).alias("feature_set"),
            score.alias("prediction"),
        )

    # ------------------------------------------------------------------ results

    def results(
        self,
        test: str | ABTest,
        labels: Any,
        label_column: str,
        join_on: list[str] | None,
        now: datetime | None,
        log_to_mlflow: bool,
    ) -> ABTestResults:
        """Metrics per variant and comparisons with the control, from the logged predictions.

        Raises:
            ExperimentError: nothing was logged for the test, or bad labels.
        """
        from pyspark.sql import functions as F

        started, keys = self.serving(test)
        log = self._window_of_log(started)
        lab = to_spark_df(self._ctx.spark, labels)
        if label_column not in lab.columns:
            raise ExperimentError(
                f"A/B test {started.name!r}: label column {label_column!r} is not in the "
                f"labels; columns: {', '.join(lab.columns)}."
            )
        on = join_on or (keys + ["event_timestamp"] if "event_timestamp" in lab.columns else keys)
        _require_join_columns(started, on, lab, log)
        scored = log if "event_timestamp" in on else _latest_per_unit(log, on)
        exposures = {
            r["variant"]: int(r["n"])
            for r in log.groupBy("variant").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        joined = scored.join(lab.select(*on, F.col(label_column).alias("_label")), on, "inner")
        res = evaluate_variants(
            joined, started, label_column="_label", now=now, exposures=exposures
        )
        if log_to_mlflow:
            with self._lineage.logging_run(f"ab_test_{started.name}") as run:
                res.log_to_mlflow(run)
        return res

    def _window_of_log(self, test: ABTest) -> DataFrame:
        """The test's logged predictions within ``[started_at, ends_at)`` by logging time."""
        from pyspark.sql import functions as F

        path = self.log_path(test.name)
        if not is_delta_table(self._ctx.spark, path):
            raise ExperimentError(
                f"A/B test {test.name!r} has no logged predictions. Fix: score_ab_test or "
                "log_ab_predictions first."
            )
        log = read_delta(self._ctx.spark, path)
        return log.where(
            (F.col("logged_at") >= F.lit(test.started_at))
            & (F.col("logged_at") < F.lit(test.ends_at))
        )


def _feature_set_of(test: ABTest) -> Column:
    """A map column: variant -> its pinned feature set id."""
    from pyspark.sql import functions as F

    return F.create_map(*[F.lit(x) for kv in test.feature_sets.items() for x in kv])


def _require_columns(test: ABTest, df: DataFrame, columns: list[str]) -> None:
    for col in columns:
        if col not in df.columns:
            raise ExperimentError(
                f"A/B test {test.name!r}: column {col!r} is not in the predictions; columns: "
                f"{', '.join(df.columns)}."
            )


def _check_variants(test: ABTest, df: DataFrame, assigned: Column) -> None:
    """A ``variant`` column given with the predictions must be the test's assignment."""
    from pyspark.sql import functions as F

    if "variant" not in df.columns:
        return
    wrong = df.where(~F.col("variant").eqNullSafe(assigned)).count()
    if wrong:
        raise ExperimentError(
            f"A/B test {test.name!r}: {wrong} row(s) carry a variant other than the one "
            "the test assigns to their keys. Fix: split traffic with "
            "assign_ab_variants / get_ab_online_features."
        )


def _log_rows(
    test: ABTest,
    df: DataFrame,
    keys: list[str],
    assigned: Column,
    prediction_column: str,
    timestamp_column: str,
) -> DataFrame:
    """Predictions in the log's columns, one row per (keys, event_timestamp)."""
    from pyspark.sql import functions as F

    return (
        df.where(assigned.isNotNull())
        .select(
            *[F.col(k) for k in keys],
            F.col(timestamp_column).cast("timestamp").alias("event_timestamp"),
            assigned.alias("variant"),
            F.col(prediction_column).cast("double").alias("prediction"),
        )
        .withColumn("feature_set", _feature_set_of(test)[F.col("variant")])
        .withColumn("logged_at", F.current_timestamp())
        .dropDuplicates([*keys, "event_timestamp"])
    )


def _require_join_columns(test: ABTest, on: list[str], lab: DataFrame, log: DataFrame) -> None:
    missing = [c for c in on if c not in lab.columns or c not in log.columns]
    if missing:
        raise ExperimentError(
            f"A/B test {test.name!r}: join column(s) {missing} are not in both the labels "
            f"({', '.join(lab.columns)}) and the prediction log ({', '.join(log.columns)})."
        )


def _latest_per_unit(log: DataFrame, on: list[str]) -> DataFrame:
    """Each unit's latest logged prediction."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(*on).orderBy(F.col("event_timestamp").desc())
    return log.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
