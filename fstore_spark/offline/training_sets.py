"""Training sets from registered definitions: label rows in, point-in-time features out.

This is where the registry meets the as-of join: the definitions are read once (now, or as of
the registry version a feature set version or an MLflow run recorded), each view's join keys
come from the registry snapshot, and label rows given as a Delta table are pinned to the
table's current version so that lineage can read them again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.core import resolve_feature_refs
from fstore_spark.core.feature_set_versions import FeatureSetVersion
from fstore_spark.errors import ConfigError, FstoreError, PointInTimeError
from fstore_spark.lakehouse.tables import (
    FEATURE_TIMESTAMP,
    latest_version,
    read_feature_table,
    read_source,
    to_utc,
)
from fstore_spark.offline.training import (
    HistoricalFeatures,
    get_historical_features,
    to_spark_df,
)
from fstore_spark.registry.context import StoreContext

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["TrainingSets"]

EXPORT_FORMATS = ("parquet", "delta", "orc", "csv", "json")


class TrainingSets:
    """Builds point-in-time training sets and exports feature set versions."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def build(
        self,
        entity_df: Any,
        refs: list[str],
        *,
        timestamp_column: str,
        as_of: Mapping[str, int | datetime | str] | None,
        full_feature_names: bool,
        feature_set: tuple[str, int | None] | None = None,
        registry_version: int | None = None,
        label_time_exact: bool = False,
    ) -> tuple[HistoricalFeatures, DataFrame]:
        """A training set from definitions as of ``registry_version`` (default: now).

        ``label_time_exact``: aggregated views' windows at each label's own time (see
        :func:`~fstore_spark.offline.training.get_historical_features`).

        Returns:
            The training set, and the label rows as a Spark DataFrame (for lineage).
        """
        snap = self._ctx.snapshot(registry_version)
        wanted = {r.split(":", 1)[0] for r in refs}
        self._ctx.check_read(wanted, snap if registry_version is None else None)
        labels, entity_source = self._entity_rows(entity_df)
        labels = to_spark_df(self._ctx.spark, labels)  # once: pandas is converted one time
        ts = get_historical_features(
            self._ctx.spark,
            self._ctx.root,
            labels,
            refs,
            snap.views,
            snap.keys_by_view(wanted),
            timestamp_column=timestamp_column,
            as_of=as_of,
            full_feature_names=full_feature_names,
            view_versions=snap.view_versions(),
            label_time_exact=label_time_exact,
        )
        ts.registry_version = snap.version
        ts.entity_source = entity_source
        if feature_set is not None:
            ts.feature_set, ts.feature_set_version = feature_set
        return ts, labels

    def _entity_rows(self, entity_df: Any) -> tuple[Any, dict[str, Any] | None]:
        """Label rows; a Delta table given by name or path is pinned to its current version."""
        if not isinstance(entity_df, str):
            return entity_df, None
        spark = self._ctx.spark
        is_path = "/" in entity_df or entity_df.startswith("file:")
        version = latest_version(spark, entity_df, by_name=not is_path)
        if version is None:  # not a Delta table (a view, a parquet table): read it as is
            return entity_df, None
        reader = spark.read.format("delta").option("versionAsOf", version)
        labels = reader.load(entity_df) if is_path else reader.table(entity_df)
        key = "path" if is_path else "table"
        return labels, {"format": "delta", key: entity_df, "version": version}

    def label_window(
        self,
        entity_df: Any,
        timestamp_column: str,
        start: datetime | str | None,
        end: datetime | str | None,
    ) -> DataFrame:
        """Label rows with ``start <= timestamp < end`` (either bound optional), lazily."""
        from pyspark.sql import functions as F

        if start is not None and end is not None and to_utc(end) < to_utc(start):
            raise PointInTimeError(
                f"end_date {to_utc(end).isoformat()} is before start_date "
                f"{to_utc(start).isoformat()}: the window would hold no label. Fix: swap them."
            )
        labels = to_spark_df(self._ctx.spark, entity_df)
        ts = F.col(timestamp_column).cast("timestamp")
        if start is not None:
            labels = labels.where(ts >= F.lit(to_utc(start).replace(tzinfo=None)))
        if end is not None:
            labels = labels.where(ts < F.lit(to_utc(end).replace(tzinfo=None)))
        return labels

    def read_view(
        self,
        view: str,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """A view's feature table, now or as of a Delta version / instant (lazy)."""
        self._ctx.check_read([view])
        return read_feature_table(
            self._ctx.spark,
            self._ctx.root,
            view,
            as_of_version=as_of_version,
            as_of_timestamp=as_of_timestamp,
        )

    def export(self, fsv: FeatureSetVersion, format: str, path: str | None) -> str:
        """Write a feature set version's rows, one table per view, and a JSON manifest.

        Raises:
            ConfigError: an unknown format, no path, or a path Spark cannot write.
        """
        if format not in EXPORT_FORMATS:
            raise ConfigError(
                f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}."
            )
        if path is None:
            raise ConfigError("export_feature_set needs a target path.")
        try:
            return self._write_export(fsv, format, str(path).rstrip("/"))
        except FstoreError:
            raise
        except Exception as exc:  # Spark cannot write there: say where and what to check
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ConfigError(
                f"cannot export feature set {fsv.id!r} to {path}: {type(exc).__name__}: "
                f"{first}. Fix: give a path Spark can write (for object stores, the "
                "filesystem's connector and credentials must be configured in Spark)."
            ) from exc

    def feature_set_rows(self, fsv: FeatureSetVersion) -> dict[str, DataFrame]:
        """Per view of a feature set version: its rows at the pinned Delta version (lazy).

        Each frame holds the view's join keys, ``feature_timestamp`` and the set's features
        from that view, as the definitions were when the version was created.
        """
        snap = self._ctx.snapshot(fsv.registry_version)
        by_view = self.feature_set_features(fsv)
        return {
            view: self.read_view(view, as_of_version=fsv.view_versions.get(view)).select(
                *snap.join_keys(view), FEATURE_TIMESTAMP, *feats
            )
            for view, feats in by_view.items()
        }

    def validation_tables(self, fsv: FeatureSetVersion, columns: list[str]) -> dict[str, DataFrame]:
        """A feature set's rows per view, plus ``source:<name>`` for columns only a source has.

        A rule on a raw column (``purchase_amount``) that the set's features are computed
        from is checked on the current rows of the sources of the set's views.
        """
        tables = self.feature_set_rows(fsv)
        held = {c for df in tables.values() for c in df.columns}
        missing = set(columns) - held
        if missing:
            snap = self._ctx.snapshot(fsv.registry_version)
            for view in list(tables):
                src = snap.view(view).source
                rows = read_source(self._ctx.spark, src, self._ctx.root)
                if missing & set(rows.columns):
                    tables[f"source:{src.name}"] = rows
        return tables

    def requested(
        self, features: list[str] | None, feature_set: str | None
    ) -> tuple[list[str], str | None]:
        """The references a training set asks for, and the set they come from (if any).

        Raises:
            PointInTimeError: neither given, or ``features`` outside the named set.
        """
        if feature_set is None:
            if features is None:
                raise PointInTimeError("give features=[...] or feature_set=... (a set's name).")
            return list(features), None
        snap = self._ctx.latest()
        if feature_set not in snap.feature_sets:
            self._ctx.registry.get("feature_set", feature_set)  # NotFoundError, known sets
        fs = snap.feature_sets[feature_set]
        if features is None:
            return list(fs.features), feature_set
        allowed = {(r.view, r.feature) for r in resolve_feature_refs(list(fs.features), snap.views)}
        outside = [
            f"{r.view}:{r.feature}"
            for r in resolve_feature_refs(list(features), snap.views)
            if (r.view, r.feature) not in allowed
        ]
        if outside:
            raise PointInTimeError(
                f"feature(s) {outside} are not in feature set {feature_set!r}. Fix: ask for "
                "the set's features, or leave feature_set out."
            )
        return list(features), feature_set

    def feature_set_tables(self, fsv: FeatureSetVersion) -> dict[str, tuple[DataFrame, list[str]]]:
        """Per view of a feature set version: its pinned rows and the set's features from it."""
        features = self.feature_set_features(fsv)
        return {v: (rows, features[v]) for v, rows in self.feature_set_rows(fsv).items()}

    def feature_set_features(self, fsv: FeatureSetVersion) -> dict[str, list[str]]:
        """Per view of a feature set version: the set's features from it, in the set's order."""
        snap = self._ctx.snapshot(fsv.registry_version)
        by_view: dict[str, list[str]] = {}
        for r in resolve_feature_refs(list(fsv.features), snap.views):
            by_view.setdefault(r.view, []).append(r.feature)
        return by_view

    def _write_export(self, fsv: FeatureSetVersion, format: str, target: str) -> str:
        """Write each view's rows and the manifest under ``target``; return it."""
        frames = self.feature_set_rows(fsv)
        for view, rows in frames.items():
            writer = rows.write.format(format)
            if format == "csv":
                writer = writer.option("header", "true")
            writer.mode("overwrite").save(f"{target}/{view}")
        manifest = json.dumps({**fsv.to_dict(), "format": format, "views": list(frames)})
        self._ctx.spark.createDataFrame([(manifest,)], "value string").coalesce(1).write.mode(
            "overwrite"
        ).text(f"{target}/_feature_set")
        return target
