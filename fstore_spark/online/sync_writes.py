"""The Spark side of a sync: the latest row per entity as one SQL statement, written by executors.

:func:`writer_input` turns rows of a feature table into what :func:`~fstore_spark.online.writer.
write_batches` takes -- per entity its full Redis key, an op, the latest row's timestamp, expiry
and values -- and :func:`run_writers` runs the writers on the executors with ``mapInArrow``
(works under Spark Connect too), collecting one small row of counts per partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import OnlineStoreError
from fstore_spark.lakehouse.tables import CREATED_TIMESTAMP, FEATURE_TIMESTAMP
from fstore_spark.online.writer import (
    EXP_COL,
    FUTURE_COL,
    KEY_COL,
    OP_COL,
    TS_COL,
    WRITER_OUTPUT_SCHEMA,
    WriterSpec,
    write_batches,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "WriteCounts",
    "WriteTarget",
    "parallelism",
    "run_writers",
    "spark_dtypes",
    "writer_input",
]

_SPARK_TO_DTYPE = {
    "StringType": "string",
    "IntegerType": "int32",
    "ShortType": "int32",
    "ByteType": "int32",
    "LongType": "int64",
    "FloatType": "float32",
    "DoubleType": "float64",
    "BooleanType": "bool",
    "TimestampType": "timestamp",
    "TimestampNTZType": "timestamp",
    "DateType": "date",
}


def spark_dtypes(df: DataFrame, columns: list[str]) -> dict[str, str]:
    """Definition dtypes of DataFrame columns (what a read decodes them as).

    Raises:
        OnlineStoreError: a column's Spark type cannot be served online.
    """
    by_name = {f.name: type(f.dataType).__name__ for f in df.schema.fields}
    out = {}
    for c in columns:
        kind = by_name.get(c)
        if kind not in _SPARK_TO_DTYPE:
            raise OnlineStoreError(
                f"column {c!r} of Spark type {kind} cannot be served online; supported: "
                f"{', '.join(sorted(set(_SPARK_TO_DTYPE.values())))}."
            )
        out[c] = _SPARK_TO_DTYPE[str(kind)]
    return out


def parallelism(spark: SparkSession) -> int:
    """Writer tasks by default: the cluster's default parallelism (at least 2)."""
    try:
        return max(int(spark.sparkContext.defaultParallelism), 2)
    except Exception:  # Spark Connect has no SparkContext
        return max(int(spark.conf.get("spark.sql.shuffle.partitions") or 2), 2)


# ------------------------------------------------------------------------------------ SQL


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _ts_sql(us: int) -> str:
    return f"timestamp_micros({int(us)})"


def _key_part_sql(name: str, dtype: str, escape: bool) -> str:
    """One join key as text, as :func:`~fstore_spark.online.layout.encode_entity_key` has it."""
    c = _ident(name)
    if dtype == "timestamp":
        return f"CAST(unix_micros({c}) AS STRING)"
    if dtype == "string":
        if escape:  # \ -> \\ first, then | -> \|
            c = f"replace({c}, chr(92), concat(chr(92), chr(92)))"
            c = f"replace({c}, chr(124), concat(chr(92), chr(124)))"
        return c
    return f"CAST({c} AS STRING)"  # ints in decimal, booleans true/false, dates yyyy-MM-dd


def _key_sql(prefix: bytes, keys: tuple[tuple[str, str], ...]) -> str:
    """The full Redis key as a Spark SQL expression (same bytes as ``encode_entity_key``).

    The prefix is a binary literal and the escape characters are built with ``chr``, so the
    text means the same whatever the session's string-literal settings.
    """
    if len(keys) == 1:
        ent = _key_part_sql(keys[0][0], keys[0][1], False)
    else:
        ent = "concat_ws(chr(124), " + ", ".join(_key_part_sql(k, t, True) for k, t in keys) + ")"
    return f"concat(X'{prefix.hex()}', CAST({ent} AS BINARY))"


@dataclass(frozen=True)
class WriteTarget:
    """Where and how a view's latest rows are written.

    Attributes:
        prefix: Key prefix of the namespace written (``P:proj:view:<ns>:``).
        keys: ``(join key, dtype)`` in declared order.
        features: Feature columns, in declared order.
        ttl: The view's ttl: rows older than ``as_of - ttl`` are not current (None: no limit).
        expire_after: Redis expiry after each value's feature timestamp (None: none).
    """

    prefix: bytes
    keys: tuple[tuple[str, str], ...]
    features: tuple[str, ...]
    ttl: timedelta | None
    expire_after: timedelta | None

    @property
    def key_list(self) -> str:
        """The join key columns as a SQL list."""
        return ", ".join(_ident(k) for k, _ in self.keys)


def _candidates_sql(t: WriteTarget, as_of_us: int, where: str | None, with_also_keys: bool) -> str:
    """The rows that may be an entity's latest, as SQL over ``{rows}``.

    Within the ttl, keys not null, ``where`` holds; plus, with ``with_also_keys``, one
    all-null row per entity of ``{also_keys}``.
    """
    ts, created = _ident(FEATURE_TIMESTAMP), _ident(CREATED_TIMESTAMP)
    conds = [f"{_ident(k)} IS NOT NULL" for k, _ in t.keys]
    if t.ttl is not None:
        conds.insert(0, f"{ts} >= {_ts_sql(as_of_us - t.ttl // timedelta(microseconds=1))}")
    if where:
        conds.insert(0, f"({where})")
    cols = ", ".join([t.key_list, ts, created, *(_ident(f) for f in t.features)])
    src = f"SELECT {cols} FROM {{rows}} WHERE {' AND '.join(conds)}"
    if with_also_keys:
        nulls = ", ".join(
            f"NULL AS {_ident(c)}" for c in [FEATURE_TIMESTAMP, CREATED_TIMESTAMP, *t.features]
        )
        src += f" UNION ALL SELECT {t.key_list}, {nulls} FROM {{also_keys}}"
    return src


