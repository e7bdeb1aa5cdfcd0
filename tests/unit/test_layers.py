"""The floors of docs/architecture.md, read from the source: imports point downward only, torch
only on floor 4, and no import cycle anywhere in `nnviz/` or `pytest_nnviz/` (lazy imports inside
functions count; imports under `if TYPE_CHECKING:` do not, they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nnviz", "pytest_nnviz")

FLOORS = {
    "nnviz.values": 1,
    "nnviz.graph": 1,
    "nnviz.errors": 1,
    "nnviz.fs": 1,
    "nnviz.untrusted": 1,
    "nnviz.sizes": 1,
    "nnviz.collector": 1,
    "nnviz.snapshot": 2,
    "nnviz.snapshot_schema": 2,
    "nnviz.transform": 2,
    "nnviz.collapsing": 2,
    "nnviz.costs": 2,
    "nnviz.bookkeeping": 2,
    "nnviz.experts": 2,
    "nnviz.diffing": 2,
    "nnviz.driftreport": 3,
    "nnviz.policy": 3,
    "nnviz.github": 3,
    "nnviz.review": 3,
    "nnviz.render": 3,
    "nnviz.models": 4,
    "nnviz.builds": 4,
    "nnviz.tracers": 4,
    "nnviz": 5,
    "nnviz.cli": 5,
    "nnviz.__main__": 5,
    "pytest_nnviz": 5,
}
# The sanctioned upward imports, each lazy inside one method: Jupyter display (Graph._repr_svg_,
# Graph._repr_html_, GraphDiff._repr_html_) draws the value.
ALLOWED_UPWARD = {
    ("nnviz.graph", "nnviz.render.notebook"),
    ("nnviz.diffing.model", "nnviz.render.notebook"),
}


def floor(module: str) -> int:
    while module not in FLOORS:
        module = module.rpartition(".")[0]
    return FLOORS[module]


def modules() -> dict[str, Path]:
    """Every module of both packages by dotted name (a package by its own name)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = modules()


def imports(name: str, path: Path) -> set[str]:
    """Modules `name` imports, at module level or inside functions; `from pkg import submodule`
    counts as the submodule, relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found


def import_graph() -> dict[str, set[str]]:
    """Edges between the packages' own modules, the sanctioned upward import left out."""
    return {
        name: {
            target
            for target in imports(name, path)
            if target in MODULES and target != name and (name, target) not in ALLOWED_UPWARD
        }
        for name, path in MODULES.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative, so a long import chain cannot hit the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def test_no_import_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    described = [
        " ; ".join(f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component)
        for component in found
    ]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_cycle_detection_sees_lazy_and_in_floor_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downward(name: str) -> None:
    mine = floor(name)
    for target in sorted(imports(name, MODULES[name])):
        top = target.split(".")[0]
        if top in ("torch", "torchvision"):
            assert mine == 4, f"{name} (floor {mine}) imports {target}"
        elif top in PACKAGES and (name, target) not in ALLOWED_UPWARD:
            theirs = floor(target)
            assert theirs <= mine, f"{name} (floor {mine}) imports {target} (floor {theirs})"
