"""Typed exceptions raised by fstore_spark.

Every error derives from :class:`FstoreError`, so callers can catch the whole family with one
``except``. Each message names the offending object *and* says how to fix it, e.g.::

    ConfigError: conf/feature_store.yaml: key 'online_store.timeout_ms': expected an integer,
    got 'fast'. Fix: set it to a number of milliseconds such as 500.
"""

from __future__ import annotations


class FstoreError(Exception):
    """Root of all fstore_spark errors."""


class ConfigError(FstoreError):
    """The configuration is invalid (unknown key, wrong type, missing env var)."""


class SessionError(FstoreError):
    """A Spark session with Delta could not be created (e.g. the Delta JARs are not fetched)."""


class DefinitionError(FstoreError, ValueError):
    """A definition (entity, source, feature view, feature set) is invalid."""


class NotFoundError(FstoreError, KeyError):
    """A named object (view, feature, feature set, version, run) does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class RegistryError(FstoreError):
    """The registry could not be read or written (e.g. repeated commit conflicts)."""


class MaterializationError(FstoreError):
    """A feature computation job failed or was given an invalid range."""


class PointInTimeError(FstoreError):
    """A point-in-time (as-of) request is invalid: missing columns, bad timestamps, bad as_of."""


class LineageError(FstoreError):
    """MLflow lineage could not be logged, read or reproduced (e.g. a fingerprint mismatch)."""


class OnlineStoreError(FstoreError):
    """The online store (Redis) failed: unreachable, timed out, or returned malformed data."""


class ValidationError(FstoreError):
    """Data failed a quality expectation in a mode that is configured to fail."""


class ExperimentError(FstoreError):
    """An A/B test is invalid, not started, or its data lacks what its metrics need."""


class EntityRowError(OnlineStoreError, ValueError):
    """An online read's entity row lacks a join key or has a value of the wrong type."""


class NotServedError(OnlineStoreError, ValueError):
    """An online read names a feature view that is not served online (``online=False``)."""


class AccessDeniedError(FstoreError, PermissionError):
    """The store's identity may not do this: a view's policy names its owners or readers."""
