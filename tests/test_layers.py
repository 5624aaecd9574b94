"""Layers point one way. Every import of our own packages (module level or inside a function) is an edge
of the import graph; an edge against the intended direction fails here.

    data ──► model ──► training                  bench may import anything
               │
               └──► dashboard (UI) ──► dashboard.store (the case store: data only, no UI, no model)

    data             imports nothing of ours
    model            data
    training         model, data
    dashboard        model, data, its own subpackages (dashboard.store included)
    dashboard.store  data
    bench            anything

Also: no package imports another package's private names (`from data.images import _to_rgb`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "model", "training", "dashboard", "bench")

# Importing layer -> the layers it may import (its own included). The longest matching prefix is the
# importing file's layer. None: anything.
MAY_IMPORT: dict[str, set[str] | None] = {
    "data": {"data"},
    "model": {"model", "data"},
    "training": {"training", "model", "data"},
    "dashboard": {"dashboard", "model", "data"},
    "dashboard.store": {"dashboard.store", "data"},
    "bench": None,
}

# Known wrong-way edges, each with the reason it is still there. Remove an entry when its edge is gone
# (test_allowed_edges_still_exist says so); never add one without a reason and an issue.
ALLOWED_FOR_NOW: dict[tuple[str, str], str] = {
    # empty: the metrics moved to model/metrics.py, below both training and the dashboard
}

# Private names imported across packages, with the reason. Same rule: remove when gone.
PRIVATE_ALLOWED_FOR_NOW: dict[tuple[str, str], str] = {}


def python_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    base = REPO.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: Path) -> Iterator[tuple[str, int, list[str]]]:
    """(imported module, line, names imported from it) for every import of our packages in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..y import z
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # `from training import metrics` imports the module training.metrics
                submodule = f"{source}.{alias.name}"
                if is_module(submodule):
                    yield submodule, node.lineno, []
                else:
                    yield source, node.lineno, [alias.name]


def ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def layer_of(module: str) -> str:
    return max((layer for layer in MAY_IMPORT if module == layer or module.startswith(layer + ".")), key=len)


def within(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def edges() -> Iterator[tuple[Path, int, str, str, list[str]]]:
    """(file, line, importing layer, imported module, names) for every import of our packages."""
    for path in python_files():
        importer = layer_of(module_name(path))
        for target, line, names in imports(path):
            if ours(target):
                yield path, line, importer, target, names


def allowed_for_now(importer: str, target: str) -> bool:
    return any(importer == layer and within(target, module) for layer, module in ALLOWED_FOR_NOW)


def wrong_way(importer: str, target: str) -> bool:
    permitted = MAY_IMPORT[importer]
    if permitted is None:
        return False
    target_layer = layer_of(target)
    # a layer may import itself and any layer listed; `dashboard` lists itself, so dashboard.store is in it
    return not any(within(target_layer, allowed) for allowed in permitted)


def test_imports_point_the_intended_way():
    problems = [
        f"{path.relative_to(REPO)}:{line}: {importer} imports {target}"
        for path, line, importer, target, _ in edges()
        if wrong_way(importer, target) and not allowed_for_now(importer, target)
    ]
    assert not problems, "imports against the layer direction (see tests/test_layers.py):\n" + "\n".join(problems)


def test_allowed_edges_still_exist():
    present = {(importer, target) for _, _, importer, target, _ in edges() if wrong_way(importer, target)}
    stale = [
        f"{layer} -> {module}"
        for layer, module in ALLOWED_FOR_NOW
        if not any(importer == layer and within(target, module) for importer, target in present)
    ]
    assert not stale, f"these edges are gone: remove them from ALLOWED_FOR_NOW: {stale}"


def test_no_private_names_across_packages():
    problems, seen = [], set()
    for path, line, _, target, names in edges():
        here = module_name(path).split(".")[0]
        for name in names:
            key = (str(path.relative_to(REPO)), f"{target}.{name}")
            if name.startswith("_") and not name.startswith("__") and target.split(".")[0] != here:
                seen.add(key)
                if key not in PRIVATE_ALLOWED_FOR_NOW:
                    problems.append(f"{key[0]}:{line}: imports the private name {key[1]}")
    assert not problems, "\n".join(problems)
    stale = set(PRIVATE_ALLOWED_FOR_NOW) - seen
    assert not stale, f"these private imports are gone: remove them from PRIVATE_ALLOWED_FOR_NOW: {sorted(stale)}"


@pytest.mark.parametrize(
    ("importer", "target", "wrong"),
    [
        ("data", "model.network", True),
        ("model", "training.metrics", True),
        ("model", "dashboard.review_state", True),
        ("training", "dashboard.store", True),
        ("dashboard", "training.train", True),
        ("dashboard.store", "dashboard.review_state", True),
        ("dashboard.store", "model.predictor", True),
        ("model", "data.images", False),
        ("training", "model.checkpoint", False),
        ("dashboard", "dashboard.store.api", False),
        ("dashboard.store", "data.schema", False),
        ("bench", "training.bundle", False),
    ],
)
def test_the_rule_itself(importer, target, wrong):
    assert wrong_way(importer, target) is wrong


def test_relative_and_from_package_imports_are_resolved(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    package = tmp_path / "dashboard" / "store"
    package.mkdir(parents=True)
    (tmp_path / "dashboard" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "metrics.py").write_text("")
    (package / "api.py").write_text(
        "from .. import services\nfrom . import files\nfrom training import metrics\n"
        "def f():\n    from model.cam import CAM_METHODS\n"
    )
    found = [(target, names) for target, _, names in imports(package / "api.py")]
    assert found == [
        ("dashboard", ["services"]),
        ("dashboard.store", ["files"]),
        ("training.metrics", []),
        ("model.cam", ["CAM_METHODS"]),
    ]
