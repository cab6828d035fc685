"""Unit tests for the definitions in fstore_spark.core (pure Python, no Spark)."""

from __future__ import annotations

import ast
import dataclasses
import doctest
import hashlib
import importlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fstore_spark.core import (
    AGG_FUNCTIONS,
    DTYPES,
    KEYWORDS,
    NUMERIC_DTYPES,
    RESERVED_COLUMNS,
    Aggregation,
    DeltaSource,
    Entity,
    FeatureRef,
    FeatureSet,
    FeatureView,
    Field,
    FrozenMap,
    ParquetSource,
    definition_hash,
    format_duration,
    from_dict,
    is_reserved_column,
    normalize_dtype,
    parse_duration,
    resolve_feature_refs,
    validate_objects,
)
from fstore_spark.errors import DefinitionError

# ---------------------------------------------------------------------------------------------
# Builders: the definitions of the demo project
# ---------------------------------------------------------------------------------------------


def customer() -> Entity:
    return Entity(name="customer", join_keys={"customer_id": "string"}, description="A customer")


def transactions(**overrides: Any) -> DeltaSource:
    values: dict[str, Any] = {
        "name": "customer_transactions",
        "path": "data/delta/customer_transactions",
        "timestamp_column": "event_timestamp",
        "created_timestamp_column": "created_at",
        "schema": {"customer_id": "string", "amount": "float64"},
    }
    values.update(overrides)
    return DeltaSource(**values)


def transaction_view(**overrides: Any) -> FeatureView:
    values: dict[str, Any] = {
        "name": "customer_transaction_features",
        "entities": [customer()],
        "source": transactions(),
        "ttl": "90d",
        "aggregations": [
            Aggregation(column="amount", function="sum", window="30d", name="total_spent_30d"),
            Aggregation(column="*", function="count", window="30d", name="transaction_count_30d"),
            Aggregation(
                column="amount", function="mean", window="30d", name="avg_transaction_value_30d"
            ),
            Aggregation(column="*", function="recency", name="last_transaction_days_ago"),
        ],
        "tags": {"team": "risk"},
        "owner": "risk-team",
    }
    values.update(overrides)
    return FeatureView(**values)


def profiles() -> ParquetSource:
    return ParquetSource(
        name="customer_profiles",
        path="data/raw/customer_profiles",
        timestamp_column="updated_at",
        schema={"customer_id": "string", "age": "int64", "city": "string"},
    )


def demographic_view(**overrides: Any) -> FeatureView:
    values: dict[str, Any] = {
        "name": "customer_demographic_features",
        "entities": ["customer"],
        "source": profiles(),
        "ttl": "365d",
        "features": [
            Field(name="age", dtype="int64", default=-1),
            Field(name="city", dtype="string"),
            Field(name="signup_date", dtype="date"),
        ],
    }
    values.update(overrides)
    return FeatureView(**values)


def churn_set(**overrides: Any) -> FeatureSet:
    values: dict[str, Any] = {
        "name": "churn_model_features",
        "features": ["customer_transaction_features:*", "customer_demographic_features:age"],
        "metadata": {"model": "churn", "version": 3, "threshold": 0.5, "active": True},
    }
    values.update(overrides)
    return FeatureSet(**values)


def seed_objects() -> list[Any]:
    return [
        customer(),
        transactions(),
        profiles(),
        transaction_view(),
        demographic_view(),
        churn_set(),
    ]


# ---------------------------------------------------------------------------------------------
# Round trips, dispatch and hashing
# ---------------------------------------------------------------------------------------------

ALL_TOP_LEVEL = [
    pytest.param(customer, id="entity"),
    pytest.param(
        lambda: Entity(name="line", join_keys={"order_id": "long", "no": "int"}),
        id="entity-composite",
    ),
    pytest.param(transactions, id="delta-path"),
    pytest.param(
        lambda: DeltaSource(
            name="orders", table="main.sales.orders", timestamp_column="ts", partition_column="day"
        ),
        id="delta-table",
    ),
    pytest.param(profiles, id="parquet"),
    pytest.param(transaction_view, id="aggregated-view"),
    pytest.param(demographic_view, id="projection-view"),
    pytest.param(
        lambda: transaction_view(ttl=None, online=False, cadence="12h"), id="view-options"
    ),
    pytest.param(churn_set, id="feature-set"),
]


@pytest.mark.parametrize("build", ALL_TOP_LEVEL)
def test_round_trip_and_dispatch(build: Any) -> None:
    obj = build()
    data = obj.to_dict()
    assert data["kind"] == obj.kind
    assert type(obj).from_dict(data) == obj
    assert from_dict(data) == obj
    # JSON-serialisable, and still equal after a trip through JSON text.
    assert from_dict(json.loads(json.dumps(data))) == obj
    assert definition_hash(from_dict(data)) == definition_hash(obj)


@pytest.mark.parametrize(
    "obj",
    [
        Field(name="age", dtype="int", description="Age in years", default=0),
        Field(name="signup", dtype="timestamp", default="2020-01-01T00:00:00"),
        Aggregation(column="amount", function="SUM", window="4w", filter="status = 'ok'"),
        Aggregation(column="*", function="recency"),
    ],
)
def test_nested_objects_round_trip(obj: Field | Aggregation) -> None:
    assert type(obj).from_dict(obj.to_dict()) == obj
    assert type(obj).from_dict(json.loads(json.dumps(obj.to_dict()))) == obj


def test_to_dict_is_deterministic_and_ordered() -> None:
    view = transaction_view()
    assert view.to_dict() == transaction_view().to_dict()
    assert list(view.to_dict()) == [
        "kind",
        "name",
        "entities",
        "source",
        "ttl",
        "features",
        "aggregations",
        "cadence",
        "tags",
        "owner",
        "description",
        "online",
    ]
    assert view.to_dict()["ttl"] == "90d"
    assert view.to_dict()["aggregations"][0]["window"] == "30d"
    assert view.to_dict()["source"]["schema"] == [
        {"name": "customer_id", "dtype": "string"},
        {"name": "amount", "dtype": "float64"},
    ]


