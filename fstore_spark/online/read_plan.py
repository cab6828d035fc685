"""Read plans: a request shape compiled once, then used to encode keys and decode replies.

A plan knows, per feature view of the request, which hash fields to ask for (the requested
features plus ``@ts``), the RESP bytes of that ``HMGET`` except the key, how to build each
entity's key from an entity row, how to decode each field, and the max age and defaults to
apply. Compiling costs a registry lookup and some string building; reusing the plan makes a
read little more than one socket write and the decoding. Nothing here talks to Redis:
:class:`~fstore_spark.online.client.OnlineStore` does the round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fstore_spark.core import FeatureRef, FeatureView
from fstore_spark.errors import EntityRowError
from fstore_spark.online.codec import DAY_US, DECODERS, EPOCH, bulk_string, typed_default
from fstore_spark.online.layout import TS_FIELD, KeyLayout, encode_entity_key
from fstore_spark.online.response import OnlineResponse, Status

__all__ = ["ReadPlan", "ViewRead", "compile_plan", "decode_replies", "entity_keys"]


@dataclass(frozen=True)
class ViewRead:
    """Precomputed read of one view for one request shape."""

    view: str
    base: bytes  # P:proj:view:
    pointer: bytes
    key_names: tuple[str, ...]  # join key names, declared order
    key_alt: tuple[str | None, ...]  # entity name accepted instead of a single join key
    key_dtypes: tuple[str, ...]
    features: tuple[str, ...]  # requested features, in request order
    out_names: tuple[str, ...]
    decoders: tuple[Callable[[bytes], Any], ...]
    hmget_tail: bytes  # RESP of the field names plus @ts
    hmget_argc: bytes  # RESP array header of one HMGET
    max_age_us: int | None
    recency: tuple[bool, ...]
    defaults: tuple[Any, ...]


@dataclass(frozen=True)
class ReadPlan:
    """A request shape compiled once: which fields of which view keys, decoded how.

    Build with :meth:`OnlineStore.plan <fstore_spark.online.client.OnlineStore.plan>`; reuse it
    for every request of the same shape.

    Attributes:
        views: One precomputed read per view, in the order views first appear.
        columns: Output feature column names, in request order.
        join_keys: All join key names of the request, in first-seen order.
        dtypes: Output column -> dtype.
        column_index: Output column -> (view index, feature index).
    """

    views: tuple[ViewRead, ...]
    columns: tuple[str, ...]
    join_keys: tuple[str, ...]
    dtypes: Mapping[str, str]
    column_index: Mapping[str, tuple[int, int]]


# ------------------------------------------------------------------------------------ compiling


def _view_read(
    layout: KeyLayout,
    view: FeatureView,
    feats: list[str],
    keys: tuple[tuple[str, str], ...],
    dtypes: Mapping[str, str],
    entities: tuple[str, ...],
    ttl: timedelta | None,
    full_feature_names: bool,
) -> ViewRead:
    """The precomputed read of ``feats`` of one view.

    An entity with a single join key may be named instead of its key in an entity row
    (``{"customer": "c1"}``, as in Feast): that name is the key's alternative.
    """
    vname = view.name
    alt: tuple[str | None, ...] = tuple(
        entities[0] if len(keys) == 1 and len(entities) == 1 else None for _ in keys
    )
    fields = [f.encode() for f in feats] + [TS_FIELD]
    recency = {a.name for a in view.aggregations if a.function == "recency"}
    declared = {f.name: f.default for f in view.features}
    return ViewRead(
        view=vname,
        base=layout.view_base(vname),
        pointer=layout.pointer_key(vname),
        key_names=tuple(k for k, _ in keys),
        key_alt=alt,
        key_dtypes=tuple(t for _, t in keys),
        features=tuple(feats),
        out_names=tuple(f"{vname}__{f}" if full_feature_names else f for f in feats),
        decoders=tuple(DECODERS[dtypes[f]] for f in feats),
        hmget_tail=b"".join(bulk_string(f) for f in fields),
        hmget_argc=b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2),
        max_age_us=None if ttl is None else ttl // timedelta(microseconds=1),
        recency=tuple(f in recency for f in feats),
        defaults=tuple(typed_default(declared.get(f), dtypes[f]) for f in feats),
    )


def compile_plan(
    layout: KeyLayout,
    refs: Sequence[FeatureRef],
    views: Mapping[str, FeatureView],
    join_keys: Mapping[str, Sequence[tuple[str, str]]],
    view_dtypes: Mapping[str, Mapping[str, str]],
    *,
    entity_names: Mapping[str, Sequence[str]] | None = None,
    max_age: Mapping[str, timedelta | None] | None = None,
    full_feature_names: bool = False,
) -> ReadPlan:
    """Compile resolved references into a :class:`ReadPlan` (arguments as ``OnlineStore.plan``).

    ``view_dtypes``: view -> feature -> dtype, for every view of ``refs``.
    """
    by_view: dict[str, list[str]] = {}
    for r in refs:
        by_view.setdefault(r.view, []).append(r.feature)
    reads: list[ViewRead] = []
    columns: list[str] = []
    index: dict[str, tuple[int, int]] = {}
    dtypes_out: dict[str, str] = {}
    all_keys: list[str] = []
    for vi, (vname, feats) in enumerate(by_view.items()):
        view, dtypes, keys = views[vname], view_dtypes[vname], tuple(join_keys[vname])
        ttl = max_age.get(vname, view.ttl) if max_age else view.ttl
        ents = tuple((entity_names or {}).get(vname, ()))
        vr = _view_read(layout, view, feats, keys, dtypes, ents, ttl, full_feature_names)
        reads.append(vr)
        for fi, (f, out) in enumerate(zip(feats, vr.out_names, strict=True)):
            columns.append(out)
            index[out] = (vi, fi)
            dtypes_out[out] = dtypes[f]
        all_keys += [k for k in vr.key_names if k not in all_keys]
    return ReadPlan(tuple(reads), tuple(columns), tuple(all_keys), dtypes_out, index)


# ------------------------------------------------------------------------------------ entity keys


def _key_values(vr: ViewRead, i: int, row: Mapping[str, Any]) -> list[Any]:
    """Row ``i``'s join key values for one view, in declared order.

    Raises:
        EntityRowError: the row has no value for a join key (nor for its entity name).
    """
    vals = []
    for k, alt in zip(vr.key_names, vr.key_alt, strict=True):
        v = row.get(k)
        if v is None and alt is not None:
            v = row.get(alt)
        if v is None:
            raise EntityRowError(
                f"entity row {i} {dict(row)!r} has no value for join key {k!r} of "
                f"feature view {vr.view!r}"
                + (f" (or entity {alt!r})" if alt else "")
                + f". Fix: give every row {', '.join(vr.key_names)}."
            )
        vals.append(v)
    return vals


def _view_keys(vr: ViewRead, rows: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """The encoded entity key of every row for one view.

    Raises:
        EntityRowError: a row lacks a join key or has a value of the wrong type.
    """
    keys: list[bytes] = []
    single_string = len(vr.key_names) == 1 and vr.key_dtypes[0] == "string"
    for i, row in enumerate(rows):
        vals = _key_values(vr, i, row)
        try:
            if single_string and isinstance(vals[0], str):  # the common case, kept short
                keys.append(vals[0].encode())
            else:
                keys.append(encode_entity_key(vals, vr.key_dtypes))
        except (TypeError, ValueError) as exc:
            raise EntityRowError(
                f"entity row {i} {dict(row)!r}: bad join key value for feature view "
                f"{vr.view!r} ({', '.join(vr.key_names)} of dtype "
                f"{', '.join(vr.key_dtypes)}): {exc}."
            ) from None
    return keys


def entity_keys(plan: ReadPlan, rows: Sequence[Mapping[str, Any]]) -> list[list[bytes]]:
    """Per view of the plan, the encoded entity key of every row.

    Raises:
        EntityRowError: a row lacks a join key or has a value of the wrong type.
    """
    return [_view_keys(vr, rows) for vr in plan.views]


# ------------------------------------------------------------------------------------ decoding


def _join_columns(plan: ReadPlan, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The request's join key columns, taken from the rows (or their single-key entity names)."""
    n = len(rows)
    out: dict[str, list[Any]] = {k: [None] * n for k in plan.join_keys}
    for vr in plan.views:
        for k, alt in zip(vr.key_names, vr.key_alt, strict=True):
            col = out[k]
            for i, row in enumerate(rows):
                if col[i] is None:
                    v = row.get(k)
                    col[i] = row.get(alt) if v is None and alt is not None else v
    return out


