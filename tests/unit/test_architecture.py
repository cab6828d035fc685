"""Dependencies point one way: a module imports only modules of lower layers (AST check).

Layers, bottom up: errors -> config -> definitions/session -> registry, offline store, join and
aggregation engines -> materialization, training, versioning, online store -> lineage, online
sync -> the FeatureStore facade -> serving and the CLI. A new module must be placed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fstore_spark"

LAYERS = {
    "_version": 0,
    "errors": 0,
    "config": 1,
    "_filters": 1,
    "session": 2,
    "definitions": 2,
    "registry": 3,
    "repo": 3,
    "offline_store": 3,
    "asof": 3,
    "aggregation": 3,
    "encoders": 3,
    "selection": 3,
    "materialization": 4,
    "training": 4,
    "versioning": 4,
    "online_store": 4,
    "quality": 4,
    "experimentation": 3,
    "lineage": 5,
    "online_sync": 5,
    "store": 6,
    "serving": 7,
    "cli": 8,
    "__init__": 9,
}


def _imports(path: Path) -> set[str]:
    """fstore_spark modules imported anywhere in a file (top level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "fstore_spark":
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "fstore_spark" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_module_has_a_layer() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules - set(LAYERS) == set(), "place new modules in LAYERS"


def test_imports_point_down() -> None:
    wrong = []
    for path in sorted(PACKAGE.glob("*.py")):
        me = path.stem
        for dep in sorted(_imports(path) - {me}):
            if dep in LAYERS and LAYERS[dep] >= LAYERS[me]:
                wrong.append(f"{me} (layer {LAYERS[me]}) imports {dep} (layer {LAYERS[dep]})")
    assert wrong == []