def test_hash_is_stable() -> None:
    entity = Entity(name="customer", join_keys=["customer_id"])
    # Pinned: the canonical JSON (sorted keys, no whitespace) must not change silently, since
    # stored hashes in the registry and in MLflow runs would stop matching.
    canonical = (
        '{"description":"","join_keys":[{"dtype":"string","name":"customer_id"}],'
        '"kind":"entity","name":"customer","tags":{}}'
    )
    assert definition_hash(entity) == hashlib.sha256(canonical.encode()).hexdigest()
    assert definition_hash(transaction_view()) == definition_hash(transaction_view())
    assert len(definition_hash(entity)) == 64


def test_hash_changes_with_any_change() -> None:
    base = definition_hash(transaction_view())
    variants = [
        transaction_view(description="changed"),
        transaction_view(ttl="91d"),
        transaction_view(online=False),
        transaction_view(tags={"team": "growth"}),
        transaction_view(source=transactions(path="elsewhere")),
        transaction_view(aggregations=transaction_view().aggregations[:3]),
    ]
    hashes = {definition_hash(v) for v in variants}
    assert base not in hashes
    assert len(hashes) == len(variants)


def test_hash_depends_on_join_key_order_but_not_tag_order() -> None:
    ab = Entity(name="e", join_keys={"a": "string", "b": "string"}, tags={"x": "1", "y": "2"})
    ba = Entity(name="e", join_keys={"b": "string", "a": "string"}, tags={"y": "2", "x": "1"})
    assert ab != ba
    assert definition_hash(ab) != definition_hash(ba)
    tags_swapped = Entity(
        name="e", join_keys={"a": "string", "b": "string"}, tags={"y": "2", "x": "1"}
    )
    assert tags_swapped == ab
    assert definition_hash(tags_swapped) == definition_hash(ab)


def test_definitions_are_immutable_and_hashable() -> None:
    view = transaction_view()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.name = "other"  # type: ignore[misc]
    assert len({view, transaction_view(), demographic_view()}) == 2
    assert isinstance(view.entities, tuple)
    assert isinstance(view.aggregations, tuple)
    assert isinstance(view.tags, FrozenMap)
    assert isinstance(churn_set().features, tuple)


def test_replace_goes_through_validation() -> None:
    view = transaction_view()
    assert dataclasses.replace(view, ttl=timedelta(days=7)).ttl == timedelta(days=7)
    with pytest.raises(DefinitionError, match="invalid duration"):
        # replace() calls __init__, which accepts (and here rejects) duration strings.
        dataclasses.replace(view, ttl="7 days")  # type: ignore[arg-type]


def test_from_dict_dispatch_errors() -> None:
    with pytest.raises(DefinitionError, match=r"unknown kind 'widget'.*Fix.*entity, delta_source"):
        from_dict({"kind": "widget", "name": "x"})
    with pytest.raises(DefinitionError, match="unknown kind None"):
        from_dict({"name": "x"})


def test_from_dict_rejects_unknown_missing_and_wrong_kind() -> None:
    data = customer().to_dict()
    with pytest.raises(DefinitionError, match=r"Entity.from_dict: unknown keys \['colour'\].*Fix"):
        Entity.from_dict({**data, "colour": "red"})
    del data["name"]
    with pytest.raises(DefinitionError, match=r"missing keys \['name'\]"):
        Entity.from_dict(data)
    with pytest.raises(DefinitionError, match="kind is 'entity', expected 'feature_set'"):
        FeatureSet.from_dict(customer().to_dict())
    with pytest.raises(DefinitionError, match="expected a mapping"):
        Entity.from_dict(["customer"])  # type: ignore[arg-type]


def test_an_entity_without_join_keys_is_keyed_by_its_name_as_in_feast() -> None:
    entity = Entity(name="customer", description="Customer entity", value_type="STRING")
    assert entity.join_keys == {"customer": "string"}
    assert from_dict({"kind": "entity", "name": "customer"}) == entity.__class__(
        name="customer", join_keys={"customer": "string"}
    )
    assert Entity(name="order", value_type="INT64").join_keys == {"order": "int64"}
    assert Entity(name="line", join_keys=["a", "b"], value_type="int32").join_keys == {
        "a": "int32",
        "b": "int32",
    }


def test_from_dict_accepts_a_plain_list_of_join_keys() -> None:
    entity = from_dict({"kind": "entity", "name": "customer", "join_keys": ["customer_id"]})
    assert entity == Entity(name="customer", join_keys={"customer_id": "string"})


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "my customer",
        "cust'omer",
        'cust"omer',
        "customer;drop",
        "cust-omer",
        "1customer",
        "",
        "a" * 129,
        "abc\n",
        "café",
    ],
)
def test_unsafe_names_are_rejected(bad: str) -> None:
    with pytest.raises(
        DefinitionError, match=r"entity .*: name .* is not a safe identifier\. Fix: .*\^\[A-Za-z_\]"
    ):
        Entity(name=bad, join_keys=["id"])


def test_longest_safe_name_is_accepted() -> None:
    assert Entity(name="a" * 128, join_keys=["id"]).name == "a" * 128


@pytest.mark.parametrize("bad", ["a b", "a;b", "a-b"])
def test_unsafe_column_names_are_rejected(bad: str) -> None:
    with pytest.raises(DefinitionError, match=r"field .*: name .* not a safe identifier.*Fix"):
        Field(name=bad, dtype="int")
    with pytest.raises(DefinitionError, match=r"delta source 's': timestamp_column .*Fix"):
        DeltaSource(name="s", path="/p", timestamp_column=bad)
    with pytest.raises(
        DefinitionError, match=r"aggregation .*: column .* not a safe identifier.*Fix"
    ):
        Aggregation(column=bad, function="sum")
    with pytest.raises(
        DefinitionError, match=r"entity 'e': join key .* not a safe identifier.*Fix"
    ):
        Entity(name="e", join_keys=[bad])


