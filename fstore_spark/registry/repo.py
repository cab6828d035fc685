"""Discover definitions from a feature repo folder of Python files and from YAML files.

A feature repo is a folder of ``.py`` files (as read by ``feast apply``): every module-level
:class:`~fstore_spark.core.Entity`, source, :class:`FeatureView` and :class:`FeatureSet`
is collected. Files and folders whose name starts with ``_`` or ``.`` are skipped, as are
``tests`` folders. A repo file is executed as Python, so only point it at code you trust.

YAML definitions (listed under ``definitions:`` in ``conf/feature_store.yaml``) have top-level
lists ``entities``, ``sources``, ``feature_views`` and ``feature_sets`` whose items are the
``to_dict()`` forms; ``kind`` may be omitted where the list implies it (sources need
``kind: delta_source`` or ``kind: parquet_source``, default ``delta_source``), and a view's
``source`` may be the name of a source declared in the same file.

Example::

    objects = load_definitions(repo_path="feature_repo", yaml_files=["conf/features.yaml"])
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from fstore_spark.core import (
    DeltaSource,
    Entity,
    FeatureSet,
    FeatureView,
    ParquetSource,
    from_dict,
)
from fstore_spark.errors import ConfigError, DefinitionError

__all__ = ["load_definitions", "load_repo", "load_yaml_definitions"]

_DEFINITION_TYPES = (Entity, DeltaSource, ParquetSource, FeatureView, FeatureSet)


def load_repo(repo_path: str | Path) -> list[Any]:
    """Import every Python file of a feature repo and collect its module-level definitions.

    Args:
        repo_path: Folder of Python files.

    Returns:
        Definitions in file order (sorted paths), then attribute order; equal objects once.

    Raises:
        DefinitionError: the folder does not exist, or a file fails to import (the message
            names the file and the error).
    """
    root = Path(repo_path)
    if not root.is_dir():
        raise DefinitionError(
            f"feature repo {root} is not a folder. Fix: set repo_path in the config to the "
            "folder that holds your definition files."
        )
    found: list[Any] = []
    with _importable(root):
        for file in sorted(root.rglob("*.py")):
            rel = file.relative_to(root)
            if not any(p.startswith(("_", ".")) or p == "tests" for p in rel.parts):
                found.extend(_definitions_in(file))
    return _dedupe(found)


@contextmanager
def _importable(root: Path) -> Iterator[None]:
    """The repo's root on ``sys.path`` while its files load, so that they import each other.

    ``from data_sources.sources import transactions`` works as when run from the root. The
    modules imported from the repo are forgotten afterwards: a later load reads the files
    again, and nothing of the repo stays importable.
    """
    path = str(root.resolve())
    before = set(sys.modules)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        if path in sys.path:
            sys.path.remove(path)
        for name in set(sys.modules) - before:
            module = sys.modules[name]  # a folder without __init__.py has only a __path__
            where = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
            if any(str(w).startswith(path + os.sep) for w in where if w):
                del sys.modules[name]


def _definitions_in(file: Path) -> list[Any]:
    """Execute one repo file; its module-level definitions (and lists of them)."""
    found: list[Any] = []
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    mod_name = f"_fstore_repo_{digest}_{file.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        return found
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except DefinitionError as exc:
        raise DefinitionError(f"{file}: {exc}") from None
    except Exception as exc:
        raise DefinitionError(
            f"{file}: failed to import ({type(exc).__name__}: {exc}). Fix: make the file "
            "importable from the repo's root folder."
        ) from exc
    finally:
        sys.modules.pop(mod_name, None)
    for value in vars(module).values():
        if isinstance(value, _DEFINITION_TYPES):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, _DEFINITION_TYPES))
    return found


def load_yaml_definitions(path: str | Path) -> list[Any]:
    """Read definitions from one YAML file (see the module docstring for the format).

    Raises:
        DefinitionError: unreadable file, unknown section, or an invalid definition (the
            message names the file and the item).
    """
    file = Path(path)
    if not file.is_file():
        raise DefinitionError(f"{file}: definitions file not found. Fix: check the path.")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{file}: not valid YAML: {exc}") from None
    sections = {
        "entities": "entity",
        "sources": "delta_source",
        "feature_views": "feature_view",
        "feature_sets": "feature_set",
    }
    if not isinstance(data, dict) or set(data) - set(sections):
        unknown = sorted(set(data) - set(sections)) if isinstance(data, dict) else data
        raise DefinitionError(
            f"{file}: unknown top-level section(s) {unknown}. Fix: use {', '.join(sections)}."
        )
    out: list[Any] = []
    sources: dict[str, dict[str, Any]] = {}
    for section, default_kind in sections.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            raise DefinitionError(f"{file}: '{section}' must be a list.")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DefinitionError(f"{file}: {section}[{i}] must be a mapping.")
            item = {"kind": default_kind, **item}
            if section == "feature_views" and isinstance(item.get("source"), str):
                name = item["source"]
                if name not in sources:
                    raise DefinitionError(
                        f"{file}: {section}[{i}] ({item.get('name')}): unknown source {name!r}. "
                        f"Fix: declare it under 'sources' (known: {', '.join(sources) or 'none'})."
                    )
                item["source"] = sources[name]
            try:
                obj = from_dict(item)
            except DefinitionError as exc:
                raise DefinitionError(f"{file}: {section}[{i}]: {exc}") from None
            if section == "sources":
                sources[obj.name] = obj.to_dict()
            out.append(obj)
    return out


def load_definitions(
    repo_path: str | Path | None = None, yaml_files: Sequence[str | Path] = ()
) -> list[Any]:
    """Definitions from a feature repo folder and/or YAML files, equal objects once."""
    objs: list[Any] = []
    if repo_path is not None:
        objs.extend(load_repo(repo_path))
    for f in yaml_files:
        objs.extend(load_yaml_definitions(f))
    return _dedupe(objs)


def load_configured(repo_path: str | None, yaml_files: Sequence[str]) -> list[Any]:
    """The definitions a config names (its feature repo and YAML files).

    Raises:
        ConfigError: the config names neither.
    """
    if repo_path is None and not yaml_files:
        raise ConfigError(
            "no definitions to load: set repo_path (a folder of Python definitions) or "
            "definitions (YAML files) in the config, or pass objects to plan/apply."
        )
    return load_definitions(repo_path, yaml_files)


def _dedupe(objs: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for o in objs:
        if not any(o is x or (type(o) is type(x) and o == x) for x in out):
            out.append(o)
    return out
