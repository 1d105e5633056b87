"""Each heavy dependency enters through one module (STYLE.md): checked on the source, import by import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstm_demo"

# dependency -> the only files (relative to lstm_demo/) allowed to import it
OWNERS = {
    "captum": {"explain.py"},
    "tokenizers": {"tokenization.py"},
    "sqlalchemy": {"store/__init__.py", "store/models.py", "store/engine.py", "migrations/env.py"},
    "alembic": {"store/engine.py", "migrations/env.py"},
    "safetensors": {"artifacts.py"},
    "sklearn": {"baseline.py"},
    "optuna": {"search.py"},
}
# files that must not import torch (the UI never does; data and rendering stay plain)
TORCH_FREE = [
    "data.py",
    "figures/__init__.py",
    "figures/explain.py",
    "figures/runs.py",
    "figures/settings.py",
    "baseline.py",
    "adapt.py",
    "files.py",
    "worker.py",
    "examples.py",
    "names.py",
    "config.py",
    "metrics.py",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _sources() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): _imports(p) for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("dependency", sorted(OWNERS))
def test_a_heavy_dependency_enters_through_its_module(dependency):
    importers = {name for name, deps in _sources().items() if dependency in deps and "versions/" not in name}
    assert importers <= OWNERS[dependency], (
        f"{dependency} imported by {sorted(importers - OWNERS[dependency])}"
    )


def test_the_ui_imports_neither_torch_nor_captum_nor_sqlalchemy():
    offenders = {
        name: deps & {"torch", "captum", "sqlalchemy"}
        for name, deps in _sources().items()
        if name.startswith("ui/") and deps & {"torch", "captum", "sqlalchemy"}
    }
    assert not offenders


@pytest.mark.parametrize("name", TORCH_FREE)
def test_plain_modules_do_not_import_torch(name):
    assert "torch" not in _imports(PACKAGE / name)


def _package_imports(path: Path) -> set[str]:
    """Modules of this package a file imports (`from .. import x`, `from ..x import y`, `lstm_demo.x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(PACKAGE).parent.parts
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[: len(here) - node.level + 1])
            if node.module:
                names.add(
                    "/".join([*base, *node.module.split(".")][:2]) if base else node.module.split(".")[0]
                )
            else:
                names.update("/".join([*base, a.name]) if base else a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lstm_demo."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lstm_demo."))
    return names


# the service, plain names and settings; and the figure modules, which draw from plain data
UI_MAY_IMPORT = {"service", "names", "config", "figures"}


@pytest.mark.parametrize("name", sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "ui").glob("*.py")))
def test_the_ui_goes_through_the_service(name):
    """The UI's only door is the service: never the worker, the tables, the store or the engine."""
    imported = _package_imports(PACKAGE / name)
    outside = {m for m in imported if not m.startswith("ui/") and m not in UI_MAY_IMPORT}
    assert not outside, f"{name} imports {sorted(outside)}"


def test_only_the_service_uses_the_worker():
    users = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "worker" in _package_imports(p)}
    assert users <= {"service.py"}, sorted(users)


def test_only_the_ui_imports_gradio():
    importers = {name for name, deps in _sources().items() if "gradio" in deps}
    assert all(name.startswith("ui/") for name in importers), sorted(importers)