@pytest.mark.parametrize(
    "reserved", ["feature_timestamp", "created_timestamp", "_fs_row", "Feature_Timestamp", "_FS_x"]
)
def test_reserved_feature_names_are_rejected(reserved: str) -> None:
    assert is_reserved_column(reserved)
    with pytest.raises(
        DefinitionError, match=rf"field '{reserved}': name '{reserved}' is reserved\. Fix: rename"
    ):
        Field(name=reserved, dtype="int")
    with pytest.raises(
        DefinitionError, match=rf"aggregation '{reserved}': name '{reserved}' is reserved\. Fix"
    ):
        Aggregation(column="amount", function="sum", name=reserved)
    with pytest.raises(DefinitionError, match=r"entity 'e': join key .* is reserved\. Fix"):
        Entity(name="e", join_keys=[reserved])


def test_event_timestamp_is_not_reserved() -> None:
    assert RESERVED_COLUMNS == ("feature_timestamp", "created_timestamp")
    assert not is_reserved_column("event_timestamp")
    assert Field(name="event_timestamp", dtype="timestamp").name == "event_timestamp"


# ---------------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("int", "int64"),
        ("long", "int64"),
        ("integer", "int32"),
        ("float", "float32"),
        ("double", "float64"),
        ("boolean", "bool"),
        ("str", "string"),
        ("INT", "int64"),
        (" Double ", "float64"),
        *[(d, d) for d in DTYPES],
    ],
)
def test_dtype_aliases(alias: str, canonical: str) -> None:
    assert normalize_dtype(alias) == canonical
    assert Field(name="x", dtype=alias).dtype == canonical


@pytest.mark.parametrize("bad", ["decimal", "int8", "", "varchar(10)", None])
def test_unknown_dtype_lists_valid_ones(bad: Any) -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"unknown dtype .*Fix: use one of string, int32, int64, float32, float64, bool, "
            r"timestamp, date"
        ),
    ):
        normalize_dtype(bad)
    with pytest.raises(DefinitionError, match=r"field 'x': dtype: unknown dtype.*Fix"):
        Field(name="x", dtype=bad)


def test_numeric_dtypes() -> None:
    assert NUMERIC_DTYPES == ("int32", "int64", "float32", "float64")


# ---------------------------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("90d", timedelta(days=90)),
        ("365d", timedelta(days=365)),
        ("12h", timedelta(hours=12)),
        ("15m", timedelta(minutes=15)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(weeks=2)),
        ("1s", timedelta(seconds=1)),
        (timedelta(hours=36), timedelta(hours=36)),
    ],
)
def test_parse_duration_valid(text: Any, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["30x", "0d", "-5d", "", "7.5d", "d", "7", "7 d", " 7d", "7D", "1d12h", "+7d", "٣d", None, 7],
)
def test_parse_duration_invalid(bad: Any) -> None:
    with pytest.raises(DefinitionError, match=r"invalid duration .*Fix: .*'7d', '30d'"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(days=-1), timedelta(seconds=1.5)])
def test_parse_duration_rejects_non_positive_or_fractional_timedeltas(bad: timedelta) -> None:
    with pytest.raises(DefinitionError, match="must be positive and a whole number of seconds"):
        parse_duration(bad)


