"""The session's run record in report.json: what it ran, so shards of a suite can be merged.

A suite split over many machines (a CI matrix; pytest-split, paths or `-k` per shard) cannot
decide alone which snapshot files are unused: another shard may use them. So every session
records (`nnviz.driftreport.Run`) its commit, its paths, each selected test's outcome, each
snapshot check, the tests it deselected and why its collection was partial, the snapshot files
under its paths that none of its tests used (`unclaimed`), and the files of its tests that did
not pass (`kept`). `nnviz report merge` (`nnviz.reportmerge`) decides from all of them.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from nnviz.driftreport import Check, Run
from pytest_nnviz.session import SessionState

_SHA = re.compile(r"[0-9a-f]{7,64}")
FINISHED = (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED)


def partial_reasons(config: pytest.Config, state: SessionState, exitstatus: int) -> list[str]:
    """Why this session's collection was not the whole suite of its paths, as the user gave it
    (empty: it was)."""
    reasons = [f"{o} {v}" for o, v in _narrowing(config) if v]
    if state.deselected and not reasons:
        reasons.append(f"{len(state.deselected)} test(s) deselected")
    return reasons + blocking_reasons(config, state, exitstatus)


def _narrowing(config: pytest.Config) -> list[tuple[str, str]]:
    splits, group = config.getoption("splits", None), config.getoption("group", None)
    return [
        ("-k", str(config.getoption("keyword", "") or "")),
        ("-m", str(config.getoption("markexpr", "") or "")),
        ("pytest-split", f"group {group} of {splits}" if splits else ""),
    ]


def blocking_reasons(config: pytest.Config, state: SessionState, exitstatus: int) -> list[str]:
    """The reasons that leave tests unknown (not merely deselected): no one can tell from this
    session which snapshot files are unused, not even together with other shards."""
    ids = [str(a) for a in config.args if "::" in str(a)]
    named = f"{ids[0]}{', …' if len(ids) > 1 else ''}" if ids else ""
    out = [
        ("--lf (tests that passed last time were not collected)", config.getoption("lf", False)),
        ("--collect-only", config.getoption("collectonly", False)),
        (f"test ids given ({named})", ids),
        ("collection errors", state.collect_errors),
        (f"interrupted (exit status {exitstatus})", exitstatus not in FINISHED),
    ]
    return [reason for reason, holds in out if holds]


def record(
    config: pytest.Config,
    state: SessionState,
    exitstatus: int,
    unclaimed: list[Path] | None,
) -> Run:
    """This session's run record; `unclaimed` is None when the session cannot tell."""
    options = state.options
    tests = {nodeid: state.outcomes.get(nodeid, "notrun") for nodeid in sorted(state.tests)}
    checks = {(r.nodeid, r.snapshot): r.status for r in state.results}
    return Run(
        commit=commit(options.repository),
        paths=sorted({options.relative(p) for p in scan_roots(config)}),
        partial=partial_reasons(config, state, exitstatus),
        tests=tests,  # type: ignore[arg-type]
        deselected=sorted(state.deselected - set(tests)),
        checks=[Check(nodeid=n, snapshot=s, status=st) for (n, s), st in sorted(checks.items())],
        unclaimed=None if unclaimed is None else [options.relative(p) for p in unclaimed],
        kept=kept(state),
    )


def scan_roots(config: pytest.Config) -> list[Path]:
    """The folders and test files the session covered (its arguments, else `testpaths`)."""
    here = config.invocation_params.dir
    return [(here / str(arg).partition("::")[0]).resolve() for arg in config.args]


def kept(state: SessionState) -> list[str]:
    """Snapshot files owned by selected tests that did not pass: they may not have reached
    their `nnviz_snapshot` call, so no shard may call these files unused."""
    out: set[str] = set()
    listed: dict[Path, list[str]] = {}
    for test in state.tests.values():
        if state.outcomes.get(test.nodeid) == "passed":
            continue
        if test.folder not in listed:
            names = os.listdir(test.folder) if test.folder.is_dir() else []
            listed[test.folder] = sorted(names)
        for name in listed[test.folder]:
            if test.owns(name) and (test.folder / name).is_file():
                out.add(state.options.relative(test.folder / name))
    return sorted(out)


def commit(repository: Path) -> str | None:
    """The checked-out commit: `$GITHUB_SHA` on GitHub Actions, else git's HEAD (None when
    there is no git checkout)."""
    sha = os.environ.get("GITHUB_SHA", "").strip().lower()
    if _SHA.fullmatch(sha):
        return sha
    if not (repository / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip().lower()
    return sha if done.returncode == 0 and _SHA.fullmatch(sha) else None
