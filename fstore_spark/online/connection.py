"""How to reach Redis: connection settings that travel to executors, and typed errors.

Example:
    >>> spec = ConnectionSpec("redis://user:secret@host:6379/0", password="secret")
    >>> spec.safe_url
    'redis://user:***@host:6379/0'
    >>> spec.for_executors() is spec  # ship_password (the default): the same settings travel
    True
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fstore_spark.config import redact_url
from fstore_spark.errors import OnlineStoreError

if TYPE_CHECKING:
    import redis

    from fstore_spark.config import OnlineStoreConfig

__all__ = ["ConnectionSpec", "redact_url", "redis_errors", "strip_password"]


def redis_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a Redis call raises when the server is unreachable or refuses."""
    import redis as _redis

    return (_redis.RedisError, OSError)


def strip_password(url: str) -> str:
    """``url`` without a password: neither ``user:password@`` nor a ``password=`` parameter.

    Example:
        >>> strip_password("redis://sync:s3cr@t@host:6379/0?password=x&db=0")
        'redis://sync@host:6379/0?db=0'
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{host}" if user else host
    query = "&".join(p for p in parts.query.split("&") if p and not re.match(r"(?i)password=", p))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open a Redis connection; picklable, so executors can use it.

    The password is resolved on the driver (``online_store.password_env``). What the sync ships
    to its executors is :meth:`for_executors`: with ``ship_password`` (the default) these very
    settings, password included; without it a copy that holds no password at all, whose
    :meth:`client` reads ``password_env`` from the executor's own environment.

    Attributes:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        password: Password, or None.
        connect_timeout: Seconds to wait for a connection.
        socket_timeout: Seconds to wait for a reply.
        tls: Force TLS.
        pool_size: Maximum pooled connections.
        pool_timeout: Seconds a request waits for a free pooled connection.
        username: ACL user (None: the URL's user, else ``default``).
        password_env: Environment variable holding the password (executors read it when the
            password is not shipped).
        tls_ca_file: CA certificate(s) of the server's certificate (PEM); None: system CAs.
        tls_cert_file: Client certificate (PEM).
        tls_key_file: Private key of the client certificate (PEM).
        tls_check_hostname: Check that the server certificate names the URL's host.
        ship_password: Whether :meth:`for_executors` keeps the password.
    """

    url: str
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 1.0
    socket_timeout: float = 2.0
    tls: bool = False
    pool_size: int = 16
    pool_timeout: float = 2.0
    username: str | None = None
    password_env: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True
    ship_password: bool = True

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
            pool_timeout=cfg.pool_timeout_ms / 1000,
            username=cfg.username,
            password_env=cfg.password_env,
            tls_ca_file=cfg.tls_ca_file,
            tls_cert_file=cfg.tls_cert_file,
            tls_key_file=cfg.tls_key_file,
            tls_check_hostname=cfg.tls_check_hostname,
            ship_password=cfg.ship_password,
        )

    def for_executors(self) -> ConnectionSpec:
        """The settings to pickle into Spark tasks.

        With ``ship_password`` these settings themselves. Without it a copy with no password
        (none configured, none in the URL): executors read ``password_env`` themselves.

        Raises:
            OnlineStoreError: ``ship_password`` is off but the URL holds the password and no
                ``password_env`` names where executors could read it.
        """
        if self.ship_password:
            return self
        bare = strip_password(self.url)
        if bare != self.url and self.password_env is None:
            raise OnlineStoreError(
                f"online_store.ship_password is false, but the password is in "
                f"online_store.url ({self.safe_url}), so it would travel to the executors. "
                "Fix: remove it from the URL and set online_store.password_env to the "
                "environment variable that holds it (on the driver and, through "
                "spark.executorEnv.<VAR>, on the executors)."
            )
        return replace(self, url=bare, password=None)

    def __repr__(self) -> str:
        """Settings with the URL's password redacted and the password left out."""
        return (
            f"ConnectionSpec(url={self.safe_url!r}, username={self.username!r}, "
            f"connect_timeout={self.connect_timeout}, socket_timeout={self.socket_timeout}, "
            f"tls={self.tls}, tls_ca_file={self.tls_ca_file!r}, pool_size={self.pool_size}, "
            f"pool_timeout={self.pool_timeout}, ship_password={self.ship_password})"
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

    def resolve_password(self) -> str | None:
        """The password to authenticate with: the resolved one, else ``$password_env``.

        On an executor of a sync with ``ship_password: false`` the spec holds no password, and
        the variable is read from the executor's environment.

        Raises:
            OnlineStoreError: ``password_env`` is needed but not set in this process.
        """
        if self.password is not None or self.password_env is None:
            return self.password
        value = os.environ.get(self.password_env)
        if value is None:
            var = self.password_env
            raise OnlineStoreError(
                f"online store: the Redis password is not shipped to executors "
                f"(online_store.ship_password: false), and {var!r} is not set in this "
                f"executor's environment. Fix: set it on every executor, e.g. "
                f"spark.executorEnv.{var} (a cluster secret such as "
                f"{{{{secrets/<scope>/<key>}}}} on Databricks), or set ship_password: true."
            )
        return value

    def client(self, pool_size: int | None = None) -> redis.Redis:
        """A ``redis.Redis`` client (lazy: connects on first use; no automatic retries).

        Its pool is a ``BlockingConnectionPool``: a request that finds all ``pool_size``
        connections busy waits up to ``pool_timeout`` for one, then fails with a
        ``ConnectionError``. Retries are off so that an unreachable server fails within
        ``connect_timeout`` instead of a multiple of it; callers decide what to retry.
        ``username`` and the password override the URL's.

        Raises:
            OnlineStoreError: the password must come from ``password_env``, which is unset.
        """
        import redis as _redis
        from redis.backoff import NoBackoff
        from redis.connection import parse_url
        from redis.retry import Retry

        url = self.url
        if self.tls and url.startswith("redis://"):
            url = "rediss://" + url[len("redis://") :]
        kwargs: dict[str, Any] = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.socket_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        # host, port, db, user, password and query options of the URL
        kwargs.update(parse_url(url))  # type: ignore[no-untyped-call]
        password = self.resolve_password()
        if password is not None:
            kwargs["password"] = password
        if self.username is not None:
            kwargs["username"] = self.username
        if url.startswith("rediss://"):
            kwargs.update(self._tls_kwargs())
        pool = _redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
            max_connections=pool_size or self.pool_size, timeout=self.pool_timeout, **kwargs
        )
        return _redis.Redis.from_pool(pool)

    def _tls_kwargs(self) -> dict[str, Any]:
        """The ``ssl_*`` options of a TLS connection (the server's certificate is verified)."""
        out: dict[str, Any] = {
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": self.tls_check_hostname,
        }
        if self.tls_ca_file is not None:
            out["ssl_ca_certs"] = self.tls_ca_file
        if self.tls_cert_file is not None:
            out["ssl_certfile"] = self.tls_cert_file
        if self.tls_key_file is not None:
            out["ssl_keyfile"] = self.tls_key_file
        return out

    def error(self, exc: BaseException, doing: str) -> OnlineStoreError:
        """A typed, actionable error for a failed Redis call."""
        return OnlineStoreError(
            f"online store: cannot {doing} at {self.safe_url}: {type(exc).__name__}: "
            f"{self.scrub(str(exc))}. {self._hint(exc)}"
        )

    def _hint(self, exc: BaseException) -> str:
        """What to check, given the kind of failure."""
        import redis as _redis

        text = str(exc)
        if "No connection available" in text:
            return (
                f"All {self.pool_size} pooled connections stayed busy for "
                f"{self.pool_timeout:g}s. Fix: raise online_store.pool_size (and the server's "
                "maxclients) or pool_timeout_ms, or send fewer concurrent requests."
            )
        refused = (_redis.AuthenticationError, _redis.exceptions.NoPermissionError)
        if isinstance(exc, refused) or "NOPERM" in text or "NOAUTH" in text:
            user = self.username or "the URL's user (else default)"
            return (
                f"Redis refused user {user}. Check online_store.username / password_env and "
                "the user's ACL (its commands and its key pattern, which must cover "
                "<key_prefix>:<project>:*)."
            )
        if isinstance(exc, _redis.exceptions.ReadOnlyError) or text.startswith("READONLY"):
            return (
                "The server is a read-only replica. Fix: point online_store.url at the "
                "primary; syncs write to Redis (replicas can serve online reads)."
            )
        if "SSL" in text or "certificate" in text.lower():
            return (
                "Check the TLS settings: online_store.tls_ca_file must hold the CA that signed "
                "the server's certificate, the URL's host must be named by that certificate "
                "(or tls_check_hostname: false), and tls_cert_file / tls_key_file are needed "
                "when the server verifies clients."
            )
        return (
            f"Check that redis-server is running and reachable at that address, that "
            f"online_store.url / password_env / tls are right, and the timeouts "
            f"(connect {self.connect_timeout:g}s, socket {self.socket_timeout:g}s)."
        )
