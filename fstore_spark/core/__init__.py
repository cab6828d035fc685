"""Definitions as plain data (no pyspark): entities, sources, aggregations, views, feature sets.

Definitions describe *what* to compute, never *how*. Every class is a keyword-only, frozen
dataclass that is validated when constructed, compares by value, is hashable, and round-trips
through a JSON-serialisable dict (``X.from_dict(x.to_dict()) == x``) so that the registry can
store, diff and version it. :func:`definition_hash` fingerprints a definition;
:func:`validate_objects` checks a whole set of definitions against each other. Aggregation row
filters are written in a small, safe filter language (:func:`parse_filter`).

Modules, bottom up:

* ``naming``, ``dtypes``, ``durations``, ``mappings``: names, dtypes, durations and immutable
  mappings, with the checks every definition shares;
* ``filter_nodes``, ``filter_parser``, ``filter_text``: the filter language (tree, parser,
  canonical text);
* ``codec``: the dict form of definitions, derived from their dataclass fields;
* ``entities``, ``fields``, ``sources``, ``aggregations``, ``views``, ``feature_sets``: the
  definitions themselves;
* ``serialization`` (rebuild by kind, hash) and ``validation`` (cross-object checks).

Rules shared by all definitions:

* Names of objects, columns and features match ``^[A-Za-z_][A-Za-z0-9_]{0,127}$``.
* Feature and join-key names may not be ``feature_timestamp``, ``created_timestamp`` or start
  with ``_fs_``: the store adds those columns itself (compared case-insensitively, like Spark).
* Dtypes are one of :data:`DTYPES`; aliases such as ``"double"`` are normalised.
* Durations are ``"<positive integer><s|m|h|d|w>"`` strings or positive whole-second timedeltas.

Example:
    The definitions of the demo project (``feature_repo``):

    >>> from fstore_spark.core import (
    ...     Aggregation, DeltaSource, Entity, FeatureView, Field, validate_objects)
    >>> customer = Entity(name="customer", join_keys={"customer_id": "string"})
    >>> transactions = DeltaSource(
    ...     name="customer_transactions",
    ...     path="data/delta/customer_transactions",
    ...     timestamp_column="event_timestamp",
    ...     created_timestamp_column="created_at",
    ...     schema={"customer_id": "string", "amount": "float64"},
    ... )
    >>> transaction_features = FeatureView(
    ...     name="customer_transaction_features",
    ...     entities=[customer],
    ...     source=transactions,
    ...     ttl="90d",
    ...     aggregations=[
    ...         Aggregation(column="amount", function="sum", window="30d",
    ...                     name="total_spent_30d"),
    ...         Aggregation(column="*", function="count", window="30d",
    ...                     name="transaction_count_30d"),
    ...         Aggregation(column="amount", function="mean", window="30d",
    ...                     name="avg_transaction_value_30d"),
    ...         Aggregation(column="*", function="recency", name="last_transaction_days_ago"),
    ...     ],
    ... )
    >>> demographics = FeatureView(
    ...     name="customer_demographic_features",
    ...     entities=["customer"],
    ...     source=DeltaSource(name="customer_profiles", path="data/delta/customer_profiles",
    ...                        timestamp_column="updated_at"),
    ...     ttl="365d",
    ...     features=[Field(name="age", dtype="int64"), Field(name="city", dtype="string"),
    ...               Field(name="signup_date", dtype="date")],
    ... )
    >>> validate_objects([customer, transactions, transaction_features, demographics])
    >>> for name, dtype in transaction_features.feature_dtypes().items():
    ...     print(name, dtype)
    total_spent_30d float64
    transaction_count_30d int64
    avg_transaction_value_30d float64
    last_transaction_days_ago float64
    >>> FeatureView.from_dict(transaction_features.to_dict()) == transaction_features
    True
"""

from fstore_spark.core.aggregations import AGG_FUNCTIONS, Aggregation
from fstore_spark.core.dtypes import DTYPES, NUMERIC_DTYPES, ValueType, normalize_dtype
from fstore_spark.core.durations import format_duration, parse_duration
from fstore_spark.core.entities import Entity
from fstore_spark.core.feast_names import Feature, FileSource
from fstore_spark.core.feature_sets import FeatureRef, FeatureSet, resolve_feature_refs
from fstore_spark.core.fields import Field, JSONScalar
from fstore_spark.core.filter_nodes import (
    COMPARISON_OPS,
    KEYWORDS,
    And,
    Cmp,
    Col,
    FilterExpr,
    In,
    IsNull,
    Lit,
    LiteralValue,
    Not,
    Or,
    columns,
)
from fstore_spark.core.filter_parser import parse_filter
from fstore_spark.core.filter_text import to_text
from fstore_spark.core.groups import WindowAggregator
from fstore_spark.core.mappings import FrozenMap
from fstore_spark.core.naming import (
    RESERVED_COLUMNS,
    RESERVED_PREFIX,
    SAFE_IDENTIFIER_PATTERN,
    is_reserved_column,
    is_safe_identifier,
)
from fstore_spark.core.serialization import Definition, definition_hash, from_dict
from fstore_spark.core.sources import DeltaSource, ParquetSource, Source
from fstore_spark.core.validation import validate_objects
from fstore_spark.core.views import FeatureView

__all__ = [
    "Feature",
    "FileSource",
    "ValueType",
    "WindowAggregator",
    "AGG_FUNCTIONS",
    "COMPARISON_OPS",
    "DTYPES",
    "KEYWORDS",
    "NUMERIC_DTYPES",
    "RESERVED_COLUMNS",
    "RESERVED_PREFIX",
    "SAFE_IDENTIFIER_PATTERN",
    "Aggregation",
    "And",
    "Cmp",
    "Col",
    "Definition",
    "DeltaSource",
    "Entity",
    "FeatureRef",
    "FeatureSet",
    "FeatureView",
    "Field",
    "FilterExpr",
    "FrozenMap",
    "In",
    "IsNull",
    "JSONScalar",
    "Lit",
    "LiteralValue",
    "Not",
    "Or",
    "ParquetSource",
    "Source",
    "columns",
    "definition_hash",
    "format_duration",
    "from_dict",
    "is_reserved_column",
    "is_safe_identifier",
    "normalize_dtype",
    "parse_duration",
    "parse_filter",
    "resolve_feature_refs",
    "to_text",
    "validate_objects",
]
