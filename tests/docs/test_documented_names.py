"""Names the documentation gives are names that exist: every module of docs/architecture.md
imports as a module (`import nnviz.X as m` is never a function of the same name), the page lists
every module and no other, and every `nnviz.X.Y` a docstring names resolves."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGES = ("nnviz", "pytest_nnviz")


def module_files() -> set[str]:
    """Every module file of the packages, as a path relative to the repository."""
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def listed_files() -> list[str]:
    """The module files the architecture table names. A row may name more than one: a bare
    `name.py` lives in the folder of the path before it, a folder `pkg/` means its __init__.py."""
    out: list[str] = []
    for row in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        cells = row.split("|")
        if not row.startswith("|") or len(cells) < 4:
            continue
        folder = ""
        for item in re.findall(r"`([\w/.]+)`", cells[2]):
            if not item.startswith(PACKAGES):
                if "/" in item:
                    folder = ""  # a path outside the packages (bench/, vendor/)
                elif folder and item.endswith(".py"):
                    out.append(f"{folder}{item}")
                continue
            if item.endswith("/"):
                folder = item
                out.append(f"{item}__init__.py")
            else:
                folder = item.rpartition("/")[0] + "/"
                out.append(item)
    return out


def dotted(file: str) -> str:
    parts = Path(file).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_architecture_lists_every_module_and_only_existing_ones() -> None:
    listed = listed_files()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(set(listed) - module_files()) == [], "listed but missing"
    assert sorted(module_files() - set(listed)) == [], "exists but not listed"


@pytest.mark.parametrize("file", sorted(listed_files()))
def test_each_listed_module_imports_as_a_module(file: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"import {dotted(file)} as m", namespace)
    assert isinstance(namespace["m"], ModuleType), f"import {dotted(file)} as m"


_NAMED = re.compile(r"(?<![\w./-])((?:nnviz|pytest_nnviz)(?:\.[A-Za-z_]\w*)+)")


def docstring_names() -> list[tuple[str, str]]:
    """(file, dotted name) for every `nnviz.X...` a docstring of the packages names."""
    out = []
    for file in sorted(module_files()):
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                out += [(file, name) for name in _NAMED.findall(doc)]
    return sorted(set(out))


def resolve(name: str) -> object:
    """What `name` names, as Python finds it: each part an attribute of the one before, or else
    a submodule to import (an attribute wins, as it does for `nnviz.trace`, the function)."""
    parts = name.split(".")
    value: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if hasattr(value, part):
            value = getattr(value, part)
        elif isinstance(value, ModuleType):
            value = importlib.import_module(".".join(parts[: i + 1]))
        else:
            raise AttributeError(f"{'.'.join(parts[:i])} has no attribute {part!r}")
    return value


@pytest.mark.parametrize(("file", "name"), docstring_names())
def test_names_in_docstrings_resolve(file: str, name: str) -> None:
    try:
        resolve(name)
    except (AttributeError, ModuleNotFoundError) as exc:
        pytest.fail(f"{file} names {name}, which does not exist ({exc})")


def test_public_namespace_holds_no_typing_or_stdlib_helpers() -> None:
    import nnviz

    assert not {"Any", "Callable", "Path", "functools"} & set(dir(nnviz))
    for name in nnviz.__all__:
        value = getattr(nnviz, name)
        if isinstance(value, type) and issubclass(value, (Exception, Warning)):
            assert value.__module__ == "nnviz", name
