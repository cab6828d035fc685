"""``FeatureStore``: the user-facing entry point, a thin facade over the store's services.

The store's context (config, Spark session, registry) is shared by one service per concept;
each method here delegates to one of them: definitions (``registry``), feature tables
(``offline.service``), training sets and lineage (``lineage.service``), feature set versions
(``registry.feature_sets``), quality (``quality.service``), models and A/B tests (``ml``), and
online serving (``online.catalog``).

Example::

    store = FeatureStore(repo_path="feature_repo")   # config: conf/feature_store.yaml
    store.apply()                                     # register the repo's definitions
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from fstore_spark.config import FeatureStoreConfig, resolve_config
from fstore_spark.core import DeltaSource, Entity, FeatureSet, FeatureView, ParquetSource
from fstore_spark.errors import PointInTimeError
from fstore_spark.lineage.service import Lineage
from fstore_spark.ml.ab_service import ABTests
from fstore_spark.ml.models import Models
from fstore_spark.ml.transformations import Transformations
from fstore_spark.offline.groups import FeatureGroups
from fstore_spark.offline.service import FeatureTables
from fstore_spark.offline.training_sets import TrainingSets
from fstore_spark.online.catalog import OnlineServing, ServingCatalog
from fstore_spark.quality.service import Quality
from fstore_spark.registry.context import StoreContext
from fstore_spark.registry.describe import describe
from fstore_spark.registry.feature_sets import FeatureSets, feature_set_name
from fstore_spark.registry.registry import Plan, Registry
from fstore_spark.registry.repo import load_configured

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from fstore_spark.core import WindowAggregator
    from fstore_spark.core.feature_set_versions import FeatureSetVersion
    from fstore_spark.ml.ab_results import ABTestResults
    from fstore_spark.ml.ab_test import ABTest
    from fstore_spark.ml.encoders import Encoder, FittedEncoder
    from fstore_spark.offline.materialization import MaterializationResult
    from fstore_spark.offline.training import HistoricalFeatures
    from fstore_spark.offline.versions import VersionDiff
    from fstore_spark.online import OnlineResponse, OnlineStore, SyncResult
    from fstore_spark.quality import (
        DriftReport,
        Expectation,
        MonitorPlan,
        MonitorResult,
        MonitorRule,
        Statistics,
        ValidationReport,
    )

__all__ = ["FeatureStore"]

_Window = tuple[datetime | str, datetime | str]


class FeatureStore:
    """A feature store project: configuration, Spark session and registry.

    Args:
        repo_path: A feature repo folder; its ``feature_store.yaml`` is the default config.
        config: A :class:`FeatureStoreConfig` or a YAML path (default ``$FSTORE_CONFIG`` or
            ``conf/feature_store.yaml``).
        spark: A SparkSession; default the active one or one built from the config.
    """

    def __init__(
        self,
        repo_path: str | os.PathLike[str] | None = None,
        config: FeatureStoreConfig | str | os.PathLike[str] | None = None,
        *,
        spark: SparkSession | None = None,
    ) -> None:
        """Load the configuration; the Spark session and registry are created lazily."""
        self.config = resolve_config(config, repo_path)
        self._ctx = StoreContext(self.config, spark)
        self._tables = FeatureTables(self._ctx)
        self._training = TrainingSets(self._ctx)
        self._lineage = Lineage(self._ctx, self._training)
        self._sets = FeatureSets(self._ctx)
        self._quality = Quality(self._ctx)
        self._online = OnlineServing(self._ctx)
        self._models = Models(self._ctx, self._lineage)
        self._ab = ABTests(self._ctx, self._sets, self._lineage, self._models, self._online)
        self._groups = FeatureGroups(self._ctx, self._tables)
        self._transforms = Transformations(self._ctx)

    # ------------------------------------------------------------------ plumbing

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (the active one, or built from ``config.spark`` on first use)."""
        return self._ctx.spark

    @property
    def registry(self) -> Registry:
        """The Delta-backed registry of this project."""
        return self._ctx.registry

    @property
    def project(self) -> str:
        """Project name."""
        return self.config.project

    @property
    def identity(self) -> str:
        """Who this store acts as (config ``identity``, ``$FSTORE_USER``, Databricks/OS user)."""
        return self._ctx.identity

    def table_path(self, name: str) -> str:
        """Location of a project table (e.g. a feature view's Delta table) in the lakehouse."""
        return self._ctx.table_path(name)

    def load_definitions(self) -> list[Any]:
        """Definitions from the configured feature repo and YAML files (``ConfigError``: none)."""
        return load_configured(self.config.repo_path, self.config.definitions)

    # ------------------------------------------------------------------ plan / apply

    def plan(self, objects: list[Any] | None = None, *, prune: bool | None = None) -> Plan:
        """Diff definitions against the registry without writing.

        ``objects`` default to the feature repo's; ``prune`` (remove what is not given)
        defaults to ``True`` for the repo (it is the whole truth), else ``False``.
        """
        objs, do_prune = self._objects(objects, prune)
        return self._ctx.plan(objs, prune=do_prune)

    def apply(self, objects: list[Any] | None = None, *, prune: bool | None = None) -> Plan:
        """Validate and register definitions (one registry commit; none if nothing changed).

        Raises:
            DefinitionError: invalid definitions (``objects`` and ``prune`` as for
                :meth:`plan`); nothing is written.
        """
        objs, do_prune = self._objects(objects, prune)
        return self._ctx.apply(objs, prune=do_prune)

    def _objects(self, objects: list[Any] | None, prune: bool | None) -> tuple[list[Any], bool]:
        if objects is None:
            return self.load_definitions(), True if prune is None else prune
        return list(objects), bool(prune)

    # ------------------------------------------------------------------ reading definitions

    def get_feature_view(self, name: str, *, as_of_version: int | None = None) -> FeatureView:
        """A feature view by name, optionally as of a registry version (``NotFoundError``)."""
        obj = self.registry.get("feature_view", name, as_of_version=as_of_version).obj
        assert isinstance(obj, FeatureView)
        return obj

    def list_feature_views(self, *, as_of_version: int | None = None) -> list[FeatureView]:
        """All feature views, sorted by name."""
        return [e.obj for e in self.registry.list("feature_view", as_of_version=as_of_version)]

    def get_feature_set(self, name: str, *, as_of_version: int | None = None) -> FeatureSet:
        """A feature set by name (``NotFoundError`` when there is none)."""
        obj = self.registry.get("feature_set", name, as_of_version=as_of_version).obj
        assert isinstance(obj, FeatureSet)
        return obj

    def list_feature_sets(self) -> list[FeatureSet]:
        """All feature sets, sorted by name."""
        return [e.obj for e in self.registry.list("feature_set")]

    def get_entity(self, name: str) -> Entity:
        """An entity by name."""
        obj = self.registry.get("entity", name).obj
        assert isinstance(obj, Entity)
        return obj

    def list_entities(self) -> list[Entity]:
        """All entities, sorted by name."""
        return [e.obj for e in self.registry.list("entity")]

    def get_data_source(self, name: str) -> DeltaSource | ParquetSource:
        """A data source by name."""
        obj = self.registry.get("data_source", name).obj
        assert isinstance(obj, DeltaSource | ParquetSource)
        return obj

    def describe(self, name: str, category: str | None = None) -> dict[str, Any]:
        """Everything the registry knows about one object (definition, versions, history)."""
        return describe(self.registry, name, category)

    # ------------------------------------------------------------------ materialization

    @overload
    def materialize(
        self, view: str, start: datetime | str, end: datetime | str
    ) -> MaterializationResult: ...

    @overload
    def materialize(
        self,
        view: None = ...,
        start: None = ...,
        end: None = ...,
        *,
        start_date: datetime | str,
        end_date: datetime | str,
        online: bool = ...,
    ) -> list[MaterializationResult]: ...

    def materialize(
        self,
        view: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        *,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
        online: bool = True,
    ) -> MaterializationResult | list[MaterializationResult]:
        """Backfill a view's feature table for ``start <= feature_timestamp <= end``.

        One Delta commit; rerunning the same range gives the same rows (idempotent).
        See :mod:`fstore_spark.offline.windows` for the window semantics. Without ``view``
        (Feast's ``materialize(start_date=..., end_date=...)``) every view is backfilled and,
        unless ``online=False``, the online views are then synced to Redis.
        """
        done = self._tables.materialize(view, start or start_date, end or end_date)
        if view is None and online:
            self._online.sync(None, "incremental", None, None)
        return done

    def materialize_incremental(
        self,
        view: str,
        *,
        end: datetime | str | None = None,
        lateness: timedelta | str | None = None,
    ) -> MaterializationResult:
        """Bring a view's feature table up to ``end`` (default now), touching only new data.

        ``lateness``: with the source's change data feed, every late event is taken unless
        this caps how old it may be (older ones are quarantined; see ``replay_quarantine``);
        without the feed, how far back new events are looked for (default 2 days).
        """
        return self._tables.incremental(view, end, lateness)

    def replay_quarantine(self, view: str) -> MaterializationResult | None:
        """Take the late events a capped incremental run quarantined (None: there are none)."""
        return self._tables.replay_quarantine(view)

    def create_feature_group(
        self,
        name: str,
        source_table: str,
        transformations: list[WindowAggregator],
        entity: str,
        *,
        backfill: bool = True,
    ) -> FeatureView:
        """Register an aggregated view over a registered source, and backfill it.

        Each :class:`~fstore_spark.core.WindowAggregator` applies its functions over its window
        to the source's numeric columns (or its ``columns``); the view is keyed by ``entity``
        and backfilled over the source's time range unless ``backfill=False``.
        """
        return self._groups.create(name, source_table, transformations, entity, backfill)[0]

    def add_transformation(self, feature: str, transformation: Encoder) -> dict[str, Any]:
        """Attach an encoder to a feature (``view:feature`` or a unique feature name).

        Kept in the registry; :meth:`fit_transformations` fits it on training data and the
        fitted state goes with the model (``log_model(encoders=...)``).
        """
        return self._transforms.add(feature, transformation)

    def fit_transformations(
        self, training_set: Any, *, target: str | None = None
    ) -> list[FittedEncoder]:
        """Fit the attached encoders of the features in a training set (``target``: the label)."""
        return self._transforms.fit(training_set, target)

    # ------------------------------------------------------------------ training sets

    def get_historical_features(
        self,
        entity_df: Any,
        features: list[str] | None = None,
        *,
        feature_set: str | None = None,
        timestamp_column: str = "event_timestamp",
        as_of: dict[str, int | datetime | str] | None = None,
        full_feature_names: bool = False,
        log_to_mlflow: bool | None = None,
        feature_service: str | None = None,
        label_time_exact: bool = False,
    ) -> HistoricalFeatures:
        """Point-in-time correct features for label rows (see :mod:`fstore_spark.offline.asof`).

        ``entity_df`` (Spark/pandas DataFrame or Delta table, at its current version) has the join
        keys and ``timestamp_column``; ``features``: ``view:feature``/``view:*``, or a set named by
        ``feature_set``/``feature_service`` (``features`` then a subset); ``as_of``: view -> Delta
        version or instant (set version pins: :meth:`get_training_set`); ``log_to_mlflow``:
        default "if a run is on"; ``label_time_exact``: aggregated windows exact at label times.
        """
        if feature_set is not None and feature_service is not None:
            raise PointInTimeError("give exactly one of feature_set= and feature_service=.")
        refs, set_name = self._training.requested(features, feature_set or feature_service)
        return self._lineage.historical(
            entity_df,
            refs,
            timestamp_column=timestamp_column,
            as_of=as_of,
            full_feature_names=full_feature_names,
            log_to_mlflow=log_to_mlflow,
            feature_set=None if set_name is None else (set_name, None),
            label_time_exact=label_time_exact,
        )

    def get_training_features(
        self,
        feature_list: list[str],
        entity_df: Any,
        timestamp_column: str = "event_timestamp",
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> DataFrame:
        """Training set of labels with ``start_date <= ts < end_date``, as a lazy DataFrame."""
        labels = self._training.label_window(entity_df, timestamp_column, start_date, end_date)
        ts = self.get_historical_features(labels, feature_list, timestamp_column=timestamp_column)
        return ts.to_spark()

    def read_view(
        self,
        view: str,
        *,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """A view's feature table, now or as of a Delta version / instant (lazy)."""
        return self._training.read_view(view, as_of_version, as_of_timestamp)

    # ------------------------------------------------------------------ versions

    def list_versions(self, view: str) -> list[dict[str, Any]]:
        """Delta versions of a view's feature table, newest first, with run metadata."""
        return self._tables.versions(view)

    def diff_versions(self, view: str, v1: int, v2: int) -> VersionDiff:
        """Rows added / changed / removed between two Delta versions, per-feature counts."""
        return self._tables.diff(view, v1, v2)

    # ------------------------------------------------------------------ quality

    def validate(
        self,
        view: str | FeatureSetVersion,
        expectations: list[Expectation],
        *,
        version: int | None = None,
        window: _Window | None = None,
        fail: bool = False,
    ) -> ValidationReport:
        """Check expectations on a view's feature table (latest, or a Delta version).

        ``view`` may also name a feature set (``name``, ``name@vN`` or a version object): each
        rule is then checked on the set's views that hold its columns, at the version's pinned
        Delta versions, in one report. ``window`` keeps rows with ``start <= feature_timestamp
        < end``; ``fail`` raises :class:`~fstore_spark.errors.ValidationError` when a rule
        fails.
        """
        if not isinstance(view, str) or self._sets.names_a_set(view):
            columns = [c for e in expectations for c in e.columns]
            fsv = self._sets.version(_set_id(view), version)
            rows = self._training.validation_tables(fsv, columns)
            return self._quality.validate_tables(rows, expectations, window, fail)
        return self._quality.validate(view, expectations, version, window, fail)

    def feature_statistics(
        self, view: str, *, version: int | None = None, recompute: bool = False
    ) -> Statistics:
        """Statistics of a view's features at a Delta version (default latest), kept per version."""
        return self._quality.statistics(view, version, recompute)

    def detect_drift(
        self,
        view: str | FeatureSetVersion,
        *,
        baseline_version: int | None = None,
        baseline_window: _Window | None = None,
        version: int | None = None,
        window: _Window | None = None,
        current: DataFrame | None = None,
        features: list[str] | None = None,
        method: str = "ks",
        threshold: float | None = None,
        **options: Any,
    ) -> DriftReport:
        """Compare a view's features now (or ``current`` data) with a baseline.

        The baseline is the feature table at ``baseline_version`` (default latest), limited to
        ``baseline_window`` (``[start, end)`` on ``feature_timestamp``); the current data is
        ``current`` or the table at ``version`` limited to ``window``. Tests and thresholds:
        :func:`fstore_spark.quality.detect_drift`. ``view`` may name a feature set: the
        baseline is then its rows at the pinned versions of set version ``baseline_version``
        (default latest) and ``current`` holds its features (or set version ``version``).
        """
        if not isinstance(view, str) or self._sets.names_a_set(view):
            base = self._training.feature_set_tables(
                self._sets.version(_set_id(view), baseline_version)
            )
            now = self._sets.version(_set_id(view), version)
            cur = current if current is not None else self._training.feature_set_rows(now)
            return self._quality.drift_tables(
                base, cur, (baseline_window, window), method, threshold, **options
            )
        return self._quality.drift(
            view,
            (baseline_version, baseline_window),
            (version, window, current),
            features,
            method,
            threshold,
            **options,
        )

    def monitor(
        self,
        view: str,
        rules: list[MonitorRule],
        *,
        version: int | None = None,
        baseline_version: int | None = None,
        baseline_window: _Window | None = None,
        channels: list[Any] | tuple[Any, ...] = ("log",),
        now: datetime | None = None,
    ) -> MonitorResult:
        """Check a view against monitor rules, send alerts, record the check."""
        return self._quality.monitor(
            view,
            rules,
            version=version,
            baseline_version=baseline_version,
            baseline_window=baseline_window,
            channels=channels,
            now=now,
        )

    def run_monitoring(
        self,
        plan: str | Mapping[str, Any] | list[MonitorPlan],
        *,
        views: list[str] | None = None,
    ) -> list[MonitorResult]:
        """Run a monitoring plan (a YAML file, its mapping, or plans) for its views or ``views``.

        Raises:
            DefinitionError: the plan is invalid.
            NotFoundError: a view in ``views`` is not in the plan.
        """
        return self._quality.run_plan(plan, views)

    def report(
        self,
        view: str,
        *,
        baseline_version: int | None = None,
        version: int | None = None,
        path: str | os.PathLike[str] | None = None,
        expectations: list[Expectation] | None = None,
    ) -> str:
        """Write one self-contained HTML report: statistics, plots, drift, expectations, alerts.

        Default: latest version vs the one before; returns the path; logged to an active MLflow run.
        """
        return self._quality.report(view, (baseline_version, version), path, expectations)

    # ------------------------------------------------------------------ feature set versions

    def create_feature_set(
        self,
        name: str,
        features: list[str],
        metadata: Mapping[str, str | int | float | bool] | None = None,
        *,
        description: str = "",
    ) -> FeatureSetVersion:
        """Register a feature set version pinned to the current Delta version of each view.

        Unchanged features, metadata and description return the latest version (same pins).

        Example::

            fs = store.create_feature_set("fraud_v1", ["txn:amount_sum_7d", "profile:*"],
                                          metadata={"author": "team_ml"})
            fs.id, fs.view_versions        # ('fraud_v1@v1', {'txn': 12, 'profile': 3})
        """
        return self._sets.create(name, features, metadata, description)

    def get_feature_set_version(
        self, feature_set: str, version: int | None = None
    ) -> FeatureSetVersion:
        """One version of a feature set (name or ``name@vN``; default the latest)."""
        return self._sets.version(feature_set, version)

    def list_feature_set_versions(self, name: str) -> list[FeatureSetVersion]:
        """Every version of a feature set, oldest first."""
        return self._sets.versions(name)

    def get_training_set(
        self,
        feature_set: str | FeatureSetVersion,
        entity_df: Any,
        *,
        version: int | None = None,
        latest: bool = False,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
        log_to_mlflow: bool | None = None,
        label_time_exact: bool = False,
    ) -> HistoricalFeatures:
        """A training set from a feature set version, every view pinned to its Delta version.

        Definitions are read as they were when the version was created, and each feature table
        as of its pinned Delta version, so the same version and labels give the same rows.
        ``latest=True`` reads every view's latest data and definitions instead;
        ``label_time_exact``: as in :meth:`get_historical_features`.
        """
        fsv = self._sets.version(_set_id(feature_set), version)
        pins = {} if latest else {v: p for v, p in fsv.view_versions.items() if p is not None}
        return self._lineage.historical(
            entity_df,
            list(fsv.features),
            timestamp_column=timestamp_column,
            as_of=pins,
            full_feature_names=full_feature_names,
            log_to_mlflow=log_to_mlflow,
            feature_set=(fsv.name, fsv.version),
            registry_version=None if latest else fsv.registry_version,
            label_time_exact=label_time_exact,
        )

    def export_feature_set(
        self,
        feature_set: str | FeatureSetVersion,
        format: str = "parquet",
        path: str | os.PathLike[str] | None = None,
        *,
        version: int | None = None,
    ) -> str:
        """Write a feature set version's data: ``<path>/<view>`` per view, plus a manifest.

        Each view's rows (join keys, ``feature_timestamp``, the set's features) come from the
        pinned Delta version; ``<path>/_feature_set`` holds a JSON manifest. Overwrites.
        ``format``: ``parquet``, ``delta``, ``orc``, ``csv`` (with a header) or ``json``;
        ``path``: any location Spark can write (local, HDFS, object stores).
        """
        fsv = self._sets.version(_set_id(feature_set), version)
        return self._training.export(fsv, format, None if path is None else str(path))

    # ------------------------------------------------------------------ models and lineage

    def log_model(
        self,
        model: Any,
        artifact_path: str,
        flavor: Any,
        training_set: HistoricalFeatures,
        *,
        feature_columns: list[str] | None = None,
        encoders: list[FittedEncoder] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Log a model with the feature spec of its training set (for :meth:`score_batch`).

        ``flavor`` is an MLflow flavor module or its name (``"sklearn"``); ``feature_columns``
        the model's inputs in order (default the set's features); ``encoders`` the fitted
        encoders the inputs went through, applied again by :meth:`score_batch`; ``kwargs`` go
        to ``<flavor>.log_model``. Returns MLflow's ``ModelInfo``.
        """
        return self._models.log_model(
            model, artifact_path, flavor, training_set, feature_columns, encoders, **kwargs
        )

    def score_batch(
        self,
        model_uri: str,
        entity_df: Any,
        *,
        result_type: str = "double",
        prediction_column: str = "prediction",
        timestamp_column: str | None = None,
    ) -> DataFrame:
        """Predict for rows of keys (and timestamps), looking features up point-in-time.

        Rows without a timestamp column are scored as of now; the model's logged encoders are
        applied; the model runs on the executors. Lazy.
        """
        return self._models.score_batch(
            model_uri, entity_df, result_type, prediction_column, timestamp_column
        )

    def reproduce_training_set(
        self, run_id: str, *, entity_df: Any = None, verify: bool = True
    ) -> HistoricalFeatures:
        """Rebuild the training set of an MLflow run by time travel, and check its fingerprints.

        Raises:
            LineageError: no spec in the run, data no longer readable, or a fingerprint differs.
        """
        return self._lineage.reproduce(run_id, entity_df, verify)

    def runs_using(
        self, ref: str, *, experiment_names: list[str] | None = None, max_results: int = 1000
    ) -> list[dict[str, Any]]:
        """MLflow runs whose training sets used a view (``"view"``) or feature (``"view:f"``)."""
        return self._lineage.runs_using(ref, experiment_names, max_results)

    # ------------------------------------------------------------------ A/B tests of feature sets

    def start_ab_test(self, test: ABTest, *, start: datetime | str | None = None) -> ABTest:
        """Start an A/B test: pin each variant's feature set version and start the clock.

        Starting the same test again returns it; a different test under its name is refused.
        """
        return self._ab.start(test, start)

    def get_ab_test(self, name: str | ABTest) -> ABTest:
        """A started A/B test, as stored by :meth:`start_ab_test`."""
        return self._ab.get(name)

    def assign_ab_variants(
        self, test: str | ABTest, entity_df: Any, *, key_columns: list[str] | None = None
    ) -> DataFrame:
        """Each row with its ``variant`` and ``feature_set`` (as online requests get them)."""
        return self._ab.assign(test, entity_df, key_columns)  # type: ignore[no-any-return]

    def get_ab_online_features(
        self, test: str | ABTest, entity_row: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A request's ``variant``, ``feature_set`` and ``features`` (one Redis round trip)."""
        return self._ab.online_features(test, entity_row)

    def log_ab_predictions(
        self,
        test: str | ABTest,
        predictions: Any,
        *,
        prediction_column: str = "prediction",
        timestamp_column: str = "event_timestamp",
        key_columns: list[str] | None = None,
    ) -> str:
        """Add scored requests to the test's Delta prediction log, once each; returns its path."""
        return self._ab.log_predictions(
            test, predictions, prediction_column, timestamp_column, key_columns
        )

    def score_ab_test(
        self,
        test: str | ABTest,
        entity_df: Any,
        *,
        timestamp_column: str = "event_timestamp",
        score_index: int | None = None,
        log: bool = True,
    ) -> DataFrame:
        """Score requests, each with its variant's model and feature set (logged when ``log``).

        ``score_index``: the element of a vector output used as the score (``1`` for the
        positive class of a binary ``predict_proba`` model).
        """
        return self._ab.score(test, entity_df, timestamp_column, score_index, log)

    def ab_test_results(
        self,
        test: str | ABTest,
        labels: Any,
        *,
        label_column: str = "label",
        join_on: list[str] | None = None,
        now: datetime | None = None,
        log_to_mlflow: bool = False,
    ) -> ABTestResults:
        """Metrics per variant of an A/B test, and each treatment against the control.

        Uses the predictions logged within the test's window, joined to ``labels`` on
        ``join_on`` (default: join keys and ``event_timestamp`` when the labels have it).
        """
        return self._ab.results(test, labels, label_column, join_on, now, log_to_mlflow)

    # ------------------------------------------------------------------ online store

    @property
    def online_store(self) -> OnlineStore:
        """The Redis online store of this project (connects lazily)."""
        return self._online.store

    def refresh_online_cache(self) -> None:
        """Re-read the definitions that online reads use (after another process applied)."""
        self._online.refresh()

    def _serving_catalog(self) -> ServingCatalog:
        return self._online.catalog()

    def configure_online_serving(
        self,
        feature_set: str | FeatureSet | FeatureSetVersion,
        update_frequency: timedelta | str = "1h",
        cache_ttl: timedelta | str | None = None,
    ) -> dict[str, Any]:
        """Store how a feature set is served online (registry ``online_serving``).

        ``update_frequency`` drives :meth:`sync_online_due`; ``cache_ttl`` caps the age a read
        through the set serves (older: null, ``OUTSIDE_MAX_AGE``); Redis keys never expire by it.
        """
        return self._online.configure(feature_set_name(feature_set), update_frequency, cache_ttl)

    def get_online_serving(self, feature_set: str) -> dict[str, Any]:
        """The online serving settings of a feature set (``NotFoundError`` when none)."""
        return self._online.settings(feature_set)

    @overload
    def sync_online(
        self,
        view: str,
        *,
        mode: str = ...,
        now: datetime | str | None = ...,
        partitions: int | None = ...,
    ) -> SyncResult: ...

    @overload
    def sync_online(
        self,
        view: None = ...,
        *,
        mode: str = ...,
        now: datetime | str | None = ...,
        partitions: int | None = ...,
    ) -> list[SyncResult]: ...

    def sync_online(
        self,
        view: str | None = None,
        *,
        mode: str = "incremental",
        now: datetime | str | None = None,
        partitions: int | None = None,
    ) -> SyncResult | list[SyncResult]:
        """Sync a view's latest values to Redis (all online views when ``view`` is None).

        Incremental through the change data feed by default; a full reload into a new
        namespace on the first run or with ``mode="full"`` (:mod:`fstore_spark.online.sync`).
        """
        results = self._online.sync(view, mode, now, partitions)
        return results[0] if view is not None else results

    def sync_online_due(self, now: datetime | None = None) -> list[SyncResult]:
        """Sync the views of configured feature sets whose last sync is ``update_frequency`` old."""
        return self._online.sync_due(now)

    def get_online_features(
        self,
        features: list[str] | str | None = None,
        entity_rows: list[dict[str, Any]] | None = None,
        *,
        feature_set: str | FeatureSet | FeatureSetVersion | None = None,
        entity_keys: list[Any] | None = None,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """Latest feature values for entities, from Redis, in one pipelined round trip.

        ``features``: references or a feature set name (or give ``feature_set``); a set's
        ``name@vN`` id (or a version object) serves the features of that version, its name
        alone the latest version's;
        ``entity_rows``: join key (or single-key entity name) -> value, one dict per entity;
        ``entity_keys``: plain values when the request has one join key. Values older than the
        view's ttl (or the set's ``cache_ttl``) are null with status ``OUTSIDE_MAX_AGE``.
        """
        if isinstance(features, str):
            feature_set, features = features, None
        set_name = None if feature_set is None else feature_set_name(feature_set)
        pinned = None if feature_set is None else self._sets.pinned_features(feature_set)
        return self._online.read(
            features, entity_rows, set_name, entity_keys, full_feature_names, pinned
        )


def _set_id(feature_set: str | FeatureSetVersion) -> str:
    return feature_set if isinstance(feature_set, str) else feature_set.id
