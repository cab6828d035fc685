"""``WindowAggregator``: one window and a list of functions, expanded over a source's columns.

A feature group (:meth:`FeatureStore.create_feature_group`) is an aggregated feature view
written in fewer words: each aggregator applies its functions over its window to every
numeric column of the source (or to the columns it names). ``count`` counts the source's
events once per window rather than once per column.

Example:
    >>> agg = WindowAggregator(window_size="30d", aggregations=["mean", "sum", "count"])
    >>> [a.name for a in agg.expand(["amount"])]
    ['mean_amount_30d', 'sum_amount_30d', 'count_events_30d']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from fstore_spark.core.aggregations import AGG_FUNCTIONS, Aggregation
from fstore_spark.core.durations import check_duration
from fstore_spark.errors import DefinitionError

__all__ = ["WindowAggregator"]

# Functions that count events rather than summarise a column.
_EVENT_FUNCTIONS = ("count", "recency")


@dataclass(frozen=True, init=False)
class WindowAggregator:
    """Aggregations of one window over several columns.

    Attributes:
        window_size: The window, ``"30d"`` or a timedelta (``None``: the whole history).
        aggregations: Functions among :data:`~fstore_spark.core.aggregations.AGG_FUNCTIONS`
            (``avg`` is accepted for ``mean``).
        columns: The source columns to aggregate; empty: every numeric column but the keys
            and timestamps (chosen when the group is created, from the source's schema).
    """

    window_size: timedelta | None
    aggregations: tuple[str, ...]
    columns: tuple[str, ...] = field(default=())

    def __init__(
        self,
        window_size: timedelta | str | None,
        aggregations: Sequence[str],
        columns: Sequence[str] = (),
    ) -> None:
        owner = "WindowAggregator"
        window = (
            None
            if window_size is None
            else check_duration(window_size, owner=owner, role="window_size")
        )
        funcs = tuple("mean" if str(f).lower() == "avg" else str(f).lower() for f in aggregations)
        unknown = [f for f in funcs if f not in AGG_FUNCTIONS]
        if not funcs or unknown:
            raise DefinitionError(
                f"{owner}: unknown aggregation(s) {unknown or '(none given)'}. Fix: use "
                f"{', '.join(AGG_FUNCTIONS)}."
            )
        if isinstance(columns, str):
            columns = (columns,)
        object.__setattr__(self, "window_size", window)
        object.__setattr__(self, "aggregations", tuple(dict.fromkeys(funcs)))
        object.__setattr__(self, "columns", tuple(columns))

    def expand(self, columns: Sequence[str]) -> list[Aggregation]:
        """The aggregations over ``columns`` (this aggregator's own columns when it names any)."""
        cols = list(self.columns or columns)
        out: list[Aggregation] = []
        for function in self.aggregations:
            if function in _EVENT_FUNCTIONS:
                out.append(Aggregation(column="*", function=function, window=self.window_size))
                continue
            out += [Aggregation(column=c, function=function, window=self.window_size) for c in cols]
        return out
