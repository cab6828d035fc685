"""The store a workflow object works on: the one given, or the default one from config."""

from __future__ import annotations

import os

from fstore_spark.store import FeatureStore

__all__ = ["bound", "default_store", "set_default_store"]

_DEFAULT: dict[tuple[str, str], FeatureStore] = {}


def default_store() -> FeatureStore:
    """The store built from the configuration (``$FSTORE_CONFIG`` or ``conf/...``), once.

    One store per configuration and working directory in a process, so the objects of a
    workflow share it (and its Spark session).
    """
    key = (os.environ.get("FSTORE_CONFIG", ""), os.getcwd())
    if key not in _DEFAULT:
        _DEFAULT[key] = FeatureStore()
    return _DEFAULT[key]


def set_default_store(store: FeatureStore) -> None:
    """Make ``store`` the one workflow objects use when they are not given one."""
    _DEFAULT[(os.environ.get("FSTORE_CONFIG", ""), os.getcwd())] = store


def bound(store: FeatureStore | None) -> FeatureStore:
    """``store`` itself, or the default store."""
    return store if store is not None else default_store()