def test_parse_duration_too_large() -> None:
    with pytest.raises(DefinitionError, match="too large"):
        parse_duration("9999999999999w")


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(weeks=2), "14d"),
        (timedelta(days=1, hours=12), "36h"),
        (timedelta(hours=12), "12h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=90), "90s"),
        (timedelta(days=1, seconds=1), "86401s"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def test_format_duration_rejects_invalid() -> None:
    with pytest.raises(DefinitionError, match="must be positive"):
        format_duration(timedelta(0))


@given(st.integers(min_value=1, max_value=10**12).map(lambda s: timedelta(seconds=s)))
def test_format_parse_duration_round_trip(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td


# ---------------------------------------------------------------------------------------------
# Entity
# ---------------------------------------------------------------------------------------------


def test_entity_join_keys() -> None:
    assert Entity(name="c", join_keys=["customer_id"]).join_keys == {"customer_id": "string"}
    assert Entity(name="c", join_keys="customer_id").join_key_names == ("customer_id",)
    composite = Entity(name="line", join_keys={"order_id": "long", "line_no": "integer"})
    assert composite.join_key_names == ("order_id", "line_no")
    assert dict(composite.join_keys) == {"order_id": "int64", "line_no": "int32"}


def test_entity_needs_a_join_key() -> None:
    with pytest.raises(
        DefinitionError, match=r"entity 'customer': has no join keys\. Fix: pass join_keys"
    ):
        Entity(name="customer", join_keys=[])


def test_entity_rejects_duplicate_join_keys() -> None:
    with pytest.raises(DefinitionError, match=r"entity 'c': join key 'ID' is listed twice\. Fix"):
        Entity(name="c", join_keys=["id", "ID"])


def test_entity_rejects_float_join_keys() -> None:
    with pytest.raises(
        DefinitionError, match=r"entity 'c': join key 'k' has dtype float64.*Fix: use string"
    ):
        Entity(name="c", join_keys={"k": "double"})


def test_entity_rejects_bad_tags() -> None:
    with pytest.raises(DefinitionError, match=r"entity 'c': tags entry 'n': 1 .*Fix"):
        Entity(name="c", join_keys=["id"], tags={"n": 1})  # type: ignore[dict-item]


# ---------------------------------------------------------------------------------------------
# Field
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "default"),
    [
        ("string", "unknown"),
        ("int32", 2**31 - 1),
        ("int64", -1),
        ("float64", 0),
        ("float32", 1.5),
        ("bool", False),
        ("timestamp", "2024-01-01T00:00:00"),
        ("date", "2024-01-01"),
        ("string", None),
    ],
)
def test_field_defaults_that_fit(dtype: str, default: Any) -> None:
    assert Field(name="f", dtype=dtype, default=default).default == default


@pytest.mark.parametrize(
    ("dtype", "default"),
    [
        ("int64", "1"),
        ("int64", True),
        ("int64", 1.5),
        ("int32", 2**31),
        ("float64", float("nan")),
        ("bool", 0),
        ("string", 1),
        ("date", "yesterday"),
        ("timestamp", 0),
    ],
)
def test_field_default_must_fit_dtype(dtype: str, default: Any) -> None:
    with pytest.raises(
        DefinitionError, match=rf"field 'f': default .* does not fit dtype {dtype}\. Fix"
    ):
        Field(name="f", dtype=dtype, default=default)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


def test_delta_source_needs_exactly_one_of_path_and_table() -> None:
    with pytest.raises(
        DefinitionError, match=r"delta source 's': exactly one of path and table.*Fix: pass path="
    ):
        DeltaSource(name="s", path="/p", table="t", timestamp_column="ts")
    with pytest.raises(DefinitionError, match=r"delta source 's': exactly one of path and table"):
        DeltaSource(name="s", timestamp_column="ts")


@pytest.mark.parametrize("table", ["events", "db.events", "main.db.events"])
def test_delta_source_table_names(table: str) -> None:
    assert DeltaSource(name="s", table=table, timestamp_column="ts").table == table


@pytest.mark.parametrize("table", ["a.b.c.d", "db.events;drop", "db..events", "db.`events`", ""])
def test_delta_source_rejects_bad_table_names(table: str) -> None:
    with pytest.raises(
        DefinitionError,
        match=r"delta source 's': table .* is not a valid table name\. Fix: use 'table'",
    ):
        DeltaSource(name="s", table=table, timestamp_column="ts")


def test_source_rejects_empty_path() -> None:
    with pytest.raises(DefinitionError, match=r"delta source 's': path '  ' .*Fix"):
        DeltaSource(name="s", path="  ", timestamp_column="ts")
    with pytest.raises(DefinitionError, match=r"parquet source 's': path '' .*Fix"):
        ParquetSource(name="s", path="", timestamp_column="ts")


def test_source_created_timestamp_must_differ() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"delta source 's': created_timestamp_column 'ts' is the same as timestamp_column\. Fix"
        ),
    ):
        DeltaSource(name="s", path="/p", timestamp_column="ts", created_timestamp_column="ts")


def test_source_schema_timestamp_dtypes() -> None:
    ok = ParquetSource(name="s", path="/p", timestamp_column="ts", schema={"ts": "date"})
    assert ok.schema == {"ts": "date"}
    with pytest.raises(
        DefinitionError,
        match=(
            r"parquet source 's': timestamp_column 'ts' is declared in the schema as string\. Fix: "
            r"declare it as timestamp or date"
        ),
    ):
        ParquetSource(name="s", path="/p", timestamp_column="ts", schema={"ts": "str"})
    with pytest.raises(
        DefinitionError,
        match=r"created_timestamp_column 'c' .* as date\. Fix: declare it as timestamp",
    ):
        ParquetSource(
            name="s",
            path="/p",
            timestamp_column="ts",
            created_timestamp_column="c",
            schema={"c": "date"},
        )


def test_source_schema_is_normalised_and_ordered() -> None:
    source = transactions(schema={"b": "double", "a": "str"})
    assert isinstance(source.schema, FrozenMap)
    assert list(source.schema.items()) == [("b", "float64"), ("a", "string")]
    with pytest.raises(
        DefinitionError,
        match=r"delta source 'customer_transactions': schema column 'x': unknown dtype 'money'",
    ):
        transactions(schema={"x": "money"})


def test_source_kinds() -> None:
    assert transactions().kind == "delta_source"
    assert profiles().kind == "parquet_source"


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------


def test_aggregation_defaults() -> None:
    agg = Aggregation(column="amount", function="sum", window="30d")
    assert agg.name == "sum_amount_30d"
    assert agg.window == timedelta(days=30)
    assert not agg.is_lifetime
    assert Aggregation(column="amount", function="max").name == "max_amount_lifetime"
    assert Aggregation(column="*", function="count", window="7d").name == "count_events_7d"
    assert Aggregation(column="x", function="mean", window=timedelta(weeks=1)).name == "mean_x_7d"
    assert Aggregation(column="x", function="MEAN").function == "mean"


def test_aggregation_unknown_function() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"aggregation 'avg\(amount\)': unknown function 'avg'\. Fix: use one of sum, "
            r"count.*'mean' rather than 'avg'"
        ),
    ):
        Aggregation(column="amount", function="avg")


@pytest.mark.parametrize("function", [f for f in AGG_FUNCTIONS if f not in ("count", "recency")])
def test_aggregation_star_only_for_count_and_recency(function: str) -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            rf"column '\*' \(any event\) only works with count and recency, not {function}\. Fix: "
            rf"name the source column"
        ),
    ):
        Aggregation(column="*", function=function)


def test_aggregation_invalid_window() -> None:
    with pytest.raises(
        DefinitionError, match=r"aggregation 'sum\(amount\)': window: invalid duration '30x'\. Fix"
    ):
        Aggregation(column="amount", function="sum", window="30x")


def test_aggregation_filter_is_parsed_and_canonical() -> None:
    agg = Aggregation(column="amount", function="sum", filter="status=='ok' and amount>0")
    assert agg.filter == "status = 'ok' AND amount > 0"
    assert agg.filter_expr is not None
    assert Aggregation(column="amount", function="sum").filter_expr is None
    # Two spellings of one filter give equal aggregations (and equal hashes).
    spelled = Aggregation(column="amount", function="sum", filter="(status = 'ok') AND amount > 0")
    assert spelled == agg
    assert definition_hash(spelled) == definition_hash(agg)


