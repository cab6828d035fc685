"""The ``server`` section: API keys with their grants, and the limits of the HTTP server.

Keys are never written in the file: give each key's SHA-256 (``fstore keys hash`` prints it)
or the name of an environment variable that holds the key. A key may read the views and
feature sets its grant lists (``"*"``: all). Example::

    server:
      api_keys:
        - name: fraud-service
          sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
          views: [customer_stats]
          feature_sets: [fraud_v1]
        - name: batch-scoring
          key_env: FSTORE_BATCH_KEY
          views: ["*"]
      max_body_bytes: 1048576
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, field_validator, model_validator

from fstore_spark.config.base import _env_secret, _Strict

__all__ = ["ApiKeyConfig", "ServerConfig", "hash_key"]


def hash_key(key: str) -> str:
    """The SHA-256 (hex) of an API key: what the config stores instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyConfig(_Strict):
    """One API key of the feature server and what it may read.

    Attributes:
        name: Who holds the key; the identity of its requests (shown in request logs).
        sha256: SHA-256 (hex) of the key.
        key_env: Name of an environment variable holding the key itself (instead of sha256).
        views: Feature views the key may read (``"*"``: every view).
        feature_sets: Feature sets the key may read (``"*"``: every set); a set is also
            readable when every view it reads is granted.
    """

    name: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key_env: str | None = None
    views: list[str] = Field(default_factory=list)
    feature_sets: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeyConfig:
        if (self.sha256 is None) == (self.key_env is None):
            raise ValueError(
                f"api key {self.name!r}: give exactly one of sha256 (from `fstore keys hash`) "
                "or key_env (an environment variable holding the key)"
            )
        return self

    def digest(self) -> str:
        """The SHA-256 of the key (reads ``key_env`` when the key is given that way)."""
        if self.sha256 is not None:
            return self.sha256
        key = _env_secret(self.key_env, f"server.api_keys[{self.name}].key_env")
        return hash_key(key or "")

    def __repr_args__(self) -> Any:
        """``repr``/``str`` never show a digest."""
        for name, value in super().__repr_args__():
            yield name, "***" if name == "sha256" and value else value


class ServerConfig(_Strict):
    """The HTTP feature server (``fstore serve``).

    Attributes:
        api_keys: Keys and their grants. With none, the server is open to anyone who can
            reach it, and ``fstore serve`` refuses to listen beyond loopback unless
            ``anonymous`` is true.
        anonymous: Serve requests without a key (every view). Default: only when no key is
            configured.
        docs: Serve the OpenAPI UI at ``/docs`` (the spec at ``/openapi.json`` follows it).
        max_body_bytes: Largest request body accepted (413 beyond).
        max_entity_rows: Most entity rows in one request (413 beyond).
        plan_cache_size: Read plans kept per distinct request shape (least recently used out).
        reload_seconds: How often the server re-reads the keys from the config file and the
            definitions from the registry (SIGHUP reloads at once).
    """

    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    anonymous: bool | None = None
    docs: bool = True
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_entity_rows: int = Field(default=1000, gt=0)
    plan_cache_size: int = Field(default=256, gt=0)
    reload_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_keys")
    @classmethod
    def _unique_names(cls, v: list[ApiKeyConfig]) -> list[ApiKeyConfig]:
        names = [k.name for k in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"api key names must be unique; repeated: {', '.join(dupes)}")
        return v

    @property
    def allows_anonymous(self) -> bool:
        """Whether requests without a key are served."""
        return not self.api_keys if self.anonymous is None else self.anonymous
