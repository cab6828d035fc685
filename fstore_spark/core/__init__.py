"""Definitions as plain data (no pyspark): entities, sources, aggregations, views, feature sets."""

