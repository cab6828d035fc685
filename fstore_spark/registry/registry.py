"""The registry: a versioned catalog of definitions, stored as a Delta table.

One row per live object ``(category, name)`` holds its JSON definition, a per-object ``version``
that increases by one each time the definition changes, the definition hash, when it was created
and last updated, and who applied it. Because the table is a Delta table:

* every ``apply`` is one Delta commit, so the registry has history and **time travel**:
  :meth:`Registry.list` with ``as_of_version`` / ``as_of_timestamp`` returns the definitions
  that were live then;
* the change data feed is on, so :meth:`Registry.history` lists every version an object had;
* concurrent ``apply`` calls are safe: the MERGE is guarded by the versions the plan was computed
  from (optimistic concurrency). When another writer got there first, Delta raises a conflict or
  the guarded MERGE touches fewer rows than planned; either way the apply re-reads the registry,
  re-plans and retries (``registry.max_commit_retries``), and reports a
  :class:`~fstore_spark.errors.RegistryError` if it still cannot commit. Nothing is silently lost.

Categories: ``entity``, ``data_source`` (Delta and parquet sources share one name space),
``feature_view``, ``feature_set``, ``online_serving`` (serving settings of a feature set),
``feature_set_pins`` (the Delta versions a feature set version reads; written in the same commit
as the feature set version it belongs to), ``ab_test`` (an A/B test of feature sets, as started).

Validation runs on the whole resulting catalog *before* any write: an apply that would leave a
view referring to an unknown entity, or a feature set to an unknown feature, writes nothing.

Example::

    reg = Registry(spark, "/lake/proj/_registry")
    plan = reg.plan([customer, transactions, customer_features])
    print(plan)               # + entity customer (v1) ...
    reg.apply([customer, transactions, customer_features])
    reg.get("feature_view", "customer_features").version       # 1
    reg.list("feature_view", as_of_version=0)                   # as after the first apply
"""

from __future__ import annotations

import getpass
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import NotFoundError, RegistryError
from fstore_spark.lakehouse.tables import is_delta_table, latest_version, read_delta
from fstore_spark.lakehouse.writes import (
    MergeSpec,
    create_table_if_absent,
    is_commit_conflict,
    merge,
)
from fstore_spark.registry.plan import (
    CATEGORIES,
    Change,
    Plan,
    RegistryEntry,
    category_of,
    compute_plan,
    definition_digest,
)
from fstore_spark.registry.policy import CATEGORY as POLICY
from fstore_spark.registry.policy import AccessPolicy, Policies

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_list = list  # the builtin, since Registry.list shadows the name inside the class

__all__ = [
    "CATEGORIES",
    "Change",
    "Plan",
    "Registry",
    "RegistryEntry",
    "category_of",
]

_SCHEMA = (
    "category STRING NOT NULL, name STRING NOT NULL, version BIGINT NOT NULL, "
    "definition STRING NOT NULL, definition_hash STRING NOT NULL, "
    "created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, applied_by STRING NOT NULL"
)


def _now() -> datetime:
    now = datetime.now(UTC)  # milliseconds: what Delta's timestamps keep round-trip exactly
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def current_identity(configured: str | None = None, spark: SparkSession | None = None) -> str:
    """Who is acting: the configured identity, ``$FSTORE_USER``, the Databricks user, the OS user.

    On Databricks (``DATABRICKS_RUNTIME_VERSION`` set) the workspace user comes from SQL
    ``current_user()`` of ``spark``; elsewhere that is the OS user of the Spark driver, so the
    local OS user is used directly.
    """
    if configured:
        return configured
    if os.environ.get("FSTORE_USER"):
        return os.environ["FSTORE_USER"]
    if spark is not None and os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        row = spark.sql("SELECT current_user() AS u").first()
        if row is not None and row["u"]:
            return str(row["u"])
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


class _Stale(Exception):
    """The registry moved between plan and MERGE; re-plan."""


