"""Feature versions: Delta history of feature tables, diffs between versions, feature set snapshots.

Delta time travel *is* feature versioning: every materialization run is one commit of the view's
feature table, and the commit's ``userMetadata`` says which run, definition and source version
produced it (see :mod:`fstore_spark.offline.materialization`). This module reads that history
(:func:`list_versions`), compares two versions row by row (:func:`diff_versions`), and pins
feature sets to the Delta versions that were current when a feature set version was created
(:class:`FeatureSetVersion`), so a training set built from ``fraud_v1@v3`` reads exactly what
``fraud_v1@v3`` meant.

Example::

    store.list_versions("customer_features")[0]["version"]       # newest first
    d = store.diff_versions("customer_features", 3, 4)
    d.added, d.changed, d.removed, d.changed_by_feature          # counts
    d.rows("changed").show()                                     # lazy DataFrame of the rows
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import NotFoundError
from fstore_spark.lakehouse.tables import (
    CREATED_TIMESTAMP,
    FEATURE_TIMESTAMP,
    feature_table_path,
    read_feature_table,
    table_history,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "VersionDiff",
    "classified_rows",
    "count_kinds",
    "diff_versions",
    "list_versions",
    "rows_written",
]

_KIND = "_fs_kind"


def list_versions(spark: SparkSession, project_root: str, view: str) -> list[dict[str, Any]]:
    """Every Delta version of a view's feature table, newest first, with our run metadata.

    Returns:
        Dicts with ``version``, ``timestamp`` (UTC), ``operation``, ``fstore_run`` (whether an
        fstore materialization wrote it), ``run_id``, ``mode`` (``backfill``/``incremental``),
        ``start``/``end`` (the range written), ``view_version`` (registry version of the
        definition), ``definition_hash``, ``source_version``, ``rows`` (rows written) and
        ``by`` (the identity that ran it).

    Raises:
        NotFoundError: the view was never materialized.
    """
    path = feature_table_path(project_root, view)
    hist = table_history(spark, path)
    if not hist:
        raise NotFoundError(
            f"feature view {view!r} has no feature table at {path}. Fix: materialize it first."
        )
    out = []
    for h in hist:
        meta = h["metadata"] if isinstance(h["metadata"], dict) else {}
        metrics = h["metrics"]
        rows = meta.get("rows")
        if rows is None and "numOutputRows" in metrics:
            rows = rows_written(metrics)
        out.append(
            {
                "version": h["version"],
                "timestamp": h["timestamp"],
                "operation": h["operation"],
                "fstore_run": bool(meta.get("fstore_run")),
                "run_id": meta.get("run_id"),
                "mode": meta.get("mode"),
                "start": meta.get("start"),
                "end": meta.get("end"),
                "view_version": meta.get("view_version"),
                "definition_hash": meta.get("definition_hash"),
                "source_version": meta.get("source_version"),
                "rows": rows,
                "by": meta.get("by"),
            }
        )
    return out


def rows_written(metrics: dict[str, Any]) -> int:
    """Rows a commit wrote, from its metrics, without the unchanged rows Delta copied.

    A ``replaceWhere`` rewrites each file it touches: the rows outside the range are copied
    into new files and counted in ``numOutputRows`` too (``numCopiedRows``).
    """
    out = int(metrics.get("numOutputRows", 0) or 0)
    return out - int(metrics.get("numCopiedRows", 0) or 0)


@dataclass
class VersionDiff:
    """What changed in a feature table between two Delta versions.

    Rows are matched on (join keys, ``feature_timestamp``); a row is *changed* when any feature
    value differs (nulls compare equal to nulls; ``created_timestamp`` is ignored since every run
    restamps it).

    Attributes:
        view: View name.
        from_version: The older version compared.
        to_version: The newer version compared.
        added: Rows only in ``to_version``.
        removed: Rows only in ``from_version``.
        changed: Rows in both with at least one different feature value.
        unchanged: Rows in both with equal values.
        changed_by_feature: Per feature, how many matched rows have a different value.
    """

    view: str
    from_version: int
    to_version: int
    added: int
    removed: int
    changed: int
    unchanged: int
    changed_by_feature: dict[str, int]
    _joined: DataFrame = field(repr=False)

    def rows(self, kind: str = "changed") -> DataFrame:
        """The differing rows as a lazy DataFrame.

        Args:
            kind: ``added``, ``removed`` or ``changed``.

        Returns:
            Keys, ``feature_timestamp`` and for each feature ``<feature>__old`` and
            ``<feature>__new``.
        """
        from pyspark.sql import functions as F

        if kind not in ("added", "removed", "changed"):
            raise ValueError(f"kind must be 'added', 'removed' or 'changed', got {kind!r}.")
        return self._joined.where(F.col(_KIND) == kind).drop(_KIND)

    def to_dict(self) -> dict[str, Any]:
        """The counts as a plain dict."""
        return {
            "view": self.view,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "changed_by_feature": dict(self.changed_by_feature),
        }


def diff_versions(
    spark: SparkSession,
    project_root: str,
    view: str,
    join_keys: Sequence[str],
    v1: int,
    v2: int,
) -> VersionDiff:
    """Compare two Delta versions of a view's feature table (one full outer join, one pass).

    Args:
        spark: Session.
        project_root: Project root.
        view: View name.
        join_keys: The view's join key columns.
        v1: Older version.
        v2: Newer version.

    Returns:
        Counts of added / removed / changed rows, per-feature change counts, and the rows.

    Raises:
        NotFoundError: either version does not exist.
    """
    old = read_feature_table(spark, project_root, view, as_of_version=v1)
    new = read_feature_table(spark, project_root, view, as_of_version=v2)
    keys = [*join_keys, FEATURE_TIMESTAMP]
    skip = set(keys) | {CREATED_TIMESTAMP}
    feats = [c for c in new.columns if c not in skip and c in old.columns]
    classified = classified_rows(old, new, keys, feats)
    counts, per_feature = count_kinds(classified, feats)
    return VersionDiff(
        view=view,
        from_version=v1,
        to_version=v2,
        added=counts["added"],
        removed=counts["removed"],
        changed=counts["changed"],
        unchanged=counts["unchanged"],
        changed_by_feature=per_feature,
        _joined=classified,
    )


_KINDS = ("added", "removed", "changed", "unchanged")


def _differs(f: str) -> Column:
    """Whether a matched row's old and new values of feature ``f`` differ (nulls are equal)."""
    from pyspark.sql import functions as F

    return ~F.col(f"{f}__old").eqNullSafe(F.col(f"{f}__new"))


