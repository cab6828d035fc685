"""Who may call the feature server: API keys, what each may read, reloaded without a restart.

A request presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The
server keeps only SHA-256 digests of the keys (``server.api_keys`` in the config), finds the
key's grant by the digest of what was presented, and checks that the grant covers every view
(or the feature set) the request reads. Keys are never logged: a request is known by the
key's name.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fstore_spark.config import ServerConfig, load_config
from fstore_spark.errors import FstoreError

__all__ = ["ANONYMOUS", "Grant", "KeyRing"]

_log = logging.getLogger("fstore_spark.server")


@dataclass(frozen=True)
class Grant:
    """What one key may read.

    Attributes:
        name: The key's name (the identity of its requests).
        views: Views it may read (``"*"``: all).
        feature_sets: Feature sets it may read (``"*"``: all).
    """

    name: str
    views: frozenset[str]
    feature_sets: frozenset[str]

    def may_read_view(self, view: str) -> bool:
        """Whether the grant covers ``view``."""
        return "*" in self.views or view in self.views

    def may_read_set(self, name: str, views: Iterable[str]) -> bool:
        """Whether the grant covers feature set ``name`` (named, or all of its ``views``)."""
        if "*" in self.feature_sets or name in self.feature_sets:
            return True
        views = list(views)
        return bool(views) and all(self.may_read_view(v) for v in views)

    def refused(self, views: Iterable[str], feature_set: str | None) -> str | None:
        """Why a request for ``views`` (of ``feature_set``, if given) is refused, else None."""
        views = list(views)
        if feature_set is not None:
            if self.may_read_set(feature_set, views):
                return None
            return (
                f"key {self.name!r} may not read feature set {feature_set!r}. Fix: add it to "
                "the key's feature_sets in server.api_keys."
            )
        denied = [v for v in views if not self.may_read_view(v)]
        if not denied:
            return None
        return (
            f"key {self.name!r} may not read view(s) {', '.join(map(repr, denied))}. Fix: add "
            "them to the key's views in server.api_keys."
        )


ANONYMOUS = Grant("anonymous", frozenset({"*"}), frozenset({"*"}))
"""The grant of a request without a key, when the server allows anonymous reads."""


def _grants(cfg: ServerConfig) -> dict[str, Grant]:
    return {
        k.digest(): Grant(k.name, frozenset(k.views), frozenset(k.feature_sets))
        for k in cfg.api_keys
    }


class KeyRing:
    """Key digests and their grants; :meth:`reload` swaps them in as a whole.

    Args:
        config: The ``server`` section the server starts with.
        source: The config file to re-read on :meth:`reload` (None: keys never change).
    """

    def __init__(self, config: ServerConfig, source: str | None) -> None:
        self.source = source
        self._grants = _grants(config)
        self._anonymous = config.allows_anonymous

    @property
    def names(self) -> list[str]:
        """Names of the keys in force (for start-up messages; never the keys)."""
        return sorted(g.name for g in self._grants.values())

    def reload(self) -> bool:
        """Re-read the keys from the config file; True when they changed.

        A file that does not load (half written, a typo, an unset variable) keeps the keys in
        force and logs why.
        """
        if self.source is None:
            return False
        try:
            cfg = load_config(self.source).server
            grants = _grants(cfg)
        except FstoreError as exc:
            _log.warning("keys not reloaded, the previous keys stay in force: %s", exc)
            return False
        if grants == self._grants and cfg.allows_anonymous == self._anonymous:
            return False
        self._grants, self._anonymous = grants, cfg.allows_anonymous
        _log.info("API keys reloaded: %d key(s)", len(grants))
        return True

    def authenticate(self, headers: Mapping[str, str]) -> Grant | None:
        """The grant of the key a request presents; None when it must be refused (401).

        Without a key: the anonymous grant when allowed. A key that is presented but unknown
        is refused even then.
        """
        key = _presented_key(headers)
        if key is None:
            return ANONYMOUS if self._anonymous else None
        return self._grants.get(hashlib.sha256(key.encode()).hexdigest())


def _presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None
