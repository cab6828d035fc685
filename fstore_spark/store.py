"""``FeatureStore``: the user-facing entry point.

A store is a configuration (``conf/feature_store.yaml``), a Spark session (built lazily, or the
active one), and a registry of definitions in the lakehouse. Everything downstream reads
definitions from the registry, never from ad-hoc dicts.

Example::

    from fstore_spark import FeatureStore

    store = FeatureStore(repo_path="feature_repo")   # config: conf/feature_store.yaml
    print(store.plan())                               # what `apply` would change
    store.apply()                                     # register the repo's definitions
    view = store.get_feature_view("customer_transaction_features")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from fstore_spark.config import FeatureStoreConfig, load_config
from fstore_spark.core.definitions import (
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    ParquetSource,
)
from fstore_spark.errors import ConfigError, NotFoundError, PointInTimeError, ValidationError
from fstore_spark.registry.registry import Plan, Registry
from fstore_spark.registry.repo import load_definitions

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from fstore_spark.ml.encoders import FittedEncoder
    from fstore_spark.ml.experimentation import ABTest, ABTestResults
    from fstore_spark.offline.materialization import MaterializationResult
    from fstore_spark.offline.training import HistoricalFeatures
    from fstore_spark.offline.versions import FeatureSetVersion, VersionDiff
    from fstore_spark.online.client import OnlineResponse, OnlineStore, ReadPlan
    from fstore_spark.online.sync import SyncResult
    from fstore_spark.quality.checks import (
        DriftReport,
        Expectation,
        MonitorPlan,
        MonitorResult,
        MonitorRule,
        Statistics,
        ValidationReport,
    )

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["FeatureStore"]


class FeatureStore:
    """A feature store project: configuration, Spark session and registry.

    Args:
        repo_path: Folder of Python definitions (a feature repo). When ``config`` is not given,
            the configuration is ``<repo_path>/feature_store.yaml`` if present, else
            ``$FSTORE_CONFIG`` or ``conf/feature_store.yaml``.
        config: A :class:`FeatureStoreConfig` or the path of a YAML file.
        spark: A SparkSession to use; default the active one or one built from the config.

    Example::

        store = FeatureStore(config="conf/feature_store.yaml")
        store.apply([customer, transactions, customer_features])
        store.list_feature_views()
    """

    def __init__(
        self,
        repo_path: str | os.PathLike[str] | None = None,
        config: FeatureStoreConfig | str | os.PathLike[str] | None = None,
        *,
        spark: SparkSession | None = None,
    ) -> None:
        """Load the configuration; the Spark session and registry are created lazily."""
        if isinstance(config, FeatureStoreConfig):
            cfg = config
        elif config is not None:
            cfg = load_config(config)
        elif repo_path is not None and Path(repo_path, "feature_store.yaml").is_file():
            cfg = load_config(Path(repo_path, "feature_store.yaml"))
        else:
            cfg = load_config()
        if repo_path is not None:
            cfg = cfg.model_copy(update={"repo_path": str(Path(repo_path).resolve())})
        self.config = cfg
        self._spark = spark
        self._registry: Registry | None = None
        self._online: OnlineStore | None = None  # online store (issue 7)
        self._serving: _ServingCatalog | None = None  # online store (issue 7)
        self._ab_tests: dict[str, tuple[ABTest, list[str]]] = {}  # started tests are immutable

    # ------------------------------------------------------------------ plumbing

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (the active one, or built from ``config.spark`` on first use)."""
        if self._spark is None:
            from fstore_spark.session import get_spark

            self._spark = get_spark(self.config.spark)
        return self._spark

    @property
    def registry(self) -> Registry:
        """The Delta-backed registry of this project."""
        if self._registry is None:
            self._registry = Registry(
                self.spark,
                self.config.registry_path,
                max_retries=self.config.registry.max_commit_retries,
            )
        return self._registry

    @property
    def project(self) -> str:
        """Project name."""
        return self.config.project

    def table_path(self, name: str) -> str:
        """Location of a project table (e.g. a feature view's Delta table) in the lakehouse."""
        return f"{self.config.project_root}/{name}"

    def load_definitions(self) -> list[Any]:
        """Definitions from the configured feature repo and YAML files.

        Raises:
            ConfigError: neither ``repo_path`` nor ``definitions`` is configured.
        """
        if self.config.repo_path is None and not self.config.definitions:
            raise ConfigError(
                "no definitions to load: set repo_path (a folder of Python definitions) or "
                "definitions (YAML files) in the config, or pass objects to plan/apply."
            )
        return load_definitions(self.config.repo_path, self.config.definitions)

    # ------------------------------------------------------------------ plan / apply

    def plan(self, objects: list[Any] | None = None, *, prune: bool | None = None) -> Plan:
        """Diff definitions against the registry without writing.

        Args:
            objects: Definitions; default those of the feature repo / YAML files.
            prune: Remove registered objects that are not given; default ``True`` when the
                definitions come from the repo (it is the whole truth), else ``False``.
        """
        objs, do_prune = self._objects(objects, prune)
        return self.registry.plan(objs, prune=do_prune)

    def apply(self, objects: list[Any] | None = None, *, prune: bool | None = None) -> Plan:
        """Validate and register definitions (one registry commit; none if nothing changed).

        Args:
            objects: Definitions; default those of the feature repo / YAML files.
            prune: As for :meth:`plan`.

        Returns:
            The applied plan.

        Raises:
            DefinitionError: invalid definitions; nothing is written.
        """
        objs, do_prune = self._objects(objects, prune)
        self._serving = None  # online store (issue 7): cached definitions are stale now
        return self.registry.apply(objs, prune=do_prune)

    def _objects(self, objects: list[Any] | None, prune: bool | None) -> tuple[list[Any], bool]:
        if objects is None:
            return self.load_definitions(), True if prune is None else prune
        return list(objects), bool(prune)

    # ------------------------------------------------------------------ reading definitions

    def get_feature_view(self, name: str, *, as_of_version: int | None = None) -> FeatureView:
        """A feature view by name, optionally as of a registry version.

        Raises:
            NotFoundError: no such view (the message lists the known views).
        """
        obj = self.registry.get("feature_view", name, as_of_version=as_of_version).obj
        assert isinstance(obj, FeatureView)
        return obj

    def list_feature_views(self, *, as_of_version: int | None = None) -> list[FeatureView]:
        """All feature views, sorted by name."""
        return [e.obj for e in self.registry.list("feature_view", as_of_version=as_of_version)]

    def get_feature_set(self, name: str, *, as_of_version: int | None = None) -> FeatureSet:
        """A feature set by name.

        Raises:
            NotFoundError: no such feature set.
        """
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
        """Everything the registry knows about one object, found by name.

        Args:
            name: Object name.
            category: Restrict the search to one category when names repeat across them.

        Returns:
            ``{"category", "name", "version", "definition_hash", "created_at", "updated_at",
            "applied_by", "definition", "history"}``.

        Raises:
            NotFoundError: no object of that name.
        """
        matches = [e for e in self.registry.list(category) if e.name == name]
        if not matches:
            known = ", ".join(sorted({e.name for e in self.registry.list()})) or "(none)"
            raise NotFoundError(f"nothing named {name!r} in the registry. Known: {known}.")
        e = matches[0]
        return {
            "category": e.category,
            "name": e.name,
            "version": e.version,
            "definition_hash": e.definition_hash,
            "created_at": _iso(e.created_at),
            "updated_at": _iso(e.updated_at),
            "applied_by": e.applied_by,
            "definition": e.definition,
            "history": [
                {**h, "updated_at": _iso(h["updated_at"])}
                for h in self.registry.history(e.category, e.name)
            ],
        }

    # ------------------------------------------------------------------ materialization

    def _join_keys(self, view: FeatureView) -> list[str]:
        keys: list[str] = []
        for ent in view.entities:
            for k in self.get_entity(ent).join_key_names:
                if k not in keys:
                    keys.append(k)
        return keys

    def materialize(
        self, view: str, start: datetime | str, end: datetime | str
    ) -> MaterializationResult:
        """Backfill a view's feature table for ``start <= feature_timestamp <= end``.

        One Delta commit; rerunning the same range gives the same rows (idempotent).
        See :mod:`fstore_spark.offline.aggregation` for the window semantics.
        """
        from fstore_spark.offline.materialization import backfill

        entry = self.registry.get("feature_view", view)
        fv = entry.obj
        return backfill(
            self.spark,
            self.config.project_root,
            fv,
            self._join_keys(fv),
            start,
            end,
            view_version=entry.version,
        )

    def materialize_incremental(
        self,
        view: str,
        *,
        end: datetime | str | None = None,
        lateness: timedelta | str | None = None,
    ) -> MaterializationResult:
        """Bring a view's feature table up to ``end`` (default now), touching only new data.

        Args:
            view: Feature view name.
            end: Last instant to cover; default now.
            lateness: How late an event may arrive and still be taken (default 2 days).
        """
        from fstore_spark.core.definitions import parse_duration
        from fstore_spark.offline.materialization import DEFAULT_LATENESS, incremental

        entry = self.registry.get("feature_view", view)
        fv = entry.obj
        late = DEFAULT_LATENESS if lateness is None else parse_duration(lateness)
        return incremental(
            self.spark,
            self.config.project_root,
            fv,
            self._join_keys(fv),
            end=end,
            lateness=late,
            view_version=entry.version,
        )

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
    ) -> HistoricalFeatures:
        """Point-in-time correct features for label rows (see :mod:`fstore_spark.offline.asof`).

        Reads each view's latest feature table (or the versions in ``as_of``). To read the
        versions a feature set version was pinned to, use :meth:`get_training_set`.

        Args:
            entity_df: Spark DataFrame, pandas DataFrame, or a Delta table name/path with the
                join keys and ``timestamp_column`` (a table is read at its current version, which
                lineage records).
            features: ``view:feature`` / ``view:*`` references; or give ``feature_set``.
            feature_set: Name of a registered feature set (its features, latest data).
            timestamp_column: Label time column (UTC instants).
            as_of: Per view, a Delta version or instant of its feature table to read.
            full_feature_names: Output ``view__feature`` column names.
            log_to_mlflow: Log lineage (dataset inputs, tags, ``feature_spec.yaml``) to MLflow;
                default: when an MLflow run is active. ``True`` without an active run starts one
                in the configured experiment and leaves it active (end it with
                ``mlflow.end_run()``). See :mod:`fstore_spark.lineage.tracking`.

        Returns:
            :class:`~fstore_spark.offline.training.HistoricalFeatures` (``.to_spark()`` is lazy).
        """
        if (features is None) == (feature_set is None):
            raise PointInTimeError("give exactly one of features=[...] or feature_set=...")
        refs = (
            list(features)
            if features is not None
            else list(self.get_feature_set(str(feature_set)).features)
        )
        return self._historical(
            entity_df,
            refs,
            timestamp_column=timestamp_column,
            as_of=as_of,
            full_feature_names=full_feature_names,
            log_to_mlflow=log_to_mlflow,
            feature_set=None if feature_set is None else (str(feature_set), None),
        )

    def _historical(
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
        fingerprint_output: bool = True,
    ) -> HistoricalFeatures:
        """Build a training set from definitions as of ``registry_version`` (default: now)."""
        from fstore_spark.offline.training import get_historical_features, to_spark_df

        reg_version = self.registry.version() if registry_version is None else registry_version
        entries = self.registry.list(as_of_version=registry_version)
        views = {e.name: e.obj for e in entries if e.category == "feature_view"}
        entities = {e.name: e.obj for e in entries if e.category == "entity"}
        wanted = {r.split(":", 1)[0] for r in refs}
        keys = {v: _keys_of(views[v], entities) for v in wanted if v in views}
        labels, entity_source = self._entity_rows(entity_df)
        labels = to_spark_df(self.spark, labels)  # once: a pandas frame is converted one time
        ts = get_historical_features(
            self.spark,
            self.config.project_root,
            labels,
            refs,
            views,
            keys,
            timestamp_column=timestamp_column,
            as_of=as_of,
            full_feature_names=full_feature_names,
            view_versions={
                e.name: (e.version, e.definition_hash)
                for e in entries
                if e.category == "feature_view"
            },
        )
        ts.registry_version = reg_version
        ts.entity_source = entity_source
        if feature_set is not None:
            ts.feature_set, ts.feature_set_version = feature_set
        if _should_log(log_to_mlflow):
            self._log_lineage(ts, labels, fingerprint_output=fingerprint_output)
        return ts

    def _entity_rows(self, entity_df: Any) -> tuple[Any, dict[str, Any] | None]:
        """Label rows; a Delta table given by name/path is pinned to its current version."""
        if not isinstance(entity_df, str):
            return entity_df, None
        from fstore_spark.lakehouse.tables import latest_version

        is_path = "/" in entity_df or entity_df.startswith("file:")
        version = latest_version(self.spark, entity_df, by_name=not is_path)
        if version is None:  # not a Delta table (a view, a parquet table): read it as is
            return entity_df, None
        reader = self.spark.read.format("delta").option("versionAsOf", version)
        labels = reader.load(entity_df) if is_path else reader.table(entity_df)
        key = "path" if is_path else "table"
        return labels, {"format": "delta", key: entity_df, "version": version}

    def _log_lineage(
        self, ts: HistoricalFeatures, labels: Any, *, fingerprint_output: bool
    ) -> None:
        import mlflow

        from fstore_spark.lineage.tracking import FeatureSpec, log_training_set, snapshot_entity_df
        from fstore_spark.offline.training import dataframe_fingerprint

        if ts.entity_source is None and ts.entity_fingerprint is not None:
            ts.entity_source = snapshot_entity_df(
                self.spark, self.config.project_root, labels, ts.entity_fingerprint
            )
        output = dataframe_fingerprint(ts.df) if fingerprint_output else None
        spec = FeatureSpec.from_training_set(ts, self.project, output=output)
        if mlflow.active_run() is None:
            self._start_mlflow_run()
        ts.mlflow_run_id = log_training_set(self.spark, self.config.project_root, spec)

    def _tracking_uri(self) -> str:
        from fstore_spark.lineage.tracking import tracking_uri

        return tracking_uri(self.config.mlflow.tracking_uri, self.config.tracking_uri)

    def _start_mlflow_run(self) -> None:
        """Start a run in the configured experiment (left active for the caller to end)."""
        import mlflow

        mlflow.set_tracking_uri(self._tracking_uri())
        name = self.config.mlflow.experiment
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=self.config.artifact_location)
        mlflow.set_experiment(name)
        mlflow.start_run()

    def get_training_features(
        self,
        feature_list: list[str],
        entity_df: Any,
        timestamp_column: str = "event_timestamp",
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> DataFrame:
        """Seed-style training set: labels with ``start_date <= ts < end_date``, lazily.

        Returns:
            The training set as a lazy Spark DataFrame.
        """
        from pyspark.sql import functions as F

        from fstore_spark.lakehouse.tables import to_utc
        from fstore_spark.offline.training import to_spark_df

        labels = to_spark_df(self.spark, entity_df)
        ts = F.col(timestamp_column).cast("timestamp")
        if start_date is not None:
            labels = labels.where(ts >= F.lit(to_utc(start_date).replace(tzinfo=None)))
        if end_date is not None:
            labels = labels.where(ts < F.lit(to_utc(end_date).replace(tzinfo=None)))
        return self.get_historical_features(
            labels, feature_list, timestamp_column=timestamp_column
        ).to_spark()

    def read_view(
        self,
        view: str,
        *,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """A view's feature table, now or as of a Delta version / instant (lazy)."""
        from fstore_spark.lakehouse.tables import read_feature_table

        return read_feature_table(
            self.spark,
            self.config.project_root,
            view,
            as_of_version=as_of_version,
            as_of_timestamp=as_of_timestamp,
        )

    # ------------------------------------------------------------------ versions

    def list_versions(self, view: str) -> list[dict[str, Any]]:
        """Delta versions of a view's feature table, newest first, with run metadata.

        See :func:`fstore_spark.offline.versions.list_versions` for the keys.
        """
        from fstore_spark.offline.versions import list_versions

        return list_versions(self.spark, self.config.project_root, view)

    def diff_versions(self, view: str, v1: int, v2: int) -> VersionDiff:
        """Rows added / changed / removed between two Delta versions, per-feature counts.

        Example::

            d = store.diff_versions("customer_features", 3, 4)
            print(d.added, d.changed, d.removed, d.changed_by_feature)
        """
        from fstore_spark.offline.versions import diff_versions

        fv = self.get_feature_view(view)
        return diff_versions(
            self.spark, self.config.project_root, view, self._join_keys(fv), v1, v2
        )

    # ------------------------------------------------------------------ quality

    def validate(
        self,
        view: str,
        expectations: list[Expectation],
        *,
        version: int | None = None,
        window: tuple[datetime | str, datetime | str] | None = None,
        fail: bool = False,
    ) -> ValidationReport:
        """Check expectations on a view's feature table (latest, or a Delta version).

        Args:
            view: View name.
            expectations: Rules (``fstore_spark.quality.checks.expect_*``).
            version: Delta version to check; default the latest.
            window: Only rows with ``start <= feature_timestamp < end``.
            fail: Raise :class:`~fstore_spark.errors.ValidationError` when a rule fails.

        Example::

            from fstore_spark.quality.checks import expect_between, expect_not_null
            report = store.validate("spend", [expect_not_null("sum_7d", mostly=0.99),
                                              expect_between("count_7d", 0, 10_000)])
            report.success, [r.expectation.name for r in report.failed]
        """
        from fstore_spark.quality.checks import select_rows, validate

        df = select_rows(self.read_view(view, as_of_version=version), window)
        report = validate(df, expectations)
        if fail:
            report.raise_on_failure()
        return report

    def feature_statistics(
        self, view: str, *, version: int | None = None, recompute: bool = False
    ) -> Statistics:
        """Statistics of a view's features at a Delta version (default latest), kept per version.

        See :func:`fstore_spark.quality.checks.view_statistics`.

        Example::

            s = store.feature_statistics("spend")
            s["sum_7d"].mean, s["sum_7d"].null_fraction, s["sum_7d"].quantiles["0.5"]
        """
        from fstore_spark.quality.checks import view_statistics

        fv = self.get_feature_view(view)
        return view_statistics(
            self.spark,
            self.config.project_root,
            view,
            list(fv.feature_names),
            version=version,
            recompute=recompute,
        )

    def detect_drift(
        self,
        view: str,
        *,
        baseline_version: int | None = None,
        baseline_window: tuple[datetime | str, datetime | str] | None = None,
        version: int | None = None,
        window: tuple[datetime | str, datetime | str] | None = None,
        current: DataFrame | None = None,
        features: list[str] | None = None,
        method: str = "ks",
        threshold: float | None = None,
        **options: Any,
    ) -> DriftReport:
        """Compare a view's features now (or ``current`` data) with a baseline.

        The baseline is the feature table at ``baseline_version`` (default latest), restricted
        to ``baseline_window`` (``[start, end)`` on ``feature_timestamp``) when given. The
        current data is ``current`` (e.g. a scoring set with the feature columns), or the
        table at ``version`` restricted to ``window``. Tests and thresholds: see
        :func:`fstore_spark.quality.checks.detect_drift`.

        Example::

            r = store.detect_drift("spend", baseline_window=("2024-01-01", "2024-02-01"),
                                   window=("2024-06-01", "2024-07-01"), method="ks_test")
            r.drifted_columns, r["sum_7d"].p_value, r["sum_7d"].psi
        """
        from fstore_spark.quality.checks import detect_drift, select_rows

        if baseline_version is None and baseline_window is None:
            raise ValidationError(
                f"drift of {view!r}: give baseline_version= or baseline_window=(start, end)."
            )
        fv = self.get_feature_view(view)
        base = select_rows(self.read_view(view, as_of_version=baseline_version), baseline_window)
        cur = current
        if cur is None:
            cur = select_rows(self.read_view(view, as_of_version=version), window)
        cols = [f for f in (features or list(fv.feature_names)) if f in cur.columns]
        return detect_drift(base, cur, cols, method=method, threshold=threshold, **options)

    def monitor(
        self,
        view: str,
        rules: list[MonitorRule],
        *,
        version: int | None = None,
        baseline_version: int | None = None,
        baseline_window: tuple[datetime | str, datetime | str] | None = None,
        channels: list[Any] | tuple[Any, ...] = ("log",),
        now: datetime | None = None,
    ) -> MonitorResult:
        """Check a view against monitor rules, send alerts, record the check.

        Run it after each materialization (or on a schedule: ``jobs/monitor_features.py``).
        See :func:`fstore_spark.quality.checks.monitor_view`.

        Example::

            from fstore_spark.quality.checks import MonitorRule
            result = store.monitor("spend", [MonitorRule("missing_values", 0.05),
                                             MonitorRule("drift_psi", 0.2)],
                                   baseline_version=3, channels=["log", slack_webhook_url])
            result.ok, [a.message for a in result.alerts]
        """
        from fstore_spark.quality.checks import monitor_view

        fv = self.get_feature_view(view)
        return monitor_view(
            self.spark,
            self.config.project_root,
            view,
            list(fv.feature_names),
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
        """Run a monitoring plan: :meth:`monitor` for each of its views (or only ``views``).

        Args:
            plan: A YAML file (``conf/monitoring.yaml``), its parsed mapping, or plans from
                :func:`fstore_spark.quality.checks.load_monitoring`; validated before any check.
            views: Only these views of the plan.

        Raises:
            DefinitionError: the plan is invalid.
            NotFoundError: a view in ``views`` is not in the plan.
        """
        from fstore_spark.quality.checks import load_monitoring

        plans = plan if isinstance(plan, list) else load_monitoring(plan)
        names = [p.view for p in plans]
        unknown = sorted(set(views or []) - set(names))
        if unknown:
            raise NotFoundError(
                f"view(s) {unknown} are not in the monitoring plan; it has {names}."
            )
        return [
            self.monitor(
                p.view,
                list(p.rules),
                baseline_version=p.baseline_version,
                baseline_window=p.baseline_window,
                channels=list(p.channels),
            )
            for p in plans
            if views is None or p.view in views
        ]

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

        A new version is created when the features, metadata or description differ from the
        latest version; otherwise the latest version is returned unchanged (same pins). The
        feature set and its pins are written in one registry commit.

        Args:
            name: Feature set name.
            features: ``view:feature`` / ``view:*`` references.
            metadata: Free metadata (author, purpose, model version...).
            description: Free text.

        Returns:
            The :class:`~fstore_spark.offline.versions.FeatureSetVersion` (``.id`` is ``name@vN``).

        Raises:
            DefinitionError: invalid references (unknown view or feature); nothing is written.

        Example::

            fs = store.create_feature_set("fraud_v1", ["txn:amount_sum_7d", "profile:*"],
                                          metadata={"author": "team_ml"})
            fs.id, fs.view_versions        # ('fraud_v1@v1', {'txn': 12, 'profile': 3})
        """
        from fstore_spark.core.definitions import definition_hash, resolve_feature_refs
        from fstore_spark.lakehouse.tables import feature_table_path, table_version

        fs = FeatureSet(
            name=name, features=features, metadata=dict(metadata or {}), description=description
        )
        entries = self.registry.list()
        views = {e.name: e.obj for e in entries if e.category == "feature_view"}
        resolved = resolve_feature_refs(list(fs.features), views)  # validates before writing
        current = next((e for e in entries if e.category == "feature_set" and e.name == name), None)
        h = definition_hash(fs)
        if current is not None and current.definition_hash == h:
            return self.get_feature_set_version(name)
        pins = {
            v: table_version(self.spark, feature_table_path(self.config.project_root, v))
            for v in dict.fromkeys(r.view for r in resolved)
        }
        self.registry.apply(
            [fs],
            settings={("feature_set_pins", name): {"definition_hash": h, "views": pins}},
        )
        self._serving = None  # online reads must see the new feature set
        return self.get_feature_set_version(name)

    def get_feature_set_version(
        self, feature_set: str, version: int | None = None
    ) -> FeatureSetVersion:
        """One version of a feature set (default the latest) with its pinned Delta versions.

        Args:
            feature_set: Name, or ``name@vN``.
            version: Version number (overrides an ``@vN`` suffix).

        Raises:
            NotFoundError: no such feature set or version.
        """
        from fstore_spark.offline.versions import parse_feature_set_id

        name, ver = parse_feature_set_id(feature_set)
        ver = version if version is not None else ver
        index = self._feature_set_index(name)
        if not index:
            self.registry.get("feature_set", name)  # raises NotFoundError listing known sets
        if ver is None:
            ver = max(index)
        if ver not in index:
            raise NotFoundError(
                f"feature set {name!r} has no version {ver}; versions: "
                f"{', '.join(str(v) for v in sorted(index))}."
            )
        return self._feature_set_version(name, ver, index[ver])

    def list_feature_set_versions(self, name: str) -> list[FeatureSetVersion]:
        """Every version of a feature set, oldest first."""
        index = self._feature_set_index(name)
        return [self._feature_set_version(name, v, reg) for v, reg in sorted(index.items())]

    def _feature_set_index(self, name: str) -> dict[int, int]:
        """Feature set version -> registry version that wrote it (from the change feed)."""
        index: dict[int, int] = {}
        for h in self.registry.history("feature_set", name):
            if h["change"] == "upsert":
                index[h["version"]] = h["registry_version"]
            else:  # removed: a later re-creation starts again at version 1
                index.clear()
        return index

    def _feature_set_version(self, name: str, version: int, reg: int) -> FeatureSetVersion:
        from fstore_spark.core.definitions import resolve_feature_refs
        from fstore_spark.lakehouse.tables import feature_table_path, table_version_at
        from fstore_spark.offline.versions import FeatureSetVersion

        entries = self.registry.list(as_of_version=reg)  # one read: the set, its pins, views
        by_key = {(e.category, e.name): e for e in entries}
        fse = by_key[("feature_set", name)]
        fs = fse.obj
        pin_entry = by_key.get(("feature_set_pins", name))
        if pin_entry is not None and pin_entry.definition["definition_hash"] == fse.definition_hash:
            pins = dict(pin_entry.definition["views"])
        else:  # applied from a repo, not via create_feature_set: latest at its creation
            views = {e.name: e.obj for e in entries if e.category == "feature_view"}
            refs = resolve_feature_refs(list(fs.features), views)
            root = self.config.project_root
            pins = {
                v: table_version_at(self.spark, feature_table_path(root, v), fse.updated_at)
                for v in dict.fromkeys(r.view for r in refs)
            }
        return FeatureSetVersion(
            name=name,
            version=version,
            features=tuple(fs.features),
            metadata=dict(fs.metadata),
            description=fs.description,
            view_versions=pins,
            created_at=fse.updated_at,
            registry_version=reg,
        )

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
    ) -> HistoricalFeatures:
        """A training set from a feature set version, every view pinned to its Delta version.

        The definitions are read as they were when the version was created and each view's
        feature table as of the Delta version recorded then, so the same version and labels
        always give the same rows. Views not materialized at creation read their latest data.

        Args:
            feature_set: Name, ``name@vN``, or a :class:`FeatureSetVersion`.
            entity_df: Label rows (see :meth:`get_historical_features`).
            version: Feature set version; default the latest (or the ``@vN`` given).
            latest: Read every view's latest data and definitions instead of the pins.
            timestamp_column: Label time column.
            full_feature_names: Output ``view__feature`` column names.
            log_to_mlflow: As for :meth:`get_historical_features`.
        """
        if not isinstance(feature_set, str):
            feature_set = feature_set.id
        fsv = self.get_feature_set_version(feature_set, version)
        pins: dict[str, int | datetime | str] = (
            {} if latest else {v: p for v, p in fsv.view_versions.items() if p is not None}
        )
        return self._historical(
            entity_df,
            list(fsv.features),
            timestamp_column=timestamp_column,
            as_of=pins,
            full_feature_names=full_feature_names,
            log_to_mlflow=log_to_mlflow,
            feature_set=(fsv.name, fsv.version),
            registry_version=None if latest else fsv.registry_version,
        )

    def export_feature_set(
        self,
        feature_set: str | FeatureSetVersion,
        format: str = "parquet",
        path: str | os.PathLike[str] | None = None,
        *,
        version: int | None = None,
    ) -> str:
        """Write a feature set version's data: one table per view, plus a manifest.

        ``<path>/<view>`` holds the view's rows (join keys, ``feature_timestamp``, the set's
        features) from the pinned Delta version — the full history, usable for point-in-time
        joins elsewhere; ``<path>/_feature_set`` a one-line JSON manifest (name, version,
        features, metadata, Delta versions). Overwrites what is at ``path``.

        Args:
            feature_set: Name, ``name@vN`` or a :class:`FeatureSetVersion`.
            format: ``parquet`` or ``delta``.
            path: Target folder (any Hadoop path: local, s3a://, abfss://...).
            version: Feature set version; default the latest.

        Returns:
            The target path.
        """
        import json

        from fstore_spark.core.definitions import resolve_feature_refs
        from fstore_spark.lakehouse.tables import FEATURE_TIMESTAMP, read_feature_table

        if format not in ("parquet", "delta"):
            raise ConfigError(f"export format must be 'parquet' or 'delta', got {format!r}.")
        if path is None:
            raise ConfigError("export_feature_set needs a target path.")
        if not isinstance(feature_set, str):
            feature_set = feature_set.id
        fsv = self.get_feature_set_version(feature_set, version)
        entries = self.registry.list(as_of_version=fsv.registry_version)
        views = {e.name: e.obj for e in entries if e.category == "feature_view"}
        entities = {e.name: e.obj for e in entries if e.category == "entity"}
        by_view: dict[str, list[str]] = {}
        for r in resolve_feature_refs(list(fsv.features), views):
            by_view.setdefault(r.view, []).append(r.feature)
        target = str(path).rstrip("/")
        for view, feats in by_view.items():
            table = read_feature_table(
                self.spark,
                self.config.project_root,
                view,
                as_of_version=fsv.view_versions.get(view),
            )
            keys = _keys_of(views[view], entities)
            table.select(*keys, FEATURE_TIMESTAMP, *feats).write.format(format).mode(
                "overwrite"
            ).save(f"{target}/{view}")
        manifest = json.dumps({**fsv.to_dict(), "format": format, "views": list(by_view)})
        self.spark.createDataFrame([(manifest,)], "value string").coalesce(1).write.mode(
            "overwrite"
        ).text(f"{target}/_feature_set")
        return target

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

        The spec goes into the model's ``MLmodel`` metadata (key ``fstore_feature_spec``),
        together with the feature columns the model takes, in order. Logs to the active run
        (or starts one, as :meth:`get_historical_features` does).

        Args:
            model: The fitted model.
            artifact_path: Model name within the run.
            flavor: An MLflow flavor module (``mlflow.sklearn``) or its name (``"sklearn"``).
            training_set: What :meth:`get_training_set` / :meth:`get_historical_features`
                returned for the training data.
            feature_columns: Model input columns, in order; default all feature columns of
                the training set.
            encoders: Fitted encoders (:mod:`fstore_spark.ml.encoders`) the model's inputs went
                through, in order; stored with the model so :meth:`score_batch` applies exactly
                the same state. Their output columns may be named in ``feature_columns``.
            **kwargs: Passed to ``<flavor>.log_model`` (``signature``, ``input_example``,
                ``registered_model_name``...).

        Returns:
            MLflow's ``ModelInfo`` (``.model_uri`` is what :meth:`score_batch` takes).
        """
        import importlib

        import mlflow

        from fstore_spark.errors import LineageError
        from fstore_spark.lineage.tracking import (
            ENCODERS_METADATA_KEY,
            MODEL_METADATA_KEY,
            FeatureSpec,
        )

        module = importlib.import_module(f"mlflow.{flavor}") if isinstance(flavor, str) else flavor
        if not hasattr(module, "log_model"):
            raise LineageError(f"flavor {flavor!r} has no log_model; pass e.g. mlflow.sklearn.")
        cols = list(feature_columns or training_set.feature_columns)
        encoded = [o for e in encoders or [] for o in e.outputs]
        unknown = [c for c in cols if c not in training_set.df.columns and c not in encoded]
        if unknown:
            raise LineageError(
                f"feature_columns {unknown} are not columns of the training set nor outputs of "
                f"the encoders; it has {', '.join(training_set.df.columns)}."
            )
        missing = [
            e.encoder.column
            for e in encoders or []
            if e.encoder.column not in training_set.df.columns and e.encoder.column not in encoded
        ]
        if missing:
            raise LineageError(f"encoders read {missing}, which the training set lacks.")
        spec = FeatureSpec.from_training_set(training_set, self.project)
        spec.model_input_columns = cols
        metadata = {**kwargs.pop("metadata", {}), MODEL_METADATA_KEY: spec.to_dict()}
        if encoders:
            metadata[ENCODERS_METADATA_KEY] = [e.to_dict() for e in encoders]
        if mlflow.active_run() is None:
            self._start_mlflow_run()
        info = module.log_model(model, name=artifact_path, metadata=metadata, **kwargs)
        mlflow.set_tag("fstore.model", info.model_uri)
        return info

    def score_batch(
        self,
        model_uri: str,
        entity_df: Any,
        *,
        result_type: str = "double",
        prediction_column: str = "prediction",
        timestamp_column: str | None = None,
    ) -> DataFrame:
        """Predict for label rows, looking the model's features up point-in-time.

        The caller passes only join keys and timestamps (rows without a timestamp column are
        scored as of now). Features come from each view's latest data, as of each row's
        timestamp, exactly as in training, then go through the encoders logged with the model
        (the fitted state of training); the model runs on the executors
        (``mlflow.pyfunc.spark_udf``).

        Args:
            model_uri: A model logged with :meth:`log_model` (``models:/...``, ``runs:/...``).
            entity_df: Spark or pandas DataFrame, or table, with keys (and timestamps).
            result_type: Spark type of the prediction.
            prediction_column: Name of the output column.
            timestamp_column: Label time column; default the one used in training.

        Returns:
            Lazy DataFrame: the input rows, the features, and ``prediction_column``.
        """
        import mlflow.pyfunc
        from pyspark.sql import functions as F

        from fstore_spark.lineage.tracking import model_encoders, model_spec, using_tracking_uri
        from fstore_spark.ml.encoders import FittedEncoder, apply_encoders
        from fstore_spark.offline.training import to_spark_df

        uri = self._tracking_uri()
        with using_tracking_uri(uri):
            spec = model_spec(model_uri)
            encoders = [FittedEncoder.from_dict(d) for d in model_encoders(model_uri)]
        ts_col = timestamp_column or spec.timestamp_column
        labels = to_spark_df(self.spark, entity_df)
        if ts_col not in labels.columns:
            labels = labels.withColumn(ts_col, F.current_timestamp())
        ts = self._historical(
            labels,
            list(spec.features),
            timestamp_column=ts_col,
            as_of=None,
            full_feature_names=spec.full_feature_names,
            log_to_mlflow=False,
        )
        cols = list(spec.model_input_columns or spec.feature_columns)
        with using_tracking_uri(uri):
            predict = mlflow.pyfunc.spark_udf(
                self.spark, model_uri, result_type=result_type, env_manager="local"
            )
        features = apply_encoders(ts.df, encoders)  # the state training used, if any
        return features.withColumn(prediction_column, predict(F.struct(*[F.col(c) for c in cols])))

    def reproduce_training_set(
        self, run_id: str, *, entity_df: Any = None, verify: bool = True
    ) -> HistoricalFeatures:
        """Rebuild the training set of an MLflow run by time travel, and check it.

        Reads the run's ``feature_spec.yaml``; reads the label rows from where the spec says
        (or ``entity_df``), every view's feature table at its recorded Delta version, and the
        definitions at the recorded registry version. With ``verify`` it checks the label
        fingerprint and, when recorded, the fingerprint of the whole training set (one pass).

        Raises:
            LineageError: no spec in the run; labels or a Delta version no longer readable
                (vacuumed); a fingerprint differs.
        """
        from fstore_spark.errors import LineageError
        from fstore_spark.lineage.tracking import load_run_spec
        from fstore_spark.offline.training import dataframe_fingerprint

        spec = load_run_spec(self._tracking_uri(), run_id)
        if entity_df is None:
            src = spec.entity.get("source")
            if not src:
                raise LineageError(
                    f"run {run_id}: the spec records no readable label rows. Fix: pass the "
                    "original entity_df=..."
                )
            entity_df = src.get("table") or src.get("path")
            labels = self.spark.read.format("delta").option("versionAsOf", int(src["version"]))
            try:
                entity_df = (
                    labels.table(src["table"]) if src.get("table") else labels.load(src["path"])
                )
            except Exception as exc:
                raise LineageError(
                    f"run {run_id}: cannot read the label rows at {src}: {exc}"
                ) from exc
        fs = spec.feature_set
        try:
            ts = self._historical(
                entity_df,
                list(spec.features),
                timestamp_column=spec.timestamp_column,
                as_of=dict(spec.as_of),
                full_feature_names=spec.full_feature_names,
                log_to_mlflow=False,
                feature_set=None if fs is None else (fs["name"], fs.get("version")),
                registry_version=spec.registry_version,
            )
        except NotFoundError as exc:
            raise LineageError(
                f"run {run_id}: a recorded version is no longer readable ({exc}). Delta time "
                "travel needs the files: check VACUUM retention on the feature tables."
            ) from exc
        if verify:
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
        return ts

    def runs_using(
        self, ref: str, *, experiment_names: list[str] | None = None, max_results: int = 1000
    ) -> list[dict[str, Any]]:
        """MLflow runs whose training sets used a view (``"view"``) or feature (``"view:f"``).

        Searches the tags lineage logging writes, in every experiment (or those named).

        Returns:
            Dicts ``run_id, experiment_id, run_name, status, start_time, delta_version,
            feature_set, feature_set_version``, newest first.
        """
        from mlflow.tracking import MlflowClient

        from fstore_spark.lineage.tracking import runs_using_filter

        view = ref.split(":", 1)[0]
        client = MlflowClient(tracking_uri=self._tracking_uri())
        if experiment_names is None:
            ids = [e.experiment_id for e in client.search_experiments()]
        else:
            ids = [
                e.experiment_id
                for n in experiment_names
                if (e := client.get_experiment_by_name(n)) is not None
            ]
        if not ids:
            return []
        runs = client.search_runs(
            ids,
            filter_string=runs_using_filter(ref),
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
        return [
            {
                "run_id": r.info.run_id,
                "experiment_id": r.info.experiment_id,
                "run_name": r.info.run_name,
                "status": r.info.status,
                "start_time": r.info.start_time,
                "delta_version": r.data.tags.get(f"fstore.view.{view}"),
                "feature_set": r.data.tags.get("fstore.feature_set.name"),
                "feature_set_version": r.data.tags.get("fstore.feature_set.version"),
            }
            for r in runs
        ]

    # ------------------------------------------------------------------ A/B tests of feature sets

    def start_ab_test(self, test: ABTest, *, start: datetime | str | None = None) -> ABTest:
        """Start an A/B test: pin each variant's feature set version and start the clock.

        Each variant's feature set is resolved to its current version (``name@vN``), and each
        model (if given) must have been logged from that feature set. The started test is
        kept in the registry (category ``ab_test``, with history). Starting the same test
        again returns it as started; a different test under a started name is refused.

        Args:
            test: The :class:`~fstore_spark.ml.experimentation.ABTest`.
            start: Start time (default now); the test ends at ``start + duration``.

        Returns:
            The started test (``started_at`` set, feature sets pinned).

        Raises:
            NotFoundError: a variant's feature set does not exist.
            ExperimentError: a model was not trained on its variant's feature set, or the name
                is taken by a different test. Nothing is written.

        Example::

            test = store.start_ab_test(ABTest(
                name="new_features_test",
                feature_sets={"control": "fraud_v1", "treatment": "fraud_v2"},
                models={"control": "models:/fraud/1", "treatment": "models:/fraud/2"},
                metrics=["auc", "precision", "recall"], duration="7d"))
        """
        from dataclasses import replace

        from fstore_spark.errors import ExperimentError, LineageError
        from fstore_spark.lineage.tracking import model_spec, using_tracking_uri
        from fstore_spark.offline.versions import parse_feature_set_id

        existing = self._ab_entry(test.name)
        if existing is not None:
            if existing["requested"] == test.definition():
                return self.get_ab_test(test.name)
            raise ExperimentError(
                f"A/B test {test.name!r} is already started with another definition "
                f"({existing['requested']}). Fix: start the new test under a new name."
            )
        pinned = {v: self.get_feature_set_version(fs).id for v, fs in test.feature_sets.items()}
        for variant, uri in (test.models or {}).items():
            with using_tracking_uri(self._tracking_uri()):
                try:
                    spec = model_spec(uri)
                except LineageError as exc:
                    raise ExperimentError(
                        f"A/B test {test.name!r}: model {uri!r} of variant {variant!r}: {exc}"
                    ) from exc
            want = parse_feature_set_id(pinned[variant])[0]
            got = (spec.feature_set or {}).get("name")
            if got != want:
                raise ExperimentError(
                    f"A/B test {test.name!r}: the model of variant {variant!r} ({uri}) was "
                    f"trained on feature set {got!r}, not {want!r}. Fix: log the variant's model "
                    "from store.get_training_set(<its feature set>, ...)."
                )
        when = start if start is not None else datetime.now(UTC)
        started = replace(test, feature_sets=pinned, started_at=when)
        self.registry.apply(
            [],
            settings={
                ("ab_test", test.name): {"test": started.to_dict(), "requested": test.definition()}
            },
        )
        return started

    def get_ab_test(self, name: str | ABTest) -> ABTest:
        """A started A/B test, as stored by :meth:`start_ab_test`.

        Raises:
            NotFoundError: no test of that name was started.
        """
        from fstore_spark.ml.experimentation import ABTest

        name = name if isinstance(name, str) else name.name
        entry = self._ab_entry(name)
        if entry is None:
            raise NotFoundError(
                f"A/B test {name!r} is not started. Fix: store.start_ab_test(ABTest(...))."
            )
        return ABTest.from_dict(entry["test"])

    def _ab_serving(self, test: str | ABTest) -> tuple[ABTest, list[str]]:
        """A started test and its unit keys, read from the registry once per store."""
        name = test if isinstance(test, str) else test.name
        if name not in self._ab_tests:
            started = self.get_ab_test(name)
            self._ab_tests[name] = (started, self._ab_keys(started))
        return self._ab_tests[name]

    def _ab_entry(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.registry.get("ab_test", name).definition)
        except NotFoundError:
            return None

    def _ab_keys(self, test: ABTest) -> list[str]:
        """The units of a test: the join keys of the control's feature set."""
        from fstore_spark.core.definitions import resolve_feature_refs

        fsv = self.get_feature_set_version(test.feature_sets[str(test.control)])
        entries = self.registry.list(as_of_version=fsv.registry_version)
        views = {e.name: e.obj for e in entries if e.category == "feature_view"}
        entities = {e.name: e.obj for e in entries if e.category == "entity"}
        keys: list[str] = []
        for ref in resolve_feature_refs(list(fsv.features), views):
            keys += [k for k in _keys_of(views[ref.view], entities) if k not in keys]
        return keys

    def assign_ab_variants(
        self, test: str | ABTest, entity_df: Any, *, key_columns: list[str] | None = None
    ) -> DataFrame:
        """Add each row's ``variant`` and ``feature_set`` (deterministic, as online requests get).

        Args:
            test: A started test (name or object).
            entity_df: Spark or pandas DataFrame, or table, with the unit's join keys.
            key_columns: Unit columns; default the join keys of the control's feature set.

        Returns:
            Lazy DataFrame: the rows, ``variant`` (null when a key is null), ``feature_set``.
        """
        from pyspark.sql import functions as F

        from fstore_spark.ml.experimentation import check_key_types, variant_column
        from fstore_spark.offline.training import to_spark_df

        test, unit_keys = self._ab_serving(test)
        df = to_spark_df(self.spark, entity_df)
        keys = key_columns or unit_keys
        check_key_types(df, keys, test.name)
        variant = variant_column(test, keys)
        fs = F.create_map(*[F.lit(x) for kv in test.feature_sets.items() for x in kv])
        return df.withColumn("variant", variant).withColumn("feature_set", fs[F.col("variant")])

    def get_ab_online_features(
        self, test: str | ABTest, entity_row: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Online features for one request under an A/B test, in one Redis round trip.

        The request's variant comes from its join keys (the same hash as
        :meth:`assign_ab_variants`); the features are that variant's feature set's.

        Returns:
            ``{"variant", "feature_set", "features": {column: value}}``.

        Example::

            r = store.get_ab_online_features("new_features_test", {"customer_id": "c42"})
            model_for[r["variant"]].predict(r["features"])
        """
        from fstore_spark.errors import EntityRowError
        from fstore_spark.offline.versions import parse_feature_set_id

        test, keys = self._ab_serving(test)
        missing = [k for k in keys if k not in entity_row]
        if missing:
            raise EntityRowError(
                f"A/B test {test.name!r}: the entity row lacks join key(s) {missing}; it has "
                f"{sorted(entity_row)}."
            )
        variant = test.assign(tuple(entity_row[k] for k in keys))
        fs = test.feature_sets[variant]
        resp = self.get_online_features(
            feature_set=parse_feature_set_id(fs)[0], entity_rows=[dict(entity_row)]
        )
        row = resp.to_dict()
        features = {c: vals[0] for c, vals in row.items() if c not in keys}
        return {"variant": variant, "feature_set": fs, "features": features}

    def _ab_log_path(self, name: str) -> str:
        return self.table_path(f"_experiments/{name}/predictions")

    def log_ab_predictions(
        self,
        test: str | ABTest,
        predictions: Any,
        *,
        prediction_column: str = "prediction",
        timestamp_column: str = "event_timestamp",
        key_columns: list[str] | None = None,
    ) -> str:
        """Append scored requests to the test's prediction log (a Delta table), once each.

        Rows are keyed by (join keys, ``timestamp_column``): logging the same request again
        keeps the first prediction (a Delta MERGE inserting only new keys), so a rerun after
        a crash logs nothing twice. The variant is recomputed from the keys; a ``variant``
        column that disagrees is an error (the traffic was not split by this test).

        Returns:
            The log table's path.

        Raises:
            ExperimentError: missing columns, or rows scored under the wrong variant.
        """
        from pyspark.sql import functions as F

        from fstore_spark.errors import ExperimentError
        from fstore_spark.lakehouse.writes import insert_new_rows
        from fstore_spark.ml.experimentation import check_key_types, variant_column
        from fstore_spark.offline.training import to_spark_df

        test, unit_keys = self._ab_serving(test)
        df = to_spark_df(self.spark, predictions)
        keys = key_columns or unit_keys
        check_key_types(df, keys, test.name)
        for col in (prediction_column, timestamp_column):
            if col not in df.columns:
                raise ExperimentError(
                    f"A/B test {test.name!r}: column {col!r} is not in the predictions; columns: "
                    f"{', '.join(df.columns)}."
                )
        assigned = variant_column(test, keys)
        if "variant" in df.columns:
            wrong = df.where(~F.col("variant").eqNullSafe(assigned)).count()
            if wrong:
                raise ExperimentError(
                    f"A/B test {test.name!r}: {wrong} row(s) carry a variant other than the one "
                    "the test assigns to their keys. Fix: split traffic with "
                    "assign_ab_variants / get_ab_online_features."
                )
        fs = F.create_map(*[F.lit(x) for kv in test.feature_sets.items() for x in kv])
        rows = (
            df.where(assigned.isNotNull())
            .select(
                *[F.col(k) for k in keys],
                F.col(timestamp_column).cast("timestamp").alias("event_timestamp"),
                assigned.alias("variant"),
                F.col(prediction_column).cast("double").alias("prediction"),
            )
            .withColumn("feature_set", fs[F.col("variant")])
            .withColumn("logged_at", F.current_timestamp())
            .dropDuplicates([*keys, "event_timestamp"])
        )
        path = self._ab_log_path(test.name)
        insert_new_rows(self.spark, path, rows, [*keys, "event_timestamp"])
        return path

    def score_ab_test(
        self,
        test: str | ABTest,
        entity_df: Any,
        *,
        timestamp_column: str = "event_timestamp",
        score_index: int | None = None,
        log: bool = True,
    ) -> DataFrame:
        """Score requests under an A/B test: each with its variant's model and feature set.

        Rows are assigned by their join keys; each variant's rows go through
        :meth:`score_batch` with the variant's model (point-in-time feature lookup from its
        feature set). Rows without a timestamp column are scored as of now. With ``log``, the
        predictions are added to the test's log (see :meth:`log_ab_predictions`) and read back
        from it, so every model runs once and a repeated request keeps its first prediction.

        Args:
            test: A started test with models (name or object).
            entity_df: Spark or pandas DataFrame, or table: join keys (and timestamps).
            timestamp_column: Request time column.
            score_index: For models whose output is a vector (a classifier logged with
                ``pyfunc_predict_fn="predict_proba"``), the element to use as the score:
                ``1`` is the probability of the positive class of a binary classifier.
                Default: the model's output is the score.
            log: Add the predictions to the test's log.

        Returns:
            DataFrame: join keys, ``event_timestamp``, ``variant``, ``feature_set``,
            ``prediction`` (and ``logged_at`` when logged).

        Raises:
            ExperimentError: the test has no models.
        """
        from pyspark.sql import functions as F

        from fstore_spark.errors import ExperimentError
        from fstore_spark.offline.training import to_spark_df

        test, keys = self._ab_serving(test)
        if not test.models:
            raise ExperimentError(
                f"A/B test {test.name!r} has no models to score with. Fix: give "
                "ABTest(models={variant: model_uri}), or score yourself and call "
                "log_ab_predictions."
            )
        requests = to_spark_df(self.spark, entity_df)
        if timestamp_column not in requests.columns:  # one instant for every variant's query
            requests = requests.withColumn(timestamp_column, F.lit(datetime.now(UTC)))
        assigned = self.assign_ab_variants(test, requests, key_columns=keys)
        parts = []
        for variant, uri in test.models.items():
            rows = assigned.where(F.col("variant") == variant).drop("variant", "feature_set")
            if score_index is None:
                scored = self.score_batch(uri, rows, timestamp_column=timestamp_column)
                score = F.col("prediction").cast("double")
            else:
                scored = self.score_batch(
                    uri, rows, timestamp_column=timestamp_column, result_type="array<double>"
                )
                score = F.element_at("prediction", score_index + 1)
            parts.append(
                scored.select(
                    *[F.col(k) for k in keys],
                    F.col(timestamp_column).alias("event_timestamp"),
                    F.lit(variant).alias("variant"),
                    F.lit(test.feature_sets[variant]).alias("feature_set"),
                    score.alias("prediction"),
                )
            )
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        if not log:
            return out
        path = self.log_ab_predictions(test, out, key_columns=keys)
        wanted = requests.select(
            *keys, F.col(timestamp_column).cast("timestamp").alias("event_timestamp")
        ).distinct()
        logged = self.spark.read.format("delta").load(path)
        return logged.join(wanted, [*keys, "event_timestamp"], "left_semi")

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

        The test's prediction log, limited to ``[started_at, ends_at)`` by logging time, is
        joined to the labels on ``join_on`` (default: the join keys and ``event_timestamp``
        when the labels have it, else the join keys alone, each unit's latest prediction).
        See :func:`~fstore_spark.ml.experimentation.evaluate_variants` for the metrics and
        tests; the sample-ratio check uses every logged prediction, labelled or not.

        Args:
            test: A started test (name or object).
            labels: Spark or pandas DataFrame, or table: join columns and ``label_column``.
            label_column: Outcome column (0/1 for classification metrics).
            join_on: Columns joining labels to predictions.
            now: Time for ``complete`` (default now).
            log_to_mlflow: Log the results to the active MLflow run (or a new one).

        Raises:
            ExperimentError: nothing was logged for the test, or bad labels.
        """
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from fstore_spark.errors import ExperimentError
        from fstore_spark.lineage.tracking import using_tracking_uri
        from fstore_spark.ml.experimentation import evaluate_variants
        from fstore_spark.offline.training import to_spark_df

        test, keys = self._ab_serving(test)
        path = self._ab_log_path(test.name)
        from fstore_spark.lakehouse.tables import is_delta_table

        if not is_delta_table(self.spark, path):
            raise ExperimentError(
                f"A/B test {test.name!r} has no logged predictions. Fix: score_ab_test or "
                "log_ab_predictions first."
            )
        log = self.spark.read.format("delta").load(path)
        log = log.where(
            (F.col("logged_at") >= F.lit(test.started_at))
            & (F.col("logged_at") < F.lit(test.ends_at))
        )
        lab = to_spark_df(self.spark, labels)
        if label_column not in lab.columns:
            raise ExperimentError(
                f"A/B test {test.name!r}: label column {label_column!r} is not in the labels; "
                f"columns: {', '.join(lab.columns)}."
            )
        on = join_on or (keys + ["event_timestamp"] if "event_timestamp" in lab.columns else keys)
        missing = [c for c in on if c not in lab.columns or c not in log.columns]
        if missing:
            raise ExperimentError(
                f"A/B test {test.name!r}: join column(s) {missing} are not in both the labels "
                f"({', '.join(lab.columns)}) and the prediction log ({', '.join(log.columns)})."
            )
        if "event_timestamp" not in on:  # one prediction per unit: its latest
            w = Window.partitionBy(*on).orderBy(F.col("event_timestamp").desc())
            scored = log.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
        else:
            scored = log
        exposures = {
            r["variant"]: int(r["n"])
            for r in log.groupBy("variant").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        joined = scored.join(lab.select(*on, F.col(label_column).alias("_label")), on, "inner")
        res = evaluate_variants(joined, test, label_column="_label", now=now, exposures=exposures)
        if log_to_mlflow:
            import mlflow

            if mlflow.active_run() is None:
                self._start_mlflow_run()  # in the configured experiment, left active
            with using_tracking_uri(self._tracking_uri()):
                res.log_to_mlflow()
        return res

    # ------------------------------------------------------------------ online store (issue 7)
    # Thin wrappers over fstore_spark.online.client / online_sync; definitions needed by reads are
    # cached in a _ServingCatalog (one registry read), dropped on apply/configure and by
    # refresh_online_cache(), so a read costs one Redis round trip and no Delta access.

    @property
    def online_store(self) -> OnlineStore:
        """The Redis online store of this project (connects lazily)."""
        if self._online is None:
            from fstore_spark.online.client import OnlineStore

            self._online = OnlineStore(self.config.online_store, self.project)
        return self._online

    def refresh_online_cache(self) -> None:
        """Re-read the definitions that online reads use (after another process applied)."""
        self._serving = None

    def _serving_catalog(self) -> _ServingCatalog:
        cat = self._serving
        if cat is None:
            cat = _ServingCatalog(self.registry.list())
            self._serving = cat
        return cat

    def configure_online_serving(
        self,
        feature_set: str | FeatureSet | FeatureSetVersion,
        update_frequency: timedelta | str = "1h",
        cache_ttl: timedelta | str | None = None,
    ) -> dict[str, Any]:
        """Store how a feature set is served online (a registry ``online_serving`` entry).

        ``update_frequency`` drives :meth:`sync_online_due` (views of the set not synced for
        that long are synced); ``cache_ttl`` sets the Redis expiry of the set's views
        (``PEXPIREAT`` = feature timestamp + cache_ttl, at most the view's ttl) and the max age
        of values read through the set.

        Example::

            store.configure_online_serving("churn_features_v1", update_frequency="1h",
                                           cache_ttl="30m")

        Raises:
            NotFoundError: no such feature set.
            DefinitionError: a duration is invalid.
        """
        from fstore_spark.core.definitions import format_duration, parse_duration

        name = _feature_set_name(feature_set)
        self.get_feature_set(name)  # raises NotFoundError listing the known sets
        settings: dict[str, Any] = {
            "feature_set": name,
            "update_frequency": format_duration(parse_duration(update_frequency)),
            "cache_ttl": None if cache_ttl is None else format_duration(parse_duration(cache_ttl)),
        }
        self._serving = None
        self.registry.apply([], settings={("online_serving", name): settings})
        return settings

    def get_online_serving(self, feature_set: str) -> dict[str, Any]:
        """The online serving settings of a feature set.

        Raises:
            NotFoundError: the feature set has no online serving configuration.
        """
        return dict(self.registry.get("online_serving", feature_set).definition)

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

        See :mod:`fstore_spark.online.sync`: incremental via the change data feed by default,
        full reload into a new namespace on the first run or with ``mode="full"``.

        Returns:
            The run's :class:`~fstore_spark.online.sync.SyncResult` (a list for all views).
        """
        from fstore_spark.lakehouse.tables import to_utc
        from fstore_spark.online.sync import sync_view

        cat = self._serving_catalog()
        names = [view] if view is not None else [v for v in cat.views if cat.views[v].online]
        results = []
        for name in names:
            fv = cat.view(name)
            results.append(
                sync_view(
                    self.spark,
                    self.config.project_root,
                    fv,
                    cat.join_keys[name],
                    self.online_store,
                    mode=mode,
                    expire_after=cat.expire_after(name),
                    now=None if now is None else to_utc(now),
                    partitions=partitions,
                )
            )
        return results[0] if view is not None else results

    def sync_online_due(self, now: datetime | None = None) -> list[SyncResult]:
        """Sync the views of configured feature sets whose last sync is ``update_frequency`` old.

        Run it from cron or a scheduler (``fstore sync --due``); views never synced are due.
        """
        from fstore_spark.online.sync import sync_view

        cat = self._serving_catalog()
        now_dt = now or datetime.now(UTC)
        out: list[SyncResult] = []
        for name, every in cat.sync_frequency().items():
            st = self.online_store.state(name)
            last = st.synced_at_us
            if last is not None and (now_dt - _from_us(last)) < every:
                continue
            out.append(
                sync_view(
                    self.spark,
                    self.config.project_root,
                    cat.view(name),
                    cat.join_keys[name],
                    self.online_store,
                    expire_after=cat.expire_after(name),
                )
            )
        return out

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

        Args:
            features: ``view:feature`` / ``view:*`` references, or a feature set name
                (seed 004: ``get_online_features(feature_set.name, entity_keys=[...])``).
            entity_rows: One dict per entity: join key -> value (or entity name -> value for
                a single-key entity, as in Feast: ``{"customer": "c1"}``).
            feature_set: A registered feature set (instead of ``features``): its name, its
                ``name@vN`` id or the object; online reads serve the set's current features.
            entity_keys: Plain key values, when every requested view has the same single
                join key.
            full_feature_names: Name columns ``view__feature``.

        Returns:
            :class:`~fstore_spark.online.client.OnlineResponse` (``.to_dict()``,
            ``.to_pandas()``). Values older than the view's ttl (or the set's ``cache_ttl``)
            are null with status ``OUTSIDE_MAX_AGE``; unknown entities ``NOT_FOUND``.

        Raises:
            NotFoundError: unknown view, feature or feature set (the message lists known ones).
            EntityRowError: an entity row lacks a join key or has a wrongly typed value.
            OnlineStoreError: Redis is unreachable (within the connect timeout).

        Example::

            store.get_online_features(
                features=["customer_transaction_features:total_spent_30d"],
                entity_rows=[{"customer": "customer_123"}],
            ).to_dict()
        """
        from fstore_spark.errors import EntityRowError

        if isinstance(features, str):
            feature_set, features = features, None
        if (features is None) == (feature_set is None):
            raise EntityRowError("give exactly one of features=[...] or feature_set=...")
        set_name = None if feature_set is None else _feature_set_name(feature_set)
        cat = self._serving_catalog()
        plan = cat.plan(self.online_store, features, set_name, full_feature_names)
        if entity_rows is None:
            if entity_keys is None:
                raise EntityRowError("give entity_rows=[{...}] (or entity_keys=[...]).")
            if len(plan.join_keys) != 1:
                raise EntityRowError(
                    f"entity_keys=[...] needs a single join key, but the request needs "
                    f"{', '.join(plan.join_keys)}. Fix: pass entity_rows=[{{...}}]."
                )
            key = plan.join_keys[0]
            entity_rows = [{key: v} for v in entity_keys]
        return self.online_store.read(plan, entity_rows)


# ---------------------------------------------------------------------- online store (issue 7)


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class _ServingCatalog:
    """Definitions online reads need, from one registry read, plus compiled read plans."""

    def __init__(self, entries: list[Any]) -> None:
        self.views: dict[str, FeatureView] = {}
        entities: dict[str, Entity] = {}
        self.feature_sets: dict[str, FeatureSet] = {}
        self.serving: dict[str, dict[str, Any]] = {}
        for e in entries:
            if e.category == "feature_view":
                self.views[e.name] = e.obj
            elif e.category == "entity":
                entities[e.name] = e.obj
            elif e.category == "feature_set":
                self.feature_sets[e.name] = e.obj
            elif e.category == "online_serving":
                self.serving[e.name] = dict(e.definition)
        self.join_keys: dict[str, list[tuple[str, str]]] = {}
        for name, v in self.views.items():
            keys: list[tuple[str, str]] = []
            for ent in v.entities:
                for k, t in entities[ent].join_keys.items():
                    if k not in [n for n, _ in keys]:
                        keys.append((k, t))
            self.join_keys[name] = keys
        self._plans: dict[tuple[Any, ...], ReadPlan] = {}

    def view(self, name: str) -> FeatureView:
        v = self.views.get(name)
        if v is None:
            known = ", ".join(sorted(self.views)) or "(none)"
            raise NotFoundError(f"no feature view named {name!r}. Known: {known}.")
        return v

    def _set_views(self, fs_name: str) -> list[str]:
        fs = self.feature_sets.get(fs_name)
        return [] if fs is None else list(dict.fromkeys(r.view for r in fs.refs))

    def expire_after(self, view: str) -> timedelta | None:
        """Redis expiry of a view: max cache_ttl of the sets serving it, at most its ttl."""
        from fstore_spark.core.definitions import parse_duration

        ttl = self.views[view].ttl
        ttls = [
            parse_duration(cfg["cache_ttl"])
            for name, cfg in self.serving.items()
            if cfg.get("cache_ttl") and view in self._set_views(name)
        ]
        if not ttls:
            return ttl
        longest = max(ttls)
        return longest if ttl is None else min(longest, ttl)

    def sync_frequency(self) -> dict[str, timedelta]:
        """View -> shortest update_frequency of the configured sets that include it."""
        from fstore_spark.core.definitions import parse_duration

        out: dict[str, timedelta] = {}
        for name, cfg in sorted(self.serving.items()):
            every = parse_duration(cfg["update_frequency"])
            for v in self._set_views(name):
                if v in self.views and self.views[v].online:
                    out[v] = min(out.get(v, every), every)
        return out

    def plan(
        self,
        online: OnlineStore,
        features: list[str] | None,
        feature_set: str | None,
        full_feature_names: bool,
    ) -> ReadPlan:
        from fstore_spark.core.definitions import FeatureRef, parse_duration, resolve_feature_refs
        from fstore_spark.errors import OnlineStoreError

        key = (tuple(features or ()), feature_set, full_feature_names)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        max_age: dict[str, timedelta | None] = {}
        if feature_set is not None:
            fs = self.feature_sets.get(feature_set)
            if fs is None:
                known = ", ".join(sorted(self.feature_sets)) or "(none)"
                raise NotFoundError(f"no feature set named {feature_set!r}. Known: {known}.")
            refs_in: list[str] = list(fs.features)
            cache_ttl = self.serving.get(feature_set, {}).get("cache_ttl")
            if cache_ttl:
                limit = parse_duration(cache_ttl)
                for v in self._set_views(feature_set):
                    ttl = self.views[v].ttl if v in self.views else None
                    max_age[v] = limit if ttl is None else min(limit, ttl)
        else:
            refs_in = list(features or [])
        for text in refs_in:
            ref = FeatureRef.parse(text) if isinstance(text, str) else text
            fv = self.views.get(ref.view)
            if fv is None:
                known = ", ".join(sorted(self.views)) or "(none)"
                raise NotFoundError(
                    f"feature reference '{ref}': no feature view {ref.view!r}. Known: {known}."
                )
            if ref.feature != "*" and ref.feature not in fv.feature_names:
                raise NotFoundError(
                    f"feature reference '{ref}': view {ref.view!r} has no feature "
                    f"{ref.feature!r}. Known: {', '.join(fv.feature_names)}."
                )
            if not fv.online:
                raise OnlineStoreError(
                    f"feature view {ref.view!r} is not served online (online=False). Fix: set "
                    "online=True, apply, and sync it."
                )
        refs = resolve_feature_refs(refs_in, self.views)
        plan = online.plan(
            refs,
            self.views,
            self.join_keys,
            entity_names={n: v.entities for n, v in self.views.items()},
            max_age=max_age or None,
            full_feature_names=full_feature_names,
        )
        self._plans[key] = plan
        return plan


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _feature_set_name(feature_set: str | FeatureSet | FeatureSetVersion) -> str:
    """The name in a feature set name, ``name@vN`` id, or feature set (version) object."""
    if not isinstance(feature_set, str):
        return feature_set.name
    from fstore_spark.offline.versions import parse_feature_set_id

    return parse_feature_set_id(feature_set)[0]


def _keys_of(view: FeatureView, entities: Mapping[str, Entity]) -> list[str]:
    """Join key columns of a view, from its entities, in declared order."""
    keys: list[str] = []
    for ent in view.entities:
        if ent not in entities:
            raise NotFoundError(f"feature view {view.name!r} refers to unknown entity {ent!r}.")
        for k in entities[ent].join_key_names:
            if k not in keys:
                keys.append(k)
    return keys


def _should_log(log_to_mlflow: bool | None) -> bool:
    """Explicit choice, else log when an MLflow run is active (no import if MLflow isn't used)."""
    if log_to_mlflow is not None:
        return log_to_mlflow
    import sys

    mlflow = sys.modules.get("mlflow")
    return mlflow is not None and mlflow.active_run() is not None
