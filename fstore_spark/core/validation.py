"""Cross-object validation: checks that need a whole set of definitions at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fstore_spark.core.entities import Entity
from fstore_spark.core.feature_sets import FeatureSet, problems_message, resolve_with_problems
from fstore_spark.core.filter_nodes import columns
from fstore_spark.core.sources import DeltaSource, ParquetSource, Source
from fstore_spark.core.views import FeatureView
from fstore_spark.errors import DefinitionError

__all__ = ["validate_objects"]


@dataclass
class _Catalog:
    """The definitions being validated, grouped by kind (first definition of a name wins)."""

    entities: dict[str, Entity] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    views: dict[str, FeatureView] = field(default_factory=dict)
    view_list: list[FeatureView] = field(default_factory=list)
    feature_sets: dict[str, FeatureSet] = field(default_factory=dict)
    set_list: list[FeatureSet] = field(default_factory=list)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)


def _kind_label(obj: Entity | FeatureView | FeatureSet) -> str:
    if isinstance(obj, Entity):
        return "entity"
    return "feature view" if isinstance(obj, FeatureView) else "feature set"


def _catalog(objects: Iterable[object], problems: list[str]) -> _Catalog:
    """Group the definitions by kind, counting names; anything else is a problem."""
    catalog = _Catalog()
    for obj in objects:
        if isinstance(obj, DeltaSource | ParquetSource):
            catalog.sources.append(obj)
            continue
        if isinstance(obj, Entity):
            catalog.entities.setdefault(obj.name, obj)
        elif isinstance(obj, FeatureView):
            catalog.views.setdefault(obj.name, obj)
            catalog.view_list.append(obj)
        elif isinstance(obj, FeatureSet):
            catalog.feature_sets.setdefault(obj.name, obj)
            catalog.set_list.append(obj)
        else:
            problems.append(
                f"{obj!r} is not a definition. Fix: pass only Entity, DeltaSource, ParquetSource, "
                "FeatureView and FeatureSet objects."
            )
            continue
        key = (_kind_label(obj), obj.name)
        catalog.counts[key] = catalog.counts.get(key, 0) + 1
    return catalog


def _check_unique_names(catalog: _Catalog, problems: list[str]) -> None:
    """Names are unique within a kind; views and feature sets share one namespace."""
    for (kind, name), count in catalog.counts.items():
        if count > 1:
            problems.append(
                f"{kind} {name!r}: declared {count} times. Fix: give each {kind} a unique name, "
                "or remove the duplicates."
            )
    for name in catalog.views:
        if name in catalog.feature_sets:
            problems.append(
                f"feature view {name!r} and feature set {name!r} share a name. Fix: rename one; "
                "views and feature sets are looked up by name in the same namespace."
            )


def _source_diff(first: Source, second: Source, labels: tuple[str, str]) -> str:
    """Describe how two same-named sources differ, e.g. "path: declared '/a', view's '/b'"."""
    a, b = first.to_dict(), second.to_dict()
    differences = [
        f"{key}: {labels[0]} {a.get(key)!r}, {labels[1]} {b.get(key)!r}"
        for key in a | b
        if a.get(key) != b.get(key)
    ]
    return "; ".join(differences)


def _check_sources(sources: list[Source], views: list[FeatureView], problems: list[str]) -> None:
    """A source name denotes one definition, whether declared on its own or embedded in views."""
    declared: dict[str, Source] = {}
    for source in sources:
        previous = declared.setdefault(source.name, source)
        if previous != source:
            diff = _source_diff(previous, source, ("first", "second"))
            problems.append(
                f"source {source.name!r}: two different sources have this name ({diff}). "
                "Fix: give each source its own name, or keep a single definition."
            )
    embedded: dict[str, tuple[Source, str]] = {}
    for view in views:
        source = view.source
        declared_source = declared.get(source.name)
        if declared_source is not None:
            if declared_source != source:
                diff = _source_diff(declared_source, source, ("declared", "view's"))
                problems.append(
                    f"feature view {view.name!r}: its source {source.name!r} differs from the "
                    f"declared source of that name ({diff}). Fix: pass the declared source "
                    "object, or give the view's source its own name."
                )
            continue
        first_source, first_view = embedded.setdefault(source.name, (source, view.name))
        if first_source != source:
            diff = _source_diff(first_source, source, (repr(first_view), repr(view.name)))
            problems.append(
                f"source {source.name!r}: feature views {first_view!r} and {view.name!r} use two "
                f"different sources with this name ({diff}). Fix: give each source its own "
                "name, or use the same source object in both views."
            )


def _check_view(view: FeatureView, entities: Mapping[str, Entity], problems: list[str]) -> None:
    """A view's entities exist, and none of their join keys is also a feature name."""
    label = f"feature view {view.name!r}"
    known = ", ".join(sorted(entities)) or "(none declared)"
    features = {name.lower(): name for name in view.feature_names}
    for entity_name in view.entities:
        entity = entities.get(entity_name)
        if entity is None:
            problems.append(
                f"{label}: references unknown entity {entity_name!r}. Fix: declare "
                f"Entity(name={entity_name!r}, join_keys=[...]) or use one of the known "
                f"entities: {known}."
            )
            continue
        for key in entity.join_key_names:
            feature = features.get(key.lower())
            if feature is not None:
                problems.append(
                    f"{label}: feature {feature!r} has the same name as join key {key!r} of "
                    f"entity {entity_name!r}. Fix: rename the feature (e.g. "
                    f"{feature + '_value'!r})."
                )


