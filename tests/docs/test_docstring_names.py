"""Docstrings stay true: every backticked dotted name that refers to code resolves.

A docstring of `nnviz/` or `pytest_nnviz/` may cite code as `` `module.NAME` ``,
`` `Class.method` `` or `` `nnviz.diffing.records.Entry` ``. Such a name is checked when it
starts with `nnviz`/`pytest_nnviz`, with a name of the module's own namespace (an import, a class,
a function), or with an importable library, or when it ends in a constant or a class name
(`encode.MODEL_DEVICE`: a reference, whatever it starts with). Prose such as `x.shape` or
`report.json` is left alone.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nnviz", "pytest_nnviz")
_TICKED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")
_REFERENCE = re.compile(r"^(?:[A-Z][A-Z0-9_]+|_?[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)*)$")
"""A constant (`MODEL_DEVICE`) or a class (`GraphDiff`): a name only code has."""
_ALIASES = {"nn": "torch.nn", "F": "torch.nn.functional", "fx": "torch.fx"}
_FILES = {"json", "py", "html", "md", "pdf", "svg", "png", "txt", "css", "js", "yml", "toml", "dot"}
"""A file name (`report.json`), not code."""


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _docstrings(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0] if body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((value.lineno, value.value))
        # attribute docstrings: a string right after an assignment in a class or module body
        for field in ("body",):
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list):
                continue
            for before, after in itertools.pairwise(stmts):
                if (
                    isinstance(before, ast.Assign | ast.AnnAssign)
                    and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                ):
                    found.append((after.lineno, after.value.value))
    return found


def _has(obj: Any, name: str) -> Any:
    """`obj.name`, a dataclass or pydantic field included; `_MISSING` when absent."""
    if hasattr(obj, name):
        return getattr(obj, name)
    if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
        return object()
    if name in (getattr(obj, "model_fields", None) or {}):
        return object()
    annotations = getattr(obj, "__annotations__", {})
    return object() if name in annotations else _MISSING


_MISSING = object()


def _chain(obj: Any, parts: list[str]) -> bool:
    for part in parts:
        obj = _has(obj, part)
        if obj is _MISSING:
            return False
    return True


def _importable(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _resolves(dotted: str, module: Any) -> bool | None:
    """True when `dotted` names code, False when it should and does not, None for prose."""
    parts = dotted.split(".")
    head = parts[0]
    if parts[-1] in _FILES:
        return None
    if hasattr(module, head):
        return _chain(getattr(module, head), parts[1:])
    package = module.__name__.rpartition(".")[0]
    bases = ["", "nnviz.", f"{package}." if package else "", "nnviz.tracers.", "nnviz.diffing."]
    bases += ["nnviz.render.", "nnviz.cli."]
    head = _ALIASES.get(head, head)
    for base in dict.fromkeys(bases):
        for cut in range(len(parts), 0, -1):
            name = base + ".".join([head, *parts[1:cut]])
            if importlib.util.find_spec(name.split(".")[0]) is None:
                break
            found = _importable(name)
            if found is not None:
                return _chain(found, parts[cut:])
    starts_here = head in PACKAGES or head in _local_modules()
    return False if starts_here or _REFERENCE.match(parts[-1]) else None


def _local_modules() -> set[str]:
    return {name.rpartition(".")[2] for name in _modules()}


@pytest.mark.parametrize("name", _modules())
def test_every_cited_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    path = Path(module.__file__ or "")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrong = []
    for line, text in _docstrings(tree):
        for dotted in _TICKED.findall(text):
            if _resolves(dotted, module) is False:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: `{dotted}`")
    assert not wrong, "docstrings cite names that do not exist:\n" + "\n".join(wrong)