def test_aggregation_invalid_filter() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"aggregation 'sum_amount_lifetime': invalid filter 'amount > 0; DROP TABLE "
            r"x'.*position 10"
        ),
    ):
        Aggregation(column="amount", function="sum", filter="amount > 0; DROP TABLE x")


def test_aggregation_default_name_too_long() -> None:
    with pytest.raises(
        DefinitionError, match="longer than 128 characters. Fix: pass a shorter name"
    ):
        Aggregation(column="c" * 125, function="sum", window="30d")


@pytest.mark.parametrize(
    ("function", "input_dtype", "output"),
    [
        ("sum", "int32", "int64"),
        ("sum", "int64", "int64"),
        ("sum", "float32", "float64"),
        ("sum", "double", "float64"),
        ("count", "string", "int64"),
        ("count_distinct", "string", "int64"),
        ("approx_count_distinct", "date", "int64"),
        ("mean", "int32", "float64"),
        ("stddev", "float32", "float64"),
        ("min", "date", "date"),
        ("max", "string", "string"),
        ("max", "timestamp", "timestamp"),
        ("last", "bool", "bool"),
        ("last", "string", "string"),
        ("recency", "timestamp", "float64"),
    ],
)
def test_aggregation_output_dtype(function: str, input_dtype: str, output: str) -> None:
    assert Aggregation(column="c", function=function).output_dtype(input_dtype) == output


@pytest.mark.parametrize(
    ("function", "dtype"),
    [("sum", "string"), ("mean", "bool"), ("stddev", "date"), ("min", "bool"), ("max", "bool")],
)
def test_aggregation_check_input_dtype_rejects(function: str, dtype: str) -> None:
    agg = Aggregation(column="c", function=function)
    with pytest.raises(
        DefinitionError,
        match=(
            rf"aggregation '{function}_c_lifetime': function {function} needs an? "
            rf"(numeric|orderable) column, but 'c' is {dtype}\. Fix"
        ),
    ):
        agg.check_input_dtype(dtype)


@pytest.mark.parametrize(
    "function", ["count", "last", "count_distinct", "approx_count_distinct", "recency"]
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_aggregation_any_dtype_functions(function: str, dtype: str) -> None:
    Aggregation(column="c", function=function).check_input_dtype(dtype)


def test_output_dtype_with_unknown_input() -> None:
    assert Aggregation(column="*", function="count").output_dtype(None) == "int64"
    assert Aggregation(column="c", function="count_distinct").output_dtype(None) == "int64"
    assert Aggregation(column="*", function="recency").output_dtype(None) == "float64"
    with pytest.raises(
        DefinitionError,
        match=r"aggregation 'sum_c_lifetime': .*unknown\. Fix: declare the source schema",
    ):
        Aggregation(column="c", function="sum").output_dtype(None)


_column_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(
    lambda name: not is_reserved_column(name)
)
_windows = st.one_of(
    st.none(),
    st.integers(min_value=1, max_value=10**9).map(lambda s: timedelta(seconds=s)),
    st.sampled_from(["7d", "30d", "90d", "12h", "15m", "2w", "45s"]),
)
_filter_texts = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "status = 'settled'",
            "amount > -1.5 AND NOT is_refund",
            "channel NOT IN ('web', 'it''s')",
            "a IS NOT NULL OR (b <= 3 AND c <> d)",
        ]
    ),
)


@st.composite
def aggregations(draw: st.DrawFn) -> Aggregation:
    function = draw(st.sampled_from(AGG_FUNCTIONS))
    star = function in ("count", "recency") and draw(st.booleans())
    column = "*" if star else draw(_column_names)
    name = draw(st.one_of(st.none(), _column_names))
    return Aggregation(
        column=column,
        function=draw(st.sampled_from([function, function.upper()])),
        window=draw(_windows),
        name=name,
        filter=draw(_filter_texts),
        description=draw(st.text(max_size=20)),
    )


@settings(max_examples=200)
@given(aggregations())
def test_aggregation_round_trip_property(agg: Aggregation) -> None:
    data = agg.to_dict()
    assert Aggregation.from_dict(data) == agg
    assert Aggregation.from_dict(json.loads(json.dumps(data))) == agg
    assert definition_hash(Aggregation.from_dict(data)) == definition_hash(agg)


# ---------------------------------------------------------------------------------------------
# FeatureView
# ---------------------------------------------------------------------------------------------


def test_feature_view_basics() -> None:
    view = transaction_view()
    assert view.entities == ("customer",)  # the Entity object is kept as its name
    assert view.ttl == timedelta(days=90)
    assert view.cadence == timedelta(days=1)
    assert view.is_aggregated
    assert view.feature_names == (
        "total_spent_30d",
        "transaction_count_30d",
        "avg_transaction_value_30d",
        "last_transaction_days_ago",
    )
    demo = demographic_view()
    assert not demo.is_aggregated
    assert demo.feature_names == ("age", "city", "signup_date")
    assert demo.feature_dtypes() == {"age": "int64", "city": "string", "signup_date": "date"}
    assert transaction_view(ttl=None).ttl is None


def test_feature_view_feature_dtypes() -> None:
    view = transaction_view()
    assert view.feature_dtypes() == {
        "total_spent_30d": "float64",
        "transaction_count_30d": "int64",
        "avg_transaction_value_30d": "float64",
        "last_transaction_days_ago": "float64",
    }
    # An explicit schema (e.g. from Spark) wins over the declared one.
    assert view.feature_dtypes({"amount": "int"})["total_spent_30d"] == "int64"
    # Columns no aggregation reads may have any name or type (e.g. a schema reported by Spark).
    spark_schema = {"Amount": "double", "raw payload": "binary", "tags": "array<string>"}
    assert view.feature_dtypes(spark_schema)["avg_transaction_value_30d"] == "float64"
    with pytest.raises(DefinitionError, match=r"dtype of column 'amount': unknown dtype 'binary'"):
        view.feature_dtypes({"amount": "binary"})


