"""Shared pieces of the configuration models: strict models and secret handling."""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from fstore_spark.errors import ConfigError

__all__ = ["redact_url"]


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
