"""The end of a session, on the controller only: unused files, counts, report.json, CI output.

pytest-xdist workers only hand their records over (`SessionState.payload`); everything here runs
once, in the process that talks to the user (as syrupy's `report.py`). The session report is
`nnviz.driftreport.DriftReport` (docs/drift-report.md), written atomically into the artifacts
folder; on GitHub Actions it also becomes annotations and a job-summary section.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from nnviz.driftreport import REPORT_NAME, Drift, DriftReport, NewSnapshot, Run, SourceLine, Summary
from nnviz.review import delete_snapshots
from pytest_nnviz import shard
from pytest_nnviz.location import SNAPSHOT_DIR, SUFFIX, TestLocation, relative
from pytest_nnviz.session import SessionState

COUNTS = ("passed", "drifted", "written", "missing", "failed", "unused")
"""The summary's counters, in the order the summary line lists them."""


@dataclass
class Conclusion:
    """What the terminal summary shows."""

    summary: str
    lines: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def conclude(session: pytest.Session, state: SessionState) -> Conclusion | None:
    """Decide about unused snapshots, write report.json, emit CI output; `None`: nothing to say.

    Only a whole run that is not a shard decides (fails on, deletes with `--nnviz-update`) the
    files no test used; every run records them as `unclaimed` for `nnviz report merge`.
    """
    options = state.options
    config, status = session.config, int(session.exitstatus)
    unclaimed: list[Path] | None = None
    if not shard.blocking_reasons(config, state, status):
        skip = [str(p) for p in config.getini("norecursedirs")]
        unclaimed = find_unused(state, shard.scan_roots(config), skip)
    run = shard.record(config, state, status, unclaimed)
    decides = not options.shard and not run.partial
    unused = unclaimed if decides and unclaimed else []
    if not state.results and not unused and not options.shard:
        if unclaimed:  # nothing to say, but a later merge needs what this run saw
            build_report(state, [], run).save(options.artifacts_dir / REPORT_NAME)
        return None
    counts = count(state, unused)
    deleting = options.update == "all"
    conclusion = Conclusion(summary_line(counts, deleted=deleting))
    if options.shard and unclaimed:
        conclusion.lines.append(
            f"{len(unclaimed)} snapshot file(s) this shard did not use: recorded for "
            "`nnviz report merge`, which decides over all the shards"
        )
    if unused:
        conclusion.lines.extend(f"unused snapshot: {options.relative(p)}" for p in unused)
        if deleting:
            delete_snapshots(unused)
        elif options.warn_unused:
            conclusion.lines.append("(a warning only: --nnviz-warn-unused)")
        else:
            conclusion.lines.append("delete them with: pytest --nnviz-update")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    report = build_report(state, unused, run)
    path = report.save(options.artifacts_dir / REPORT_NAME)
    troubled = any(counts[k] for k in ("drifted", "missing", "failed", "unused"))
    if options.github and os.environ.get("GITHUB_ACTIONS") == "true" and troubled:
        conclusion.annotations = _github(report, options.rootdir)
    if counts["drifted"] or report.new:
        shown = relative(path, session.config.invocation_params.dir)
        folder = relative(options.artifacts_dir, session.config.invocation_params.dir)
        conclusion.lines.append(f"drift report: {shown} (read it with: nnviz report {shown})")
        conclusion.lines.append(f"review the pending changes with: nnviz review {folder}")
    return conclusion


# --- unused snapshot files ------------------------------------------------------------------


def find_unused(state: SessionState, roots: list[Path], skip: list[str]) -> list[Path]:
    """Snapshot files no test used, sorted.

    Searched: the snapshot folder of every collected test module, and every
    `__nnviz_snapshots__` tree under the folders the session covered (so the snapshots of a
    deleted test module are found too; folders matching `skip`, pytest's `norecursedirs`, are
    not entered). A file whose test still exists counts only when that
    test passed (a failed or skipped test may not have reached its `nnviz_snapshot` call); a
    file no test claims (the test was renamed or removed) counts, unless its test module still
    exists but yielded no test (skipped at import, not collected by `python_files`).
    """
    used = {r.snapshot for r in state.results}
    owners: dict[Path, list[TestLocation]] = {}
    for test in state.tests.values():
        owners.setdefault(test.folder, []).append(test)
    folders = set(owners) | set(_snapshot_folders(roots, [*skip, "__pycache__"]))
    unused = []
    for folder in sorted(folders):
        claimants = owners.get(folder)
        if claimants is None and _module_of(folder).is_file():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            if not path.is_file() or state.options.relative(path) in used:
                continue
            claimed = [t for t in claimants or () if t.owns(path.name)]
            if all(state.outcomes.get(t.nodeid) == "passed" for t in claimed):
                unused.append(path)
    return unused


