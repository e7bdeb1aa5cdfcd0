"""The snapshot engine: compare a traced graph with its stored snapshot, write only when asked.

Ordinary library code on nnviz's public API (`trace`, `load`, `save`, `diff`); no pytest here.
An unchanged architecture is compared without rendering anything: the only work on top of
tracing is loading the stored JSON and one structural diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import nnviz
from nnviz.errors import SnapshotError
from nnviz.graph import Graph

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff

Status = Literal["passed", "drifted", "written", "missing", "failed"]
"""`passed`: identical; `drifted`: the architecture changed; `written`: created or replaced under
`--nnviz-update`; `missing`: no snapshot yet; `failed`: the stored file is unreadable."""


@dataclass(frozen=True)
class Check:
    """The outcome of comparing one graph with one snapshot file."""

    status: Status
    snapshot: Path
    graph: Graph
    """The graph as traced now (what `--nnviz-update` stores)."""
    diff: GraphDiff | None = None
    """Stored → current; `None` when there was nothing readable to compare with."""
    problem: str | None = None
    """Why the stored file could not be used (`failed` only)."""

    @property
    def ok(self) -> bool:
        """Whether the test may pass."""
        return self.status in ("passed", "written")


def build_graph(model: Any, *, inputs: Any = None, depth: int | None = None) -> Graph:
    """The graph to snapshot: `model` traced (a `Graph` is taken as is), collapsed to `depth`."""
    if isinstance(model, Graph):
        graph = model
    else:
        # Only pass `inputs` when given, so a plain structural trace needs no input support.
        options: dict[str, Any] = {} if inputs is None else {"inputs": inputs}
        graph = nnviz.trace(model, **options)
    if depth is not None:
        from nnviz.transform import collapse_depth

        graph = collapse_depth(graph, depth)
    return graph


def check_snapshot(graph: Graph, snapshot: Path, *, update: bool = False) -> Check:
    """Compare `graph` with the snapshot at `snapshot`; with `update`, store it when it differs.

    Without `update` nothing is ever written. With it, a missing, unreadable or drifted snapshot
    is replaced (atomically) and the result is `written`; an identical one is left untouched.
    """
    if not snapshot.is_file():
        if update:
            nnviz.save(graph, snapshot)
            return Check("written", snapshot, graph)
        return Check("missing", snapshot, graph)
    try:
        stored = nnviz.load(snapshot)
    except SnapshotError as exc:
        if update:
            nnviz.save(graph, snapshot)
            return Check("written", snapshot, graph)
        return Check("failed", snapshot, graph, problem=str(exc))
    diff = nnviz.diff(stored, graph)
    if diff.identical:
        return Check("passed", snapshot, graph, diff)
    if update:
        nnviz.save(graph, snapshot)
        return Check("written", snapshot, graph, diff)
    return Check("drifted", snapshot, graph, diff)
