"""Feature analysis: ``FeatureSelector`` (correlations, mutual information, top-k selection)."""

from fstore_spark.workflows import FeatureSelector

__all__ = ["FeatureSelector"]
