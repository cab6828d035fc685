"""Sections of ``conf/feature_store.yaml``: lakehouse, registry, Redis, MLflow, alerts, Spark."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from fstore_spark.config.base import _env_secret, _hiding, _Strict, redact_url

__all__ = [
    "AlertsConfig",
    "EmailAlertsConfig",
    "LakehouseConfig",
    "MlflowConfig",
    "OnlineStoreConfig",
    "RegistryConfig",
    "SlackAlertsConfig",
    "SparkConfig",
]


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
        pool_size: Maximum connections in the client pool. A request that finds every
            connection busy waits for one (up to ``pool_timeout_ms``) instead of failing.
        pool_timeout_ms: How long a request waits for a free pooled connection.
        tls: Force TLS even for a ``redis://`` URL.
        username: ACL user (Redis 6+); default the URL's user, else ``default``.
        tls_ca_file: CA certificate(s) that signed the server's certificate (PEM).
        tls_cert_file: Client certificate (PEM), for a server that verifies clients.
        tls_key_file: Private key of ``tls_cert_file`` (PEM).
        tls_check_hostname: Check that the server certificate names the URL's host.
        ship_password: Send the resolved password to Spark executors inside the sync task
            (default). ``false``: executors read ``password_env`` from their own environment
            (``spark.executorEnv.<VAR>``, a cluster secret), and no secret is in the task.
        batch_size: Rows per pipelined batch when syncing.
    """

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    password_env: str | None = None
    key_prefix: str = "fstore"
    connect_timeout_ms: int = Field(default=1000, gt=0)
    socket_timeout_ms: int = Field(default=2000, gt=0)
    pool_size: int = Field(default=16, gt=0)
    pool_timeout_ms: int = Field(default=2000, gt=0)
    tls: bool = False
    username: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True
    ship_password: bool = True
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
