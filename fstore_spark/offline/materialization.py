"""Materialization runs: backfill and incremental, idempotent, one Delta commit per run.

* :func:`backfill` ``(start, end)`` rebuilds the view's tiles from every source event up to
  ``end`` and replaces the feature rows with ``start <= feature_timestamp <= end`` in one Delta
  commit (``replaceWhere``): running it twice yields the same rows, never duplicates.
* :func:`incremental` continues from the last run recorded in the feature table's history. New
  source data is found from the source's Delta change data feed when it is enabled (exact: every
  new, updated or deleted row, however late) or otherwise with a watermark on the event time
  (``last end - lateness``, 2 days by default; older events are not seen: run a backfill to
  take them). With the change feed every late event is taken: only the entities it touches
  are recomputed from its tile on, so the run equals a backfill; ``lateness`` is an optional
  cap, and events beyond it are counted and quarantined in ``_quarantine/<view>`` with the
  reason. New instants are computed for every entity from the tiles. A run with a changed
  definition (hash differs) falls back to a full backfill. When the table's history proves it
  has no row in the run's range (the usual case: the range starts after every earlier run's
  end), the rows are appended instead of replaced, as a Delta idempotent transaction keyed by
  the view and the table version, so two concurrent runs cannot both append.
* :func:`replay_quarantine` takes the late events a capped run quarantined.

Each run's commit carries ``userMetadata``: ``run_id``, ``mode``, ``view``, ``view_version``,
``definition_hash``, ``source_version``, ``start``, ``end``, ``rows``; so Delta history is the
feature version history (see :func:`fstore_spark.lakehouse.tables.table_history`).

Non-aggregated views (projections of a source that already holds feature values) are
materialized the same way: the source rows with ``start <= ts <= end`` become feature rows
keyed by (join keys, ``feature_timestamp`` = the source timestamp).

The runs live in :mod:`fstore_spark.offline.backfill`, :mod:`fstore_spark.offline.incremental`
(late changes: :mod:`fstore_spark.offline.late`) and :mod:`fstore_spark.offline.replay`, the
writes in :mod:`fstore_spark.offline.storage`; the feature values come from the aggregation
engine (:mod:`fstore_spark.offline.windows`). This module is their public entry point.
"""

from __future__ import annotations

from fstore_spark.offline.backfill import backfill
from fstore_spark.offline.incremental import DEFAULT_LATENESS, incremental
from fstore_spark.offline.replay import replay_quarantine
from fstore_spark.offline.runs import MaterializationResult

__all__ = [
    "DEFAULT_LATENESS",
    "MaterializationResult",
    "backfill",
    "incremental",
    "replay_quarantine",
]
