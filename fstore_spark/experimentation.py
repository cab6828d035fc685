"""Experiments: ``ABTest`` of feature sets, with ``start()`` and ``get_results()``."""

from fstore_spark.workflows import ABTest

__all__ = ["ABTest"]
