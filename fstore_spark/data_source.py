"""Data sources under Feast's module name: ``FileSource`` (Parquet), ``DeltaSource``."""

from fstore_spark.core import DeltaSource, FileSource, ParquetSource

__all__ = ["DeltaSource", "FileSource", "ParquetSource"]