def _module_of(folder: Path) -> Path:
    """The test module a `__nnviz_snapshots__/<module>/` folder belongs to."""
    return folder.parent.parent / f"{folder.name}.py"


def _snapshot_folders(roots: list[Path], skip: list[str]) -> list[Path]:
    """`__nnviz_snapshots__/<module>/` folders under `roots` (a file root: its own folder)."""
    found = []
    for root in roots:
        if root.is_file():
            found.append(root.parent / SNAPSHOT_DIR / root.stem)
            continue
        for current, dirs, _ in os.walk(root):
            if os.path.basename(current) == SNAPSHOT_DIR:
                found.extend(Path(current) / d for d in dirs)
                dirs[:] = []
                continue
            dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in skip)]
    return [f for f in found if f.is_dir()]


# --- counts and the report ------------------------------------------------------------------


def count(state: SessionState, unused: list[Path]) -> dict[str, int]:
    """The summary counters (see `COUNTS`)."""
    counts = dict.fromkeys(COUNTS, 0)
    for result in state.results:
        counts[result.status] += 1
    counts["unused"] = len(unused)
    return counts


def summary_line(counts: dict[str, int], *, deleted: bool = False) -> str:
    """`nnviz: 12 snapshots passed, 1 drifted, 2 written, 1 unused` (zero counters left out)."""
    passed = counts["passed"]
    parts = [f"{passed} snapshot{'' if passed == 1 else 's'} passed"]
    for key in COUNTS[1:]:
        if counts[key]:
            label = "unused (deleted)" if key == "unused" and deleted else key
            parts.append(f"{counts[key]} {label}")
    return "nnviz: " + ", ".join(parts)


def build_report(state: SessionState, unused: list[Path], run: Run | None = None) -> DriftReport:
    """The session's report: counts, every drift with its pending snapshot, unused files, the
    run record."""
    options = state.options
    failing = {r.nodeid for r in state.results if r.status in ("drifted", "missing", "failed")}
    others = [n for n, o in state.outcomes.items() if o == "failed" and n not in failing]
    drifts = [
        Drift(
            nodeid=r.nodeid,
            file=r.file,
            line=r.line,
            snapshot=r.snapshot,
            digest=r.digest,
            artifacts=r.artifacts,
            sources=[SourceLine(**asdict(s)) for s in r.sources],
            diff=r.diff or {},
        )
        for r in sorted(state.results, key=lambda r: (r.nodeid, r.snapshot))
        if r.status == "drifted"
    ]
    new = [
        NewSnapshot(
            nodeid=r.nodeid, file=r.file, line=r.line, snapshot=r.snapshot, artifacts=r.artifacts
        )
        for r in sorted(state.results, key=lambda r: (r.nodeid, r.snapshot))
        if r.status == "missing" and r.artifacts
    ]
    root = relative(options.rootdir, options.repository)
    return DriftReport(
        root="" if root == "." else root,
        summary=Summary(**count(state, unused), other_failures=len(others)),
        drifts=drifts,
        new=new,
        unused=[options.relative(p) for p in unused],
        run=run,
    )


def _github(report: DriftReport, rootdir: Path) -> list[str]:
    """Annotations for this report; the markdown goes to `$GITHUB_STEP_SUMMARY` when set."""
    from nnviz import github
    from nnviz.fs import atomic_write

    root = github.workspace_root(cwd=rootdir)
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        how = github.Presentation(source_url=github.source_url(), root=root)
        page = github.page(report, how)
        path = Path(target)
        before = path.read_text(encoding="utf-8") if path.is_file() else ""
        atomic_write(path, before + page.rstrip("\n") + "\n")
    return github.workflow_commands(report, root=root)
