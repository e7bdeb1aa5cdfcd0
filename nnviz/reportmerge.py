"""`nnviz report merge`: the artifact folders of a sharded suite, merged into one.

A suite split over a CI matrix writes one artifacts folder per shard (report.json, the pending
snapshots, the drawings). `merge` reads them all and gives one report as if one machine had run
the whole suite: every drift once (with the sha256 its pending change was compared with), the
counts recounted from the snapshot checks, and the unused snapshot files decided across shards:
a file is unused only when no shard used it, no shard's test that did not pass owns it, and the
shards together ran every test any of them collected (a `-k` or pytest-split shard deselects
tests another shard runs; a shard that cannot tell — `--lf`, test ids, collection errors, an
interrupted run — leaves the question open). `write` puts the merged folder in place atomically.
Shards of different commits or rootdirs, and overlapping tests that disagree, are refused with one
line. `nnviz report`, `review` and `accept` read the merged folder as any other. No torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nnviz.driftreport import (
    REPORT_NAME,
    Check,
    CheckStatus,
    Drift,
    DriftReport,
    NewSnapshot,
    Outcome,
    Run,
    Summary,
    report_path,
)
from nnviz.errors import DriftReportError


@dataclass(frozen=True)
class Shard:
    """One shard's artifacts folder and its report."""

    folder: Path
    report: DriftReport
    run: Run


def load(folders: Iterable[str | os.PathLike[str]]) -> list[Shard]:
    """The shards' reports (a folder, or its report.json); one line on any fault."""
    shards = []
    for target in folders:
        path = report_path(target)
        if not path.is_file():
            raise DriftReportError(f"{path}: no drift report here (did this shard run?)")
        report = DriftReport.load(path)
        if report.run is None:
            raise DriftReportError(
                f"{path}: no run record (written by an nnviz older than report version 3): run "
                "this shard again with this nnviz"
            )
        shards.append(Shard(path.parent, report, report.run))
    if not shards:
        raise DriftReportError("nothing to merge: give the shards' artifact folders")
    return shards


def merge(shards: list[Shard]) -> DriftReport:
    """One report for all `shards` (see the module's doc); `DriftReportError` when they cannot
    be one suite's."""
    _same(shards, "rootdir", lambda s: s.report.root or ".")
    _same([s for s in shards if s.run.commit], "commit", lambda s: s.run.commit or "")
    tests = _tests(shards)
    checks = _checks(shards)
    drifts = _drifts(shards)
    new = _new(shards)
    used = {snapshot for _, snapshot in checks}
    kept = {path for s in shards for path in s.run.kept}
    unknown = sorted({n for s in shards for n in s.run.deselected} - set(tests))
    blocked = [s for s in shards if s.run.unclaimed is None]
    partial = [f"{len(unknown)} test(s) deselected in every shard"] if unknown else []
    partial += [f"{_name(s)}: {r}" for s in blocked for r in s.run.partial or ["cannot tell"]]
    unclaimed = None
    if not partial:
        found = {path for s in shards for path in s.run.unclaimed or ()}
        unclaimed = sorted(found - used - kept)
    commits = {s.run.commit for s in shards if s.run.commit}
    run = Run(
        commit=next(iter(commits), None),
        shards=sum(s.run.shards for s in shards),
        paths=sorted({path for s in shards for path in s.run.paths}),
        partial=partial,
        tests=tests,
        deselected=unknown,
        checks=[Check(nodeid=n, snapshot=p, status=st) for (n, p), st in sorted(checks.items())],
        unclaimed=unclaimed,
        kept=sorted(kept),
    )
    return DriftReport(
        root=shards[0].report.root,
        summary=_summary(run, unclaimed or []),
        drifts=[drifts[key][1] for key in sorted(drifts)],
        new=[new[key][1] for key in sorted(new)],
        unused=unclaimed or [],
        run=run,
    )


def _name(shard: Shard) -> str:
    return shard.folder.as_posix()


def _same(shards: list[Shard], what: str, key: Callable[[Shard], str]) -> None:
    for other in shards[1:]:
        if key(other) != key(shards[0]):
            raise DriftReportError(
                f"cannot merge shards of different {what}s: {key(shards[0])} "
                f"({_name(shards[0])}) and {key(other)} ({_name(other)})"
            )