@dataclass
class _ViewColumns:
    """One view's decoded columns: values and statuses per feature, timestamps per row."""

    values: list[list[Any]]
    statuses: list[list[str]]
    stamps: list[datetime | None]


def _decode_view(vr: ViewRead, replies: list[Any], n: int, now_us: int) -> _ViewColumns:
    """Decode one view's ``HMGET`` replies (features then ``@ts``; None: not read at all).

    A row older than the max age at ``now_us`` is reported but its values are not returned;
    recency features are made exact at read time, as in training sets.
    """
    nf = len(vr.features)
    out = _ViewColumns(
        [[None] * n for _ in range(nf)], [[Status.NOT_FOUND] * n for _ in range(nf)], [None] * n
    )
    cols, sts = out.values, out.statuses
    for i, rep in enumerate(replies):
        if rep is None or rep[nf] is None:  # no such key: HMGET gives all nulls
            continue
        ts = int(rep[nf])
        out.stamps[i] = EPOCH + timedelta(microseconds=ts)
        if vr.max_age_us is not None and now_us - ts > vr.max_age_us:
            for j in range(nf):
                sts[j][i] = Status.OUTSIDE_MAX_AGE
            continue
        for j in range(nf):
            raw = rep[j]
            if raw is None:
                sts[j][i] = Status.NULL_VALUE
                continue
            val = vr.decoders[j](raw)
            if vr.recency[j]:
                val = val + (now_us - ts) / DAY_US
            cols[j][i] = val
            sts[j][i] = Status.PRESENT
    for j, d in enumerate(vr.defaults):
        if d is not None:
            cols[j] = [d if v is None else v for v in cols[j]]
    return out


def decode_replies(
    plan: ReadPlan,
    rows: Sequence[Mapping[str, Any]],
    replies: list[list[Any]],
    now_us: int,
) -> OnlineResponse:
    """The response of a read: per view, the replies of its rows decoded, in request order.

    Args:
        plan: The plan the read used.
        rows: The entity rows.
        replies: Per view, per row, the ``HMGET`` reply (None when the view has no namespace).
        now_us: The read instant (epoch micros) for max-age checks and recency.
    """
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    stamps: dict[str, list[datetime | None]] = {}
    for vr, vreplies in zip(plan.views, replies, strict=True):
        decoded = _decode_view(vr, vreplies, len(rows), now_us)
        for j, name in enumerate(vr.out_names):
            values[name] = decoded.values[j]
            statuses[name] = decoded.statuses[j]
            stamps[name] = decoded.stamps
    return OnlineResponse(
        join_keys=_join_columns(plan, rows),
        values={c: values[c] for c in plan.columns},
        statuses={c: statuses[c] for c in plan.columns},
        timestamps={c: stamps[c] for c in plan.columns},
        dtypes=dict(plan.dtypes),
    )
