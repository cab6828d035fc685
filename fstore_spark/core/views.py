"""Feature views: named groups of features about entities, computed from one source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar

from fstore_spark.core.aggregations import Aggregation
from fstore_spark.core.codec import Serialisable, codec, nested_list
from fstore_spark.core.durations import check_duration, format_duration
from fstore_spark.core.entities import Entity
from fstore_spark.core.fields import Field
from fstore_spark.core.mappings import NO_TAGS, check_tags
from fstore_spark.core.naming import check_bool, check_name, check_sequence, check_str
from fstore_spark.core.sources import DeltaSource, ParquetSource, Source, decode_source
from fstore_spark.errors import DefinitionError

__all__ = ["FeatureView"]

_DEFAULT_CADENCE = timedelta(days=1)


@dataclass(frozen=True, kw_only=True, init=False)
class FeatureView(Serialisable):
    """A named group of features about one or more entities, computed from one source.

    A view either *projects* source columns (``features=[Field(...)]``) or *aggregates* events
    over windows (``aggregations=[Aggregation(...)]``), never both. Rules:

    * at least one entity (given as names or :class:`Entity` objects; only names are kept);
    * feature names are unique (ignoring case, as Spark does), safe, not reserved, and differ
      from the source's timestamp and created-timestamp columns;
    * ``ttl`` — how old a value may be and still be served or joined — is a positive duration, or
      None for no limit;
    * ``cadence`` is the step between emitted aggregate rows (default one day); every window must
      be a whole multiple of it, so that windows end on emission times. It only applies to
      aggregated views.

    Checks that need other definitions (unknown entities, feature names equal to join keys, the
    source schema) are done by ``validate_objects``. Serialised with ``"kind": "feature_view"``
    and the source embedded.

    Attributes:
        name: Unique view name.
        entities: Entity names, in declared order.
        source: The source the view reads.
        ttl: Maximum age of a value at lookup time, or None for unlimited.
        features: Projected fields (empty for aggregated views).
        aggregations: Aggregations (empty for projection views).
        cadence: Emission step of aggregated views.
        tags: String labels, stored sorted by key.
        owner: Responsible person or team.
        description: Free text.
        online: Whether the view's latest values are synced to the online store.

    Example:
        >>> src = DeltaSource(name="profiles", path="/d/profiles", timestamp_column="updated_at")
        >>> view = FeatureView(name="profile", entities=["customer"], source=src, ttl="365d",
        ...                    features=[Field(name="age", dtype="int")])
        >>> view.feature_names, view.is_aggregated, view.ttl
        (('age',), False, datetime.timedelta(days=365))
        >>> view.to_dict()["ttl"], FeatureView.from_dict(view.to_dict()) == view
        ('365d', True)
    """

    kind: ClassVar[str] = "feature_view"
    """The serialisation kind."""

    name: str
    entities: tuple[str, ...]
    source: Source = field(metadata=codec(decode=decode_source))
    ttl: timedelta | None = None
    features: tuple[Field, ...] = field(default=(), metadata=codec(decode=nested_list(Field)))
    aggregations: tuple[Aggregation, ...] = field(
        default=(), metadata=codec(decode=nested_list(Aggregation))
    )
    cadence: timedelta = _DEFAULT_CADENCE
    tags: Mapping[str, str] = NO_TAGS
    owner: str = ""
    description: str = ""
    online: bool = True

    # An explicit __init__ because the constructor accepts friendlier inputs (Entity objects,
    # duration strings, lists) than the normalised attribute types it stores.
    def __init__(
        self,
        *,
        name: str,
        entities: Sequence[str | Entity],
        source: Source,
        ttl: timedelta | str | None = None,
        features: Sequence[Field] = (),
        aggregations: Sequence[Aggregation] = (),
        cadence: timedelta | str = _DEFAULT_CADENCE,
        tags: Mapping[str, str] = NO_TAGS,
        owner: str = "",
        description: str = "",
        online: bool = True,
    ) -> None:
        label = f"feature view {name!r}"
        check_name(name, owner=label)
        entity_names = _entity_names(entities, label=label)
        if not isinstance(source, DeltaSource | ParquetSource):
            raise DefinitionError(
                f"{label}: source must be a DeltaSource or ParquetSource, got {source!r}. "
                "Fix: pass a source object."
            )
        ttl_td = None if ttl is None else check_duration(ttl, owner=label, role="ttl")
        fields, aggs = _members(features, aggregations, label=label)
        cadence_td = _cadence(cadence, fields, aggs, label=label)
        _check_feature_names(fields, aggs, source, label=label)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "entities", entity_names)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "ttl", ttl_td)
        object.__setattr__(self, "features", fields)
        object.__setattr__(self, "aggregations", aggs)
        object.__setattr__(self, "cadence", cadence_td)
        object.__setattr__(self, "tags", check_tags(tags, owner=label))
        object.__setattr__(self, "owner", check_str(owner, owner=label, role="owner"))
        object.__setattr__(
            self, "description", check_str(description, owner=label, role="description")
        )
        object.__setattr__(self, "online", check_bool(online, owner=label, role="online"))

    @property
    def is_aggregated(self) -> bool:
        """True if the view aggregates events, False if it projects columns."""
        return bool(self.aggregations)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the view's features, in declared order."""
        if self.is_aggregated:
            return tuple(agg.name for agg in self.aggregations)
        return tuple(f.name for f in self.features)

    def feature_dtypes(self, source_schema: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return feature name -> dtype, in declared order.

        For projection views these are the fields' dtypes. For aggregated views the output dtypes
        are derived from the input column dtypes, taken from ``source_schema`` if given (e.g. the
        schema Spark reports), else from the source's declared schema.

        Args:
            source_schema: Column -> dtype of the source (aliases accepted), or None. Columns
                that no aggregation reads are ignored.

        Returns:
            An insertion-ordered dict of feature dtypes.

        Raises:
            DefinitionError: If a function needs an input dtype that is unknown (only count-like
                functions resolve without it) or does not suit the function.

        Example:
            >>> src = DeltaSource(name="tx", path="/d/tx", timestamp_column="ts")
            >>> view = FeatureView(name="v", entities=["customer"], source=src,
            ...                    aggregations=[Aggregation(column="amount", function="sum")])
            >>> view.feature_dtypes({"amount": "int"})
            {'sum_amount_lifetime': 'int64'}
        """
        if not self.is_aggregated:
            return {f.name: f.dtype for f in self.features}
        label = f"feature view {self.name!r}"
        schema = source_schema if source_schema is not None else self.source.schema
        # Only the aggregated columns' dtypes are normalised (by output_dtype), so a full schema
        # reported by Spark may contain other columns with any name or type.
        lowered = {column.lower(): dtype for column, dtype in (schema or {}).items()}
        result: dict[str, str] = {}
        for agg in self.aggregations:
            input_dtype = None if agg.column == "*" else lowered.get(agg.column.lower())
            try:
                result[agg.name] = agg.output_dtype(input_dtype)
            except DefinitionError as exc:
                raise DefinitionError(f"{label} (source {self.source.name!r}): {exc}") from exc
        return result


def _entity_names(entities: object, *, label: str) -> tuple[str, ...]:
    """Names of the view's entities (given as names or Entity objects), unique, at least one."""
    names: list[str] = []
    for entity in check_sequence(entities, owner=label, role="entities"):
        entity_name = entity.name if isinstance(entity, Entity) else entity
        check_name(entity_name, owner=label, role="entity")
        if entity_name in names:
            raise DefinitionError(
                f"{label}: entity {entity_name!r} is listed twice. Fix: list it once."
            )
        names.append(entity_name)
    if not names:
        raise DefinitionError(
            f"{label}: has no entities. Fix: pass entities=['customer'] (the entities whose "
            "join keys identify the rows)."
        )
    return tuple(names)


def _members(
    features: object, aggregations: object, *, label: str
) -> tuple[tuple[Field, ...], tuple[Aggregation, ...]]:
    """Check that a view has fields or aggregations, of the right types, and not both."""
    fields = check_sequence(features, owner=label, role="features")
    aggs = check_sequence(aggregations, owner=label, role="aggregations")
    for item, cls, role in [(f, Field, "features") for f in fields] + [
        (a, Aggregation, "aggregations") for a in aggs
    ]:
        if not isinstance(item, cls):
            raise DefinitionError(
                f"{label}: {role} contains {item!r}, which is not a {cls.__name__}. "
                f"Fix: pass {cls.__name__}(...) objects."
            )
    if fields and aggs:
        raise DefinitionError(
            f"{label}: has both features and aggregations; a view either projects features "
            "or aggregates events, not both. Fix: split it into two views."
        )
    if not fields and not aggs:
        raise DefinitionError(
            f"{label}: declares no features. Fix: pass features=[Field(...)] to project "
            "source columns or aggregations=[Aggregation(...)] to aggregate events."
        )
    return fields, aggs


def _cadence(
    cadence: object,
    fields: tuple[Field, ...],
    aggs: tuple[Aggregation, ...],
    *,
    label: str,
) -> timedelta:
    """Parse the cadence: only aggregated views may change it, and it must divide every window."""
    cadence_td = check_duration(cadence, owner=label, role="cadence")
    if fields and cadence_td != _DEFAULT_CADENCE:
        raise DefinitionError(
            f"{label}: cadence {format_duration(cadence_td)!r} only applies to aggregated "
            "views; a projection view serves source rows as they are. Fix: remove cadence."
        )
    for agg in aggs:
        if agg.window is not None and agg.window % cadence_td:
            raise DefinitionError(
                f"{label}: aggregation {agg.name!r} has window "
                f"{format_duration(agg.window)!r}, which is not a multiple of the cadence "
                f"{format_duration(cadence_td)!r}, so windows would not end on emission "
                "times. Fix: use a window that is a whole number of cadence steps, or a "
                "smaller cadence."
            )
    return cadence_td


def _check_feature_names(
    fields: tuple[Field, ...], aggs: tuple[Aggregation, ...], source: Source, *, label: str
) -> None:
    """Feature names are unique and differ from the source's timestamp columns, ignoring case."""
    seen: dict[str, str] = {}
    source_columns = [source.timestamp_column, source.created_timestamp_column]
    for feature_name in [f.name for f in fields] + [a.name for a in aggs]:
        # Case-insensitive, like Spark's default column resolution.
        previous = seen.get(feature_name.lower())
        if previous is not None:
            raise DefinitionError(
                f"{label}: feature name {feature_name!r} is used twice"
                + (f" (as {previous!r} and {feature_name!r})" if previous != feature_name else "")
                + ". Fix: give each feature a unique name."
            )
        seen[feature_name.lower()] = feature_name
        for column in source_columns:
            if column is not None and column.lower() == feature_name.lower():
                raise DefinitionError(
                    f"{label}: feature {feature_name!r} has the same name as the timestamp "
                    f"column {column!r} of source {source.name!r}. Fix: rename the feature "
                    f"(e.g. {feature_name + '_value'!r})."
                )
