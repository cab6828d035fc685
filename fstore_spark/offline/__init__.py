"""Offline features: aggregation, materialization, as-of join, training sets, versions."""