def _latest_sql(t: WriteTarget, src: str, as_of_us: int, partitions: int | None) -> str:
    """Per entity of ``src``, its latest row and its next future timestamp, as SQL.

    The latest row at ``as_of`` comes as struct ``_fs_r`` (null: none), the smallest feature
    timestamp after ``as_of`` as micros. ``max`` over a struct picks the latest
    feature_timestamp, ties to the latest created_timestamp, then to the values themselves:
    one aggregation, no window.
    """
    ts, created = _ident(FEATURE_TIMESTAMP), _ident(CREATED_TIMESTAMP)
    hint = "COALESCE(1)" if partitions is None else f"REPARTITION({int(partitions)}, {t.key_list})"
    as_of = _ts_sql(as_of_us)
    fields = ", ".join(
        [f"{ts} AS _t", f"{created} AS _c", *(f"{_ident(f)} AS {_ident(f)}" for f in t.features)]
    )
    return (
        f"SELECT {t.key_list}, max(CASE WHEN {ts} <= {as_of} THEN struct({fields}) END) AS _fs_r, "
        f"min(CASE WHEN {ts} > {as_of} THEN unix_micros({ts}) END) AS {FUTURE_COL} "
        f"FROM (SELECT /*+ {hint} */ * FROM ({src})) GROUP BY {t.key_list}"
    )


def _expiry_sql(expire_after: timedelta | None) -> str:
    """Epoch millis at which Redis drops the entity's hash (0: never)."""
    if expire_after is None:
        return "CAST(0 AS BIGINT)"
    ms = expire_after // timedelta(milliseconds=1)
    return (
        "CAST(CASE WHEN _fs_r IS NOT NULL THEN "
        f"floor(unix_micros(_fs_r._t) / 1000) + {int(ms)} END AS BIGINT)"
    )


def writer_input(
    spark: SparkSession,
    rows: DataFrame,
    target: WriteTarget,
    as_of_us: int,
    partitions: int | None,
    op_when_absent: str | None,
    also_keys: DataFrame | None = None,
    where: str | None = None,
) -> DataFrame:
    """The writer's input: key, op (U upsert / D delete / null nothing), ts, expiry, features.

    Per entity: the latest row with ``as_of - ttl <= ts <= as_of`` (null when there is none:
    op ``op_when_absent``) and the smallest feature timestamp after ``as_of`` (``_fs_fut``,
    micros). ``also_keys`` adds entities (key columns only) that must come out even without
    any row. ``where`` is an extra SQL condition on ``rows``. The entities are hash-partitioned
    into ``partitions`` writer tasks explicitly: left to adaptive execution, a narrow table
    would be coalesced into one task and written by one connection. ``partitions=None`` (small
    inputs) puts everything in one task instead: a single partition already groups every
    entity, so there is no shuffle at all.

    One SQL statement, lazy (no collect): built as text, it costs the driver one call into the
    JVM instead of one per column expression, which is most of the planning time of a small
    incremental run.
    """
    src = _candidates_sql(target, as_of_us, where, also_keys is not None)
    latest = _latest_sql(target, src, as_of_us, partitions)
    absent = f"'{op_when_absent}'" if op_when_absent else "CAST(NULL AS STRING)"
    query = (
        f"SELECT {_key_sql(target.prefix, target.keys)} AS {KEY_COL}, "
        f"CASE WHEN _fs_r IS NOT NULL THEN 'U' ELSE {absent} END AS {OP_COL}, "
        f"unix_micros(_fs_r._t) AS {TS_COL}, {_expiry_sql(target.expire_after)} AS {EXP_COL}, "
        f"{FUTURE_COL}"
        + "".join(f", _fs_r.{_ident(f)} AS {_ident(f)}" for f in target.features)
        + f" FROM ({latest})"
    )
    frames: dict[str, Any] = {"rows": rows}
    if also_keys is not None:
        frames["also_keys"] = also_keys
    return spark.sql(query, **frames)


# ------------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class WriteCounts:
    """What the writers did, summed over partitions.

    Attributes:
        written: Entity hashes written.
        skipped: Writes the compare-and-set script refused, and deletes of absent keys.
        deleted: Entity hashes deleted.
        future_us: Smallest per-partition "future" feature timestamp reported, or None.
    """

    written: int
    skipped: int
    deleted: int
    future_us: int | None


def run_writers(df: DataFrame, spec: WriterSpec) -> WriteCounts:
    """Write ``df`` (from :func:`writer_input`) on the executors; sum the per-partition counts.

    Collects one small row per writer task (bounded by the number of partitions): summed here
    rather than by one more shuffle stage.
    """

    def write(batches: Any) -> Any:
        return write_batches(batches, spec)

    out = df.mapInArrow(write, WRITER_OUTPUT_SCHEMA).collect()
    futures = [int(r["future_us"]) for r in out if r["future_us"] is not None]
    return WriteCounts(
        written=sum(int(r["written"] or 0) for r in out),
        skipped=sum(int(r["skipped"] or 0) for r in out),
        deleted=sum(int(r["deleted"] or 0) for r in out),
        future_us=min(futures) if futures else None,
    )
