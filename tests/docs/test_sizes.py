"""The size rule of the house: no module of `nnviz/` or `pytest_nnviz/` over ~450 lines, no
function over ~60, except those docs/architecture.md justifies.

The exceptions are read from the section of docs/architecture.md whose title starts with
"Modules over ~450 lines": every backticked `nnviz/....py` there exempts that module, every
backticked `nnviz/....py::Qualified.name` exempts that one function (methods and nested
functions by their dotted qualified name, `Class.method`, `outer.inner`). An exception whose
module or function is back within the limits fails too, so the section lists only what is
truly over: the commit that cuts one removes its line.

Limits, with their tolerance: a module may have `MODULE_LINES` lines (~450 and a margin of ten,
so one added import does not stop a landing); a function `FUNCTION_LINES`, counted from its
`def` line to its last line, docstring included, decorators not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGES = ("nnviz", "pytest_nnviz")
MODULE_LINES = 460
FUNCTION_LINES = 60
_SECTION = "## Modules over ~450 lines"
_CITED = re.compile(r"`((?:nnviz|pytest_nnviz)/[\w/]+\.py(?:::[\w.]+)?)`")


def justified() -> set[str]:
    """Every module (`path`) and function (`path::qualname`) the section cites."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start = text.find(_SECTION)
    assert start >= 0, f"docs/architecture.md has no section {_SECTION!r}"
    end = text.find("\n## ", start + 1)
    return set(_CITED.findall(text[start : end if end >= 0 else None]))


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function, methods and nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, (node.end_lineno or node.lineno) - node.lineno + 1
            yield from _functions(node, f"{name}.")
        else:
            yield from _functions(node, prefix)


def sizes() -> dict[str, int]:
    """Lines of every module (`path`) and function (`path::qualname`) of the packages."""
    out: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            file = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            out[file] = len(text.splitlines())
            for name, lines in _functions(ast.parse(text)):
                out[f"{file}::{name}"] = max(lines, out.get(f"{file}::{name}", 0))
    return out


def _limit(name: str) -> int:
    return FUNCTION_LINES if "::" in name else MODULE_LINES


def test_no_module_or_function_over_the_limit_unless_justified() -> None:
    over = {name: n for name, n in sizes().items() if n > _limit(name)}
    unjustified = sorted(
        f"{name} ({n} lines)" for name, n in over.items() if name not in justified()
    )
    assert unjustified == [], (
        f"over {MODULE_LINES} lines (module) or {FUNCTION_LINES} (function): cut it, or justify it "
        f"in docs/architecture.md's section {_SECTION!r}"
    )


def test_every_justified_exception_is_still_over_the_limit() -> None:
    found = sizes()
    stale = sorted(name for name in justified() if found.get(name, 0) <= _limit(name))
    assert stale == [], (
        f"missing or within the limits: remove from docs/architecture.md's section {_SECTION!r}"
    )
