"""The model-code lines a drift's annotations point at: where each changed module is defined (the
`self.x = ...` line of its parent) and where each changed call is made.

Found from the live model in the test process: for a changed module `a.b.c` the parent `a.b` is
looked up in the model, and its class's `__init__` (or a base class's, in method resolution
order) is read with `inspect` + `ast` for an assignment to `self.c` (or `self.add_module("c",
...)`). A parent whose class is not defined inside the repository (a `torch.nn.Sequential`, a
torchvision block) passes the question up: `features.3` of a `Sequential` is annotated on the
`self.features = nn.Sequential(...)` assignment, on the line of its fourth element when the
elements are written out. The annotation then lands on the model code a reviewer
reads in the pull request.

A changed call (a function or method call added or changed on its own account, or a module
call given other inputs: `self.proj(x)` → `self.proj(h)`) is annotated on the line that makes
it, read from the new graph's `Graph.sources` (the tracer saw it; never part of the snapshot or
the comparison). Only lines inside the repository are annotated.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_nnviz.location import relative
from pytest_nnviz.session import SourceRef

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff, NodeDiff
    from nnviz.graph import Graph

MAX_SOURCES = 10
"""Lines annotated per drift at most (GitHub shows 10 warnings per step anyway)."""


def changed_modules(diff: GraphDiff) -> list[str]:
    """Module paths whose own definition changed (not only through another change, and not
    only in what the call is given: that is a changed call, `changed_calls`)."""
    return [
        entry.path
        for entry in diff
        if entry.path and entry.kind == "module" and not entry.propagated and not _rewired(entry)
    ]


def changed_calls(diff: GraphDiff) -> list[str]:
    """Node ids (new side) of the calls that changed on their own account: ops (function and
    method calls) added or changed, and module calls given other inputs; not removed, not only
    a consequence of another change, not information."""
    return [
        entry.name
        for entry in diff
        if entry.status in ("added", "changed")
        and entry.drifted
        and not entry.propagated
        and (entry.kind in ("function", "method") or (entry.kind == "module" and _rewired(entry)))
    ]


def _rewired(entry: NodeDiff) -> bool:
    """A module call whose every own change is in its inputs (`self.proj(a)` → `self.proj(b)`)."""
    own = [key for key, change in entry.changes.items() if not change.propagated]
    return entry.status == "changed" and bool(own) and all(k.startswith("inputs") for k in own)


def definition_lines(model: Any, modules: Iterable[str], repository: Path) -> list[SourceRef]:
    """The source lines defining `modules` in `model`, one per line (modules merged), paths
    relative to `repository`; lines outside the repository are left out."""
    found: dict[tuple[str, int], list[str]] = {}
    for path in modules:
        where = _definition(model, path, repository.resolve())
        if where is not None:
            found.setdefault(where, []).append(path)
        if len(found) >= MAX_SOURCES:
            break
    return [SourceRef(file, line, names) for (file, line), names in sorted(found.items())]


def call_lines(graph: Graph, ops: Iterable[str], repository: Path) -> list[SourceRef]:
    """The lines making the calls `ops` (node ids) in `graph`'s model code (`Graph.sources`),
    one per line (calls merged), paths relative to `repository`; lines outside the repository
    are left out."""
    found: dict[tuple[str, int], list[str]] = {}
    root = repository.resolve()
    for op in ops:
        where = graph.sources.get(op)
        if where is None:
            continue
        file = Path(where.file).resolve()
        if _inside(file, root):
            found.setdefault((relative(file, root), where.line), []).append(op)
        if len(found) >= MAX_SOURCES:
            break
    return [SourceRef(f, line, names, "calls") for (f, line), names in sorted(found.items())]


def _definition(model: Any, path: str, repository: Path) -> tuple[str, int] | None:
    parts = path.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        try:
            parent = model.get_submodule(".".join(parts[:depth]))
        except (AttributeError, TypeError):
            continue
        # `features.3` first: the element's own line inside `self.features = nn.Sequential(...)`.
        names = [parts[depth]]
        if depth + 1 < len(parts):
            names.insert(0, f"{parts[depth]}.{parts[depth + 1]}")
        for cls in type(parent).__mro__:
            for name in names:
                where = _assignment(cls, name)
                if where is not None and _inside(where[0], repository):
                    return relative(where[0], repository), where[1]
    return None


def _inside(file: Path, repository: Path) -> bool:
    return file.is_relative_to(repository) and "site-packages" not in file.parts


def _assignment(cls: type, attribute: str) -> tuple[Path, int] | None:
    return _assignments(cls).get(attribute)


@functools.cache
def _assignments(cls: type) -> dict[str, tuple[Path, int]]:
    """`self.<name> = ...` lines of `cls.__init__`, by name (empty when there is no source)."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return {}
    try:
        file = inspect.getsourcefile(init)
        lines, start = inspect.getsourcelines(init)
    except (OSError, TypeError):
        return {}
    if file is None:
        return {}
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return {}
    out: dict[str, tuple[Path, int]] = {}
    where = Path(file).resolve()
    for node in ast.walk(tree):
        for name in _assigned(node):
            out.setdefault(name, (where, start + getattr(node, "lineno", 1) - 1))
            value = getattr(node, "value", None)
            for index, element in enumerate(_container_elements(value)):
                out.setdefault(f"{name}.{index}", (where, start + element.lineno - 1))
    return out


def _container_elements(value: ast.AST | None) -> list[ast.expr]:
    """The elements of `nn.Sequential(a, b)` / `nn.ModuleList([a, b])`, numbered as torch does."""
    if not isinstance(value, ast.Call) or value.keywords:
        return []
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name == "Sequential" and not any(isinstance(a, ast.Starred) for a in value.args):
        return list(value.args)
    if name == "ModuleList" and len(value.args) == 1 and isinstance(value.args[0], ast.List):
        return list(value.args[0].elts)
    return []


def _assigned(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    elif isinstance(node, ast.Call) and _is_self_attr(node.func, "add_module") and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
        return []
    else:
        return []
    return [t.attr for t in targets if isinstance(t, ast.Attribute) and _is_self(t.value)]


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _is_self_attr(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == name and _is_self(node.value)
