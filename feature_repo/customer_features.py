"""The demo feature repo: customer transaction and demographic features.

Source paths are relative to the project's lakehouse root (``<lakehouse.root>/<project>``).
"""

from fstore_spark import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    Field,
)

customer = Entity(
    name="customer",
    join_keys={"customer_id": "string"},
    description="A customer of the shop.",
)

customer_transactions = DeltaSource(
    name="customer_transactions",
    path="raw/customer_transactions",
    timestamp_column="event_timestamp",
    created_timestamp_column="created_at",
    schema={"customer_id": "string", "amount": "float64"},
    description="One row per card transaction.",
)

customer_demographics = DeltaSource(
    name="customer_demographics",
    path="raw/customer_demographics",
    timestamp_column="event_timestamp",
    schema={"customer_id": "string", "age": "int64", "city": "string", "signup_date": "date"},
    description="Customer profile snapshots.",
)

customer_transaction_features = FeatureView(
    name="customer_transaction_features",
    entities=[customer],
    source=customer_transactions,
    ttl="90d",
    cadence="1d",
    aggregations=[
        Aggregation(column="amount", function="sum", window="30d", name="total_spent_30d"),
        Aggregation(column="*", function="count", window="30d", name="transaction_count_30d"),
        Aggregation(
            column="amount", function="mean", window="30d", name="avg_transaction_value_30d"
        ),
        Aggregation(column="*", function="recency", name="last_transaction_days_ago"),
    ],
    tags={"team": "ml"},
    owner="team_ml",
    description="Spending behaviour over the last 30 days.",
)

customer_demographic_features = FeatureView(
    name="customer_demographic_features",
    entities=[customer],
    source=customer_demographics,
    ttl="365d",
    features=[
        Field(name="age", dtype="int64"),
        Field(name="city", dtype="string"),
        Field(name="signup_date", dtype="date"),
    ],
    tags={"team": "ml"},
    owner="team_ml",
    description="Profile attributes.",
)

churn_features_v1 = FeatureSet(
    name="churn_features_v1",
    features=[
        "customer_transaction_features:*",
        "customer_demographic_features:age",
        "customer_demographic_features:city",
    ],
    metadata={"author": "team_ml", "purpose": "churn", "model_version": "1.0"},
)
