"""Training sets: point-in-time correct features for label rows, temporal split, export.

:func:`get_historical_features` resolves feature references against the registry, reads each
view's Delta feature table (optionally as of a Delta version or timestamp, so an old training
set can be rebuilt exactly), and attaches features with :func:`fstore_spark.offline.asof.asof_join`,
one view at a time, each with its own join keys and ttl.

Example::

    ts = store.get_historical_features(
        entity_df=labels,                       # Spark or pandas DataFrame, or a table name
        features=["customer_transaction_features:total_spent_30d",
                  "customer_demographic_features:*"],
        as_of={"customer_transaction_features": 12},   # pin a Delta version
    )
    train, test = temporal_split(ts.to_spark(), test_size=0.2, timestamp_column="event_timestamp")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.core import FeatureRef, FeatureView, resolve_feature_refs
from fstore_spark.errors import PointInTimeError
from fstore_spark.lakehouse.tables import (
    CREATED_TIMESTAMP,
    FEATURE_TIMESTAMP,
    feature_table_path,
    read_feature_table,
    table_version,
    version_as_of,
)
from fstore_spark.offline.asof import FOUND_TS, asof_join
from fstore_spark.offline.label_time import label_time_features, source_as_read

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "HistoricalFeatures",
    "ViewInput",
    "dataframe_fingerprint",
    "export_training_set",
    "get_historical_features",
    "temporal_split",
    "to_spark_df",
]

_DAY_US = 86_400 * 1_000_000
_FEW_KEYS = 50_000  # label keys up to which feature rows are semi-joined (broadcast) first


@dataclass(frozen=True)
class ViewInput:
    """One feature view as it fed a training set (what lineage records).

    Attributes:
        view: View name.
        features: Feature names taken from it, in order.
        delta_version: Delta version of its feature table that was read.
        view_version: Registry version of the view's definition.
        definition_hash: Hash of the view's definition.
        path: Feature table location.
    """

    view: str
    features: tuple[str, ...]
    delta_version: int | None
    view_version: int | None
    definition_hash: str | None
    path: str


@dataclass
class HistoricalFeatures:
    """A lazily computed training set and what it was built from.

    Attributes:
        df: The training set as a lazy Spark DataFrame (label columns, then features).
        inputs: One :class:`ViewInput` per view.
        timestamp_column: The label time column.
        feature_refs: Resolved feature references, in output order.
        feature_columns: Output column names of the features, in order.
        join_keys: Join key columns per view.
        full_feature_names: Whether columns are named ``view__feature``.
        label_time_exact: Whether aggregated views were evaluated at each label's own time.
        entity_rows: Row count of the entity (label) rows.
        entity_fingerprint: Content fingerprint of the label rows (see
            :func:`dataframe_fingerprint`), computed in the same pass as the time bounds.
        entity_columns: Columns of the label rows, in order.
        feature_set: Feature set name when built from one.
        feature_set_version: Its version.
        registry_version: Registry version the definitions were read from.
        entity_source: Where the label rows can be read again (``{"format": "delta", "path" |
            "table", "version"}``), when known.
        mlflow_run_id: The MLflow run lineage was logged to, if any.
    """

    df: DataFrame
    inputs: list[ViewInput]
    timestamp_column: str
    feature_refs: list[FeatureRef] = field(default_factory=list)
    feature_columns: list[str] = field(default_factory=list)
    join_keys: dict[str, list[str]] = field(default_factory=dict)
    full_feature_names: bool = False
    label_time_exact: bool = False
    entity_rows: int | None = None
    entity_fingerprint: str | None = None
    entity_columns: list[str] = field(default_factory=list)
    feature_set: str | None = None
    feature_set_version: int | None = None
    registry_version: int | None = None
    entity_source: dict[str, Any] | None = None
    mlflow_run_id: str | None = None

    def to_spark(self) -> DataFrame:
        """The lazy Spark DataFrame."""
        return self.df

    def to_pandas(self) -> pd.DataFrame:
        """Collect to pandas — only for small results (the driver holds it all).

        The frame is plain: Spark Connect puts its plan metrics in ``attrs``, which
        ``to_parquet`` cannot serialize, so they are dropped.
        """
        pdf = self.df.toPandas()
        pdf.attrs.clear()
        return pdf

    def to_df(self) -> pd.DataFrame:
        """Alias of :meth:`to_pandas` (Feast's name)."""
        return self.to_pandas()


def to_spark_df(spark: SparkSession, entity_df: Any) -> DataFrame:
    """Accept a Spark DataFrame, a pandas DataFrame or a table name/path as entity rows."""
    from pyspark.sql import DataFrame as SparkDF

    if isinstance(entity_df, SparkDF):
        return entity_df
    if isinstance(entity_df, str):
        if "/" in entity_df or entity_df.startswith("file:"):
            return spark.read.format("delta").load(entity_df)
        return spark.table(entity_df)
    import pandas as pd

    if isinstance(entity_df, pd.DataFrame):
        pdf = entity_df.copy()
        for c in pdf.columns:
            if pd.api.types.is_datetime64_any_dtype(pdf[c]):
                col = pdf[c]
                if getattr(col.dt, "tz", None) is not None:
                    col = col.dt.tz_convert("UTC").dt.tz_localize(None)
                pdf[c] = col.astype("datetime64[us]")  # Spark has microseconds, not ns
        return spark.createDataFrame(pdf)
    raise PointInTimeError(
        f"entity_df must be a Spark DataFrame, a pandas DataFrame or a table name; got "
        f"{type(entity_df).__name__}."
    )


def get_historical_features(
    spark: SparkSession,
    project_root: str,
    entity_df: Any,
    refs: Sequence[str | FeatureRef],
    views: Mapping[str, FeatureView],
    join_keys: Mapping[str, list[str]],
    *,
    timestamp_column: str = "event_timestamp",
    as_of: Mapping[str, int | datetime | str] | None = None,
    full_feature_names: bool = False,
    view_versions: Mapping[str, tuple[int, str]] | None = None,
    label_time_exact: bool = False,
) -> HistoricalFeatures:
    """Point-in-time correct features for every row of ``entity_df`` (see :mod:`.asof`).

    Args:
        spark: Session.
        project_root: Project root in the lakehouse.
        entity_df: Label rows: join keys of every requested view plus ``timestamp_column``.
            A view with one entity and one join key also takes the entity's name as the
            column (``customer`` for ``customer_id``), as online reads do.
        refs: ``view:feature`` / ``view:*`` references.
        views: Feature views by name (from the registry).
        join_keys: Join key columns per view name.
        timestamp_column: Label time column.
        as_of: Per view, a Delta version (int) or instant to read the feature table as of.
        full_feature_names: Name output columns ``view__feature``.
        view_versions: Per view, (registry version, definition hash), recorded in ``inputs``.
        label_time_exact: Aggregated views' windows at each label's own time, from the source
            events (:mod:`.label_time`), not as of the last cadence instant; no ttl applies.

    Returns:
        The lazy training set with its inputs. One pass over the label rows is run (time
        bounds, key counts and fingerprint); the features themselves are not computed.

    Raises:
        PointInTimeError: missing key/time columns, unknown views in ``as_of``.
        DefinitionError: unknown views or features, name collisions.
    """
    resolved = resolve_feature_refs(list(refs), views)
    labels = to_spark_df(spark, entity_df)
    pins = dict(as_of or {})
    by_view = _features_by_view(labels, resolved, timestamp_column, pins)
    key_sets = {v: list(join_keys[v]) for v in by_view}
    entity_columns = list(labels.columns)
    aliases = _entity_name_keys(labels, key_sets, views)
    for key, entity in aliases.items():
        labels = labels.withColumn(key, labels[entity])
    _check_join_keys(labels, key_sets)
    scan = _scan_labels(labels, timestamp_column, key_sets)
    out, inputs, output_names = labels, list[ViewInput](), list[str]()
    for view_name, feats in by_view.items():
        request = _ViewRequest(
            name=view_name,
            view=views[view_name],
            features=feats,
            keys=key_sets[view_name],
            pin=pins.get(view_name),
            names={f: f"{view_name}__{f}" if full_feature_names else f for f in feats},
            registered=(view_versions or {}).get(view_name),
            label_time=label_time_exact and views[view_name].is_aggregated,
        )
        out, view_input = _join_view(spark, project_root, out, request, scan, timestamp_column)
        inputs.append(view_input)
        output_names += [request.names[f] for f in feats]
    return HistoricalFeatures(
        df=out.drop(*aliases),
        inputs=inputs,
        timestamp_column=timestamp_column,
        feature_refs=resolved,
        feature_columns=output_names,
        join_keys=key_sets,
        full_feature_names=full_feature_names,
        label_time_exact=label_time_exact,
        entity_rows=scan.rows,
        entity_fingerprint=scan.fingerprint,
        entity_columns=entity_columns,
    )


@dataclass(frozen=True)
class _LabelScan:
    """What one pass over the label rows learned.

    Attributes:
        bounds: (min, max) label time, or ``None`` without labels: literal pruning bounds.
        few_keys: Per view, whether the labels hold few distinct keys (a broadcast semi join
            of the feature rows pays off).
        rows: Label row count.
        fingerprint: Content fingerprint of the label rows.
    """

    bounds: tuple[datetime, datetime] | None
    few_keys: dict[str, bool]
    rows: int
    fingerprint: str


@dataclass(frozen=True)
class _ViewRequest:
    """One view's part of a request: its features, keys, pin and output names."""

    name: str
    view: FeatureView
    features: list[str]
    keys: list[str]
    pin: int | datetime | str | None
    names: dict[str, str]  # feature -> output column
    registered: tuple[int, str] | None  # (registry version, definition hash)
    label_time: bool = False  # windows at each label's time, from the source events


def _features_by_view(
    labels: DataFrame, resolved: list[FeatureRef], ts_col: str, pins: dict[str, Any]
) -> dict[str, list[str]]:
    """Requested feature names per view, in request order, after checking time and pins."""
    if ts_col not in labels.columns:
        raise PointInTimeError(
            f"entity_df has no timestamp column {ts_col!r}; columns: "
            f"{', '.join(labels.columns)}. Fix: pass timestamp_column=..."
        )
    unknown = sorted(set(pins) - {r.view for r in resolved})
    if unknown:
        raise PointInTimeError(f"as_of names view(s) {unknown} that are not requested.")
    by_view: dict[str, list[str]] = {}
    for r in resolved:
        by_view.setdefault(r.view, []).append(r.feature)
    return by_view


def _entity_name_keys(
    labels: DataFrame, key_sets: dict[str, list[str]], views: Mapping[str, FeatureView]
) -> dict[str, str]:
    """Join keys the label rows give under their entity's name: join key -> that column.

    As online reads accept: a view with one entity and one join key (``customer`` for
    ``customer_id``), whose key column is absent and whose entity's name is a column.

    Raises:
        PointInTimeError: two entity columns would give the same join key.
    """
    aliases: dict[str, str] = {}
    for v, ks in key_sets.items():
        entities = views[v].entities
        if len(ks) != 1 or len(entities) != 1 or ks[0] in labels.columns:
            continue
        if entities[0] not in labels.columns:
            continue
        if aliases.get(ks[0], entities[0]) != entities[0]:
            raise PointInTimeError(
                f"entity_df gives join key {ks[0]!r} twice, as {aliases[ks[0]]!r} and "
                f"{entities[0]!r}. Fix: add a {ks[0]!r} column."
            )
        aliases[ks[0]] = entities[0]
    return aliases


def _check_join_keys(labels: DataFrame, key_sets: dict[str, list[str]]) -> None:
    """The label rows hold the join keys of every requested view."""
    for v, ks in key_sets.items():
        missing = [k for k in ks if k not in labels.columns]
        if missing:
            raise PointInTimeError(
                f"entity_df lacks join key(s) {missing} of feature view {v!r}; it has "
                f"{', '.join(labels.columns)}."
            )


def _scan_labels(labels: DataFrame, ts_col: str, key_sets: dict[str, list[str]]) -> _LabelScan:
    """One pass over the labels: time bounds, rough distinct keys per view, fingerprint."""
    from pyspark.sql import functions as F

    row = labels.select(
        F.min(F.col(ts_col).cast("timestamp")).alias("lo"),
        F.max(F.col(ts_col).cast("timestamp")).alias("hi"),
        *[
            F.approx_count_distinct(F.struct(*ks)).alias(f"n_{i}")
            for i, ks in enumerate(key_sets.values())
        ],
        *_fingerprint_exprs(labels),
    ).first()
    rows, fingerprint = _fingerprint_of(labels, row)
    if row is None or row["lo"] is None:
        return _LabelScan(None, {}, rows, fingerprint)
    few = {v: row[f"n_{i}"] <= _FEW_KEYS for i, v in enumerate(key_sets)}
    return _LabelScan((row["lo"], row["hi"]), few, rows, fingerprint)


def _join_view(
    spark: SparkSession,
    project_root: str,
    labels: DataFrame,
    request: _ViewRequest,
    scan: _LabelScan,
    ts_col: str,
) -> tuple[DataFrame, ViewInput]:
    """Attach one view's features to the label rows; record which table version fed them."""
    from pyspark.sql import functions as F

    if request.label_time:
        return _label_time_view(spark, project_root, labels, request, scan, ts_col)
    view, feats, names = request.view, request.features, request.names
    pin = request.pin
    path = feature_table_path(project_root, request.name)
    version = pin if isinstance(pin, int) else None
    if pin is not None and not isinstance(pin, int):  # an instant: resolved once, here
        version = version_as_of(spark, path, request.name, pin)
    table = read_feature_table(spark, project_root, view, as_of_version=version)
    delta_version = version if version is not None else table_version(spark, path)
    renamed = table.select(
        *request.keys,
        FEATURE_TIMESTAMP,
        CREATED_TIMESTAMP,
        *[F.col(f).alias(names[f]) for f in feats],
    )
    joined = asof_join(
        labels,
        renamed,
        keys=request.keys,
        label_ts=ts_col,
        feature_ts=FEATURE_TIMESTAMP,
        value_columns=[names[f] for f in feats],
        ttl=view.ttl,
        created_ts=CREATED_TIMESTAMP,
        keep_feature_ts=True,
        prune_bounds=scan.bounds,
        few_label_keys=scan.few_keys.get(request.name, False),
    )
    view_input = _view_input(request, delta_version, path)
    return _post_process(joined, view, feats, names, ts_col), view_input


def _label_time_view(
    spark: SparkSession,
    project_root: str,
    labels: DataFrame,
    request: _ViewRequest,
    scan: _LabelScan,
    ts_col: str,
) -> tuple[DataFrame, ViewInput]:
    """An aggregated view's windows at each label's time, from the source events.

    The source is read at the version the (pinned or latest) feature table version was
    computed from; ``inputs`` records that feature table version, so rebuilding with it pinned
    reads the same events.
    """
    view, feats, names = request.view, request.features, request.names
    events, delta_version = source_as_read(spark, project_root, view, request.pin)
    joined = label_time_features(
        labels, events, view, request.keys, {f: names[f] for f in feats}, ts_col, scan.bounds
    )
    path = feature_table_path(project_root, request.name)
    view_input = _view_input(request, delta_version, path)
    return _post_process(joined, view, feats, names, ts_col), view_input


def _view_input(request: _ViewRequest, delta_version: int | None, path: str) -> ViewInput:
    """What lineage records of one view's part in a training set."""
    reg = request.registered
    return ViewInput(
        view=request.name,
        features=tuple(request.features),
        delta_version=delta_version,
        view_version=None if reg is None else reg[0],
        definition_hash=None if reg is None else reg[1],
        path=path,
    )


def _fingerprint_exprs(df: DataFrame) -> list[Any]:
    """Aggregates of an order-independent content fingerprint (see :func:`dataframe_fingerprint`).

    Two 64-bit hashes per row (one salted) summed as decimals (no overflow below ~10^19 rows),
    plus the row count: a multiset digest that one pass computes in parallel.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    cols = []
    for f in sorted(df.schema.fields, key=lambda f: f.name):
        c = F.col(f"`{f.name}`")
        cols.append(F.to_json(c) if isinstance(f.dataType, MapType) else c)  # maps can't hash
    nulls = [c.isNull() for c in cols]  # xxhash64 skips nulls: tell (null, 1) from (1, null)
    wide = "decimal(38,0)"
    return [
        F.count(F.lit(1)).alias("_fp_rows"),
        F.sum(F.xxhash64(*cols).cast(wide)).alias("_fp_h1"),
        F.sum(F.xxhash64(F.lit("fstore"), *cols, *nulls).cast(wide)).alias("_fp_h2"),
    ]


def _fingerprint_of(df: DataFrame, row: Any) -> tuple[int, str]:
    import hashlib

    rows = 0 if row is None else int(row["_fp_rows"])
    h1 = 0 if row is None or row["_fp_h1"] is None else int(row["_fp_h1"])
    h2 = 0 if row is None or row["_fp_h2"] is None else int(row["_fp_h2"])
    fields = ",".join(
        f"{f.name}:{f.dataType.simpleString()}"
        for f in sorted(df.schema.fields, key=lambda f: f.name)
    )
    digest = hashlib.sha256(f"{fields}|{rows}|{h1}|{h2}".encode()).hexdigest()[:32]
    return rows, digest


def dataframe_fingerprint(df: DataFrame) -> tuple[int, str]:
    """Row count and content fingerprint of a DataFrame, independent of row and column order.

    Equal multisets of rows with the same column names and types give the same fingerprint; any
    changed value, added or dropped row changes it (up to 64-bit hash collisions, twice). One
    aggregation pass on the executors; nothing is collected but one row.

    Example:
        >>> rows, fp = dataframe_fingerprint(spark.range(3))   # doctest: +SKIP
        >>> rows
        3
    """
    return _fingerprint_of(df, df.select(*_fingerprint_exprs(df)).first())


def _post_process(
    df: DataFrame, view: FeatureView, feats: list[str], names: Mapping[str, str], ts_col: str
) -> DataFrame:
    """Recency made exact at the label time, per-feature defaults, drop the matched time."""
    from pyspark.sql import functions as F

    recency = {a.name for a in view.aggregations if a.function == "recency"}
    defaults = {f.name: f.default for f in view.features if f.default is not None}
    for f in feats:
        col = names[f]
        if f in recency:
            elapsed = (
                F.unix_micros(F.col(ts_col).cast("timestamp")) - F.unix_micros(F.col(FOUND_TS))
            ).cast("double") / F.lit(float(_DAY_US))
            df = df.withColumn(col, F.col(col) + elapsed)
        if f in defaults:
            df = df.withColumn(col, F.coalesce(F.col(col), F.lit(defaults[f])))
    return df.drop(FOUND_TS)


def temporal_split(df: Any, test_size: float, timestamp_column: str) -> tuple[Any, Any]:
    """Split by time: the latest ``test_size`` fraction of rows is the test set.

    Rows with the same timestamp always land on the same side, so no instant is in both
    (no shuffling across time). Works on a Spark DataFrame (lazy; one approximate-quantile
    pass, relative error 1e-4) or a pandas DataFrame (exact).

    Returns:
        ``(train, test)`` with every train timestamp < every test timestamp.

    Raises:
        PointInTimeError: ``test_size`` outside (0, 1) or missing column.
    """
    if not 0 < test_size < 1:
        raise PointInTimeError(f"test_size must be between 0 and 1, got {test_size}.")
    if timestamp_column not in df.columns:
        raise PointInTimeError(f"no column {timestamp_column!r} to split on.")
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        ts = pd.to_datetime(df[timestamp_column])
        if not len(ts):
            return df, df.iloc[0:0]
        cutoff = ts.sort_values().iloc[int(len(ts) * (1 - test_size))]
        return df[ts < cutoff], df[ts >= cutoff]
    from pyspark.sql import functions as F

    micros = F.unix_micros(F.col(timestamp_column).cast("timestamp")).cast("double")
    q = df.select(micros.alias("_fs_us")).approxQuantile("_fs_us", [1 - test_size], 1e-4)
    if not q:
        return df, df.limit(0)
    bound = F.timestamp_micros(F.lit(int(q[0])))
    col = F.col(timestamp_column).cast("timestamp")
    return df.where(col < bound), df.where(col >= bound)


def export_training_set(
    df: DataFrame, path: str | os.PathLike[str], format: str = "parquet"
) -> str:
    """Write a training set to ``path`` as parquet or Delta (overwrite); return the path.

    Raises:
        PointInTimeError: unsupported format.
    """
    if format not in ("parquet", "delta"):
        raise PointInTimeError(f"export format must be 'parquet' or 'delta', got {format!r}.")
    target = str(path)
    df.write.format(format).mode("overwrite").save(target)
    return target
