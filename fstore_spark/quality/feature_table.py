"""What a check of a view looks at: one Delta version of its feature table, or a time window."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fstore_spark.errors import NotFoundError
from fstore_spark.lakehouse.tables import (
    FEATURE_TIMESTAMP,
    feature_table_path,
    table_version,
    to_utc,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["resolve_version", "select_rows"]


def resolve_version(spark: SparkSession, project_root: str, view: str, version: int | None) -> int:
    """The Delta version to check: ``version`` when given (0 is a version), else the latest.

    Raises:
        NotFoundError: no version was given and the view has no feature table yet.
    """
    if version is not None:
        return int(version)
    v = table_version(spark, feature_table_path(project_root, view))
    if v is None:
        raise NotFoundError(
            f"feature view {view!r} has no feature table yet. Fix: materialize it first."
        )
    return v


def select_rows(df: DataFrame, window: tuple[datetime | str, datetime | str] | None) -> DataFrame:
    """Rows with ``start <= feature_timestamp < end`` (all rows when ``window`` is None).

    Naive bounds are taken as UTC; the filter is lazy.
    """
    from pyspark.sql import functions as F

    if window is None:
        return df
    start, end = (to_utc(x).replace(tzinfo=None) for x in window)
    ts = F.col(FEATURE_TIMESTAMP)
    return df.where((ts >= F.lit(start)) & (ts < F.lit(end)))