def classified_rows(old: DataFrame, new: DataFrame, keys: list[str], feats: list[str]) -> DataFrame:
    """Both versions' rows side by side (full outer join on the keys), each with its kind."""
    from pyspark.sql import functions as F

    # each side's keys under its own names: both sides may come from one DataFrame (the
    # deletes and inserts of one change feed), where same-named columns would be ambiguous
    a = old.select(
        *[F.col(k).alias(f"{k}__l") for k in keys],
        *[F.col(f).alias(f"{f}__old") for f in feats],
        F.lit(True).alias("_l"),
    )
    b = new.select(
        *[F.col(k).alias(f"{k}__r") for k in keys],
        *[F.col(f).alias(f"{f}__new") for f in feats],
        F.lit(True).alias("_r"),
    )
    # null-safe key equality: a null join key is a key like any other in a feature table
    cond = [F.col(f"{k}__l").eqNullSafe(F.col(f"{k}__r")) for k in keys]
    joined = a.join(b, on=cond, how="full_outer").select(
        *[F.coalesce(F.col(f"{k}__l"), F.col(f"{k}__r")).alias(k) for k in keys],
        *[F.col(f"{f}__old") for f in feats],
        *[F.col(f"{f}__new") for f in feats],
        F.col("_l"),
        F.col("_r"),
    )
    any_diff = F.lit(False)
    for f in feats:
        any_diff = any_diff | _differs(f)
    kind = (
        F.when(F.col("_l").isNull(), "added")
        .when(F.col("_r").isNull(), "removed")
        .when(any_diff, "changed")
        .otherwise("unchanged")
    )
    return joined.withColumn(_KIND, kind).drop("_l", "_r")


def count_kinds(classified: DataFrame, feats: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per kind, and per feature the matched rows whose value changed (one pass)."""
    from pyspark.sql import functions as F

    both = F.col(_KIND).isin("changed", "unchanged")
    row = classified.select(
        *[F.sum((F.col(_KIND) == k).cast("long")).alias(k) for k in _KINDS],
        *[F.sum((both & _differs(f)).cast("long")).alias(f"f{i}") for i, f in enumerate(feats)],
    ).first()
    counts = {k: int((row[k] if row is not None else 0) or 0) for k in _KINDS}
    per_feature = {
        f: int((row[f"f{i}"] if row is not None else 0) or 0) for i, f in enumerate(feats)
    }
    return counts, per_feature
