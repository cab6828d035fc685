"""Read lineage back from MLflow, at an explicit tracking URI: run specs and model metadata.

Every function takes the tracking URI to read from, so nothing depends on (or changes) the
process-wide URI of MLflow's fluent API. Models logged with
:meth:`fstore_spark.FeatureStore.log_model` carry their feature spec and fitted encoders in their
``MLmodel`` metadata; :func:`downloaded_model` gives a local copy for
``mlflow.pyfunc.spark_udf``, which cannot be told a tracking URI.

Model URIs: ``runs:/<run_id>/<path>``, ``models:/<model_id>`` (a logged model),
``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>/<stage>``,
``models:/<name>@<alias>``, or any artifact location (a local path, ``s3://…``). MLflow's own
download of ``models:/`` (and of a model under ``runs:/``) resolves the model through the
process-wide URI even when given a tracking URI, so :func:`model_location` resolves it here with
an ``MlflowClient`` bound to the URI asked for.
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fstore_spark.errors import LineageError
from fstore_spark.lineage.spec import (
    ENCODERS_METADATA_KEY,
    MODEL_METADATA_KEY,
    SPEC_ARTIFACT,
    FeatureSpec,
)

__all__ = [
    "downloaded_model",
    "load_run_spec",
    "local_model_metadata",
    "model_encoders",
    "model_location",
    "model_metadata",
    "model_spec",
    "spec_from_metadata",
]

_MLMODEL = "MLmodel"


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def load_run_spec(uri: str, run_id: str) -> FeatureSpec:
    """Read ``feature_spec.yaml`` of a run in the tracking store at ``uri``.

    Raises:
        LineageError: no such run, or the run has no feature spec.
    """
    client = _client(uri)
    try:
        client.get_run(run_id)
    except Exception as exc:
        raise LineageError(f"no MLflow run {run_id!r} at {uri}: {exc}") from exc
    try:
        with tempfile.TemporaryDirectory(prefix="fstore_spec_") as tmp:
            text = Path(client.download_artifacts(run_id, SPEC_ARTIFACT, tmp)).read_text()
    except Exception as exc:
        raise LineageError(
            f"MLflow run {run_id} has no {SPEC_ARTIFACT} artifact: it did not build a training "
            "set through fstore_spark with lineage logging (inside an active run or with "
            "log_to_mlflow=True)."
        ) from exc
    return FeatureSpec.from_yaml(text)


def model_location(uri: str, model_uri: str) -> str:
    """The artifact location holding a model's files, resolved in the tracking store at ``uri``.

    ``runs:/`` and ``models:/`` URIs are resolved with an ``MlflowClient`` bound to ``uri``;
    anything else is already a location and is returned as is.
    """
    parsed = urlparse(model_uri)
    if parsed.scheme == "runs":
        run_id, _, path = parsed.path.strip("/").partition("/")
        return _run_model_location(_client(uri), run_id, path)
    if parsed.scheme == "models":
        return _registry_model_location(_client(uri), parsed.path.strip("/"))
    return model_uri


def _run_model_location(client: Any, run_id: str, path: str) -> str:
    """``runs:/<run_id>/<path>``: a run artifact, else a model logged in the run as ``<name>``.

    MLflow 3 stores a model logged in a run as a logged model named after the first path
    part, outside the run's artifacts (as MLflow's own ``runs:/`` lookup does).
    """
    run = client.get_run(run_id)
    parent = posixpath.dirname(path) or None
    if path and any(a.path == path for a in client.list_artifacts(run_id, parent)):
        return f"{run.info.artifact_uri.rstrip('/')}/{path}"
    name, _, rest = path.partition("/")
    page_token = None
    while True:
        page = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"name = '{name}'",
            page_token=page_token,
        )
        for model in page:
            if model.source_run_id == run_id:
                return "/".join(p for p in (model.artifact_location.rstrip("/"), rest) if p)
        if not page.token:
            raise LineageError(f"MLflow run {run_id} has no artifact or model {path!r}.")
        page_token = page.token


def _registry_model_location(client: Any, path: str) -> str:
    """``models:/<model_id>``, ``<name>/<version|latest|stage>`` or ``<name>@<alias>``."""
    name, slash, selector = path.partition("/")
    if "@" in name and not slash:
        name, alias = name.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
    elif not slash:
        return str(client.get_logged_model(name).artifact_location)
    elif selector.isdigit():
        version = selector
    elif selector.lower() == "latest":
        found = client.search_model_versions(f"name = '{name}'")
        version = str(max((int(v.version) for v in found), default=0))
    else:
        found = client.get_latest_versions(name, stages=[selector])
        if not found:
            raise LineageError(f"registered model {name!r} has no version in stage {selector!r}.")
        version = found[0].version
    return str(client.get_model_version_download_uri(name, version))


@contextlib.contextmanager
def downloaded_model(uri: str, model_uri: str) -> Iterator[str]:
    """A local copy of a model's directory for a block (deleted after it).

    Raises:
        LineageError: the model cannot be found or downloaded.
    """
    import mlflow

    with tempfile.TemporaryDirectory(prefix="fstore_model_") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=model_location(uri, model_uri), dst_path=tmp, tracking_uri=uri
            )
        except Exception as exc:
            raise LineageError(f"cannot read model {model_uri!r} at {uri}: {exc}") from exc
        yield str(local)


def model_metadata(uri: str, model_uri: str) -> dict[str, Any]:
    """The ``metadata`` of a model's ``MLmodel`` (only that file is downloaded).

    Raises:
        LineageError: the model cannot be found or read.
    """
    import mlflow

    try:
        location = model_location(uri, model_uri)
        with tempfile.TemporaryDirectory(prefix="fstore_mlmodel_") as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location.rstrip('/')}/{_MLMODEL}", dst_path=tmp, tracking_uri=uri
            )
            return local_model_metadata(local)
    except LineageError:
        raise
    except Exception as exc:
        raise LineageError(f"cannot read model {model_uri!r} at {uri}: {exc}") from exc


def local_model_metadata(path: str) -> dict[str, Any]:
    """The ``metadata`` of a local model directory or ``MLmodel`` file (none: empty)."""
    from mlflow.models import Model

    return dict(Model.load(path).metadata or {})


def spec_from_metadata(model_uri: str, metadata: dict[str, Any]) -> FeatureSpec:
    """The feature spec in a model's metadata.

    Raises:
        LineageError: the model was not logged through the feature store.
    """
    meta = metadata.get(MODEL_METADATA_KEY)
    if meta is None:
        raise LineageError(
            f"model {model_uri!r} has no feature spec in its metadata. Fix: log it with "
            "store.log_model(model, artifact_path, flavor, training_set=...)."
        )
    return FeatureSpec.from_dict(meta)


def model_spec(uri: str, model_uri: str) -> FeatureSpec:
    """The feature spec stored with a model by ``FeatureStore.log_model``.

    Raises:
        LineageError: the model cannot be read, or was not logged through the feature store.
    """
    return spec_from_metadata(model_uri, model_metadata(uri, model_uri))


def model_encoders(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The fitted encoders (as dicts, in order) in a model's metadata; none if it has none."""
    return list(metadata.get(ENCODERS_METADATA_KEY) or [])
