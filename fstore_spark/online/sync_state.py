"""What a view's syncs did: the state saved after each run, one run's result, and the lease.

The state and the lease live in Redis next to the data they describe: the state in the view's
``_meta`` hash, the lease (one sync per view at a time) in its ``_lock`` key (see
:mod:`fstore_spark.online.layout`).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import OnlineStoreError
from fstore_spark.online.connection import redis_errors

if TYPE_CHECKING:
    import redis

__all__ = ["LEASE_MS", "SyncLease", "SyncResult", "SyncState"]

LEASE_MS = 60_000
"""Lifetime of a sync lease (ms); a running job renews it every third of that."""


@dataclass(frozen=True)
class SyncState:
    """A view's sync state, kept in Redis next to the data it describes (``_meta`` hash).

    Keeping it in Redis means the state can never claim more than Redis holds: a flushed or
    replaced Redis has no state, and the next sync is a full one.

    Attributes:
        ns: Current namespace (what the pointer key says), or None before the first sync.
        version: Delta version of the feature table last synced completely.
        as_of_us: The instant (epoch micros) that sync served "latest as of".
        future_us: Largest feature timestamp beyond ``as_of_us`` seen then (rows that become
            current later and must be picked up by the next sync), or None.
        definition_hash: The view definition the data was synced with.
        table: The feature table the state describes (its location): a state written by a
            sync of another lakehouse's table (same project and key prefix on one Redis) is
            not this table's.
        synced_at_us: When the last sync finished.
        synced_by: Who ran it (the store's identity), if recorded.
        pending_ns: Namespace of a full reload that started but did not flip (crashed).
        pending_version: Delta version that reload was reading.
        pending_as_of_us: Its "as of" instant.
        unlink_ns: An old namespace a finished reload flipped away from and has not removed
            yet (the job was killed before): the next sync removes it.
    """

    ns: int | None = None
    version: int | None = None
    as_of_us: int | None = None
    future_us: int | None = None
    definition_hash: str | None = None
    table: str | None = None
    synced_at_us: int | None = None
    synced_by: str | None = None
    pending_ns: int | None = None
    pending_version: int | None = None
    pending_as_of_us: int | None = None
    unlink_ns: int | None = None

    @classmethod
    def from_hash(cls, h: Mapping[bytes, bytes]) -> SyncState:
        """Parse the ``_meta`` hash (an empty field reads as None)."""

        def i(name: str) -> int | None:
            raw = h.get(name.encode())
            return None if raw is None or raw == b"" else int(raw)

        dh, table, by = h.get(b"definition_hash"), h.get(b"table"), h.get(b"synced_by")
        return cls(
            ns=i("ns"),
            version=i("version"),
            as_of_us=i("as_of_us"),
            future_us=i("future_us"),
            definition_hash=None if dh is None else dh.decode(),
            table=None if table is None else table.decode(),
            synced_at_us=i("synced_at_us"),
            synced_by=by.decode() if by else None,
            pending_ns=i("pending_ns"),
            pending_version=i("pending_version"),
            pending_as_of_us=i("pending_as_of_us"),
            unlink_ns=i("unlink_ns"),
        )


@dataclass(frozen=True)
class SyncResult:
    """What one sync run did.

    Attributes:
        view: Feature view name.
        mode: ``full``, ``incremental`` or ``noop`` (nothing changed since the last sync).
        version: Delta version of the feature table now in Redis.
        previous_version: Delta version synced before (None the first time).
        namespace: Namespace the view's keys are in after the run.
        keys_written: Entity hashes written (new or changed values).
        keys_skipped: Writes the compare-and-set script refused (stored value as new or newer,
            or unchanged), plus deletes of keys that were not there.
        keys_deleted: Entity hashes deleted (entity gone from the table or out of ttl).
        keys_unlinked: Keys of the previous namespace removed after a full reload.
        as_of: The instant "latest" was taken at.
        reason: Why this mode was chosen.
        resumed: Whether a crashed full reload was resumed.
        seconds: Wall-clock duration.
    """

    view: str
    mode: str
    version: int | None
    previous_version: int | None
    namespace: int | None
    keys_written: int
    keys_skipped: int
    keys_deleted: int
    keys_unlinked: int
    as_of: datetime
    reason: str
    resumed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        return d


class SyncLease:
    """A Redis lease so that one sync per view runs at a time; renewed by a daemon thread.

    Rules: taking it fails at once when another job holds it (no waiting); a job that dies
    stops renewing, so its lease lapses within :data:`LEASE_MS`, and a holder on this host
    whose process is gone (killed) is taken over at once; releasing deletes the key only if
    this job still holds it.

    Example::

        with SyncLease(online.client, online.layout.lock_key("profile"), "profile"):
            ...  # the sync
    """

    _RELEASE = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0"
    )
    _TAKE_OVER = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return 0"
    )
    _RENEW = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
    )

    def __init__(
        self,
        client: redis.Redis,
        key: bytes,
        view: str,
        error: Callable[[BaseException, str], OnlineStoreError] | None = None,
    ) -> None:
        """Prepare the lease of ``view`` at ``key``; nothing is sent before ``with``.

        ``error`` turns a failed Redis call into the typed error raised (for example the
        connection's :meth:`~fstore_spark.online.connection.ConnectionSpec.error`).
        """
        self.client = client
        self.key = key
        self.view = view
        self._error = error
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}".encode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SyncLease:
        """Take the lease and start renewing it.

        Raises:
            OnlineStoreError: another sync of the view holds the lease, or Redis refused it
                (a read-only replica, a user without write access).
        """
        try:
            ok, holder, ttl = self._take()
        except redis_errors() as exc:
            if self._error is None:
                raise
            raise self._error(exc, f"take the sync lease of view {self.view!r}") from exc
        if not ok:
            raise OnlineStoreError(
                f"another sync of view {self.view!r} is running (lease held by "
                f"{holder.decode() if holder else '?'}, expires in {max(ttl, 0) / 1000:.0f}s). "
                "Fix: wait for it to finish; a crashed job's lease lapses by itself."
            )
        self._thread = threading.Thread(target=self._renew, name="fstore-sync-lease", daemon=True)
        self._thread.start()
        return self

    def _take(self) -> tuple[bool, Any, Any]:
        """Try to take the lease: (taken, the holder's token, its time to live in ms)."""
        ok = self.client.set(self.key, self.token, nx=True, px=LEASE_MS)
        holder: Any = None if ok else self.client.get(self.key)
        if not ok and holder is not None and _holder_is_dead(holder):
            ok = bool(self.client.eval(self._TAKE_OVER, 1, self.key, holder, self.token, LEASE_MS))
        ttl: Any = None if ok else self.client.pttl(self.key)
        return bool(ok), holder, ttl

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_MS / 3000):
            try:
                self.client.eval(self._RENEW, 1, self.key, self.token, LEASE_MS)
            except Exception:  # best effort: the job itself reports Redis failures
                pass

    def __exit__(self, *exc: object) -> None:
        """Stop renewing and release the lease (if it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.client.eval(self._RELEASE, 1, self.key, self.token)
        except Exception:  # the lease lapses by itself
            pass


def _holder_is_dead(holder: bytes) -> bool:
    """Whether a lease token (``host:pid:nonce``) names a process of this host that is gone.

    Only then is a lease provably abandoned (a job killed with ``kill -9``); a holder on another
    host may be alive, and its lease lapses by itself.
    """
    parts = holder.decode(errors="replace").rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists (owned by another user)
        return False
    return False