def test_feature_view_feature_dtypes_needs_schema() -> None:
    view = transaction_view(source=transactions(schema=None))
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_transaction_features' \(source 'customer_transactions'\): "
            r"aggregation 'total_spent_30d'.*Fix: declare the source schema"
        ),
    ):
        view.feature_dtypes()
    count_only = transaction_view(
        source=transactions(schema=None),
        aggregations=[Aggregation(column="amount", function="count_distinct", window="7d")],
    )
    assert count_only.feature_dtypes() == {"count_distinct_amount_7d": "int64"}


def test_feature_view_both_features_and_aggregations() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_transaction_features': .*a view either projects features or "
            r"aggregates events, not both\. Fix: split"
        ),
    ):
        transaction_view(features=[Field(name="x", dtype="int")])


def test_feature_view_neither_features_nor_aggregations() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_transaction_features': declares no features\. Fix: pass "
            r"features="
        ),
    ):
        transaction_view(aggregations=[])


def test_feature_view_window_must_be_multiple_of_cadence() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_transaction_features': aggregation 'sum_amount_36h' has "
            r"window '36h', which is not a multiple of the cadence '1d'.*Fix"
        ),
    ):
        transaction_view(aggregations=[Aggregation(column="amount", function="sum", window="36h")])
    ok = transaction_view(
        cadence="12h", aggregations=[Aggregation(column="amount", function="sum", window="36h")]
    )
    assert ok.cadence == timedelta(hours=12)


def test_feature_view_cadence_only_for_aggregations() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_demographic_features': cadence '1h' only applies to "
            r"aggregated views.*Fix: remove cadence"
        ),
    ):
        demographic_view(cadence="1h")


def test_feature_view_duplicate_feature_names() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_demographic_features': feature name 'age' is used twice\. "
            r"Fix: give each feature a unique name"
        ),
    ):
        demographic_view(features=[Field(name="age", dtype="int"), Field(name="age", dtype="int")])
    with pytest.raises(
        DefinitionError, match=r"feature name 'Age' is used twice \(as 'age' and 'Age'\)"
    ):
        demographic_view(features=[Field(name="age", dtype="int"), Field(name="Age", dtype="int")])


def test_feature_view_feature_named_like_timestamp_column() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_demographic_features': feature 'updated_at' has the same name "
            r"as the timestamp column 'updated_at' of source 'customer_profiles'\. Fix: rename the "
            r"feature"
        ),
    ):
        demographic_view(features=[Field(name="updated_at", dtype="timestamp")])
    with pytest.raises(
        DefinitionError,
        match=r"feature 'created_at' has the same name as the timestamp column 'created_at'",
    ):
        transaction_view(
            aggregations=[Aggregation(column="amount", function="sum", name="created_at")]
        )


def test_feature_view_entities() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"feature view 'customer_demographic_features': has no entities\. Fix",
    ):
        demographic_view(entities=[])
    with pytest.raises(DefinitionError, match=r"entity 'customer' is listed twice\. Fix"):
        demographic_view(entities=["customer", customer()])
    with pytest.raises(
        DefinitionError, match=r"entities must be a list or tuple, got 'customer'\. Fix"
    ):
        demographic_view(entities="customer")
    with pytest.raises(DefinitionError, match=r"entity 'a b' is not a safe identifier"):
        demographic_view(entities=["a b"])


def test_feature_view_rejects_wrong_types() -> None:
    with pytest.raises(
        DefinitionError, match=r"source must be a DeltaSource or ParquetSource.*Fix"
    ):
        demographic_view(source="customer_profiles")
    with pytest.raises(
        DefinitionError, match=r"features contains 'age', which is not a Field\. Fix"
    ):
        demographic_view(features=["age"])
    with pytest.raises(DefinitionError, match=r"online must be True or False"):
        demographic_view(online="yes")
    with pytest.raises(DefinitionError, match=r"ttl: invalid duration '0d'"):
        demographic_view(ttl="0d")


# ---------------------------------------------------------------------------------------------
# FeatureRef and FeatureSet
# ---------------------------------------------------------------------------------------------


def test_feature_ref_parse() -> None:
    ref = FeatureRef.parse("customer_transaction_features:total_spent_30d")
    assert ref == FeatureRef(view="customer_transaction_features", feature="total_spent_30d")
    assert str(ref) == "customer_transaction_features:total_spent_30d"
    assert FeatureRef.parse("v:*").feature == "*"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no_colon", "has no colon"),
        (":feature", "has an empty part"),
        ("view:", "has an empty part"),
        ("a:b:c", "more than one colon"),
        ("view:a b", "feature name 'a b' is not a safe identifier"),
        ("my-view:a", "view name 'my-view' is not a safe identifier"),
        ("*:a", "view name '\\*' is not a safe identifier"),
    ],
)
def test_feature_ref_parse_rejects_malformed(text: str, problem: str) -> None:
    with pytest.raises(
        DefinitionError,
        match=rf"feature reference '{text.replace('*', chr(92) + '*')}'.*{problem}.*Fix",
    ):
        FeatureRef.parse(text)


def test_feature_set_validation() -> None:
    assert churn_set().refs[0] == FeatureRef(view="customer_transaction_features", feature="*")
    with pytest.raises(
        DefinitionError,
        match=r"feature set 'churn_model_features': feature reference 'bad' has no colon.*Fix",
    ):
        churn_set(features=["bad"])
    with pytest.raises(
        DefinitionError,
        match=r"feature set 'churn_model_features': feature reference 'v:a' is listed twice\. Fix",
    ):
        churn_set(features=["v:a", "v:a"])
    with pytest.raises(
        DefinitionError, match=r"feature set 'churn_model_features': selects no features\. Fix"
    ):
        churn_set(features=[])
    with pytest.raises(
        DefinitionError,
        match=r"feature set 'churn_model_features': metadata entry 'x': nan is invalid\. Fix",
    ):
        churn_set(metadata={"x": float("nan")})


