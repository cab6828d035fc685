"""Bytes in Redis: typed feature values, and RESP bulk strings.

Values are compact and typed by the registry's dtypes: integers in decimal, floats as the
shortest repr that round-trips (``0.1``, ``1e-07``, ``nan``, ``inf``), booleans ``1``/``0``,
strings UTF-8, timestamps epoch micros, dates days since 1970-01-01. A null is never written:
the field is left out of the entity's hash. Decimal text keeps small values small (Redis stores
integer-looking strings of a small hash as integers) and decodes with one ``int()``/``float()``
call.

Two encoders give text that decodes to the same value: :func:`encode_value` (one Python value,
used for keys and tests) and :func:`encode_arrow` (a whole Arrow column, used by the executors
that write; floats may differ in spelling: ``1e-07`` from one, ``1e-7`` from the other).

Example:
    >>> decode_value(encode_value(0.1, "float64"), "float64")
    0.1
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import OnlineStoreError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DAY_US",
    "DECODERS",
    "EPOCH",
    "bulk_string",
    "decode_timestamp",
    "decode_value",
    "encode_arrow",
    "encode_value",
    "from_micros",
    "micros",
    "timestamp_to_us",
    "typed_default",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The Unix epoch, aware UTC: timestamps are stored as microseconds since it."""

DAY_US = 86_400_000_000
"""Microseconds in a day."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def micros(ts: datetime) -> int:
    """Epoch microseconds of an instant (a naive one is local time, as ``astimezone`` reads it)."""
    return (ts.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    """The aware UTC instant ``us`` epoch microseconds stand for."""
    return EPOCH + timedelta(microseconds=us)


def timestamp_to_us(value: Any) -> int:
    """Epoch microseconds of a timestamp given as ISO text, a datetime or already micros.

    Naive datetimes (and ISO text without an offset) are taken as UTC.

    Raises:
        TypeError: ``value`` is not a timestamp.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int((value - EPOCH) // timedelta(microseconds=1))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected a timestamp, got {type(value).__name__}")


def _encode_float(value: Any) -> bytes:
    f = float(value)
    if math.isnan(f):
        return b"nan"
    if math.isinf(f):
        return b"inf" if f > 0 else b"-inf"
    return repr(f).encode()


def encode_value(value: Any, dtype: str) -> bytes | None:
    """Encode one feature value (``None`` for null: the field is left out of the hash).

    Example:
        >>> encode_value(0.1, "float64"), encode_value(True, "bool"), encode_value(None, "int64")
        (b'0.1', b'1', None)

    Raises:
        OnlineStoreError: ``dtype`` is not a dtype the online store serves.
    """
    if value is None:
        return None
    if dtype == "string":
        return str(value).encode()
    if dtype in ("int32", "int64"):
        return str(int(value)).encode()
    if dtype in ("float32", "float64"):
        return _encode_float(value)
    if dtype == "bool":
        return b"1" if value else b"0"
    if dtype == "timestamp":
        return str(timestamp_to_us(value)).encode()
    if dtype == "date":
        d = date.fromisoformat(value) if isinstance(value, str) else value
        return str(d.toordinal() - _EPOCH_ORDINAL).encode()
    raise OnlineStoreError(f"cannot encode dtype {dtype!r}")


def decode_timestamp(b: bytes) -> datetime:
    """An aware UTC datetime from epoch micros text."""
    return EPOCH + timedelta(microseconds=int(b))


def _decode_date(b: bytes) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + int(b))


def _decode_bool(b: bytes) -> bool:
    return b == b"1"


def _decode_str(b: bytes) -> str:
    return b.decode()


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "string": _decode_str,
    "int32": int,
    "int64": int,
    "float32": float,
    "float64": float,
    "bool": _decode_bool,
    "timestamp": decode_timestamp,
    "date": _decode_date,
}
"""dtype -> decoder of the bytes :func:`encode_value` wrote (a hot path of every read)."""


def decode_value(raw: bytes | None, dtype: str) -> Any:
    """Decode bytes written by :func:`encode_value` (``None`` stays ``None``).

    Timestamps decode to aware UTC datetimes, dates to ``date``.

    Example:
        >>> decode_value(b"1e-07", "float64"), decode_value(b"0", "bool")
        (1e-07, False)
    """
    if raw is None:
        return None
    return DECODERS[dtype](raw)


def typed_default(value: Any, dtype: str) -> Any:
    """A feature's declared default as the type its reads decode to (``None`` stays ``None``)."""
    if value is None:
        return None
    if dtype == "timestamp" and isinstance(value, str):
        return decode_timestamp(str(timestamp_to_us(value)).encode())
    if dtype == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if dtype in ("float32", "float64"):
        return float(value)
    return value


def encode_arrow(arr: pa.Array) -> pa.Array:
    """Encode an Arrow column as :func:`encode_value` would, vectorised (a binary array).

    Nulls stay null. Floats are widened to double first: the stored text is the double the
    value is, not float32's shortest repr, so both encoders decode to the same number.

    Raises:
        OnlineStoreError: the column's Arrow type has no online encoding.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_binary(t):
        return arr
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out = arr
    elif pa.types.is_floating(t):
        out = pc.cast(pc.cast(arr, pa.float64()), pa.string())
    elif pa.types.is_integer(t):
        out = pc.cast(arr, pa.string())
    elif pa.types.is_boolean(t):
        out = pc.cast(pc.cast(arr, pa.int8()), pa.string())
    elif pa.types.is_timestamp(t):
        in_us = pc.cast(arr, pa.timestamp("us", tz=t.tz)) if t.unit != "us" else arr
        out = pc.cast(pc.cast(in_us, pa.int64()), pa.string())
    elif pa.types.is_date32(t):
        out = pc.cast(pc.cast(arr, pa.int32()), pa.string())
    else:
        raise OnlineStoreError(f"cannot encode a column of Arrow type {t} for the online store")
    return pc.cast(out, pa.binary())


def bulk_string(b: bytes) -> bytes:
    r"""One RESP bulk string: ``$<length>`` CRLF ``<bytes>`` CRLF.

    Example:
        >>> bulk_string(b"age")
        b'$3\r\nage\r\n'
    """
    return b"$%d\r\n%s\r\n" % (len(b), b)
