"""The import rules of docs/architecture.md, checked on every module's import statements
(function-level imports included: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ipw"

# layer -> what it may never import (prefix match on the imported module's dotted name)
FORBIDDEN = {
    "ipw.errors": ("ipw.",),
    "ipw.records": ("ipw.profilers", "ipw.workloads", "ipw.store", "ipw.efficiency", "ipw.reports", "ipw.cli"),
    "ipw.profilers": ("ipw.workloads", "ipw.store", "ipw.efficiency", "ipw.reports", "ipw.cli", "click", "matplotlib"),
    "ipw.store": ("ipw.workloads", "ipw.efficiency", "ipw.reports", "ipw.cli", "click", "matplotlib"),
    "ipw.efficiency": ("ipw.workloads", "ipw.reports", "ipw.cli", "click", "matplotlib"),
    "ipw.workloads": ("ipw.reports", "ipw.cli", "click", "matplotlib"),
    "ipw.density": ("ipw.reports", "ipw.cli", "click", "matplotlib", "ipw.workloads"),
    "ipw.capacity": ("ipw.reports", "ipw.cli", "click", "matplotlib", "ipw.workloads"),
    "ipw.cmr": ("ipw.reports", "ipw.cli", "click", "matplotlib", "ipw.workloads"),
    "ipw.reports": ("ipw.cli", "click"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _rules(module: str) -> tuple[str, ...]:
    return next((banned for layer, banned in FORBIDDEN.items() if module == layer or module.startswith(layer + ".")), ())


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_import_runs_up_the_layers(path):
    module = _module_name(path)
    banned = _rules(module)
    bad = [f"{path.name}:{line} imports {name}" for line, name in _imports(path)
           if any(name == b.rstrip(".") or name.startswith(b if b.endswith(".") else b + ".") for b in banned)]
    assert not bad, f"{module} breaks docs/architecture.md: " + "; ".join(bad)


def test_only_the_face_imports_click():
    users = {_module_name(p) for p in MODULES if any(n == "click" or n.startswith("click.") for _, n in _imports(p))}
    assert users and all(m == "ipw.cli" or m.startswith("ipw.cli.") for m in users), sorted(users)


def test_no_module_switches_the_plotting_backend():
    offenders = [str(p) for p in MODULES if "matplotlib.use(" in p.read_text()]
    assert not offenders
