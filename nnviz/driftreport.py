"""The drift report: what the pytest plugin found in one session, and what is pending review.

The plugin writes `report.json` (format "nnviz-drift-report", version 3) into its artifacts
folder; `nnviz report`, `nnviz review`, `nnviz accept` and the GitHub Action read it back with
`DriftReport.load`. Each drift carries the `GraphDiff.to_dict()` document (presenting a report
needs no torch and no snapshot files), the pending snapshot (`<test>.new.json`) and the sha256
of the stored snapshot it was compared with, so a later accept can refuse to overwrite a snapshot
that changed since. Paths of artifact files are relative to the report's folder (a downloaded
artifact works wherever it lands); test and snapshot paths are relative to pytest's rootdir,
itself recorded relative to the repository (`root`). The run record (`run`, version 3) says
what the session ran — its commit, its paths, each test's outcome, each snapshot check, why its
collection was partial, and the snapshot files it could judge — so `nnviz report merge`
(`nnviz.reportmerge`) can merge the reports of a sharded suite and decide what no shard used;
version 2 reports (no run record) are still read. A report is untrusted input (it may come
from a CI artifact): every path is checked to stay inside its folder. This module is the schema
and the plain-text presentation; the GitHub presentation is `nnviz.github`. See
docs/drift-report.md.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator

from nnviz import untrusted
from nnviz.diffing import changelog as renderings
from nnviz.diffing import document
from nnviz.diffing.records import Changelog
from nnviz.errors import DriftReportError
from nnviz.fs import atomic_write

FORMAT = "nnviz-drift-report"
VERSION = 3
READS = (2, 3)
"""Versions read: version 2 had no run record (`run` is then `None`)."""
REPORT_NAME = "report.json"
SNAPSHOT_DIR = "__nnviz_snapshots__"
PENDING = "new"
"""The artifact kind of the pending snapshot (`<test>.new.json`)."""
DRAWING_ORDER = ("html", "pdf", "svg")
UPDATE_COMMAND = "pytest --nnviz-update"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _inside(path: str, what: str) -> str:
    """A relative POSIX path that stays inside its base folder (no `..`, not absolute)."""
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or ":" in parts[0] or ".." in parts:
        raise ValueError(f"{what} must be a relative path inside its folder, not {path!r}")
    return path


def snapshot_file(path: str) -> str:
    """A stored snapshot's path: a `.json` file under `__nnviz_snapshots__/`, inside its folder
    (what `nnviz accept` may overwrite and `--remove-unused` may delete)."""
    _inside(path, "snapshot")
    if SNAPSHOT_DIR not in path.split("/") or not path.endswith(".json"):
        raise ValueError(f"snapshot must be a .json file under {SNAPSHOT_DIR}/, not {path!r}")
    return path


_Snapshot = Annotated[str, AfterValidator(snapshot_file)]


class Summary(_Strict):
    """Counts of snapshot checks in the session."""

    passed: int = Field(default=0, ge=0, description="Snapshots that matched.")
    drifted: int = Field(default=0, ge=0, description="Snapshots whose architecture changed.")
    written: int = Field(default=0, ge=0, description="Snapshots written by --nnviz-update.")
    missing: int = Field(default=0, ge=0, description="Snapshots that do not exist yet.")
    failed: int = Field(default=0, ge=0, description="Snapshot files that could not be read.")
    unused: int = Field(default=0, ge=0, description="Snapshot files no test used.")
    other_failures: int = Field(
        default=0, ge=0, description="Tests that failed for another reason than a snapshot."
    )


class SourceLine(_Strict):
    """A line of model code that defines changed modules (`self.x = ...` in `__init__`) or
    makes changed calls (`x + y`, `self.proj(h)` in a forward)."""

    file: str = Field(min_length=1, description="Source file, relative to the repository.")
    line: int = Field(ge=1, description="1-based line of the assignment or the call.")
    modules: list[str] = Field(
        min_length=1, description="Changed modules defined there, or changed calls made there."
    )
    what: Literal["defines", "calls"] = Field(
        default="defines", description="Whether the line defines modules or makes calls."
    )


CheckStatus = Literal["passed", "drifted", "written", "missing", "failed"]
Outcome = Literal["passed", "failed", "skipped", "notrun"]


class Check(_Strict):
    """One `nnviz_snapshot(...)` call of the run: its test, its file and what it found."""

    nodeid: str = Field(min_length=1)
    snapshot: _Snapshot = Field(description="The snapshot file, relative to the rootdir.")
    status: CheckStatus


class Run(_Strict):
    """What one session ran (or, merged, what the shards ran together)."""

    commit: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{7,64}$",
        description="The checked-out commit ($GITHUB_SHA, else git's HEAD); null when unknown.",
    )
    shards: int = Field(default=1, ge=1, description="How many sessions this record covers.")
    paths: list[str] = Field(
        default_factory=list, description="The folders and files the session covered ('.')."
    )
    partial: list[str] = Field(
        default_factory=list,
        description="Why the collection was not the whole suite of its paths (empty: it was).",
    )
    tests: dict[str, Outcome] = Field(
        default_factory=dict, description="Every selected test by node id, with its outcome."
    )
    deselected: list[str] = Field(
        default_factory=list, description="Tests collected but deselected (-k, -m, a split)."
    )
    checks: list[Check] = Field(default_factory=list)
    unclaimed: list[_Snapshot] | None = Field(
        default=None,
        description="Snapshot files under its paths that none of its tests used nor may use "
        "(a test that did not pass keeps its files); null when the run cannot tell (--lf, "
        "test ids, collection errors, an interrupted run).",
    )
    kept: list[_Snapshot] = Field(
        default_factory=list,
        description="Snapshot files of its tests that did not pass (skipped, failed, not run): "
        "never unused, whatever another shard saw.",
    )

    @property
    def used(self) -> set[str]:
        """The snapshot files the run's tests used."""
        return {c.snapshot for c in self.checks}