def _check_view_schema(view: FeatureView, problems: list[str]) -> None:
    """Aggregated and filtered columns exist in the declared source schema and suit the function."""
    label = f"feature view {view.name!r}"
    schema = view.source.schema
    if not view.is_aggregated or schema is None:
        return
    lowered = {column.lower(): dtype for column, dtype in schema.items()}
    declared_columns = ", ".join(schema)
    for agg in view.aggregations:
        referenced = [] if agg.column == "*" else [agg.column]
        expr = agg.filter_expr
        referenced += [] if expr is None else [c for c in columns(expr) if c not in referenced]
        missing = [column for column in referenced if column.lower() not in lowered]
        for column in missing:
            role = "aggregates column" if column == agg.column else "filters on column"
            problems.append(
                f"{label}: aggregation {agg.name!r} {role} {column!r}, which is not in the "
                f"declared schema of source {view.source.name!r} (columns: {declared_columns}). "
                "Fix: add the column to the source schema, or use an existing column."
            )
        if agg.column != "*" and agg.column.lower() in lowered:
            try:
                agg.check_input_dtype(lowered[agg.column.lower()])
            except DefinitionError as exc:
                problems.append(f"{label}: {exc}")


def validate_objects(
    objects: Iterable[Entity | DeltaSource | ParquetSource | FeatureView | FeatureSet],
) -> None:
    """Check a complete set of definitions against each other.

    Each definition is already valid on its own (checked at construction); this function checks
    what needs several of them:

    * names are unique within a kind (sources of both kinds share one namespace), and no feature
      view shares its name with a feature set;
    * a source name denotes one definition: a view's source must equal the declared source of
      that name (a source only embedded in views counts as declared);
    * views reference declared entities, and no feature is named like one of their join keys;
    * when a source declares a schema, aggregation and filter columns exist in it and suit the
      aggregation function;
    * feature sets reference existing views and features, with no feature name coming from two
      views.

    Args:
        objects: The definitions, e.g. everything a project declares.

    Raises:
        DefinitionError: One message listing every problem found, one per line, each naming the
            object and the fix.

    Example:
        >>> from fstore_spark.core import Field
        >>> src = DeltaSource(name="p", path="/d/p", timestamp_column="ts")
        >>> v = FeatureView(name="profile", entities=["customer"], source=src,
        ...                 features=[Field(name="age", dtype="int")])
        >>> validate_objects([v])
        Traceback (most recent call last):
        ...
        fstore_spark.errors.DefinitionError: invalid definitions: 1 problem(s):
          - feature view 'profile': references unknown entity 'customer'. Fix: declare \
Entity(name='customer', join_keys=[...]) or use one of the known entities: (none declared).
    """
    problems: list[str] = []
    catalog = _catalog(objects, problems)
    _check_unique_names(catalog, problems)
    _check_sources(catalog.sources, catalog.view_list, problems)
    for view in catalog.view_list:
        _check_view(view, catalog.entities, problems)
        _check_view_schema(view, problems)
    for feature_set in catalog.set_list:
        _, set_problems = resolve_with_problems(feature_set.refs, catalog.views)
        problems.extend(f"feature set {feature_set.name!r}: {p}" for p in set_problems)
    if problems:
        raise DefinitionError(problems_message("invalid definitions", problems))
