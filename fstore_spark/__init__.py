"""fstore_spark: a Spark + Delta Lake feature store with MLflow lineage and Redis serving.

Definitions (entities, sources, feature views, feature sets) are data kept in a Delta registry
with history; Spark jobs compute windowed aggregates into Delta feature tables whose versions
are the feature versions; point-in-time joins build training sets; MLflow records lineage; a
Redis sync serves the latest values online.
"""

from fstore_spark._version import __version__
from fstore_spark.config import FeatureStoreConfig, load_config
from fstore_spark.core import (
    Aggregation,
    DeltaSource,
    Entity,
    Feature,
    FeatureRef,
    FeatureSet,
    FeatureView,
    Field,
    FileSource,
    ParquetSource,
    ValueType,
    WindowAggregator,
)
from fstore_spark.core.feature_set_versions import FeatureSetVersion
from fstore_spark.errors import (
    AccessDeniedError,
    ConfigError,
    DefinitionError,
    EntityRowError,
    ExperimentError,
    FstoreError,
    LineageError,
    MaterializationError,
    NotFoundError,
    NotServedError,
    OnlineStoreError,
    PointInTimeError,
    RegistryError,
    SessionError,
    ValidationError,
)
from fstore_spark.lineage.spec import FeatureSpec
from fstore_spark.ml import ABTest, ABTestResults  # A/B tests of feature sets
from fstore_spark.offline.training import (
    HistoricalFeatures,
    dataframe_fingerprint,
    export_training_set,
    temporal_split,
)
from fstore_spark.offline.versions import VersionDiff
from fstore_spark.online import OnlineResponse, SyncResult  # online store
from fstore_spark.quality import Expectation, MonitorRule  # quality
from fstore_spark.session import get_spark
from fstore_spark.store import FeatureStore

__all__ = [
    "AccessDeniedError",
    "__version__",
    "ABTest",
    "ABTestResults",
    "Aggregation",
    "ConfigError",
    "DefinitionError",
    "DeltaSource",
    "EntityRowError",
    "Entity",
    "Expectation",
    "Feature",
    "FileSource",
    "ExperimentError",
    "FeatureRef",
    "FeatureSet",
    "FeatureSetVersion",
    "FeatureSpec",
    "FeatureStore",
    "FeatureStoreConfig",
    "FeatureView",
    "Field",
    "HistoricalFeatures",
    "LineageError",
    "MaterializationError",
    "MonitorRule",
    "ParquetSource",
    "FstoreError",
    "NotFoundError",
    "NotServedError",
    "OnlineResponse",
    "OnlineStoreError",
    "PointInTimeError",
    "RegistryError",
    "SessionError",
    "ValidationError",
    "ValueType",
    "VersionDiff",
    "WindowAggregator",
    "dataframe_fingerprint",
    "SyncResult",
    "export_training_set",
    "get_spark",
    "load_config",
    "temporal_split",
]