def _tests(shards: list[Shard]) -> dict[str, Outcome]:
    """Every selected test's outcome; a test run by two shards must have one outcome."""
    out: dict[str, Outcome] = {}
    where: dict[str, Shard] = {}
    for shard in shards:
        for nodeid, outcome in shard.run.tests.items():
            before = out.get(nodeid)
            if before not in (None, "notrun") and outcome not in ("notrun", before):
                raise _disagree(nodeid, f"{before} in {_name(where[nodeid])}", outcome, shard)
            if before in (None, "notrun"):
                out[nodeid], where[nodeid] = outcome, shard
    return dict(sorted(out.items()))


def _checks(shards: list[Shard]) -> dict[tuple[str, str], CheckStatus]:
    out: dict[tuple[str, str], CheckStatus] = {}
    where: dict[tuple[str, str], Shard] = {}
    for shard in shards:
        for check in shard.run.checks:
            key = (check.nodeid, check.snapshot)
            if key in out and out[key] != check.status:
                said = f"{check.snapshot} {out[key]} in {_name(where[key])}"
                raise _disagree(check.nodeid, said, check.status, shard)
            out[key], where[key] = check.status, where.get(key, shard)
    return out


def _drifts(shards: list[Shard]) -> dict[tuple[str, str], tuple[Shard, Drift]]:
    out: dict[tuple[str, str], tuple[Shard, Drift]] = {}
    for shard in shards:
        for drift in shard.report.drifts:
            key = (drift.nodeid, drift.snapshot)
            first = out.get(key)
            if first is None:
                out[key] = (shard, drift)
            elif (first[1].diff, first[1].digest) != (drift.diff, drift.digest):
                said = f"another drift of {drift.snapshot} in {_name(first[0])}"
                raise _disagree(drift.nodeid, said, "a different one", shard)
    return out


def _new(shards: list[Shard]) -> dict[tuple[str, str], tuple[Shard, NewSnapshot]]:
    """Every pending new snapshot once (shards that ran the same test wrote the same one)."""
    out: dict[tuple[str, str], tuple[Shard, NewSnapshot]] = {}
    for shard in shards:
        for new in shard.report.new:
            out.setdefault((new.nodeid, new.snapshot), (shard, new))
    return out


def _disagree(nodeid: str, before: str, now: str, shard: Shard) -> DriftReportError:
    return DriftReportError(
        f"cannot merge: shards disagree on {nodeid}: {before}, {now} in {_name(shard)} "
        "(were they run on the same commit and environment?)"
    )


def _summary(run: Run, unused: list[str]) -> Summary:
    counts = dict.fromkeys(("passed", "drifted", "written", "missing", "failed"), 0)
    for check in run.checks:
        counts[check.status] += 1
    failing = {c.nodeid for c in run.checks if c.status in ("drifted", "missing", "failed")}
    others = sum(1 for n, o in run.tests.items() if o == "failed" and n not in failing)
    return Summary(**counts, unused=len(unused), other_failures=others)


# --- the merged folder ------------------------------------------------------------------------


def write(shards: list[Shard], merged: DriftReport, out: str | os.PathLike[str]) -> Path:
    """Write the merged folder at `out` (report.json and each drift's files), atomically: it is
    built beside `out` and renamed into place; an earlier merged folder there is replaced."""
    target = Path(out).resolve()
    for shard in shards:
        here = shard.folder.resolve()
        if target == here or here.is_relative_to(target) or target.is_relative_to(here):
            raise DriftReportError(f"{out}: the merged folder must not hold or be in a shard's")
    if target.exists() and not _replaceable(target):
        raise DriftReportError(f"{out}: exists and is not a drift-report folder (give a new one)")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        sources = {
            (d.nodeid, d.snapshot): s for s in shards for d in [*s.report.drifts, *s.report.new]
        }
        for drift in [*merged.drifts, *merged.new]:
            _copy_files(sources[(drift.nodeid, drift.snapshot)].folder, drift, building)
        merged.save(building / REPORT_NAME)
        _swap(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return target


def _replaceable(folder: Path) -> bool:
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / REPORT_NAME).is_file())


def _copy_files(source: Path, drift: NewSnapshot, building: Path) -> None:
    """Copy a drift's files that still exist (a pending file accepted since is gone); a path
    that leads out of its shard's folder (a symlink) is not followed."""
    base = source.resolve()
    for relative in drift.artifacts.values():
        path = (source / relative).resolve()
        if not path.is_file() or not path.is_relative_to(base):
            continue
        copy = building / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)


def _swap(building: Path, target: Path) -> None:
    """Rename `building` to `target`; an existing `target` is moved aside first and removed."""
    if not target.exists():
        os.replace(building, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / "merged")
    try:
        os.replace(building, target)
    except OSError:
        os.replace(old / "merged", target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
