"""The snapshot engine: compare → write when the update mode allows → draw on drift, in one call.

Ordinary library code on nnviz's public API (`trace`, `load`, `save`, `diff`, `draw`) and a few
of its modules (`snapshot.loads` for the stored bytes, `review.digest`, `transform.collapse_depth`
for the drawing's depth); no pytest here (as pytest-regressions' `perform_regression_check`).
An unchanged architecture is compared without rendering anything: the only work on top of
tracing is reading the stored JSON and one structural diff.

For a drifted snapshot `<folder>/__nnviz_snapshots__/<module>/<test>.json` the artifacts go to
`<artifacts dir>/<folder>/<module>/<test>` + `.new.json` (the pending snapshot: what `nnviz
accept` stores), `.diff.pdf` and `.diff.svg` (the highlighted diff drawing) and `.diff.html`
(the same diff as one interactive offline page). Every file is written atomically, so
pytest-xdist workers can write side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import nnviz
from nnviz.driftreport import PENDING
from nnviz.errors import SnapshotError
from nnviz.graph import Graph
from nnviz.review import digest
from nnviz.snapshot import MIGRATED, loads
from pytest_nnviz.location import SNAPSHOT_DIR

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff

Status = Literal["passed", "drifted", "written", "missing", "failed"]
"""`passed`: identical; `drifted`: the architecture changed; `written`: created or replaced by
the update mode; `missing`: no snapshot yet; `failed`: the stored file is unreadable."""

UpdateMode = Literal["none", "new", "all"]
"""`none`: never write; `new`: write missing snapshots only; `all`: write missing, changed and
unreadable ones (`--nnviz-update`)."""

ARTIFACTS: Mapping[str, str] = {
    PENDING: ".new.json",
    "pdf": ".diff.pdf",
    "svg": ".diff.svg",
    "html": ".diff.html",
}
"""The files of one drift by kind (report.json's `artifacts` keys). A new kind of drawing is one
entry here and one writer in `_WRITERS`."""


@dataclass(frozen=True)
class Check:
    """The outcome of comparing one graph with one snapshot file."""

    status: Status
    snapshot: Path
    graph: Graph
    """The graph as traced now (what an update stores)."""
    diff: GraphDiff | None = None
    """Stored → current; `None` when there was nothing readable to compare with."""
    digest: str | None = None
    """sha256 of the stored bytes compared with (`None` when there was no file)."""
    problem: str | None = None
    """Why the stored file could not be used (`failed` only)."""
    artifacts: Mapping[str, Path] = field(default_factory=dict)
    """The drift's files by kind (see `ARTIFACTS`)."""
    artifact_problems: tuple[str, ...] = ()
    """One line per drift file that could not be written (e.g. Graphviz failed)."""

    @property
    def ok(self) -> bool:
        """Whether the test may pass."""
        return self.status in ("passed", "written")


def build_graph(
    model: Any,
    *,
    inputs: Any = None,
    depth: int | None = None,
    tracer: str = "auto",
    memory_limit: Any = None,
    exportable: bool = False,
) -> Graph:
    """The graph to snapshot: `model` traced (a `Graph` is taken as is), collapsed to `depth`."""
    if isinstance(model, Graph):
        graph = model
    else:
        # Only pass `inputs` when given, so a plain structural trace needs no input support.
        options: dict[str, Any] = {} if inputs is None else {"inputs": inputs}
        if exportable:
            options["exportable"] = True
        graph = nnviz.trace(model, tracer=tracer, memory_limit=memory_limit, **options)
    if depth is not None:
        from nnviz.transform import collapse_depth

        graph = collapse_depth(graph, depth)
    return graph


def perform_check(
    graph: Graph,
    snapshot: Path,
    stem: Path,
    *,
    update: UpdateMode = "none",
    ignore: tuple[str, ...] = (),
    strict: bool = False,
) -> Check:
    """Compare, write when `update` allows, and write the drift's files beside `stem` on drift
    (or clear the files of an earlier drift, which no longer describe the model); a missing
    snapshot leaves its pending file (`<test>.new.json`), which `nnviz accept` stores."""
    check = compare(graph, snapshot, update=update, ignore=ignore, strict=strict)
    if check.status == "missing":  # pending too, so `nnviz accept` creates it (as insta does)
        clear_artifacts(stem)
        try:
            files = {PENDING: Path(nnviz.save(graph, _beside(stem, ARTIFACTS[PENDING])))}
        except OSError as exc:
            return dataclasses.replace(check, artifact_problems=(f"{type(exc).__name__}: {exc}",))
        return dataclasses.replace(check, artifacts=files)
    if check.status != "drifted" or check.diff is None:
        clear_artifacts(stem)
        return check
    files, problems = write_artifacts(check.diff, graph, stem)
    return dataclasses.replace(check, artifacts=files, artifact_problems=problems)


def compare(
    graph: Graph,
    snapshot: Path,
    *,
    update: UpdateMode = "none",
    ignore: tuple[str, ...] = (),
    strict: bool = False,
) -> Check:
    """Compare `graph` with the snapshot file; store it when `update` allows.

    With `none` nothing is ever written; `new` writes a missing snapshot only; `all` also
    replaces a drifted or unreadable one, or one in an older snapshot format. An identical
    snapshot in the current format is never rewritten.
    """
    if not snapshot.is_file():
        if update != "none":
            nnviz.save(graph, snapshot)
            return Check("written", snapshot, graph)
        return Check("missing", snapshot, graph)
    data = snapshot.read_bytes()
    stored_digest = digest(data)
    try:
        stored = loads(data, source=str(snapshot))
    except SnapshotError as exc:
        if update == "all":
            nnviz.save(graph, snapshot)
            return Check("written", snapshot, graph)
        return Check("failed", snapshot, graph, digest=stored_digest, problem=str(exc))
    diff = nnviz.diff(stored, graph, ignore=ignore, strict=strict)
    # `--nnviz-update` re-records an old format, and a snapshot without a record now made
    # (exportability asked for after the snapshot was stored)
    older = stored.meta.get(MIGRATED) is not None or (
        diff.export is not None and diff.export.old is None
    )
    keys = diff.checkpoint is not None and diff.checkpoint.status != "loads"  # and changed keys
    if diff.identical and not ((older or keys) and update == "all"):
        return Check("passed", snapshot, graph, diff, stored_digest)
    if update == "all":
        nnviz.save(graph, snapshot)
        return Check("written", snapshot, graph, diff, stored_digest)
    return Check("drifted", snapshot, graph, diff, stored_digest)


def artifact_stem(snapshot: Path, rootdir: Path, artifacts_dir: Path) -> Path:
    """`<artifacts dir>/<snapshot path under rootdir, minus __nnviz_snapshots__ and .json>`."""
    try:
        relative = snapshot.relative_to(rootdir)
    except ValueError:
        relative = Path(snapshot.name)
    parts = [p for p in relative.with_suffix("").parts if p != SNAPSHOT_DIR]
    return artifacts_dir.joinpath(*parts)


def write_artifacts(
    diff: GraphDiff, graph: Graph, stem: Path
) -> tuple[dict[str, Path], tuple[str, ...]]:
    """Write the pending snapshot and the diff drawings beside `stem`; the files written by
    kind, and one line per file that could not be written."""
    files: dict[str, Path] = {}
    problems: list[str] = []
    for kind, suffix in ARTIFACTS.items():
        target = _beside(stem, suffix)
        write = _WRITERS[kind]
        # A drawing that fails (Graphviz, a renderer bug) must not hide the drift itself, which
        # is the test's real failure: record why, in the message and the report, and carry on.
        try:
            files[kind] = Path(write(diff, graph, target))
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
    return files, tuple(problems)


_WRITERS: Mapping[str, Callable[[GraphDiff, Graph, Path], Path | str]] = {
    PENDING: lambda diff, graph, path: nnviz.save(graph, path),
    "pdf": lambda diff, graph, path: nnviz.draw(diff, path),
    "svg": lambda diff, graph, path: nnviz.draw(diff, path),
    "html": lambda diff, graph, path: nnviz.draw(diff, path),
}


def clear_artifacts(stem: Path) -> None:
    """Remove a snapshot's files from an earlier drift."""
    for suffix in ARTIFACTS.values():
        _beside(stem, suffix).unlink(missing_ok=True)


def _beside(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)
