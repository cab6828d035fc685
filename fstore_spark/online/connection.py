"""How to reach Redis: connection settings that travel to executors, and typed errors.

Example:
    >>> spec = ConnectionSpec("redis://user:secret@host:6379/0", password="secret")
    >>> spec.safe_url
    'redis://user:***@host:6379/0'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fstore_spark.config import redact_url
from fstore_spark.errors import OnlineStoreError

if TYPE_CHECKING:
    import redis

    from fstore_spark.config import OnlineStoreConfig

__all__ = ["ConnectionSpec", "redact_url", "redis_errors"]


def redis_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a Redis call raises when the server is unreachable or refuses."""
    import redis as _redis

    return (_redis.RedisError, OSError)


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open a Redis connection; picklable, so executors can use it.

    The password is resolved on the driver (``online_store.password_env``) and travels inside
    the Spark task, because executors do not necessarily share the driver's environment.

    Attributes:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        password: Password, or None.
        connect_timeout: Seconds to wait for a connection.
        socket_timeout: Seconds to wait for a reply.
        tls: Force TLS.
        pool_size: Maximum pooled connections.
    """

    url: str
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 1.0
    socket_timeout: float = 2.0
    tls: bool = False
    pool_size: int = 16

    @classmethod
    def from_config(cls, cfg: OnlineStoreConfig) -> ConnectionSpec:
        """Build from the ``online_store`` config section (reads the password env var)."""
        return cls(
            url=cfg.url,
            password=cfg.password(),
            connect_timeout=cfg.connect_timeout_ms / 1000,
            socket_timeout=cfg.socket_timeout_ms / 1000,
            tls=cfg.tls,
            pool_size=cfg.pool_size,
        )

    def __repr__(self) -> str:
        """Settings with the URL's password redacted and the password left out."""
        return (
            f"ConnectionSpec(url={self.safe_url!r}, connect_timeout={self.connect_timeout}, "
            f"socket_timeout={self.socket_timeout}, tls={self.tls}, pool_size={self.pool_size})"
        )

    @property
    def safe_url(self) -> str:
        """The URL with the password redacted (for messages)."""
        return redact_url(self.url)

    def scrub(self, text: str) -> str:
        """``text`` with this connection's passwords (configured or in the URL) replaced."""
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(self.url)
        secrets = [self.password, parts.password and unquote(parts.password)]
        secrets += parse_qs(parts.query).get("password", [])
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text.replace(self.url, self.safe_url)

    def client(self, pool_size: int | None = None) -> redis.Redis:
        """A ``redis.Redis`` client (lazy: connects on first use; no automatic retries).

        Retries are off so that an unreachable server fails within ``connect_timeout``
        instead of a multiple of it; callers decide what to retry.
        """
        import redis as _redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = self.url
        if self.tls and url.startswith("redis://"):
            url = "rediss://" + url[len("redis://") :]
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.socket_timeout,
            "max_connections": pool_size or self.pool_size,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return _redis.Redis.from_url(url, **kwargs)

    def error(self, exc: BaseException, doing: str) -> OnlineStoreError:
        """A typed, actionable error for a failed Redis call."""
        return OnlineStoreError(
            f"online store: cannot {doing} at {self.safe_url}: {type(exc).__name__}: "
            f"{self.scrub(str(exc))}. "
            f"Check that redis-server is running and reachable at that address, that "
            f"online_store.url / password_env / tls are right, and the timeouts "
            f"(connect {self.connect_timeout:g}s, socket {self.socket_timeout:g}s)."
        )
