"""Drift artifacts: what a reviewer looks at when a snapshot test fails.

For a drifted snapshot `<folder>/__nnviz_snapshots__/<module>/<test>.json` the artifacts go to
`<artifacts dir>/<folder>/<module>/<test>.diff.pdf`, `.diff.svg` (the highlighted diff drawing),
`.diff.html` (the same diff as one interactive offline page) and `.new.json` (the snapshot as
traced now). Every file is written atomically, so pytest-xdist
workers can write side by side. Rendering happens only here, i.e. only for drifted snapshots.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nnviz
from nnviz.graph import Graph
from pytest_nnviz.location import SNAPSHOT_DIR

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff


SUFFIXES = (".new.json", ".diff.pdf", ".diff.svg", ".diff.html")


@dataclass(frozen=True)
class Artifacts:
    """The files written for one drift; `None` for a file that could not be produced."""

    pdf: Path | None
    svg: Path | None
    snapshot: Path | None
    problems: tuple[str, ...] = ()
    """One line per file that could not be written (e.g. Graphviz failed)."""
    html: Path | None = None
    """The interactive page of the diff (expand, search, changelog links), one offline file."""


def artifact_stem(snapshot: Path, rootdir: Path, artifacts_dir: Path) -> Path:
    """`<artifacts dir>/<snapshot path under rootdir, minus __nnviz_snapshots__ and .json>`."""
    try:
        relative = snapshot.relative_to(rootdir)
    except ValueError:
        relative = Path(snapshot.name)
    parts = [p for p in relative.with_suffix("").parts if p != SNAPSHOT_DIR]
    return artifacts_dir.joinpath(*parts)


def write_artifacts(diff: GraphDiff, graph: Graph, stem: Path) -> Artifacts:
    """Write the diff drawing (PDF, SVG, HTML) and the new snapshot next to `stem`."""
    problems: list[str] = []
    new, drawing_pdf, drawing_svg, page = (_beside(stem, suffix) for suffix in SUFFIXES)
    snapshot = _attempt(problems, lambda: nnviz.save(graph, new))
    pdf = _attempt(problems, lambda: _draw(diff, drawing_pdf))
    svg = _attempt(problems, lambda: _draw(diff, drawing_svg))
    html = _attempt(problems, lambda: _draw(diff, page))
    return Artifacts(pdf, svg, snapshot, tuple(problems), html)


def clear_artifacts(stem: Path) -> None:
    """Remove a snapshot's artifacts from an earlier drift: they no longer describe the model."""
    for suffix in SUFFIXES:
        _beside(stem, suffix).unlink(missing_ok=True)


def _beside(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)


def _draw(diff: GraphDiff, path: Path) -> Path:
    return Path(nnviz.draw(diff, path))


def _attempt(problems: list[str], write: Callable[[], Path]) -> Path | None:
    # A drawing that fails (Graphviz, a renderer bug) must not hide the drift itself, which is
    # the test's real failure: record why, in the message and the report, and carry on.
    try:
        return Path(write())
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
        return None


def relative(path: Path | None, rootdir: Path) -> str | None:
    """`path` relative to `rootdir` in POSIX form (as report.json stores paths)."""
    if path is None:
        return None
    return Path(os.path.relpath(path, rootdir)).as_posix()
