"""Offline features: aggregation, materialization, as-of join, training sets, versions.

* Aggregation engine: ``plan`` (which partial aggregates a view needs), ``tiles`` (events
  rolled up per entity and tile), ``windows`` (the semantics, and every window from the tiles
  in one sweep), ``instants`` (the same rows evaluated directly at a few instants).
* Materialization: ``materialization`` (public entry point), ``backfill``, ``incremental``,
  ``runs`` (run context and result), ``storage`` (writing tile and feature tables).
* Training sets: ``asof`` (the point-in-time join), ``training`` (historical features, split,
  export), ``training_sets`` (from registered definitions).
* ``versions`` (Delta history and diffs of feature tables), ``service`` (a store's feature
  tables).
"""
