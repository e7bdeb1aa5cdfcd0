"""The `nnviz_snapshot` fixture's value: call it with a model, get the `GraphDiff` back.

Each call locates its snapshot file, traces the model, runs the snapshot engine, records the
result for the session report and fails the test (pointing at the caller's line) when the
snapshot is missing, unreadable or drifted.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

import nnviz
from pytest_nnviz.artifacts import (
    Artifacts,
    artifact_stem,
    clear_artifacts,
    relative,
    write_artifacts,
)
from pytest_nnviz.check import Check, build_graph, check_snapshot
from pytest_nnviz.location import locate
from pytest_nnviz.session import SessionState, SnapshotResult

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff

MAX_CHANGELOG_LINES = 9
"""Longer changelogs are cut in the failure message; the full one is in report.json."""


class NNVizSnapshot:
    """Compares models with the snapshots of one test; see `nnviz_snapshot`."""

    def __init__(self, item: pytest.Item, state: SessionState) -> None:
        self._item = item
        self._state = state
        self._location = locate(item.nodeid, item.path)
        self._unnamed = 0
        self._taken: set[Path] = set()

    def __call__(
        self,
        model: Any,
        *,
        inputs: Any = None,
        name: str | None = None,
        depth: int | None = None,
    ) -> GraphDiff:
        """Trace `model` and compare it with this call's snapshot.

        `model`: an `nn.Module`, a MODEL spec (`"resnet18"`) or a `Graph`; `inputs`: example
        inputs (an `-i` string or tensors) so tensor shapes are part of the snapshot; `name`:
        the snapshot's name when a test takes several; `depth`: keep modules down to this depth.
        Returns the `GraphDiff` from the stored snapshot (falsy: identical).
        """
        __tracebackhide__ = True
        line = self._call_line()
        snapshot = self._claim(name)
        graph = build_graph(model, inputs=inputs, depth=depth)
        options = self._state.options
        check = check_snapshot(graph, snapshot, update=options.update)
        stem = artifact_stem(snapshot, options.rootdir, options.artifacts_dir)
        artifacts = None
        if check.status == "drifted" and check.diff is not None:
            artifacts = write_artifacts(check.diff, graph, stem)
        else:
            clear_artifacts(stem)
        self._state.results.append(self._result(check, line, artifacts))
        if not check.ok:
            pytest.fail(self._message(check, artifacts))
        if check.status == "passed" and check.diff is not None:
            return check.diff
        # Written just now: the stored snapshot is the current graph.
        return nnviz.diff(graph, graph)

    # --- where -----------------------------------------------------------------------------

    def _claim(self, name: str | None) -> Path:
        __tracebackhide__ = True
        if name is None:
            path = self._location.snapshot(index=self._unnamed)
            self._unnamed += 1
        else:
            path = self._location.snapshot(name)
        if path in self._taken:
            pytest.fail(
                f"nnviz: two nnviz_snapshot calls in this test use {path.name}; "
                "give each a different name=",
                pytrace=False,
            )
        self._taken.add(path)
        return path

    def _call_line(self) -> int:
        # The innermost frame in the test's own file, so helpers in other files still point
        # at the test; else the direct caller.
        caller = sys._getframe(2)
        test_file = os.fspath(self._item.path)
        frame: FrameType | None = caller
        while frame is not None:
            if frame.f_code.co_filename == test_file:
                return frame.f_lineno
            frame = frame.f_back
        return caller.f_lineno

    # --- what to tell ------------------------------------------------------------------------

    def _result(self, check: Check, line: int, artifacts: Artifacts | None) -> SnapshotResult:
        root = self._state.options.rootdir
        files: dict[str, str | None] = {}
        if artifacts is not None:
            files = {
                "pdf": relative(artifacts.pdf, root),
                "svg": relative(artifacts.svg, root),
                "snapshot": relative(artifacts.snapshot, root),
                "html": relative(artifacts.html, root),
            }
        return SnapshotResult(
            nodeid=self._item.nodeid,
            file=self._state.relative(self._item.path),
            line=line,
            snapshot=self._state.relative(check.snapshot),
            status=check.status,
            artifacts=files,
            diff=check.diff.to_json() if check.status == "drifted" and check.diff else None,
        )

    def _message(self, check: Check, artifacts: Artifacts | None) -> str:
        snapshot = self._state.relative(check.snapshot)
        fix = f"pytest --nnviz-update {shlex.quote(self._rerun_id())}"
        if check.status == "missing":
            return f"nnviz: no snapshot {snapshot} yet\nCreate it with: {fix}"
        if check.status == "failed":
            return (
                f"nnviz: snapshot {snapshot} is unreadable: {check.problem}\nReplace it with: {fix}"
            )
        assert check.diff is not None
        changes = check.diff.to_text().rstrip("\n").splitlines()
        if len(changes) > MAX_CHANGELOG_LINES:
            # Keep the first changes and the changelog's closing summary line.
            cut = len(changes) - MAX_CHANGELOG_LINES + 1
            head, summary = changes[: MAX_CHANGELOG_LINES - 2], changes[-1]
            changes = [*head, f"... {cut} more lines in report.json", summary]
        lines = [f"nnviz: the architecture drifted from {snapshot}", *changes]
        drawing = artifacts and (artifacts.pdf or artifacts.svg)
        if drawing:
            lines.append(f"Diff drawing: {self._shown(drawing)}")
        if artifacts is not None and artifacts.html:
            lines.append(f"Interactive diff (open in a browser): {self._shown(artifacts.html)}")
        if artifacts is not None and artifacts.problems:
            lines.append(f"(drawing not written: {artifacts.problems[0]})")
        lines.append(f"Accept the change with: {fix}")
        return "\n".join(lines)

    def _rerun_id(self) -> str:
        """The node id as the user's shell sees it (relative to where pytest was started)."""
        here = self._item.config.invocation_params.dir
        test_path = Path(os.path.relpath(self._item.path, here)).as_posix()
        rest = self._item.nodeid.partition("::")[2]
        return f"{test_path}::{rest}" if rest else test_path

    def _shown(self, path: Path) -> str:
        return Path(os.path.relpath(path, self._item.config.invocation_params.dir)).as_posix()
