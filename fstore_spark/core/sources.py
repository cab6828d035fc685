"""Sources: where the event rows of a feature view are stored (Delta tables, Parquet files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from fstore_spark.core.codec import Serialisable, codec, pairs_from_json, pairs_to_json
from fstore_spark.core.mappings import FrozenMap, check_dtype_map
from fstore_spark.core.naming import NAME_RULE, check_name, check_str, is_safe_identifier
from fstore_spark.errors import DefinitionError

__all__ = ["DeltaSource", "ParquetSource", "Source"]


def _decode_schema(value: Any, what: str, key: str) -> Any:
    """Rebuild a serialised schema; None means the schema is unknown."""
    return None if value is None else pairs_from_json(value, what)


def _schema_field() -> Any:
    """The ``schema`` field of every source: optional, serialised as ordered pairs."""
    return field(default=None, metadata=codec(encode=pairs_to_json, decode=_decode_schema))


def _check_source_columns(
    owner: str,
    timestamp_column: object,
    created_timestamp_column: object,
    partition_column: object,
    description: object,
) -> None:
    """Check the column names every kind of source declares."""
    check_name(timestamp_column, owner=owner, role="timestamp_column")
    if created_timestamp_column is not None:
        check_name(created_timestamp_column, owner=owner, role="created_timestamp_column")
        if created_timestamp_column == timestamp_column:
            raise DefinitionError(
                f"{owner}: created_timestamp_column {created_timestamp_column!r} is the same as "
                "timestamp_column. Fix: set it to the column recording when a row was written, "
                "or leave it None."
            )
    if partition_column is not None:
        check_name(partition_column, owner=owner, role="partition_column")
    check_str(description, owner=owner, role="description")


def _check_schema(
    owner: str, schema: object, timestamp_column: object, created_timestamp_column: object
) -> FrozenMap[str, str] | None:
    """Normalise a declared schema; the timestamp columns it lists must have time dtypes."""
    if schema is None:
        return None
    normalised = check_dtype_map(schema, owner=owner, role="schema")
    for column, role, allowed in (
        (timestamp_column, "timestamp_column", ("timestamp", "date")),
        (created_timestamp_column, "created_timestamp_column", ("timestamp",)),
    ):
        declared = normalised.get(column) if isinstance(column, str) else None
        if declared is not None and declared not in allowed:
            raise DefinitionError(
                f"{owner}: {role} {column!r} is declared in the schema as {declared}. "
                f"Fix: declare it as {' or '.join(allowed)}, or choose another column."
            )
    return normalised


def _validate_common(source: DeltaSource | ParquetSource, owner: str) -> None:
    """Shared checks of Delta and Parquet sources; stores the normalised schema."""
    _check_source_columns(
        owner,
        source.timestamp_column,
        source.created_timestamp_column,
        source.partition_column,
        source.description,
    )
    schema = _check_schema(
        owner, source.schema, source.timestamp_column, source.created_timestamp_column
    )
    object.__setattr__(source, "schema", schema)


@dataclass(frozen=True, kw_only=True)
class DeltaSource(Serialisable):
    """Event rows stored in a Delta table, read by path or by catalog table name.

    Rules: exactly one of ``path`` and ``table``; ``table`` is ``name``, ``schema.name`` or
    ``catalog.schema.name`` with safe identifiers; column names are safe identifiers;
    ``created_timestamp_column`` differs from ``timestamp_column``. ``schema`` is optional and may
    be partial; when it lists the timestamp columns their dtypes must be timestamps (or a date for
    the event timestamp). Aggregation columns are checked against it by ``validate_objects``.

    Serialised with ``"kind": "delta_source"``; the schema as an ordered list of
    ``{"name", "dtype"}``, or None.

    Attributes:
        name: Unique source name.
        path: Storage path of the Delta table (absolute, relative, or a URI such as ``s3://``).
        table: Catalog table name.
        timestamp_column: When each event happened; used for windows and point-in-time joins.
        created_timestamp_column: When each row was written; breaks ties between rows with the
            same event time (latest write wins) and guards against late-arriving data.
        partition_column: Column the table is partitioned by, used for pruning.
        schema: Declared column -> dtype mapping (a :class:`FrozenMap`), or None if unknown.
        description: Free text.

    Example:
        >>> DeltaSource(name="orders", table="main.sales.orders", timestamp_column="ts").kind
        'delta_source'
        >>> s = DeltaSource(name="s", path="/d/s", timestamp_column="ts")
        >>> s.to_dict()["path"], DeltaSource.from_dict(s.to_dict()) == s
        ('/d/s', True)
    """

    kind: ClassVar[str] = "delta_source"
    """The serialisation kind."""

    name: str
    path: str | None = None
    table: str | None = None
    timestamp_column: str
    created_timestamp_column: str | None = None
    partition_column: str | None = None
    schema: Mapping[str, str] | None = _schema_field()
    description: str = ""

    def __post_init__(self) -> None:
        """Validate the source and normalise its schema."""
        owner = f"delta source {self.name!r}"
        check_name(self.name, owner=owner)
        if (self.path is None) == (self.table is None):
            raise DefinitionError(
                f"{owner}: exactly one of path and table must be set, got path={self.path!r} and "
                f"table={self.table!r}. Fix: pass path='...' for a storage location or "
                "table='catalog.schema.table' for a catalog table."
            )
        if self.path is not None and (not isinstance(self.path, str) or not self.path.strip()):
            raise DefinitionError(
                f"{owner}: path {self.path!r} is not a non-empty string. Fix: pass the table's "
                "storage path, e.g. 'data/delta/orders' or 's3://bucket/orders'."
            )
        if self.table is not None:
            parts = self.table.split(".") if isinstance(self.table, str) else []
            if not 1 <= len(parts) <= 3 or not all(is_safe_identifier(p) for p in parts):
                raise DefinitionError(
                    f"{owner}: table {self.table!r} is not a valid table name. Fix: use "
                    "'table', 'schema.table' or 'catalog.schema.table', each part: "
                    f"{NAME_RULE}."
                )
        _validate_common(self, owner)


@dataclass(frozen=True, kw_only=True)
class ParquetSource(Serialisable):
    """Event rows stored as Parquet files under a path (e.g. an export from another system).

    Rules are those of :class:`DeltaSource`, with a mandatory ``path`` and no catalog table.
    Serialised with ``"kind": "parquet_source"``.

    Attributes:
        name: Unique source name.
        path: Directory or file glob of the Parquet data.
        timestamp_column: When each event happened.
        created_timestamp_column: When each row was written (tie-breaker), or None.
        partition_column: Column the files are partitioned by, or None.
        schema: Declared column -> dtype mapping (a :class:`FrozenMap`), or None if unknown.
        description: Free text.

    Example:
        >>> ParquetSource(name="clicks", path="data/raw/clicks", timestamp_column="ts").kind
        'parquet_source'
        >>> s = ParquetSource(name="s", path="/p", timestamp_column="ts", schema={"x": "int"})
        >>> ParquetSource.from_dict(s.to_dict()) == s
        True
    """

    kind: ClassVar[str] = "parquet_source"
    """The serialisation kind."""

    name: str
    path: str
    timestamp_column: str
    created_timestamp_column: str | None = None
    partition_column: str | None = None
    schema: Mapping[str, str] | None = _schema_field()
    description: str = ""

    def __post_init__(self) -> None:
        """Validate the source and normalise its schema."""
        owner = f"parquet source {self.name!r}"
        check_name(self.name, owner=owner)
        if not isinstance(self.path, str) or not self.path.strip():
            raise DefinitionError(
                f"{owner}: path {self.path!r} is not a non-empty string. Fix: pass the location "
                "of the Parquet files, e.g. 'data/raw/clicks'."
            )
        _validate_common(self, owner)


Source: TypeAlias = DeltaSource | ParquetSource
"""Any source of event rows."""


def decode_source(data: object, what: str, key: str = "source") -> Source:
    """Rebuild a serialised source of either kind, dispatching on its ``kind`` key."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == "delta_source":
        return DeltaSource.from_dict(data)  # type: ignore[arg-type]  # checked to be a Mapping
    if kind == "parquet_source":
        return ParquetSource.from_dict(data)  # type: ignore[arg-type]  # checked to be a Mapping
    raise DefinitionError(
        f"{what}: source has kind {kind!r}. Fix: serialise the source with its to_dict(), which "
        "sets kind to 'delta_source' or 'parquet_source'."
    )