# ---------------------------------------------------------------------------------------------
# validate_objects
# ---------------------------------------------------------------------------------------------


def test_validate_seed_objects_passes() -> None:
    validate_objects(seed_objects())


def _problems(objects: list[Any]) -> str:
    with pytest.raises(DefinitionError) as info:
        validate_objects(objects)
    return str(info.value)


def test_validate_duplicate_names_within_a_kind() -> None:
    message = _problems([*seed_objects(), Entity(name="customer", join_keys=["id"])])
    assert "entity 'customer': declared 2 times. Fix: give each entity a unique name" in message
    message = _problems([*seed_objects(), demographic_view()])
    assert "feature view 'customer_demographic_features': declared 2 times. Fix" in message
    message = _problems([*seed_objects(), churn_set(description="other")])
    assert "feature set 'churn_model_features': declared 2 times. Fix" in message


def test_validate_view_and_feature_set_share_a_name() -> None:
    message = _problems([*seed_objects(), churn_set(name="customer_demographic_features")])
    assert (
        "feature view 'customer_demographic_features' and feature set "
        "'customer_demographic_features' share a name. Fix: rename one"
    ) in message


def test_validate_unknown_entity_lists_known_ones() -> None:
    objects = [
        customer(),
        Entity(name="store", join_keys=["store_id"]),
        demographic_view(entities=["shop"]),
    ]
    message = _problems(objects)
    assert (
        "feature view 'customer_demographic_features': references unknown entity 'shop'. "
        "Fix: declare Entity(name='shop', join_keys=[...]) or use one of the known entities: "
        "customer, store."
    ) in message


def test_validate_view_source_differs_from_declared_source() -> None:
    objects = [customer(), transactions(path="somewhere/else"), transaction_view()]
    message = _problems(objects)
    assert (
        "feature view 'customer_transaction_features': its source 'customer_transactions' "
        "differs from the declared source of that name (path: declared 'somewhere/else', "
        "view's 'data/delta/customer_transactions'). Fix: pass the declared source object"
    ) in message


def test_validate_equal_or_embedded_sources_are_fine() -> None:
    validate_objects([customer(), transactions(), transaction_view()])  # equal, not identical
    validate_objects([customer(), transaction_view()])  # only embedded
    validate_objects([customer(), transaction_view(), transaction_view(name="copy")])


def test_validate_two_different_declared_sources_with_one_name() -> None:
    message = _problems([customer(), transactions(), transactions(table="db.tx", path=None)])
    assert "source 'customer_transactions': two different sources have this name (" in message
    assert "Fix: give each source its own name, or keep a single definition." in message


def test_validate_two_views_embedding_different_sources_with_one_name() -> None:
    other = transaction_view(name="other_view", source=transactions(created_timestamp_column=None))
    message = _problems([customer(), transaction_view(), other])
    assert (
        "source 'customer_transactions': feature views 'customer_transaction_features' and "
        "'other_view' use two different sources with this name"
    ) in message
    assert "Fix: give each source its own name, or use the same source object" in message


def test_validate_feature_named_like_join_key() -> None:
    view = demographic_view(
        features=[Field(name="Customer_ID", dtype="string"), Field(name="age", dtype="int")]
    )
    message = _problems([customer(), view])
    assert (
        "feature view 'customer_demographic_features': feature 'Customer_ID' has the same name "
        "as join key 'customer_id' of entity 'customer'. Fix: rename the feature"
    ) in message


def test_validate_aggregation_column_not_in_schema() -> None:
    view = transaction_view(
        aggregations=[Aggregation(column="amount_usd", function="sum", window="7d")]
    )
    message = _problems([customer(), view])
    assert (
        "feature view 'customer_transaction_features': aggregation 'sum_amount_usd_7d' "
        "aggregates column 'amount_usd', which is not in the declared schema of source "
        "'customer_transactions' (columns: customer_id, amount). Fix: add the column"
    ) in message


def test_validate_filter_column_not_in_schema() -> None:
    agg = Aggregation(column="amount", function="sum", window="7d", filter="status = 'ok'")
    message = _problems([customer(), transaction_view(aggregations=[agg])])
    assert (
        "aggregation 'sum_amount_7d' filters on column 'status', which is not in the declared "
        "schema"
    ) in message


def test_validate_aggregation_function_vs_dtype() -> None:
    view = transaction_view(
        aggregations=[Aggregation(column="customer_id", function="mean", window="7d")]
    )
    message = _problems([customer(), view])
    assert (
        "feature view 'customer_transaction_features': aggregation 'mean_customer_id_7d': "
        "function mean needs a numeric column, but 'customer_id' is string. Fix"
    ) in message


def test_validate_no_schema_skips_column_checks() -> None:
    view = transaction_view(
        source=transactions(schema=None),
        aggregations=[Aggregation(column="anything", function="sum", window="7d")],
    )
    validate_objects([customer(), view])


def test_validate_feature_set_unknown_view_and_feature() -> None:
    fs = churn_set(features=["customer_transaction_features:nope", "missing_view:x"])
    message = _problems([*seed_objects()[:-1], fs])
    assert (
        "feature set 'churn_model_features': feature reference "
        "'customer_transaction_features:nope': feature view 'customer_transaction_features' "
        "has no feature 'nope'. Fix: use one of its features: total_spent_30d, "
        "transaction_count_30d, avg_transaction_value_30d, last_transaction_days_ago."
    ) in message
    assert (
        "feature set 'churn_model_features': feature reference 'missing_view:x': unknown feature "
        "view 'missing_view'. Fix: use one of the known feature views: "
        "customer_demographic_features, customer_transaction_features."
    ) in message


