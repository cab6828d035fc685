"""Feature monitoring: ``DriftMonitor`` (against a baseline) and ``FeatureMonitor`` (alerts)."""

from fstore_spark.workflows import DriftMonitor, FeatureMonitor

__all__ = ["DriftMonitor", "FeatureMonitor"]
