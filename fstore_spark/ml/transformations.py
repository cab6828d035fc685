"""Transformations attached to features: encoders kept in the registry, fitted on training data.

``add_transformation("customer_category", Encoder(method="target_encoding"))`` records, in
the registry (category ``transformation``), that this feature is encoded this way in every
model trained on it. :meth:`Transformations.fit` fits the recorded encoders of the features a
training set holds; the fitted encoders go to ``log_model(encoders=...)``, which stores their
state with the model, and ``score_batch`` applies them again, so training and scoring encode
alike.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from fstore_spark.errors import DefinitionError, NotFoundError
from fstore_spark.ml.encoders import Encoder, FittedEncoder

if TYPE_CHECKING:
    from fstore_spark.registry.context import StoreContext

__all__ = ["Transformations"]

_CATEGORY = "transformation"


class Transformations:
    """The encoders attached to a store's features."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def add(self, feature: str, transformation: Encoder) -> dict[str, Any]:
        """Attach an encoder to a feature (``view:feature`` or a feature name unique in the repo).

        Raises:
            NotFoundError: no view has the feature.
            DefinitionError: the name is in several views, or the transformation is no encoder.
        """
        if not isinstance(transformation, Encoder):
            raise DefinitionError(
                f"add_transformation({feature!r}): give an Encoder, got {transformation!r}."
            )
        ref = self._resolve(feature)
        entry = {"feature": ref, "encoder": {**asdict(transformation), "column": ""}}
        self._ctx.apply([], settings={(_CATEGORY, ref): entry})
        return entry

    def attached(self) -> dict[str, Encoder]:
        """``view:feature`` -> its encoder template (the column is bound when fitting)."""
        settings = self._ctx.latest().settings(_CATEGORY)
        return {
            ref: Encoder(**{**entry["encoder"], "column": ""})
            for ref, entry in sorted(settings.items())
        }

    def fit(self, data: Any, target: str | None) -> list[FittedEncoder]:
        """Fit the encoders of the features present in ``data`` (a training set or DataFrame).

        ``target`` is the label used by target encoders that did not name one.

        Raises:
            NotFoundError: none of the attached features is a column of ``data``.
        """
        df = getattr(data, "df", data)
        attached = self.attached()
        chosen = {ref: e for ref, e in attached.items() if ref.split(":", 1)[1] in df.columns}
        if not chosen:
            raise NotFoundError(
                f"no attached transformation applies to these columns ({', '.join(df.columns)});"
                f" attached: {', '.join(attached) or '-'}."
            )
        fitted = []
        for ref, template in chosen.items():
            label = template.target or (
                _required(target, ref) if template.method == "target" else None
            )
            fitted.append(replace(template, column=ref.split(":", 1)[1], target=label).fit(df))
        return fitted

    def _resolve(self, feature: str) -> str:
        """``view:feature`` for a feature reference or a bare feature name."""
        views = self._ctx.latest().views
        if ":" in feature:
            view, name = feature.split(":", 1)
            owners = [view] if view in views and name in views[view].feature_names else []
        else:
            name = feature
            owners = sorted(v for v, fv in views.items() if name in fv.feature_names)
        if not owners:
            raise NotFoundError(f"no feature view has a feature {feature!r}.")
        if len(owners) > 1:
            raise DefinitionError(
                f"feature {feature!r} is in views {owners}. Fix: name it as 'view:{name}'."
            )
        return f"{owners[0]}:{name}"


def _required(target: str | None, ref: str) -> str:
    if not target:
        raise DefinitionError(
            f"target encoding of {ref!r} needs the label column. Fix: "
            "fit_transformations(training_set, target='<label>')."
        )
    return target
