"""Feature references (``view:feature``) and feature sets, and their resolution against views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from fstore_spark.core.codec import Serialisable
from fstore_spark.core.mappings import NO_METADATA, MetadataValue, check_metadata
from fstore_spark.core.naming import check_name, check_sequence, check_str
from fstore_spark.core.views import FeatureView
from fstore_spark.errors import DefinitionError

__all__ = ["FeatureRef", "FeatureSet", "resolve_feature_refs"]


@dataclass(frozen=True, kw_only=True)
class FeatureRef:
    """A reference ``view:feature`` to one feature, or ``view:*`` to all features of a view.

    Attributes:
        view: Feature view name (a safe identifier).
        feature: Feature name (a safe identifier) or ``"*"``.

    Example:
        >>> ref = FeatureRef.parse("customer_transaction_features:total_spent_30d")
        >>> ref.view, str(ref)
        ('customer_transaction_features', 'customer_transaction_features:total_spent_30d')
    """

    view: str
    feature: str

    def __post_init__(self) -> None:
        """Validate both parts."""
        text = f"{self.view}:{self.feature}"
        owner = f"feature reference {text!r}"
        check_name(self.view, owner=owner, role="view name")
        if self.feature != "*":
            check_name(self.feature, owner=owner, role="feature name")

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        """Parse ``"view:feature"`` or ``"view:*"``.

        Args:
            text: The reference; no spaces, exactly one colon.

        Returns:
            The reference.

        Raises:
            DefinitionError: If there is no colon or more than one, a part is empty, or a part
                is not a safe identifier (``*`` is allowed as the feature).

        Example:
            >>> FeatureRef.parse("profile:*")
            FeatureRef(view='profile', feature='*')
        """
        fix = "Fix: write it as 'view:feature' or 'view:*', e.g. 'customer_profile:age'."
        if not isinstance(text, str):
            raise DefinitionError(f"feature reference {text!r} is not a string. {fix}")
        if ":" not in text:
            raise DefinitionError(f"feature reference {text!r} has no colon. {fix}")
        view, _, feature = text.partition(":")
        if ":" in feature:
            raise DefinitionError(f"feature reference {text!r} has more than one colon. {fix}")
        if not view or not feature:
            raise DefinitionError(f"feature reference {text!r} has an empty part. {fix}")
        return cls(view=view, feature=feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


@dataclass(frozen=True, kw_only=True)
class FeatureSet(Serialisable):
    """A named, ordered selection of features from one or more views, e.g. a model's inputs.

    Rules: at least one reference; each is ``view:feature`` or ``view:*`` (checked with
    :meth:`FeatureRef.parse`); none is listed twice. Whether the views and features exist, and
    whether two views contribute features with the same name, is checked by
    :func:`validate_objects` and :func:`resolve_feature_refs`.

    Attributes:
        name: Unique feature set name (may not equal a feature view name).
        features: Reference strings in declared order (a tuple).
        metadata: String keys to string, integer, finite float or bool values, sorted by key.
        description: Free text.

    Example:
        >>> fs = FeatureSet(name="churn_inputs",
        ...                 features=["customer_transaction_features:*", "profile:age"])
        >>> [str(ref) for ref in fs.refs]
        ['customer_transaction_features:*', 'profile:age']
        >>> fs.to_dict()["features"], FeatureSet.from_dict(fs.to_dict()) == fs
        (['customer_transaction_features:*', 'profile:age'], True)
        >>> FeatureSet(name="s", features=["v:a"], metadata={"v": 1}).to_dict()["metadata"]
        {'v': 1}
    """

    kind: ClassVar[str] = "feature_set"
    """The serialisation kind."""

    name: str
    features: Sequence[str]
    metadata: Mapping[str, MetadataValue] = NO_METADATA
    description: str = ""

    def __post_init__(self) -> None:
        """Validate the references and normalise the containers."""
        owner = f"feature set {self.name!r}"
        check_name(self.name, owner=owner)
        references = check_sequence(self.features, owner=owner, role="features")
        if not references:
            raise DefinitionError(
                f"{owner}: selects no features. Fix: list references such as 'view:feature' or "
                "'view:*'."
            )
        canonical: list[str] = []
        for reference in references:
            try:
                text = str(FeatureRef.parse(reference))
            except DefinitionError as exc:
                raise DefinitionError(f"{owner}: {exc}") from exc
            if text in canonical:
                raise DefinitionError(
                    f"{owner}: feature reference {text!r} is listed twice. Fix: list it once."
                )
            canonical.append(text)
        object.__setattr__(self, "features", tuple(canonical))
        object.__setattr__(self, "metadata", check_metadata(self.metadata, owner=owner))
        check_str(self.description, owner=owner, role="description")

    @property
    def refs(self) -> tuple[FeatureRef, ...]:
        """The references parsed, in declared order (``view:*`` not yet expanded)."""
        return tuple(FeatureRef.parse(text) for text in self.features)


def _collision_message(feature: str, first: FeatureRef, second: FeatureRef) -> str:
    """Explain that two views contribute a feature of the same name, and how to choose."""
    return (
        f"feature {second.feature!r} is selected from both feature views {first.view!r} and "
        f"{second.view!r}; one training set cannot hold two columns named {feature!r}. Fix: "
        f"select only one of them (e.g. keep '{first.view}:{first.feature}' and list the "
        f"features of {second.view!r} you need instead of '{second.view}:*'), or rename one."
    )


def resolve_with_problems(
    refs: Sequence[str | FeatureRef], views: Mapping[str, FeatureView]
) -> tuple[list[FeatureRef], list[str]]:
    """Expand and check references; return the resolved list and the problems found."""
    resolved: list[FeatureRef] = []
    problems: list[str] = []
    owners: dict[str, FeatureRef] = {}  # lower-cased feature name -> the ref that provides it
    known_views = ", ".join(sorted(views)) or "(none)"
    for raw in refs:
        ref = raw if isinstance(raw, FeatureRef) else FeatureRef.parse(raw)
        view = views.get(ref.view)
        if view is None:
            problems.append(
                f"feature reference '{ref}': unknown feature view {ref.view!r}. "
                f"Fix: use one of the known feature views: {known_views}."
            )
            continue
        if ref.feature == "*":
            names = view.feature_names
        elif ref.feature in view.feature_names:
            names = (ref.feature,)
        else:
            problems.append(
                f"feature reference '{ref}': feature view {ref.view!r} has no feature "
                f"{ref.feature!r}. Fix: use one of its features: {', '.join(view.feature_names)}."
            )
            continue
        for name in names:
            candidate = FeatureRef(view=ref.view, feature=name)
            if candidate in resolved:
                continue  # listed twice, e.g. via 'v:*' and 'v:x': keep the first position
            # Case-insensitive: Spark would treat 'Age' and 'age' as the same column.
            previous = owners.get(name.lower())
            if previous is not None:
                problems.append(_collision_message(name, previous, candidate))
                continue
            owners[name.lower()] = candidate
            resolved.append(candidate)
    return resolved, problems


def resolve_feature_refs(
    refs: Sequence[str | FeatureRef], views: Mapping[str, FeatureView]
) -> list[FeatureRef]:
    """Expand and check feature references against the known views.

    ``view:*`` expands to the view's features in declared order; references are de-duplicated
    keeping the first occurrence; every view and feature must exist; and no two views may
    contribute features of the same name (ignoring case), since they would become two columns of
    the same name in a training set.

    Args:
        refs: Reference strings (or :class:`FeatureRef` objects) in the desired order.
        views: Feature views by name.

    Returns:
        Concrete references (no ``*``), in order.

    Raises:
        DefinitionError: Listing every unknown view, unknown feature and name collision, with the
            available views or features.

    Example:
        >>> from fstore_spark.core import DeltaSource, Field
        >>> src = DeltaSource(name="p", path="/d/p", timestamp_column="ts")
        >>> v = FeatureView(name="profile", entities=["customer"], source=src,
        ...                 features=[Field(name="age", dtype="int"),
        ...                           Field(name="city", dtype="str")])
        >>> [str(r) for r in resolve_feature_refs(["profile:city", "profile:*"], {"profile": v})]
        ['profile:city', 'profile:age']
    """
    resolved, problems = resolve_with_problems(refs, views)
    if problems:
        raise DefinitionError(problems_message("cannot resolve the feature references", problems))
    return resolved


def problems_message(title: str, problems: list[str]) -> str:
    """Join problems into one message, one indented line each, under a title with their count."""
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"{title}: {len(problems)} problem(s):\n{lines}"
