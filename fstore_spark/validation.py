"""Feature validation: ``FeatureValidator`` (expectations checked on a feature set or view)."""

from fstore_spark.workflows import FeatureValidator

__all__ = ["FeatureValidator"]
