"""``FeatureValidator``: expectations collected step by step, checked on a feature set or view.

Example::

    validator = FeatureValidator()
    validator.add_expectation("purchase_amount",
                              {"min_value": 0, "max_value": 10000, "null_percentage": 0.01})
    report = validator.validate_features(feature_set.id)
    report.success, report.to_dict()

A rule on a feature is checked on the feature table of the view that holds it (for a set id,
at the version the set pinned); a rule on a raw column the set's features are computed from
(``purchase_amount``) is checked on the source of those views.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError
from fstore_spark.quality import Expectation, expectations_from_spec
from fstore_spark.workflows.binding import bound

if TYPE_CHECKING:
    from fstore_spark.core.feature_set_versions import FeatureSetVersion
    from fstore_spark.quality import ValidationReport
    from fstore_spark.store import FeatureStore

__all__ = ["FeatureValidator"]


class FeatureValidator:
    """A list of expectations and the store to check them on.

    Args:
        store: The store (default: :func:`~fstore_spark.workflows.default_store`).
    """

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.expectations: list[Expectation] = []

    def add_expectation(
        self, column: str, spec: Mapping[str, Any] | Expectation
    ) -> list[Expectation]:
        """Add the rules of ``spec`` on ``column`` and return them.

        ``spec`` keys: ``min_value``, ``max_value``, ``null_percentage`` (the largest allowed
        fraction of nulls), ``values``, ``regex``, ``unique``, ``mostly`` (see
        :func:`fstore_spark.quality.expectations_from_spec`); or
        an :class:`~fstore_spark.quality.Expectation` built with ``expect_*``.
        """
        if isinstance(spec, Expectation):
            rules = [spec]
        elif isinstance(spec, Mapping):
            rules = expectations_from_spec(column, spec)
        else:
            raise DefinitionError(
                f"add_expectation({column!r}): give a dict of rules or an Expectation, got "
                f"{spec!r}."
            )
        self.expectations += rules
        return rules

    def validate_features(
        self,
        target: str | FeatureSetVersion,
        *,
        version: int | None = None,
        fail: bool = False,
    ) -> ValidationReport:
        """Check every expectation on a feature set (``name`` or ``name@vN``) or a view.

        ``fail=True`` raises :class:`~fstore_spark.errors.ValidationError` when a rule fails.
        """
        if not self.expectations:
            raise DefinitionError("no expectations: call add_expectation(...) first.")
        return bound(self._store).validate(
            target, list(self.expectations), version=version, fail=fail
        )
