"""Delta I/O for the offline store: reading sources, feature tables, their history and versions.

Layout under the project root (``<lakehouse.root>/<project>``):

* ``features/<view>`` — the feature table of a view, keyed by (join keys, ``feature_timestamp``),
  with the feature columns and ``created_timestamp``. Every materialization run is one Delta
  commit whose ``userMetadata`` is a JSON document (run id, view name and version, definition
  hash, source version, range), so Delta history *is* the feature version history.
* ``_tiles/<view>`` — partial aggregates per (entity, tile) reused by later runs.

A source ``path`` that is relative is relative to the project root; a ``table`` is read from the
catalog. With a catalog schema configured, the store's own tables are catalog tables named after
these paths (:mod:`fstore_spark.lakehouse.names`): every function here resolves its location.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.core import DeltaSource, FeatureView, ParquetSource
from fstore_spark.errors import MaterializationError, NotFoundError
from fstore_spark.lakehouse.names import Location, resolve

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "FEATURE_TIMESTAMP",
    "CREATED_TIMESTAMP",
    "feature_table_path",
    "tile_table_path",
    "source_location",
    "read_source",
    "source_version",
    "read_feature_table",
    "read_delta",
    "save_delta",
    "version_as_of",
    "is_delta_table",
    "latest_version",
    "table_properties",
    "recent_commits",
    "table_history",
    "table_version",
    "table_version_at",
    "last_run_metadata",
    "table_ref",
    "definition_dtypes",
    "source_table_schema",
    "to_utc",
]

FEATURE_TIMESTAMP = "feature_timestamp"
CREATED_TIMESTAMP = "created_timestamp"


def to_utc(ts: datetime | str) -> datetime:
    """Parse/normalise an instant to an aware UTC datetime (naive input is taken as UTC)."""
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def feature_table_path(project_root: str, view: str | FeatureView) -> str:
    """Location of a view's feature table."""
    name = view if isinstance(view, str) else view.name
    return f"{project_root}/features/{name}"


def tile_table_path(project_root: str, view: str | FeatureView) -> str:
    """Location of a view's tile (partial aggregate) table."""
    name = view if isinstance(view, str) else view.name
    return f"{project_root}/_tiles/{name}"


def source_location(source: DeltaSource | ParquetSource, project_root: str) -> str:
    """Absolute path (or table name) of a source; relative paths hang off the project root."""
    if isinstance(source, DeltaSource) and source.table is not None:
        return source.table
    path = source.path
    assert path is not None
    if "://" in path or path.startswith("/"):
        return path
    return f"{project_root}/{path}"


def read_source(
    spark: SparkSession,
    source: DeltaSource | ParquetSource,
    project_root: str,
    *,
    as_of_version: int | None = None,
) -> DataFrame:
    """Read a source as a lazy DataFrame (optionally a Delta source as of a version).

    Raises:
        MaterializationError: the source does not exist or lacks its timestamp column.
    """
    loc = source_location(source, project_root)
    try:
        df = _read_raw(spark, source, loc, as_of_version)
    except Exception as exc:
        if "TIMESTAMP(NANOS" in str(exc):
            raise MaterializationError(
                f"source {source.name!r}: {loc} stores timestamps in nanoseconds, which Spark "
                "cannot read. Fix: write it with microseconds, e.g. pandas "
                "df.to_parquet(path, coerce_timestamps='us', allow_truncated_timestamps=True)."
            ) from exc
        if _is_missing(exc):
            raise MaterializationError(
                f"source {source.name!r}: cannot read {loc} ({type(exc).__name__}). Fix: check "
                "the source path/table, or write the source data first."
            ) from exc
        raise
    if source.timestamp_column not in df.columns:
        raise MaterializationError(
            f"source {source.name!r} at {loc} has no timestamp column "
            f"{source.timestamp_column!r}; columns: {', '.join(df.columns)}."
        )
    return df


def _read_raw(
    spark: SparkSession, source: DeltaSource | ParquetSource, loc: str, version: int | None
) -> DataFrame:
    """The source's table as it is (lazy), optionally a Delta source as of a version."""
    if isinstance(source, ParquetSource):
        return spark.read.parquet(loc)
    return read_delta(spark, loc, version=version, by_name=source.table is not None)


def _is_missing(exc: BaseException) -> bool:
    """Whether reading a source failed because its table or files are not there (or unreadable)."""
    return "AnalysisException" in type(exc).__name__ or "PATH_NOT_FOUND" in str(exc)


def source_table_schema(
    spark: SparkSession, source: DeltaSource | ParquetSource, project_root: str
) -> StructType | None:
    """The schema of a source's table as it is (no data read), or None when it does not exist."""
    loc = source_location(source, project_root)
    if isinstance(source, DeltaSource) and not is_delta_table(
        spark, loc, by_name=source.table is not None
    ):
        return None
    try:
        return _read_raw(spark, source, loc, None).schema
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise


def source_version(
    spark: SparkSession, source: DeltaSource | ParquetSource, project_root: str
) -> int | None:
    """Current Delta version of a Delta source (``None`` for parquet)."""
    if isinstance(source, ParquetSource):
        return None
    loc = source_location(source, project_root)
    return latest_version(spark, loc, by_name=source.table is not None)


def _resolved(location: str, by_name: bool) -> Location:
    """A catalog name given as such, or a location resolved (a store table may be a name)."""
    return Location(location, True) if by_name else resolve(location)


def table_ref(location: str, *, by_name: bool = False) -> str:
    """The SQL name of a Delta table: a catalog name as given, a path as ``delta.`<path>```.

    Every table operation below is Spark SQL on this name, so it runs the same on a classic
    session and on Spark Connect (where Delta's ``DeltaTable`` API needs a server plugin).
    """
    loc = _resolved(location, by_name)
    if loc.by_name:
        return loc.ref
    return "delta.`" + loc.ref.replace("`", "``") + "`"


def read_delta(
    spark: SparkSession,
    location: str,
    *,
    version: int | None = None,
    options: Mapping[str, Any] | None = None,
    by_name: bool = False,
) -> DataFrame:
    """A Delta table as a lazy DataFrame (by path or catalog name), optionally as of a version.

    ``options``: further Delta read options (``timestampAsOf``, ``readChangeFeed``...).
    """
    loc = _resolved(location, by_name)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    for key, value in (options or {}).items():
        reader = reader.option(key, value)
    return reader.table(loc.ref) if loc.by_name else reader.load(loc.ref)


def save_delta(writer: DataFrameWriter, location: str) -> None:
    """Run a Delta ``DataFrameWriter`` (mode and options set) into a path or catalog table.

    A catalog table is created by the first write (a managed table of the catalog schema).
    """
    loc = resolve(location)
    if loc.by_name:
        writer.saveAsTable(loc.ref)
    else:
        writer.save(loc.ref)


def _history(
    spark: SparkSession, location: str, by_name: bool, limit: int | None = None
) -> list[Any]:
    """``DESCRIBE HISTORY`` rows, newest first (``[]`` when there is no Delta table there)."""
    query = f"DESCRIBE HISTORY {table_ref(location, by_name=by_name)}"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    try:
        frame = spark.sql(query)
        cols = ["version", "timestamp", "operation", "userMetadata", "operationMetrics"]
        return frame.select(*cols).collect()  # bounded: a table's commit count, or ``limit``
    except Exception as exc:
        if _is_missing_table(exc):
            return []
        raise


def _is_missing_table(exc: BaseException) -> bool:
    """Whether Spark refused a table operation because no (Delta) table is there."""
    text = f"{type(exc).__name__} {exc}"
    return "AnalysisException" in text and any(
        marker in text
        for marker in (
            "DELTA_MISSING_DELTA_TABLE",
            "DELTA_TABLE_NOT_FOUND",
            "DELTA_PATH_DOES_NOT_EXIST",
            "DELTA_TABLE_ONLY_OPERATION",
            "PATH_NOT_FOUND",
            "TABLE_OR_VIEW_NOT_FOUND",
            "is not a Delta table",
            "doesn't exist",
            "does not exist",
        )
    )


def is_delta_table(spark: SparkSession, location: str, *, by_name: bool = False) -> bool:
    """Whether a Delta table exists at ``location`` (a path, or a catalog name).

    A path is resolved as a Delta relation (its schema, from the log: tens of milliseconds,
    where ``DESCRIBE HISTORY`` runs a job); a catalog name must also have Delta history.
    """
    loc = _resolved(location, by_name)
    if loc.by_name:
        return bool(_history(spark, loc.ref, True, limit=1))
    try:
        read_delta(spark, loc.ref).schema  # noqa: B018 - Connect resolves lazily
    except Exception as exc:
        if _is_missing_table(exc):
            return False
        raise
    return True


def latest_version(spark: SparkSession, location: str, *, by_name: bool = False) -> int | None:
    """Current Delta version of a table (``None`` when there is no Delta table there)."""
    loc = _resolved(location, by_name)
    if not loc.by_name and not is_delta_table(spark, loc.ref):
        return None
    rows = _history(spark, loc.ref, loc.by_name, limit=1)  # a name: [] when no table is there
    return int(rows[0]["version"]) if rows else None


def table_properties(
    spark: SparkSession, location: str, *, by_name: bool = False
) -> dict[str, str]:
    """The table properties of a Delta table (``delta.enableChangeDataFeed``...)."""
    frame = spark.sql(f"DESCRIBE DETAIL {table_ref(location, by_name=by_name)}")
    row = frame.select("properties").first()
    return dict(row["properties"] or {}) if row is not None else {}