class NewSnapshot(_Strict):
    """A test whose snapshot did not exist yet: its pending file creates it when accepted."""

    nodeid: str = Field(min_length=1, description="pytest node id of the test.")
    file: str = Field(min_length=1, description="Test file, relative to the rootdir.")
    line: int = Field(ge=1, description="1-based line of the nnviz_snapshot(...) call.")
    snapshot: str = Field(min_length=1, description="Stored snapshot, relative to the rootdir.")
    artifacts: dict[str, str] = Field(
        default_factory=dict,
        description='Files by kind ("new": the pending snapshot; "pdf", "svg": drawings), '
        "relative to the report's folder.",
    )

    @field_validator("snapshot")
    @classmethod
    def _snapshot(cls, value: str) -> str:
        return snapshot_file(value)

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, path in value.items():
            if not kind.isidentifier():
                raise ValueError(f"artifact kind {kind!r} is not a plain name")
            _inside(path, f"artifacts.{kind}")
        return value

    @property
    def test_name(self) -> str:
        """The node id without its file part, e.g. `test_model[small]`."""
        return self.nodeid.split("::", 1)[-1]

    @property
    def pending(self) -> str | None:
        """The pending snapshot (`<test>.new.json`), relative to the report's folder."""
        return self.artifacts.get(PENDING)

    @property
    def drawings(self) -> list[str]:
        """Every artifact file but the pending snapshot: the interactive page, PDF and SVG
        first (the order a reviewer opens them in), then any other kind by name."""
        first = [k for k in DRAWING_ORDER if k in self.artifacts]
        rest = sorted(k for k in self.artifacts if k not in DRAWING_ORDER and k != PENDING)
        return [self.artifacts[k] for k in (*first, *rest)]


class Drift(NewSnapshot):
    """One snapshot whose stored architecture differs from the model's current one."""

    digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256 of the stored snapshot's bytes the model was compared with.",
    )
    sources: list[SourceLine] = Field(default_factory=list)
    diff: dict[str, JsonValue] = Field(description="The GraphDiff.to_dict() document.")

    def changelog(self) -> Changelog:
        """The records of this drift's changelog (what every presentation of it renders)."""
        return renderings.changelog_of(self.diff)

    @property
    def counts(self) -> dict[str, int]:
        """Changed, added, removed and renamed entries, as the changelog's totals count them
        (`changed` leaves out what only follows another change: the totals' `downstream`)."""
        return dict(self.changelog().counts)

    @property
    def changes(self) -> int:
        """How many changes the changelog counts: the order of importance when space is short."""
        return _total(self.changelog())

    @property
    def params(self) -> tuple[int, int]:
        """The parameter counts `(old, new)`."""
        return self.changelog().params


