"""Pending changes: accept or reject each drift the pytest plugin recorded, one by one or all.

A drift in `report.json` is pending while its `<test>.new.json` exists beside the report.
Accepting writes that snapshot over the stored one (atomically, after validating it) and drops
the pending file; rejecting drops the pending file. Nothing is ever lost: a stored snapshot whose
bytes no longer have the digest recorded when the run compared it (it was edited or accepted
since) is refused and left untouched. Works on a report downloaded from CI as well as on a local
one: snapshots are found from the repository root (`git` checkout, else the current folder) and
the report's `root`. No torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nnviz import snapshot
from nnviz.diffing import changelog as renderings
from nnviz.driftreport import (
    SNAPSHOT_DIR,
    Drift,
    DriftReport,
    NewSnapshot,
    in_repository,
    report_path,
)
from nnviz.errors import DriftReportError, NNVizError

ARTIFACTS_DIR = ".nnviz-artifacts"
"""Where `nnviz review` and `nnviz accept` look by default (the plugin's default folder)."""


def digest(data: bytes) -> str:
    """The digest report.json records for a stored snapshot: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repository_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding `.git`; `start` itself when none does."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


@dataclass(frozen=True)
class Pending:
    """One drift awaiting a decision."""

    drift: NewSnapshot
    """The drift (or the new snapshot: no stored one yet) it comes from."""
    new: Path
    """The pending snapshot, `<test>.new.json` in the artifacts folder."""
    snapshot: Path
    """The stored snapshot it would replace."""
    drawing: Path | None
    """The diff drawing to open (`d`), when one was written."""
    folder: Path | None = None
    """The artifacts folder (the report's): folders under it left empty by a decision go."""

    def drop(self) -> None:
        """Remove the pending file, then the folders under the artifacts folder it leaves
        empty."""
        self.new.unlink(missing_ok=True)
        if self.folder is None:
            return
        for parent in self.new.parents:
            if parent == self.folder or not parent.is_relative_to(self.folder):
                break
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break


def load_pending(target: str | os.PathLike[str], repository: Path | None = None) -> list[Pending]:
    """The pending changes of the report at `target` (a report file or its folder), in report
    order; drifts whose pending file is gone (accepted or rejected before) are left out."""
    path = report_path(target)
    if not path.is_file():
        raise DriftReportError(
            f"{path}: no drift report here (run pytest first, or download the CI artifact: "
            f"gh run download RUN -n nnviz-drift -D {ARTIFACTS_DIR})"
        )
    report = DriftReport.load(path)
    base = repository_root(Path.cwd()) if repository is None else repository
    folder = path.parent
    out = []
    for drift in [*report.drifts, *report.new]:
        if drift.pending is None or not (folder / drift.pending).is_file():
            continue
        stored = base / in_repository(report.root, drift.snapshot)
        drawing = next((folder / d for d in drift.drawings if (folder / d).is_file()), None)
        out.append(Pending(drift, folder / drift.pending, stored, drawing, folder))
    return out


def select(pending: list[Pending], test_ids: Iterable[str]) -> list[Pending]:
    """The pending changes named by `test_ids` (a node id, a file, or `file::test` without
    parameters); all of them when none is given. An id matching nothing is an error."""
    ids = list(test_ids)
    if not ids:
        return pending
    chosen: dict[int, Pending] = {}
    for test_id in ids:
        found = [i for i, p in enumerate(pending) if _names(p.drift.nodeid, test_id)]
        if not found:
            raise NNVizError(f"no pending change for {test_id} (see `nnviz review`)")
        chosen.update((i, pending[i]) for i in found)
    return [chosen[i] for i in sorted(chosen)]


def _names(nodeid: str, test_id: str) -> bool:
    return nodeid == test_id or nodeid.startswith((test_id + "::", test_id + "["))


def accept(change: Pending) -> str | None:
    """Write the pending snapshot over the stored one; `None`, or the one-line refusal."""
    stored = change.snapshot
    expected = change.drift.digest if isinstance(change.drift, Drift) else None
    if stored.is_file():
        if expected is None or digest(stored.read_bytes()) != expected:
            return (
                f"refused {change.drift.nodeid}: {stored} changed since the run compared it; "
                "run the test again"
            )
    elif expected is not None:
        return f"refused {change.drift.nodeid}: {stored} was deleted since the run compared it"
    try:
        graph = snapshot.load(change.new)
    except NNVizError as exc:
        return f"refused {change.drift.nodeid}: {exc}"
    snapshot.save(graph, stored)
    change.drop()
    return None


def remove_unused(target: str | os.PathLike[str], repository: Path | None = None) -> list[str]:
    """Delete the snapshot files the report at `target` calls unused (found from the
    repository root and the report's `root`, as `accept` finds snapshots); return those removed,
    as the report names them."""
    report = DriftReport.load(report_path(target))
    base = repository_root(Path.cwd()) if repository is None else repository
    files = {name: base / in_repository(report.root, name) for name in report.unused}
    gone = {name: path for name, path in files.items() if path.is_file()}
    delete_snapshots(list(gone.values()))
    return list(gone)


def delete_snapshots(paths: list[Path]) -> None:
    """Remove snapshot files, then any snapshot folder they leave empty."""
    folders = set()
    for path in paths:
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in sorted(folders):
        for candidate in (folder, folder.parent):
            # Only the plugin's own folders, and only when nothing else is left in them.
            ours = SNAPSHOT_DIR in (candidate.name, candidate.parent.name)
            if ours and candidate.is_dir() and not any(candidate.iterdir()):
                candidate.rmdir()


def reject(change: Pending) -> None:
    """Drop the pending snapshot; the stored one stays as it is."""
    change.drop()


def describe(change: Pending, colour: bool = False) -> str:
    """The test, its files and the changelog (coloured for a terminal)."""
    drift = change.drift
    lines = [f"{drift.nodeid}  ({drift.file}:{drift.line})"]
    if isinstance(drift, Drift):
        lines.append(f"snapshot: {_shown(change.snapshot)}")
        lines.append(renderings.changelog(drift.diff, colour=colour).rstrip("\n"))
    else:
        lines.append(f"new snapshot: {_shown(change.snapshot)} (does not exist yet)")
        lines.append(_new_summary(change.new))
    if change.drawing is not None:
        lines.append(f"drawing: {_shown(change.drawing)}")
    return "\n".join(lines)


def _new_summary(path: Path) -> str:
    """What a new snapshot holds, in one line: its model, modules, ops and parameters."""
    try:
        graph = snapshot.load(path)
    except NNVizError as exc:
        return f"unreadable: {exc}"
    return f"+ {graph.name}: {len(graph.modules)} modules, {len(graph)} nodes, " + (
        f"{graph.total_params:,} parameters"
    )


def _shown(path: Path) -> str:
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:
        return path.as_posix()


def accept_command(target: str, nodeid: str) -> str:
    """The exact shell command that accepts one pending change."""
    return f"nnviz accept {shlex.quote(target)} {shlex.quote(nodeid)}"


@dataclass
class Tally:
    """What a review or an accept did."""

    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    refused: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"{self.accepted} accepted", f"{self.rejected} rejected"]
        parts += [f"{self.skipped} skipped", f"{len(self.refused)} refused"]
        return "nnviz: " + ", ".join(parts)


def accept_all(pending: list[Pending], echo: Callable[[str], None]) -> Tally:
    """Accept each change in turn; a refusal is one line and the rest go on."""
    tally = Tally()
    for change in pending:
        _accept_into(tally, change, echo, f"{change.drift.nodeid} ")
    return tally


def reject_all(pending: list[Pending], echo: Callable[[str], None]) -> Tally:
    """Reject each change in turn: its pending snapshot goes, the stored one stays."""
    tally = Tally()
    for change in pending:
        reject(change)
        tally.rejected += 1
        echo(f"rejected {change.drift.nodeid} (kept {_shown(change.snapshot)})")
    return tally


def _accept_into(tally: Tally, change: Pending, echo: Callable[[str], None], what: str) -> None:
    """Accept one change and count it; a refusal is one line."""
    refusal = accept(change)
    if refusal:
        tally.refused.append(refusal)
        echo(refusal)
    else:
        tally.accepted += 1
        echo(f"accepted {what}→ {_shown(change.snapshot)}")


KEYS = "a accept · r reject · s skip · d open the drawing · q quit"


def review(
    pending: list[Pending],
    *,
    show: Callable[[Pending, int, int], None],
    key: Callable[[], str],
    echo: Callable[[str], None],
    open_file: Callable[[Path], str | None],
) -> Tally:
    """Walk the pending changes: show each, then act on keys until one decides it."""
    tally = Tally()
    for index, change in enumerate(pending, 1):
        show(change, index, len(pending))
        while True:
            echo(f"[{KEYS}] ")
            pressed = key().lower()
            if pressed == "a":
                _accept_into(tally, change, echo, "")
            elif pressed == "r":
                reject(change)
                tally.rejected += 1
                echo("rejected")
            elif pressed == "s":
                tally.skipped += 1
                echo("skipped")
            elif pressed == "d":
                problem = open_file(change.drawing) if change.drawing else "no drawing was written"
                echo(problem or f"opened {change.drawing}")
                continue
            elif pressed in ("q", "\x03", "\x04"):
                tally.skipped += len(pending) - index + 1
                return tally
            else:
                continue
            break
    return tally


@contextlib.contextmanager
def terminal_keys() -> Iterator[Callable[[], str]]:
    """Single keys from the terminal on stdin. One cbreak mode for the whole review, set without
    flushing, so a key typed while nnviz is busy is kept (`click.getchar`'s per-key raw mode
    drops it); Windows has no termios and gets `click.getchar`."""
    try:
        import termios
        import tty
    except ImportError:
        import click

        yield click.getchar
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd, termios.TCSANOW)
    try:
        yield lambda: os.read(fd, 4).decode("utf-8", "replace")[:1] or "q"
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