def recent_commits(spark: SparkSession, path: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` commits of a table, newest first, as Delta's history rows.

    Each has ``version``, ``operation``, ``userMetadata`` (raw) and ``operationMetrics``.
    """
    out = [
        {
            "version": int(r["version"]),
            "operation": r["operation"],
            "userMetadata": r["userMetadata"],
            "operationMetrics": dict(r["operationMetrics"] or {}),
        }
        for r in _history(spark, path, False, limit)
    ]
    return sorted(out, key=lambda c: -c["version"])


def read_feature_table(
    spark: SparkSession,
    project_root: str,
    view: str | FeatureView,
    *,
    as_of_version: int | None = None,
    as_of_timestamp: datetime | str | None = None,
) -> DataFrame:
    """Read a view's feature table, now or as of a Delta version / timestamp (time travel).

    Raises:
        NotFoundError: the view was never materialized, or the version does not exist.
    """
    path = feature_table_path(project_root, view)
    name = view if isinstance(view, str) else view.name
    if not is_delta_table(spark, path):
        raise _no_feature_table(name, path)
    if as_of_version is None and as_of_timestamp is not None:
        as_of_version = version_as_of(spark, path, name, as_of_timestamp)
    try:
        return read_delta(spark, path, version=as_of_version)
    except Exception as exc:
        if "VersionNotFound" in str(exc) or "DELTA_" in str(exc):
            raise NotFoundError(
                f"feature view {name!r}: cannot read version "
                f"{as_of_version if as_of_version is not None else as_of_timestamp}: {exc}"
            ) from exc
        raise


def table_history(spark: SparkSession, path: str) -> list[dict[str, Any]]:
    """Delta history of a table, newest first, with ``userMetadata`` decoded when JSON."""
    if not is_delta_table(spark, path):
        return []
    out = []
    for r in _history(spark, path, False):
        meta: Any = r["userMetadata"]
        try:
            meta = json.loads(meta) if meta else None
        except ValueError:
            pass
        out.append(
            {
                "version": int(r["version"]),
                "timestamp": r["timestamp"],
                "operation": r["operation"],
                "metadata": meta,
                "metrics": dict(r["operationMetrics"] or {}),
            }
        )
    return sorted(out, key=lambda h: -h["version"])


def table_version(spark: SparkSession, path: str) -> int | None:
    """Current Delta version of the table at ``path`` (``None`` if there is no table)."""
    return latest_version(spark, path)


def _no_feature_table(name: str, path: str) -> NotFoundError:
    return NotFoundError(
        f"feature view {name!r} has no feature table at {path}. Fix: materialize it first "
        "(store.materialize / `fstore materialize`)."
    )


def version_as_of(spark: SparkSession, path: str, name: str, at: datetime | str) -> int:
    """The version a read as of ``at`` sees: the latest committed at or before it.

    An instant after the last commit reads the latest version (Delta itself refuses it).

    Raises:
        NotFoundError: ``at`` is before the table's first commit (its time is in the message),
            or the view was never materialized.
    """
    version = table_version_at(spark, path, at)
    if version is not None:
        return version
    history = table_history(spark, path)  # only to name the first commit's time
    if not history:
        raise _no_feature_table(name, path)
    first = history[-1]["timestamp"]
    when = "an unknown time" if first is None else to_utc(first).isoformat()
    raise NotFoundError(
        f"feature view {name!r} has no version as of {to_utc(at).isoformat()}: its first "
        f"version was committed at {when}. "
        "Fix: ask for an instant at or after it, or a version number."
    )


def table_version_at(spark: SparkSession, path: str, at: datetime | str) -> int | None:
    """The Delta version a read as of instant ``at`` sees (``None``: no table or none yet)."""
    when = to_utc(at)
    for h in table_history(spark, path):  # newest first
        ts = h["timestamp"]
        if ts is not None and to_utc(ts) <= when:
            return int(h["version"])
    return None


def last_run_metadata(
    spark: SparkSession, path: str, history: list[dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """Commit metadata of the newest fstore run recorded in a table's history.

    ``history``: the table's :func:`table_history` when the caller already has it.
    """
    for h in history if history is not None else table_history(spark, path):
        meta = h["metadata"]
        if isinstance(meta, dict) and meta.get("fstore_run"):
            return {**meta, "table_version": h["version"]}
    return None


def definition_dtypes(schema: StructType) -> dict[str, str]:
    """Definition dtypes (``int64``, ``float64``...) of a table's columns, from its Spark schema.

    Columns of types a definition cannot declare (arrays, maps, binary...) are left out.
    """
    from pyspark.sql import types as Ty

    mapping = {
        Ty.StringType: "string",
        Ty.IntegerType: "int32",
        Ty.ShortType: "int32",
        Ty.ByteType: "int32",
        Ty.LongType: "int64",
        Ty.FloatType: "float32",
        Ty.DoubleType: "float64",
        Ty.DecimalType: "float64",
        Ty.BooleanType: "bool",
        Ty.TimestampType: "timestamp",
        Ty.TimestampNTZType: "timestamp",
        Ty.DateType: "date",
    }
    out = {}
    for f in schema.fields:
        for cls, name in mapping.items():
            if isinstance(f.dataType, cls):
                out[f.name] = name
                break
    return out
