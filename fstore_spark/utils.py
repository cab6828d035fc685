"""Helpers for training data: ``temporal_split`` (train before test, no instant in both)."""

from fstore_spark.offline.training import temporal_split

__all__ = ["temporal_split"]
