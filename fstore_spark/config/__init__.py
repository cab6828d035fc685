"""Project configuration: ``conf/feature_store.yaml``, validated before anything runs.

The file is YAML with ``${ENV_VAR}`` and ``${ENV_VAR:-default}`` interpolation in string values.
It is validated strictly: an unknown key, a wrong type or an unset environment variable fails at
load time with a :class:`~fstore_spark.errors.ConfigError` naming the file, the key and the fix,
so a typo never silently falls back to a default.

Relative paths in the file are resolved against the directory that holds the file, so a project
behaves the same whatever the current directory is.

Example::

    project: fraud
    lakehouse:
      root: ../data/lakehouse
    online_store:
      url: ${REDIS_URL:-redis://127.0.0.1:6379/0}
      password_env: REDIS_PASSWORD

    >>> cfg = load_config("conf/feature_store.yaml")      # doctest: +SKIP
    >>> cfg.lakehouse.root                                 # doctest: +SKIP
    '/home/me/fraud/data/lakehouse'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from pydantic import ValidationError as _PydanticValidationError

from fstore_spark.config.base import _Strict, redact_url
from fstore_spark.config.sections import (
    AlertsConfig,
    EmailAlertsConfig,
    LakehouseConfig,
    MlflowConfig,
    OnlineStoreConfig,
    RegistryConfig,
    SlackAlertsConfig,
    SparkConfig,
)
from fstore_spark.config.server import ApiKeyConfig, ServerConfig, hash_key
from fstore_spark.errors import ConfigError

__all__ = [
    "AlertsConfig",
    "ApiKeyConfig",
    "EmailAlertsConfig",
    "FeatureStoreConfig",
    "LakehouseConfig",
    "MlflowConfig",
    "OnlineStoreConfig",
    "RegistryConfig",
    "ServerConfig",
    "SlackAlertsConfig",
    "SparkConfig",
    "hash_key",
    "load_config",
    "redact_url",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path("conf") / "feature_store.yaml"
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROJECT_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class FeatureStoreConfig(_Strict):
    """The whole configuration of a feature store project.

    Attributes:
        project: Project name; namespaces tables, Redis keys and MLflow tags.
        lakehouse: Where feature tables live.
        registry: Where the registry lives.
        online_store: Redis settings.
        mlflow: MLflow settings.
        spark: Spark settings for sessions started by fstore_spark.
        alerts: Settings of the named alert channels.
        server: API keys and limits of the HTTP feature server.
        identity: Who this store acts as, recorded with every change it makes (registry
            history, Delta commits); default ``$FSTORE_USER``, the Databricks user, else the
            OS user.
        repo_path: Folder of Python feature definitions (a feature repo), if any.
        definitions: YAML files of definitions, if any.
        config_dir: Folder the file was loaded from (set by :func:`load_config`).
        config_file: The file itself (set by :func:`load_config`; None without a file).
    """

    project: str = Field(pattern=_PROJECT_NAME)
    lakehouse: LakehouseConfig
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    online_store: OnlineStoreConfig = Field(default_factory=OnlineStoreConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    identity: str | None = None
    repo_path: str | None = None
    definitions: list[str] = Field(default_factory=list)
    config_dir: str = "."
    config_file: str | None = None

    @property
    def project_root(self) -> str:
        """Folder under which this project's Delta tables are written."""
        return _join(self.lakehouse.root, self.project)

    @property
    def registry_path(self) -> str:
        """Location of the registry Delta table."""
        return self.registry.path or _join(self.project_root, "_registry")

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI (default: SQLite file ``mlflow.db`` in the config folder)."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return "sqlite:///" + str(Path(self.config_dir, "mlflow.db").resolve())

    @property
    def artifact_location(self) -> str | None:
        """Artifact root for the experiment (``mlartifacts`` beside a SQLite tracking file)."""
        if self.mlflow.artifact_location:
            return self.mlflow.artifact_location
        uri = self.tracking_uri
        if uri.startswith("sqlite:///"):
            return str(Path(uri[len("sqlite:///") :]).parent / "mlartifacts")
        return None

    @classmethod
    def for_local(
        cls, root: str | os.PathLike[str], project: str = "fstore", **overrides: Any
    ) -> FeatureStoreConfig:
        """Build a config for a local folder, without a file (tests, notebooks).

        Example:
            >>> cfg = FeatureStoreConfig.for_local("/tmp/lake", project="demo")
            >>> cfg.registry_path
            '/tmp/lake/demo/_registry'
        """
        data: dict[str, Any] = {"project": project, "lakehouse": {"root": str(root)}}
        data.update(overrides)
        data.setdefault("config_dir", str(root))
        return _validate(data, source="<for_local>")


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def _interpolate(value: Any, key: str, source: str) -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {
            k: _interpolate(v, f"{key}.{k}" if key else str(k), source) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        env = os.environ.get(name)
        if env is not None:
            return env
        if default is not None:
            return default
        raise ConfigError(
            f"{source}: key '{key}': environment variable {name} is not set. "
            f"Fix: export {name}=..., or give a default with ${{{name}:-value}}."
        )

    return _ENV_PATTERN.sub(repl, value)


_PATH_KEYS = (
    ("lakehouse", "root"),
    ("registry", "path"),
    ("spark", "jars_dir"),
    ("online_store", "tls_ca_file"),
    ("online_store", "tls_cert_file"),
    ("online_store", "tls_key_file"),
)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    for section, key in _PATH_KEYS:
        sub = data.get(section)
        if isinstance(sub, dict) and isinstance(sub.get(key), str):
            sub[key] = _resolve_one(sub[key], base)
    ml = data.get("mlflow")
    if isinstance(ml, dict):
        uri = ml.get("tracking_uri")
        # sqlite:///rel.db is relative to the current directory in MLflow; make it relative to
        # the config file like every other path (sqlite:////abs.db stays absolute).
        if (
            isinstance(uri, str)
            and uri.startswith("sqlite:///")
            and not uri.startswith("sqlite:////")
        ):
            ml["tracking_uri"] = "sqlite:///" + _resolve_one(uri[len("sqlite:///") :], base)
        if isinstance(ml.get("artifact_location"), str):
            ml["artifact_location"] = _resolve_one(ml["artifact_location"], base)
    if isinstance(data.get("repo_path"), str):
        data["repo_path"] = _resolve_one(data["repo_path"], base)
    if isinstance(data.get("definitions"), list):
        data["definitions"] = [
            _resolve_one(p, base) if isinstance(p, str) else p for p in data["definitions"]
        ]


def _from_feast(data: dict[str, Any], source: str) -> None:
    """Read a Feast ``feature_store.yaml`` the way Feast users mean it.

    ``provider: local`` and ``offline_store: {type: file|spark}`` are Spark here; a string
    ``registry`` is the registry's folder; without ``lakehouse`` the tables live beside the
    file; ``online_store.connection_string`` (``host:port[,db=N][,ssl=true]``) is the URL.
    """
    online = data.get("online_store")
    feast_keys = (
        "provider" in data or "offline_store" in data or isinstance(data.get("registry"), str)
    )
    if not feast_keys and not (isinstance(online, dict) and "connection_string" in online):
        return
    provider = data.pop("provider", "local")
    offline = data.pop("offline_store", {"type": "spark"})
    if (
        provider not in ("local", "spark")
        or not isinstance(offline, dict)
        or offline.get("type") not in ("file", "spark")
    ):
        raise ConfigError(
            f"{source}: provider {provider!r} / offline_store {offline!r}: fstore_spark computes "
            "with Spark on Delta tables. Fix: use provider: local (or remove both keys)."
        )
    if isinstance(data.get("registry"), str):
        data["registry"] = {"path": data["registry"]}
    data.setdefault("lakehouse", {"root": "."})
    if isinstance(online, dict) and "connection_string" in online:
        host, *options = str(online.pop("connection_string")).split(",")
        opts = dict(o.split("=", 1) for o in options if "=" in o)
        if "password" in opts:
            raise ConfigError(
                f"{source}: online_store.connection_string holds a password. Fix: remove it "
                "and set online_store.password_env to the variable that holds it."
            )
        scheme = "rediss" if opts.get("ssl", "").lower() == "true" else "redis"
        online.setdefault("url", f"{scheme}://{host}/{opts.get('db', '0')}")


def _resolve_one(path: str, base: Path) -> str:
    if "://" in path or path.startswith("/"):
        return path
    return str((base / path).resolve())


def _format_errors(err: _PydanticValidationError, source: str, model: type[BaseModel]) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        kind = e["type"]
        if kind == "extra_forbidden":
            parent = _model_at(model, [str(p) for p in e["loc"][:-1]])
            valid = sorted(f.alias or n for n, f in parent.model_fields.items()) if parent else []
            if parent is FeatureStoreConfig:
                valid = [v for v in valid if v not in ("config_dir", "config_file")]
            lines.append(
                f"{source}: unknown key '{loc}'. Fix: remove it or use one of: {', '.join(valid)}."
            )
        elif kind == "missing":
            lines.append(f"{source}: key '{loc}' is required but missing. Fix: add '{loc}: ...'.")
        else:
            got = e.get("input")
            lines.append(
                f"{source}: key '{loc}': {e['msg']} (got {got!r}). "
                f"Fix: give '{loc}' a value of the right type."
            )
    return "\n".join(lines)


def _model_at(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    current: type[BaseModel] = model
    for part in path:
        field = current.model_fields.get(part)
        if field is None:
            field = next((f for f in current.model_fields.values() if f.alias == part), None)
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        current = ann
    return current


def _validate(data: Mapping[str, Any], source: str) -> FeatureStoreConfig:
    try:
        return FeatureStoreConfig.model_validate(dict(data))
    except _PydanticValidationError as err:
        raise ConfigError(_format_errors(err, source, FeatureStoreConfig)) from None


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> FeatureStoreConfig:
    """Load, interpolate and validate a feature store configuration file.

    Args:
        path: The YAML file; default ``$FSTORE_CONFIG`` or ``conf/feature_store.yaml``.
        overrides: Top-level sections merged over the file (a section dict is merged one level
            deep), e.g. ``{"lakehouse": {"root": "/tmp/x"}}``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file is missing, is not YAML, has an unknown key, a wrong type, a
            missing required key, or refers to an unset environment variable.
    """
    file = Path(path or os.environ.get("FSTORE_CONFIG") or DEFAULT_CONFIG_PATH)
    source = str(file)
    if not file.is_file():
        raise ConfigError(
            f"{source}: configuration file not found. Fix: create it (see conf/feature_store.yaml "
            "in the fstore_spark repository) or pass --config / set FSTORE_CONFIG."
        )
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}. Fix: correct the syntax.") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of keys, got {type(raw).__name__}."
        )
    data = _interpolate(raw, "", source)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    base = file.resolve().parent
    _from_feast(data, source)
    _resolve_paths(data, base)
    for key in ("config_dir", "config_file"):
        if key in data:
            raise ConfigError(f"{source}: unknown key '{key}'. Fix: remove it (it is set on load).")
    data["config_dir"] = str(base)
    data["config_file"] = str(file.resolve())
    return _validate(data, source)


def resolve_config(
    config: FeatureStoreConfig | str | os.PathLike[str] | None = None,
    repo_path: str | os.PathLike[str] | None = None,
) -> FeatureStoreConfig:
    """The config a store uses (given, or the repo's, or ``$FSTORE_CONFIG`` / the default).

    Without ``config``, ``<repo_path>/feature_store.yaml`` is used when it exists, else
    ``$FSTORE_CONFIG`` or ``conf/feature_store.yaml``; ``repo_path`` overrides the repo folder.
    """
    if isinstance(config, FeatureStoreConfig):
        cfg = config
    elif config is not None:
        cfg = load_config(config)
    elif repo_path is not None and Path(repo_path, "feature_store.yaml").is_file():
        cfg = load_config(Path(repo_path, "feature_store.yaml"))
    else:
        cfg = load_config()
    if repo_path is not None:
        cfg = cfg.model_copy(update={"repo_path": str(Path(repo_path).resolve())})
    return cfg
