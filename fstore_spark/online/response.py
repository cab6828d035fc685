"""The answer of an online read: typed values per column, with a status per value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OnlineResponse", "Status"]


class Status:
    """Per-value status of an online read (the names Feast uses).

    * ``PRESENT`` -- the entity has a value within the max age;
    * ``NULL_VALUE`` -- the entity's row is present but this feature is null;
    * ``NOT_FOUND`` -- no row for the entity (never synced, deleted, or expired by Redis);
    * ``OUTSIDE_MAX_AGE`` -- a row exists but is older than the view's ttl at read time; its
      value is not returned.
    """

    PRESENT = "PRESENT"
    NULL_VALUE = "NULL_VALUE"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


@dataclass
class OnlineResponse:
    """The result of an online read, column-wise (Feast's ``OnlineResponse`` shape).

    Attributes:
        join_keys: Join key column -> values, one per entity row.
        values: Feature column -> decoded values (``None`` when not present).
        statuses: Feature column -> :class:`Status` names.
        timestamps: Feature column -> feature timestamp of the value (aware UTC) or None.
        dtypes: Feature column -> dtype.

    Example::

        resp = store.get_online_features(features=["profile:age"], entity_rows=[{"customer": "c1"}])
        resp.to_dict()        # {'customer_id': ['c1'], 'age': [42]}
        resp.to_pandas()      # one row per entity
    """

    join_keys: dict[str, list[Any]]
    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    timestamps: dict[str, list[datetime | None]]
    dtypes: dict[str, str]

    def to_dict(
        self, *, include_status: bool = False, include_timestamps: bool = False
    ) -> dict[str, list[Any]]:
        """Column name -> list of values (join keys first, then features in request order).

        Args:
            include_status: Add ``<feature>__status`` columns.
            include_timestamps: Add ``<feature>__timestamp`` columns.
        """
        out: dict[str, list[Any]] = dict(self.join_keys)
        for name, vals in self.values.items():
            out[name] = vals
            if include_status:
                out[f"{name}__status"] = self.statuses[name]
            if include_timestamps:
                out[f"{name}__timestamp"] = self.timestamps[name]
        return out

    def to_pandas(self, *, include_status: bool = False) -> pd.DataFrame:
        """One row per entity row, with nullable dtypes matching the features' dtypes."""
        import pandas as pd

        data: dict[str, Any] = {}
        for name, vals in self.join_keys.items():
            data[name] = pd.Series(vals, dtype=object)
        for name, vals in self.values.items():
            data[name] = _pandas_series(vals, self.dtypes[name])
            if include_status:
                data[f"{name}__status"] = pd.Series(self.statuses[name], dtype=object)
        return pd.DataFrame(data)


def _pandas_series(vals: list[Any], dtype: str) -> pd.Series:
    """A column of a dtype as a nullable pandas Series (floats: null is NaN)."""
    import pandas as pd

    if dtype in ("int32", "int64"):
        return pd.Series(vals, dtype="Int32" if dtype == "int32" else "Int64")
    if dtype in ("float32", "float64"):
        return pd.Series([math.nan if v is None else v for v in vals], dtype="float64")
    if dtype == "bool":
        return pd.Series(vals, dtype="boolean")
    if dtype == "timestamp":
        return pd.Series(pd.to_datetime(vals, utc=True)).astype("datetime64[us, UTC]")
    return pd.Series(vals, dtype=object)
