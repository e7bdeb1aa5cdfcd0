"""The floors of docs/architecture.md: imports point downward only, torch only on floor 4."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nnviz"

FLOORS = {
    "nnviz.values": 1,
    "nnviz.graph": 1,
    "nnviz.errors": 1,
    "nnviz.fs": 1,
    "nnviz.untrusted": 1,
    "nnviz.snapshot": 2,
    "nnviz.bookkeeping": 2,
    "nnviz.transform": 2,
    "nnviz.diffing": 2,
    "nnviz.driftreport": 3,
    "nnviz.render": 3,
    "nnviz.models": 4,
    "nnviz.tracers": 4,
    "nnviz": 5,
    "nnviz.cli": 5,
    "nnviz.__main__": 5,
}
# Lazy calls inside one method each: Graph._repr_svg_/_repr_html_ and GraphDiff._repr_html_
# (Jupyter display) render.
ALLOWED_UPWARD = {
    ("nnviz.graph", "nnviz.render.output"),
    ("nnviz.diffing.model", "nnviz.render.output"),
}


def floor(module: str) -> int:
    while module not in FLOORS:
        module = module.rpartition(".")[0]
    return FLOORS[module]


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def imports(path: Path) -> set[str]:
    """Modules `path` imports; `from pkg import submodule` counts as the submodule."""
    known = {name for name, _ in modules()}
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_downward(name: str, path: Path) -> None:
    mine = floor(name)
    for target in sorted(imports(path)):
        if target.split(".")[0] in ("torch", "torchvision"):
            assert mine == 4, f"{name} (floor {mine}) imports {target}"
        elif target.split(".")[0] == "nnviz" and (name, target) not in ALLOWED_UPWARD:
            theirs = floor(target)
            assert theirs <= mine, f"{name} (floor {mine}) imports {target} (floor {theirs})"
