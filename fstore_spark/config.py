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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as _PydanticValidationError

from fstore_spark.errors import ConfigError

__all__ = [
    "AlertsConfig",
    "EmailAlertsConfig",
    "FeatureStoreConfig",
    "LakehouseConfig",
    "MlflowConfig",
    "OnlineStoreConfig",
    "RegistryConfig",
    "SlackAlertsConfig",
    "SparkConfig",
    "load_config",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path("conf") / "feature_store.yaml"
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROJECT_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, wherever the URL carries it.

    The password of ``user:password@host`` (everything after the first ``:`` of the user info,
    which ends at the *last* ``@`` before the host, so a password may contain ``@``) and the
    value of any ``password=`` query parameter.

    Example:
        >>> redact_url("redis://user:s3cr@t@host:6379/0?password=x")
        'redis://user:***@host:6379/0?password=***'
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: hide everything after the scheme
        return url.split("://", 1)[0] + "://***" if "://" in url else "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class LakehouseConfig(_Strict):
    """Where feature tables live.

    Attributes:
        root: Folder (local path or URI such as ``s3://bucket/fs``) under which each feature
            view's Delta tables are written as ``<root>/<project>/<table>``.
        catalog: Optional catalog of ``schema`` (Unity Catalog, ``spark_catalog``...); default
            the session's current catalog.
        schema_name: Optional schema (database); YAML key ``schema``. When set, the store's
            own tables (feature, tile, registry, quarantine, statistics and log tables) are
            catalog tables ``catalog.schema.<project>_<table>``, created and read by name;
            without it they are Delta tables at paths under ``root``. Sources are read where
            their definitions say (a path, or a ``table`` name).
    """

    root: str
    catalog: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RegistryConfig(_Strict):
    """Where the registry (a Delta table of definitions with history) is stored.

    Attributes:
        path: Folder of the registry Delta table; default ``<lakehouse.root>/<project>/_registry``.
        max_commit_retries: How often a conflicting concurrent ``apply`` is retried.
    """

    path: str | None = None
    max_commit_retries: int = Field(default=10, ge=0, le=100)


def _env_secret(variable: str | None, key: str) -> str | None:
    """The secret held by environment variable ``variable`` (named by config ``key``), if any.

    Raises:
        ConfigError: the variable is named but not set.
    """
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise ConfigError(
            f"{key} names {variable!r}, which is not set. "
            f"Fix: export {variable}=<password> or remove {key.rsplit('.', 1)[-1]}."
        )
    return value


def _hiding(field: str, args: Any) -> Any:
    """``__repr_args__`` with a secret field's value shown as ``***``."""
    for name, value in args:
        yield name, "***" if name == field and value else value


class OnlineStoreConfig(_Strict):
    """Redis connection for the online store.

    Attributes:
        type: Online store implementation; only ``redis`` today.
        url: ``redis://host:port/db`` or ``rediss://`` for TLS.
        password_env: Name of the environment variable that holds the password (never the
            password itself, so the file can be committed).
        key_prefix: Prefix of every key the store writes.
        connect_timeout_ms: Connection timeout; an unreachable Redis fails within it.
        socket_timeout_ms: Per-command timeout.
        pool_size: Maximum connections in the client pool.
        tls: Force TLS even for a ``redis://`` URL.
        batch_size: Rows per pipelined batch when syncing.
    """

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    password_env: str | None = None
    key_prefix: str = "fstore"
    connect_timeout_ms: int = Field(default=1000, gt=0)
    socket_timeout_ms: int = Field(default=2000, gt=0)
    pool_size: int = Field(default=16, gt=0)
    tls: bool = False
    batch_size: int = Field(default=1000, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    def __repr_args__(self) -> Any:
        """``repr``/``str`` show the URL with its password redacted."""
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "url" and isinstance(value, str) else value

    def password(self) -> str | None:
        """Return the password read from ``password_env`` (``None`` when not configured)."""
        return _env_secret(self.password_env, "online_store.password_env")


class MlflowConfig(_Strict):
    """MLflow tracking.

    Attributes:
        tracking_uri: Any MLflow tracking URI; default a SQLite file ``mlflow.db`` in the
            project folder.
        experiment: Experiment used when the store starts runs itself.
        artifact_location: Where the experiment stores artifacts; default ``mlartifacts``
            beside a SQLite tracking file (MLflow's own default is ``./mlruns`` of the current
            directory, which scatters artifacts).
    """

    tracking_uri: str | None = None
    experiment: str = "fstore_spark"
    artifact_location: str | None = None


class SlackAlertsConfig(_Strict):
    """The ``slack`` alert channel.

    Attributes:
        webhook_url: Slack incoming-webhook URL; default ``$SLACK_WEBHOOK_URL``. It is a
            secret: keep it in the environment (or write ``${VAR}`` in the file).
    """

    webhook_url: str | None = None

    def url(self) -> str | None:
        """The webhook URL from the config, else from ``$SLACK_WEBHOOK_URL``."""
        return self.webhook_url or os.environ.get("SLACK_WEBHOOK_URL") or None

    def __repr_args__(self) -> Any:
        """``repr``/``str`` never show the webhook URL."""
        return _hiding("webhook_url", super().__repr_args__())


class EmailAlertsConfig(_Strict):
    """The ``email`` alert channel: an SMTP server and who receives the alerts.

    Attributes:
        host: SMTP server; required by the ``email`` channel.
        port: SMTP port (25; 587 with ``starttls``; 465 with ``ssl``).
        sender: The ``From`` address.
        recipients: The ``To`` addresses; required by the ``email`` channel.
        username: SMTP login, if the server needs one.
        password_env: Name of the environment variable holding the SMTP password.
        starttls: Upgrade the connection with STARTTLS.
        ssl: Connect with implicit TLS (SMTPS).
        timeout_s: Connection and command timeout, in seconds.
    """

    host: str | None = None
    port: int = Field(default=25, gt=0)
    sender: str = "fstore@localhost"
    recipients: list[str] = Field(default_factory=list)
    username: str | None = None
    password_env: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_s: float = Field(default=10.0, gt=0)

    def password(self) -> str | None:
        """The SMTP password read from ``password_env`` (``None`` when not configured)."""
        return _env_secret(self.password_env, "alerts.email.password_env")


class AlertsConfig(_Strict):
    """Settings of the named alert channels (``slack``, ``email``, ``webhook``).

    Attributes:
        slack: The Slack incoming webhook.
        email: The SMTP server and recipients.
        webhook_url: URL the ``webhook`` channel POSTs JSON to; default
            ``$FSTORE_ALERT_WEBHOOK_URL``.
    """

    slack: SlackAlertsConfig = Field(default_factory=SlackAlertsConfig)
    email: EmailAlertsConfig = Field(default_factory=EmailAlertsConfig)
    webhook_url: str | None = None

    def webhook(self) -> str | None:
        """The ``webhook`` channel's URL from the config, else ``$FSTORE_ALERT_WEBHOOK_URL``."""
        return self.webhook_url or os.environ.get("FSTORE_ALERT_WEBHOOK_URL") or None

    def __repr_args__(self) -> Any:
        """``repr``/``str`` never show the webhook URL."""
        return _hiding("webhook_url", super().__repr_args__())


class SparkConfig(_Strict):
    """Spark session settings used when fstore_spark builds the session itself.

    When Spark is already running (Databricks, ``spark-submit``), the active session is reused
    and none of these override what the launcher set.

    Attributes:
        master: Spark master for local runs, e.g. ``local[*]``.
        app_name: Application name.
        shuffle_partitions: ``spark.sql.shuffle.partitions``; default twice the local cores.
        ui_enabled: Whether to start the Spark UI.
        driver_memory: ``spark.driver.memory`` for a session started from Python.
        jars_dir: Folder of the fetched Delta JARs; default ``.cache/jars`` of the project.
        options: Any further ``spark.*`` settings.
    """

    master: str = "local[*]"
    app_name: str = "fstore_spark"
    shuffle_partitions: int | None = Field(default=None, gt=0)
    ui_enabled: bool = False
    driver_memory: str | None = None
    jars_dir: str | None = None
    options: dict[str, str] = Field(default_factory=dict)


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
        repo_path: Folder of Python feature definitions (a feature repo), if any.
        definitions: YAML files of definitions, if any.
        config_dir: Folder the file was loaded from (set by :func:`load_config`).
    """

    project: str = Field(pattern=_PROJECT_NAME)
    lakehouse: LakehouseConfig
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    online_store: OnlineStoreConfig = Field(default_factory=OnlineStoreConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    repo_path: str | None = None
    definitions: list[str] = Field(default_factory=list)
    config_dir: str = "."

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


_PATH_KEYS = (("lakehouse", "root"), ("registry", "path"), ("spark", "jars_dir"))


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
                valid = [v for v in valid if v != "config_dir"]
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
    if "config_dir" in data:
        raise ConfigError(
            f"{source}: unknown key 'config_dir'. Fix: remove it (it is set on load)."
        )
    data["config_dir"] = str(base)
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