class DriftReport(_Strict):
    """A whole drift report document, format version 3."""

    format: Literal["nnviz-drift-report"] = "nnviz-drift-report"
    version: Literal[2, 3] = 3
    root: str = Field(
        default="", description="pytest's rootdir relative to the repository ('' when the same)."
    )
    summary: Summary = Summary()
    drifts: list[Drift] = Field(default_factory=list)
    new: list[NewSnapshot] = Field(
        default_factory=list,
        description="Snapshots that did not exist yet, each with the pending file that creates it.",
    )
    unused: list[_Snapshot] = Field(default_factory=list, description="Unused snapshot files.")
    run: Run | None = Field(default=None, description="What the session ran (version 3).")

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        return _inside(value, "root") if value else value

    @classmethod
    def loads(cls, text: str | bytes, source: str = "drift report") -> DriftReport:
        """Parse and validate report text; raise `DriftReportError` with one line on any fault."""
        # Size, depth, string and UTF-8 limits, as for snapshots (but room for many diffs).
        report = untrusted.read_document(
            text,
            source,
            DriftReportError,
            cls,
            format=FORMAT,
            noun="drift report",
            reads=READS,
            max_bytes=untrusted.MAX_REPORT_BYTES,
        )
        if report.version != VERSION:  # version 2: the same document without a run record
            report = report.model_copy(update={"version": VERSION})
        for index, drift in enumerate(report.drifts):
            document.read(drift.diff, f"{source}: drifts[{index}].diff", DriftReportError)
        return report

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DriftReport:
        """Read and validate the report at `path`."""
        data = untrusted.read_bytes(path, DriftReportError, max_bytes=untrusted.MAX_REPORT_BYTES)
        return cls.loads(data, source=str(path))

    def dumps(self) -> str:
        """The report as JSON text: sorted keys, two-space indent, a final newline."""
        doc = self.model_dump(mode="json")
        return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report to `path` atomically; return the path."""
        return atomic_write(path, self.dumps())

    def ranked(self) -> list[Drift]:
        """Drifts, most changes first; ties by file, line and node id (stable across runs)."""
        return [drift for drift, _ in self.ranked_logs()]

    def ranked_logs(self) -> list[tuple[Drift, Changelog]]:
        """`ranked`, each drift with its changelog records (made once: a page reads them for
        its order, table, warnings and sections)."""
        logs = [(drift, drift.changelog()) for drift in self.drifts]
        return sorted(logs, key=lambda p: (-_total(p[1]), p[0].file, p[0].line, p[0].nodeid))


def _total(log: Changelog) -> int:
    """How many changes a drift's changelog counts (`Drift.changes`)."""
    return sum(n for _, n in log.counts)


def report_path(target: str | os.PathLike[str]) -> Path:
    """`target` itself when it is a file, else `<target>/report.json` (which must exist)."""
    path = Path(target)
    if not path.is_dir():
        return path
    if not (path / REPORT_NAME).is_file():
        raise DriftReportError(
            f"{path}: a folder without {REPORT_NAME} (give the artifacts folder or its report)"
        )
    return path / REPORT_NAME


def in_repository(root: str, path: str) -> str:
    """A rootdir-relative path (`file`, `snapshot`) relative to the repository instead."""
    return posixpath.normpath(posixpath.join(root, path)) if root else path


# --- presenting -------------------------------------------------------------------------------


def changelog(diff_doc: dict[str, Any]) -> str:
    """The text changelog of one diff document, exactly as `nnviz diff` prints it."""
    return renderings.changelog(diff_doc).rstrip("\n")


def text(report: DriftReport) -> str:
    """A plain-text report: the counts line, then each drift with its changelog and files."""
    out = [f"nnviz: {_counts(report)}"]
    for drift in report.ranked():
        out.append("")
        out.append(f"DRIFT {drift.file}:{drift.line}  {drift.nodeid}")
        out.append(f"  snapshot: {drift.snapshot}")
        out.extend(f"  {line}" for line in changelog(drift.diff).splitlines())
        if drift.drawings:
            out.append(f"  drawings: {', '.join(drift.drawings)}")
        if drift.pending:
            out.append(f"  pending: {drift.pending}")
    for new in report.new:
        out.append("")
        out.append(f"NEW {new.file}:{new.line}  {new.nodeid}")
        out.append(f"  snapshot: {new.snapshot} (does not exist yet)")
        if new.pending:
            out.append(f"  pending: {new.pending}")
    if report.unused:
        out.append("")
        out.append("unused snapshots:")
        out.extend(f"  {path}" for path in report.unused)
    if report.drifts or any(new.pending for new in report.new):
        out.append("")
        out.append(
            "Review them with `nnviz review`, accept them all with `nnviz accept`, or run "
            f"`{UPDATE_COMMAND}`; then commit the snapshots."
        )
    return "\n".join(out) + "\n"


def _counts(report: DriftReport) -> str:
    s = report.summary
    return (
        f"{s.passed} passed, {s.drifted} drifted, {s.written} written, {s.missing} missing, "
        f"{s.failed} failed, {s.unused} unused"
    )


def plural(count: int, noun: str) -> str:
    """`1 drift`, `2 drifts`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
