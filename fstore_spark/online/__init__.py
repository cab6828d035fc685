"""Online serving from Redis: the value codec, the executor writer, the read client, the sync.

Modules, bottom up:

* ``codec`` -- typed feature values as bytes, and RESP framing;
* ``connection`` -- connection settings that travel to executors, typed errors;
* ``layout`` -- key names (namespace pointer, state, lease, one hash per entity);
* ``writer`` -- the compare-and-set Lua script and the executor-side batch writer;
* ``response``, ``read_plan``, ``client`` -- the answer of a read, compiled read plans, and
  :class:`OnlineStore`, which reads in one pipelined round trip;
* ``sync_state`` -- the saved sync state, a run's result, the one-sync-per-view lease;
* ``sync_writes``, ``sync_job``, ``sync_full``, ``sync_incremental``, ``sync`` -- the Spark
  job that keeps Redis in step with a Delta feature table (:func:`sync_view`).
"""

from fstore_spark.online.client import OnlineStore
from fstore_spark.online.connection import ConnectionSpec
from fstore_spark.online.layout import KeyLayout
from fstore_spark.online.read_plan import ReadPlan
from fstore_spark.online.response import OnlineResponse, Status
from fstore_spark.online.sync import sync_view
from fstore_spark.online.sync_state import SyncResult, SyncState

__all__ = [
    "ConnectionSpec",
    "KeyLayout",
    "OnlineResponse",
    "OnlineStore",
    "ReadPlan",
    "Status",
    "SyncResult",
    "SyncState",
    "sync_view",
]
