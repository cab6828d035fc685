"""Access policies of feature views: who may change a view, and who may read it.

A policy is a registry entry (category ``access_policy``, named after the view) listing the
view's ``owners`` and ``readers``, by identity (a store's identity, or an API key's name for
the HTTP server). With owners listed, only they may change the view's definition, remove it,
materialize it, sync it or change its policy. With readers listed, only readers and owners may
read its features (training sets, feature tables, online reads). A view without a policy is
open, as before.

The store enforces policies for everything done through it; whoever can read the Delta tables
or Redis directly is not stopped by them: grant storage and catalog access to match (see
``docs/security.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fstore_spark.errors import AccessDeniedError

__all__ = ["CATEGORY", "AccessPolicy", "Policies", "reading_as", "reader"]

CATEGORY = "access_policy"
"""Registry category of access policies."""


_READER: ContextVar[str | None] = ContextVar("fstore_reader", default=None)


@contextmanager
def reading_as(who: str) -> Iterator[None]:
    """Reads in this block are checked as ``who`` (the HTTP server: the API key's name)."""
    token = _READER.set(who)
    try:
        yield
    finally:
        _READER.reset(token)


def reader(identity: str) -> str:
    """Who a read is checked as: the :func:`reading_as` name, else the store's identity."""
    return _READER.get() or identity


@dataclass(frozen=True)
class AccessPolicy:
    """Who owns and who may read one feature view (empty: anyone)."""

    view: str
    owners: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()

    def may_write(self, who: str) -> bool:
        """Whether ``who`` may change, materialize or sync the view."""
        return not self.owners or who in self.owners

    def may_read(self, who: str) -> bool:
        """Whether ``who`` may read the view's features."""
        return not self.readers or who in self.readers or who in self.owners

    def to_dict(self) -> dict[str, Any]:
        """The registry entry's definition."""
        return {"view": self.view, "owners": list(self.owners), "readers": list(self.readers)}


class Policies:
    """The access policies in force, by view."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self.by_view = {
            name: AccessPolicy(name, tuple(d.get("owners", ())), tuple(d.get("readers", ())))
            for name, d in entries.items()
        }

    def check_read(self, views: Iterable[str], who: str) -> None:
        """Raise unless ``who`` may read every view of ``views``.

        Raises:
            AccessDeniedError: naming the views and who may grant access.
        """
        denied = [p for v in views if (p := self.by_view.get(v)) and not p.may_read(who)]
        if denied:
            raise AccessDeniedError(
                f"{who!r} may not read feature view(s) {_names(denied)}: their access policy "
                f"lists other readers. Fix: ask an owner ({_owners(denied)}) to add {who!r} "
                "with `fstore policy VIEW --reader NAME`."
            )

    def check_write(self, views: Iterable[str], who: str, doing: str) -> None:
        """Raise unless ``who`` owns every view of ``views`` that has owners.

        Raises:
            AccessDeniedError: naming the views and their owners.
        """
        denied = [p for v in views if (p := self.by_view.get(v)) and not p.may_write(who)]
        if denied:
            raise AccessDeniedError(
                f"{who!r} may not {doing} feature view(s) {_names(denied)}: only their owners "
                f"({_owners(denied)}) may. Fix: run as an owner (config identity or "
                "FSTORE_USER), or ask one to add you to the view's owners."
            )


def _names(policies: Sequence[AccessPolicy]) -> str:
    return ", ".join(repr(p.view) for p in policies)


def _owners(policies: Sequence[AccessPolicy]) -> str:
    owners = sorted({o for p in policies for o in p.owners})
    return ", ".join(owners) or "none listed"
