"""Feature groups: an aggregated feature view defined from a source, an entity and aggregators.

``create_feature_group`` is the short way to an aggregated view: it looks the source and the
entity up in the registry, expands each :class:`~fstore_spark.core.WindowAggregator` over the
source's numeric columns (keys and timestamps excluded), registers the view and backfills it
over the source's whole time range, so the group has data as soon as it exists. The result
is an ordinary feature view: it is materialized, versioned and served like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from fstore_spark.core import NUMERIC_DTYPES, Entity, FeatureView, WindowAggregator
from fstore_spark.errors import DefinitionError, MaterializationError, NotFoundError
from fstore_spark.lakehouse.tables import definition_dtypes, read_source

if TYPE_CHECKING:
    from fstore_spark.core import DeltaSource, ParquetSource
    from fstore_spark.offline.materialization import MaterializationResult
    from fstore_spark.offline.service import FeatureTables
    from fstore_spark.registry.context import StoreContext

__all__ = ["FeatureGroups"]


class FeatureGroups:
    """Creates feature groups (aggregated views) in a store's registry and backfills them."""

    def __init__(self, ctx: StoreContext, tables: FeatureTables) -> None:
        self._ctx = ctx
        self._tables = tables

    def create(
        self,
        name: str,
        source_table: str,
        transformations: Sequence[WindowAggregator],
        entity: str,
        backfill: bool,
    ) -> tuple[FeatureView, MaterializationResult | None]:
        """Register the group's view (and backfill it); return the view and the run.

        Raises:
            NotFoundError: the source or entity is not registered.
            DefinitionError: no aggregator, or no numeric column to aggregate.
        """
        snap = self._ctx.latest()
        source = _lookup(snap.sources, source_table, "data source")
        ent = _lookup(snap.entities, entity, "entity")
        aggregators = [t for t in transformations if isinstance(t, WindowAggregator)]
        if not aggregators or len(aggregators) != len(transformations):
            raise DefinitionError(
                f"feature group {name!r}: transformations must be WindowAggregator objects, "
                f"got {list(transformations)!r}."
            )
        columns = self._numeric_columns(source, ent)
        aggs = [a for agg in aggregators for a in agg.expand(columns)]
        view = FeatureView(
            name=name,
            entities=[ent],
            source=source,
            aggregations=aggs,
            description=f"feature group over {source.name}",
        )
        self._ctx.apply([view])
        return view, (self._backfill(view, source) if backfill else None)

    def _numeric_columns(self, source: DeltaSource | ParquetSource, entity: Entity) -> list[str]:
        """The source's numeric columns that are neither join keys nor timestamps."""
        schema = source.schema or definition_dtypes(
            read_source(self._ctx.spark, source, self._ctx.root).schema
        )
        skip = {*entity.join_keys, source.timestamp_column, source.created_timestamp_column}
        cols = [c for c, t in schema.items() if t in NUMERIC_DTYPES and c not in skip]
        if not cols:
            raise DefinitionError(
                f"source {source.name!r} has no numeric column to aggregate (columns: "
                f"{', '.join(schema)}). Fix: name columns=[...] in the WindowAggregator."
            )
        return cols

    def _backfill(
        self, view: FeatureView, source: DeltaSource | ParquetSource
    ) -> MaterializationResult | None:
        """Backfill the view over the source's time range (nothing when the source is empty)."""
        from pyspark.sql import functions as F

        events = read_source(self._ctx.spark, source, self._ctx.root)
        ts = F.col(source.timestamp_column)
        row = events.select(F.min(ts).alias("lo"), F.max(ts).alias("hi")).first()
        if row is None or row["lo"] is None:
            return None
        start, end = _as_datetime(row["lo"]), _as_datetime(row["hi"]) + view.cadence
        return self._tables.backfill(view.name, start, end)


_T = TypeVar("_T")


def _lookup(objects: Mapping[str, _T], name: str, what: str) -> _T:
    if name not in objects:
        raise NotFoundError(
            f"{what} {name!r} is not registered; registered: {', '.join(sorted(objects)) or '-'}. "
            f"Fix: apply the {what} first."
        )
    return objects[name]


def _as_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if hasattr(value, "year"):  # a date column
        return datetime(value.year, value.month, value.day)  # type: ignore[attr-defined]
    raise MaterializationError(f"cannot use {value!r} as a time; the source timestamp is odd.")
