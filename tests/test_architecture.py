"""The import rules of docs/architecture.md, checked on every module's import statements
(function-level imports included: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ipw"

LAYERS = (
    "ipw.core",
    "ipw.devices",
    "ipw.profilers",
    "ipw.engines",
    "ipw.queries",
    "ipw.store",
    "ipw.science",
    "ipw.run",
    "ipw.reports",
    "ipw.cli",
)
"""Lowest first: a module may import its own layer and the layers below it, never one above."""
TOP = ("ipw", "ipw.__main__")
"""The package's own face (``ipw.measure``, ``python -m ipw``), above every layer."""
DATA = "ipw.data"
"""Shipped data, and the scripts that built it from their sources (never imported by ipw)."""
SCIENCE_SHARED = ("ipw.science.fitting", "ipw.science.results")
"""What the four papers' packages share; none of them imports another."""
ONLY = {"click": "ipw.cli", "matplotlib": "ipw.reports"}
"""Third-party packages that one layer alone may import."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))
NAMES = {_module_name(p) for p in MODULES}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import, ``from X import y`` naming the module ``X.y`` where that is one."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in NAMES]
            found += [(node.lineno, s) for s in subs] or [(node.lineno, node.module)]
            if subs and len(subs) < len(node.names):
                found.append((node.lineno, node.module))
    return found


def _layer(module: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")), None)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


GRAPH = {_module_name(p): [(line, n) for line, n in _imports(p) if _within(n, "ipw")] for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_every_module_has_a_layer_and_imports_down(path):
    module = _module_name(path)
    if module in TOP or _within(module, DATA):
        return
    own = _layer(module)
    assert own is not None, f"{module} sits in no layer of docs/architecture.md: move it into one"
    bad = [f"{path.name}:{line} imports {name}" for line, name in GRAPH[module]
           if name not in TOP and (_layer(name) is None or _layer(name) > own)]
    assert not bad, f"{module} imports upward, against docs/architecture.md: " + "; ".join(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_third_party_layers(path):
    module = _module_name(path)
    bad = [f"{path.name}:{line} imports {name}" for line, name in _imports(path) for lib, owner in ONLY.items()
           if _within(name, lib) and not _within(module, owner)]
    assert not bad, "; ".join(bad)


def test_the_papers_packages_do_not_import_each_other():
    papers = sorted({".".join(m.split(".")[:3]) for m in NAMES if _within(m, "ipw.science")} - set(SCIENCE_SHARED) - {"ipw.science"})
    assert len(papers) == 4, papers
    bad = [f"{m} imports {n}" for m, edges in GRAPH.items() for _, n in edges for p in papers
           if _within(m, "ipw.science") and _within(n, p) and not _within(m, p)]
    assert not bad, bad


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over every import."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for _, w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or any(n == v for _, n in GRAPH.get(v, ())):
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle():
    GRAPH["ipw.core.errors"].append((0, "ipw.core.records"))
    try:
        assert ["ipw.core.errors", "ipw.core.records"] in _cycles()
    finally:
        GRAPH["ipw.core.errors"].pop()


def test_no_module_switches_the_plotting_backend():
    offenders = [str(p) for p in MODULES if "matplotlib.use(" in p.read_text()]
    assert not offenders


def test_no_file_past_the_size_of_one_idea():
    """Files of one idea each: none past 450 lines (docs/architecture.md)."""
    long = {str(p.relative_to(PACKAGE.parent)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long