def test_validate_feature_set_collision_across_views() -> None:
    other = demographic_view(name="other_demographics")
    fs = churn_set(features=["customer_demographic_features:*", "other_demographics:age"])
    message = _problems([*seed_objects()[:-1], other, fs])
    assert (
        "feature set 'churn_model_features': feature 'age' is selected from both feature views "
        "'customer_demographic_features' and 'other_demographics'"
    ) in message
    assert "Fix: select only one of them" in message


def test_validate_lists_all_problems_at_once() -> None:
    objects = [
        customer(),
        customer(),
        demographic_view(entities=["shop"]),
        churn_set(features=["nowhere:x"]),
    ]
    message = _problems(objects)
    assert message.startswith("invalid definitions: 3 problem(s):\n")
    lines = message.splitlines()[1:]
    assert len(lines) == 3
    assert all(line.startswith("  - ") and "Fix" in line for line in lines)


def test_validate_rejects_non_definitions() -> None:
    message = _problems([customer(), "customer"])
    assert "'customer' is not a definition. Fix: pass only Entity" in message


# ---------------------------------------------------------------------------------------------
# resolve_feature_refs
# ---------------------------------------------------------------------------------------------


def _views() -> dict[str, FeatureView]:
    return {v.name: v for v in (transaction_view(), demographic_view())}


def test_resolve_expands_star_in_declared_order_and_deduplicates() -> None:
    refs = resolve_feature_refs(
        [
            "customer_demographic_features:city",
            "customer_demographic_features:*",
            "customer_transaction_features:total_spent_30d",
            "customer_transaction_features:*",
            "customer_demographic_features:age",
        ],
        _views(),
    )
    assert [str(r) for r in refs] == [
        "customer_demographic_features:city",
        "customer_demographic_features:age",
        "customer_demographic_features:signup_date",
        "customer_transaction_features:total_spent_30d",
        "customer_transaction_features:transaction_count_30d",
        "customer_transaction_features:avg_transaction_value_30d",
        "customer_transaction_features:last_transaction_days_ago",
    ]
    assert all(r.feature != "*" for r in refs)


def test_resolve_accepts_feature_ref_objects() -> None:
    ref = FeatureRef(view="customer_demographic_features", feature="age")
    assert resolve_feature_refs([ref], _views()) == [ref]


def test_resolve_unknown_view_lists_available_views() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"unknown feature view 'nope'\. Fix: use one of the known feature views: "
            r"customer_demographic_features, customer_transaction_features"
        ),
    ):
        resolve_feature_refs(["nope:a"], _views())


def test_resolve_unknown_feature_lists_available_features() -> None:
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature view 'customer_demographic_features' has no feature 'height'\. Fix: use one "
            r"of its features: age, city, signup_date"
        ),
    ):
        resolve_feature_refs(["customer_demographic_features:height"], _views())


def test_resolve_malformed_ref() -> None:
    with pytest.raises(DefinitionError, match="has no colon"):
        resolve_feature_refs(["age"], _views())


def test_resolve_rejects_collisions_across_views() -> None:
    views = {**_views(), "other": demographic_view(name="other")}
    with pytest.raises(
        DefinitionError,
        match=(
            r"feature 'age' is selected from both feature views 'customer_demographic_features' "
            r"and 'other'.*Fix: select only one of them"
        ),
    ):
        resolve_feature_refs(["customer_demographic_features:age", "other:*"], views)
    # Selecting only one of them is fine.
    refs = resolve_feature_refs(["customer_demographic_features:age", "other:city"], views)
    assert [str(r) for r in refs] == ["customer_demographic_features:age", "other:city"]


# ---------------------------------------------------------------------------------------------
# Module hygiene
# ---------------------------------------------------------------------------------------------


_CORE = Path(__file__).resolve().parents[2] / "fstore_spark" / "core"

# Every module of fstore_spark.core except the filter language (covered by test_filters).
DEFINITION_MODULES = sorted(
    "fstore_spark.core" + ("" if path.stem == "__init__" else f".{path.stem}")
    for path in _CORE.glob("*.py")
    if not path.stem.startswith("filter_")
)

# Modules whose docstrings must carry runnable examples.
DOCUMENTED_MODULES = {
    "fstore_spark.core",
    "fstore_spark.core.aggregations",
    "fstore_spark.core.codec",
    "fstore_spark.core.dtypes",
    "fstore_spark.core.durations",
    "fstore_spark.core.entities",
    "fstore_spark.core.feature_sets",
    "fstore_spark.core.fields",
    "fstore_spark.core.mappings",
    "fstore_spark.core.naming",
    "fstore_spark.core.serialization",
    "fstore_spark.core.sources",
    "fstore_spark.core.validation",
    "fstore_spark.core.views",
}


def test_documented_modules_exist() -> None:
    assert DOCUMENTED_MODULES <= set(DEFINITION_MODULES)


@pytest.mark.parametrize("name", DEFINITION_MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
    assert result.attempted > 0 or name not in DOCUMENTED_MODULES


@pytest.mark.parametrize("name", DEFINITION_MODULES)
def test_module_does_not_import_pyspark(name: str) -> None:
    tree = ast.parse(Path(importlib.import_module(name).__file__ or "").read_text())
    modules: set[str] = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(m.split(".")[0] == "pyspark" for m in modules)
    assert {m.split(".")[0] for m in modules} <= {
        "__future__",
        "enum",
        "hashlib",
        "inspect",
        "json",
        "math",
        "re",
        "collections",
        "dataclasses",
        "datetime",
        "typing",
        "fstore_spark",
    }


def test_keywords_cannot_be_default_column_names() -> None:
    # Column names are identifiers for definitions even when they are filter keywords.
    assert "IN" in KEYWORDS
    assert Aggregation(column="in", function="count").name == "count_in_lifetime"
