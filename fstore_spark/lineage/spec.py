"""The feature spec: everything a training set was built from, as data (no MLflow, no Spark).

A :class:`FeatureSpec` is what lineage records for a training set (the run artifact
``feature_spec.yaml``) and for a model (its ``MLmodel`` metadata, key ``fstore_feature_spec``):
the features in output order, each view's Delta version, definition version and hash, and where
the label rows can be re-read. It round-trips through a dict and YAML, so a run can be rebuilt by
time travel from its id alone (:meth:`fstore_spark.FeatureStore.reproduce_training_set`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fstore_spark._version import __version__
from fstore_spark.errors import LineageError

if TYPE_CHECKING:
    from fstore_spark.offline.training import HistoricalFeatures

__all__ = ["ENCODERS_METADATA_KEY", "FeatureSpec", "MODEL_METADATA_KEY", "SPEC_ARTIFACT"]

SPEC_ARTIFACT = "feature_spec.yaml"  # the run artifact holding a training set's spec
MODEL_METADATA_KEY = "fstore_feature_spec"  # MLmodel metadata key of a model's spec
ENCODERS_METADATA_KEY = "fstore_encoders"  # fitted encoders (FittedEncoder.to_dict()), in order
_SPEC_FORMAT = 1


@dataclass
class FeatureSpec:
    """Everything a training set was built from — the content of ``feature_spec.yaml``.

    Attributes:
        project: Feature store project.
        features: Feature references in output order (``view:feature``).
        feature_columns: Output column names of the features, in order.
        views: Per view: ``name, features, join_keys, delta_version, view_version,
            definition_hash, path``.
        timestamp_column: Label time column.
        full_feature_names: Whether columns are ``view__feature``.
        label_time_exact: Whether aggregated views were evaluated at each label's own time.
        registry_version: Registry version the definitions were read from.
        entity: ``rows``, ``fingerprint``, ``columns`` and ``source`` (where to re-read them).
        feature_set: ``{"name", "version"}`` when built from a feature set.
        output: ``rows`` and ``fingerprint`` of the training set itself, when computed.
        created_at: When the spec was written (UTC, ISO 8601).
        fstore_version: Library version that wrote it.
        model_input_columns: For a model's spec, the columns the model takes, in order.
    """

    project: str
    features: list[str]
    feature_columns: list[str]
    views: list[dict[str, Any]]
    timestamp_column: str
    full_feature_names: bool = False
    label_time_exact: bool = False
    registry_version: int | None = None
    entity: dict[str, Any] = field(default_factory=dict)
    feature_set: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    created_at: str = ""
    fstore_version: str = __version__
    model_input_columns: list[str] | None = None

    @classmethod
    def from_training_set(
        cls, ts: HistoricalFeatures, project: str, *, output: tuple[int, str] | None = None
    ) -> FeatureSpec:
        """Describe a training set (``output`` = its (rows, fingerprint) when computed)."""
        return cls(
            project=project,
            features=[str(r) for r in ts.feature_refs],
            feature_columns=list(ts.feature_columns),
            views=[
                {
                    "name": i.view,
                    "features": list(i.features),
                    "join_keys": list(ts.join_keys.get(i.view, [])),
                    "delta_version": i.delta_version,
                    "view_version": i.view_version,
                    "definition_hash": i.definition_hash,
                    "path": i.path,
                }
                for i in ts.inputs
            ],
            timestamp_column=ts.timestamp_column,
            full_feature_names=ts.full_feature_names,
            label_time_exact=ts.label_time_exact,
            registry_version=ts.registry_version,
            entity={
                "rows": ts.entity_rows,
                "fingerprint": ts.entity_fingerprint,
                "columns": list(ts.entity_columns),
                "source": ts.entity_source,
            },
            feature_set=(
                None
                if ts.feature_set is None
                else {"name": ts.feature_set, "version": ts.feature_set_version}
            ),
            output=None if output is None else {"rows": output[0], "fingerprint": output[1]},
            created_at=datetime.now(UTC).isoformat(),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-compatible dict."""
        return {
            "format_version": _SPEC_FORMAT,
            "fstore_version": self.fstore_version,
            "project": self.project,
            "created_at": self.created_at,
            "feature_set": self.feature_set,
            "registry_version": self.registry_version,
            "timestamp_column": self.timestamp_column,
            "full_feature_names": self.full_feature_names,
            "label_time_exact": self.label_time_exact,
            "features": list(self.features),
            "feature_columns": list(self.feature_columns),
            "views": [dict(v) for v in self.views],
            "entity": dict(self.entity),
            "output": None if self.output is None else dict(self.output),
            "model_input_columns": self.model_input_columns,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """Parse :meth:`to_dict` output.

        Raises:
            LineageError: not a feature spec, or written by a newer format.
        """
        if not isinstance(d, Mapping) or "features" not in d or "views" not in d:
            raise LineageError("not an fstore feature spec (no 'features'/'views').")
        if int(d.get("format_version", 1)) > _SPEC_FORMAT:
            raise LineageError(
                f"feature spec format {d.get('format_version')} is newer than this library "
                f"understands ({_SPEC_FORMAT}). Fix: upgrade fstore_spark."
            )
        return cls(
            project=str(d.get("project", "")),
            features=list(d["features"]),
            feature_columns=list(d.get("feature_columns") or []),
            views=[dict(v) for v in d["views"]],
            timestamp_column=str(d.get("timestamp_column", "event_timestamp")),
            full_feature_names=bool(d.get("full_feature_names", False)),
            label_time_exact=bool(d.get("label_time_exact", False)),
            registry_version=d.get("registry_version"),
            entity=dict(d.get("entity") or {}),
            feature_set=d.get("feature_set"),
            output=d.get("output"),
            created_at=str(d.get("created_at", "")),
            fstore_version=str(d.get("fstore_version", "")),
            model_input_columns=d.get("model_input_columns"),
        )

    def to_yaml(self) -> str:
        """The spec as YAML (what ``feature_spec.yaml`` holds)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_yaml(cls, text: str) -> FeatureSpec:
        """Parse ``feature_spec.yaml``."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LineageError(f"feature spec is not valid YAML: {exc}") from exc
        return cls.from_dict(data)

    @property
    def as_of(self) -> dict[str, int]:
        """Per view, the Delta version to time travel to (views with a known version)."""
        return {
            v["name"]: int(v["delta_version"])
            for v in self.views
            if v.get("delta_version") is not None
        }