class Registry:
    """Versioned catalog of definitions in a Delta table at ``path``.

    Rules:
        * ``apply`` upserts the given objects; with ``prune=True`` it also removes every object
          of the definition categories that is not given (a feature repo is the whole truth,
          as ``feast apply``).
        * An object's ``version`` increases only when its definition hash changes; applying
          the same definitions again writes nothing (no empty commit).
        * The resulting catalog is validated as a whole before anything is written.

    Example::

        reg = Registry(spark, "/tmp/lake/demo/_registry")
        reg.apply([customer, source, view])
        assert reg.get("feature_view", view.name).version == 1
    """

    def __init__(
        self,
        spark: SparkSession,
        path: str,
        *,
        max_retries: int = 10,
        user: str | None = None,
        on_write: Callable[[], None] | None = None,
    ) -> None:
        """Open (lazily create) the registry at ``path``; ``on_write`` runs after each write."""
        self._spark = spark
        self.path = path
        self._max_retries = max_retries
        self._user = user
        self._on_write = on_write
        # entries per registry version: a version never changes, so a read of it is kept
        self._by_version: dict[int, _list[RegistryEntry]] = {}

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        """Whether the registry table has been created."""
        return is_delta_table(self._spark, self.path)

    def version(self) -> int | None:
        """Current Delta version of the registry table (``None`` before the first apply)."""
        return latest_version(self._spark, self.path)

    def _read(
        self, as_of_version: int | None = None, as_of_timestamp: datetime | str | None = None
    ) -> DataFrame:
        if as_of_version is not None and as_of_timestamp is not None:
            raise RegistryError("give as_of_version or as_of_timestamp, not both.")
        options = {}
        if as_of_version is None and as_of_timestamp is not None:
            ts = as_of_timestamp
            if isinstance(ts, datetime):
                ts = ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            options["timestampAsOf"] = ts
        return read_delta(self._spark, self.path, version=as_of_version, options=options)

    def list(
        self,
        category: str | None = None,
        *,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | str | None = None,
    ) -> _list[RegistryEntry]:
        """List live objects, optionally of one category, now or as of a registry version.

        Args:
            category: One of :data:`CATEGORIES`, or ``None`` for all.
            as_of_version: Delta version of the registry table to read (0 is the first apply).
            as_of_timestamp: Read the registry as it was at this instant (UTC).

        Returns:
            Entries sorted by category then name (the registry is small: read on the driver).
        """
        if category is not None and category not in CATEGORIES:
            raise RegistryError(
                f"unknown registry category {category!r}; use one of {', '.join(CATEGORIES)}."
            )
        if as_of_timestamp is not None:
            if as_of_version is not None:
                raise RegistryError("give as_of_version or as_of_timestamp, not both.")
            entries = self._entries(self._read(as_of_timestamp=as_of_timestamp))
        elif as_of_version is None:
            version = self.version()
            if version is None:  # nothing applied yet
                return []
            entries = self._at_version(version)
        else:
            if int(as_of_version) not in self._by_version and not self.exists():
                raise NotFoundError(
                    f"registry {self.path} has no versions yet. Fix: run `fstore apply` first."
                )
            entries = self._at_version(int(as_of_version))
        return [e for e in entries if category is None or e.category == category]

    def _at_version(self, version: int) -> _list[RegistryEntry]:
        """Every entry as of a registry version: read once, then served from memory."""
        if version not in self._by_version:
            if len(self._by_version) >= 8:  # bounded: the oldest read goes first
                del self._by_version[next(iter(self._by_version))]
            self._by_version[version] = self._entries(self._read(version))
        return self._by_version[version]

    def _entries(self, df: DataFrame) -> _list[RegistryEntry]:
        """The entries of a registry read, sorted by category then name."""
        rows = df.collect()  # bounded: one row per definition
        entries = [
            RegistryEntry(
                category=r["category"],
                name=r["name"],
                version=int(r["version"]),
                definition=json.loads(r["definition"]),
                definition_hash=r["definition_hash"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                applied_by=r["applied_by"],
            )
            for r in rows
        ]
        order: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
        return sorted(entries, key=lambda e: (order.get(e.category, 99), e.name))

    def get(
        self,
        category: str,
        name: str,
        *,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | str | None = None,
    ) -> RegistryEntry:
        """Return one object's entry.

        Raises:
            NotFoundError: no such object (the message lists the names that exist).
        """
        entries = self.list(category, as_of_version=as_of_version, as_of_timestamp=as_of_timestamp)
        for e in entries:
            if e.name == name:
                return e
        known = ", ".join(e.name for e in entries) or "(none)"
        when = "" if as_of_version is None else f" as of registry version {as_of_version}"
        raise NotFoundError(
            f"no {category} named {name!r} in the registry{when}. Known: {known}. "
            "Fix: check the name or run `fstore apply`."
        )

    def history(
        self, category: str | None = None, name: str | None = None
    ) -> _list[dict[str, Any]]:
        """Every version of every object (or one object), read from the change data feed.

        Returns:
            Dicts with ``category, name, version, definition_hash, updated_at, applied_by,
            registry_version, change`` (``upsert`` or ``remove``), oldest first.
        """
        if not self.exists():
            return []
        from pyspark.sql import functions as F

        changes = {"readChangeFeed": "true", "startingVersion": 0}
        df = read_delta(self._spark, self.path, options=changes).where(
            F.col("_change_type").isin("insert", "update_postimage", "delete")
        )
        if category is not None:
            df = df.where(F.col("category") == category)
        if name is not None:
            df = df.where(F.col("name") == name)
        rows = df.orderBy("_commit_version", "category", "name").collect()
        return [
            {
                "category": r["category"],
                "name": r["name"],
                "version": int(r["version"]),
                "definition_hash": r["definition_hash"],
                "updated_at": r["updated_at"],
                "applied_by": r["applied_by"],
                "registry_version": int(r["_commit_version"]),
                "change": "remove" if r["_change_type"] == "delete" else "upsert",
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ planning

    def plan(
        self,
        objects: Iterable[Any] = (),
        *,
        settings: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        prune: bool = False,
    ) -> Plan:
        """Compare definitions with the registry without writing anything.

        Args:
            objects: Definitions to apply (sources embedded in views are registered too).
            settings: Non-definition entries keyed by ``(category, name)``, e.g.
                ``{("online_serving", "fraud_v1"): {...}}``.
            prune: Treat ``objects`` as the complete set of definitions: objects of the
                definition categories that are not given are planned for removal.

        Returns:
            The plan (``str(plan)`` is a readable diff).

        Raises:
            DefinitionError: the definitions, merged with what stays in the registry, are
                invalid (duplicate names, unknown entity or source, feature collisions...).
        """
        current = {(e.category, e.name): e for e in self.list()}
        return compute_plan(current, self.version(), list(objects), dict(settings or {}), prune)

    # ------------------------------------------------------------------ writing

    def apply(
        self,
        objects: Iterable[Any] = (),
        *,
        settings: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        prune: bool = False,
    ) -> Plan:
        """Validate and write definitions; one Delta commit (none when nothing changed).

        Concurrent applies are retried on conflict (see the module docstring).

        Args:
            objects: Definitions to upsert.
            settings: Non-definition entries, see :meth:`plan`.
            prune: Remove definitions that are not given.

        Returns:
            The plan that was applied (computed from the registry state it committed over).

        Raises:
            DefinitionError: invalid definitions; nothing was written.
            AccessDeniedError: a changed view's access policy lists owners, and this
                registry's user is not one of them; nothing was written.
            RegistryError: conflicts persisted after ``max_retries`` retries.
        """
        objs = list(objects)
        sets = dict(settings or {})
        self._ensure_table()
        last_error: BaseException | None = None
        for attempt in range(self._max_retries + 1):
            current = {(e.category, e.name): e for e in self.list()}
            plan = compute_plan(current, self.version(), objs, sets, prune)
            if not plan.has_changes:
                return plan
            _check_owners(plan, current, self._user or current_identity())
            try:
                self._merge(plan, current)
                if self._on_write is not None:
                    self._on_write()
                return plan
            except Exception as exc:
                if not (isinstance(exc, _Stale) or is_commit_conflict(exc)):
                    raise
                last_error = exc  # another writer committed first: re-plan
                time.sleep(min(0.05 * (2**attempt), 1.0))
        raise RegistryError(
            f"registry {self.path}: apply kept conflicting with concurrent writers after "
            f"{self._max_retries} retries ({type(last_error).__name__}). Fix: retry, or raise "
            "registry.max_commit_retries."
        )

    def set_access_policy(
        self, view: str, *, owners: Iterable[str] = (), readers: Iterable[str] = ()
    ) -> AccessPolicy:
        """Set who owns and who may read ``view`` (empty lists: anyone; see ``policy``).

        Raises:
            NotFoundError: no such view.
            AccessDeniedError: the view's current owners do not include this user.
        """
        self.get("feature_view", view)
        policy = AccessPolicy(view, tuple(owners), tuple(readers))
        self.apply([], settings={(POLICY, view): policy.to_dict()})
        return policy

    def _ensure_table(self) -> None:
        schema = self._spark.createDataFrame([], _SCHEMA).schema
        properties = {"delta.enableChangeDataFeed": "true", "delta.appendOnly": "false"}
        create_table_if_absent(self._spark, self.path, schema, properties)

    def _merge(self, plan: Plan, current: Mapping[tuple[str, str], RegistryEntry]) -> None:
        now = _now()
        user = self._user or current_identity()
        rows: _list[tuple[Any, ...]] = []
        for c in plan.changes:
            if c.action == "unchanged":
                continue
            old = current.get((c.category, c.name))
            d = c.definition
            rows.append(
                (
                    c.action,
                    plan._expected.get((c.category, c.name)),
                    c.category,
                    c.name,
                    c.new_version if c.new_version is not None else (c.old_version or 0),
                    json.dumps(d, sort_keys=True) if d is not None else "{}",
                    definition_digest(d) if d is not None else "",
                    old.created_at if old is not None else now,
                    now,
                    user,
                )
            )
        src = self._spark.createDataFrame(
            rows, "_action STRING, _expected BIGINT, " + _SCHEMA.replace(" NOT NULL", "")
        )
        cols = [
            "version",
            "definition",
            "definition_hash",
            "created_at",
            "updated_at",
            "applied_by",
        ]
        guard = "t.version = s._expected"
        spec = MergeSpec(
            on="t.category = s.category AND t.name = s.name",
            delete_when=f"s._action = 'remove' AND {guard}",
            update=(f"s._action = 'change' AND {guard}", {c: f"s.{c}" for c in cols}),
            insert=("s._action = 'add'", {c: f"s.{c}" for c in ["category", "name", *cols]}),
        )
        result = merge(self._spark, self.path, src, spec, metadata=_audit(plan, user))
        affected = None
        if result is not None:
            first = result.first()
            if first is not None and "num_affected_rows" in first.asDict():
                affected = int(first["num_affected_rows"])
        if affected is not None and affected != len(rows):
            # Some guarded rows were not touched: a concurrent apply changed them between our
            # read and our MERGE. Our commit holds the rows that were still as planned; re-plan.
            raise _Stale(f"expected {len(rows)} rows, merged {affected}")


def _audit(plan: Plan, user: str) -> str:
    """A registry commit's ``userMetadata``: who changed which objects, from which version."""
    changes = [
        {
            "category": c.category,
            "name": c.name,
            "action": c.action,
            "from_version": c.old_version,
            "to_version": c.new_version,
        }
        for c in plan.changes
        if c.action != "unchanged"
    ]
    return json.dumps({"fstore_registry": True, "by": user, "changes": changes}, sort_keys=True)


def _check_owners(plan: Plan, current: Mapping[tuple[str, str], RegistryEntry], who: str) -> None:
    """Refuse a plan changing a view (or its policy) whose current policy names other owners."""
    entries = {n: e.definition for (c, n), e in current.items() if c == POLICY}
    if not entries:
        return
    touched = [
        c.name
        for c in plan.changes
        if c.action != "unchanged" and c.category in ("feature_view", POLICY)
    ]
    Policies(entries).check_write(touched, who, "change")
