"""The end of a session, on the controller only: unused files, report.json, CI output, verdict.

pytest-xdist workers only hand their records over (`SessionState.payload`); everything here runs
once, in the process that talks to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_nnviz.session import SessionState, delete_unused, summary_line


@dataclass
class Conclusion:
    """What the terminal summary shows."""

    summary: str
    lines: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_full_run(config: pytest.Config, exitstatus: int) -> bool:
    """Whether every test ran, so a snapshot no test used is really unused.

    Not under `-k`, `-m`, `--lf`, `--collect-only`, explicit `file::test` arguments,
    deselection, collection errors or an interrupted run (skipped and failed tests are handled
    per file).
    """
    narrowed = (
        bool(config.getoption("collectonly", False))
        or bool(config.getoption("keyword", ""))
        or bool(config.getoption("markexpr", ""))
        or bool(config.getoption("lf", False))
        or any("::" in str(arg) for arg in config.args)
    )
    finished = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    return finished and not narrowed


def conclude(session: pytest.Session, state: SessionState) -> Conclusion | None:
    """Decide about unused snapshots, write report.json, emit CI output; `None`: nothing to say."""
    options = state.options
    if is_full_run(session.config, int(session.exitstatus)) and not state.partial:
        state.unused = state.find_unused()
    if not state.results and not state.unused:
        return None
    conclusion = Conclusion(summary_line(state.counts(), deleted=options.update))
    if state.unused:
        conclusion.lines.extend(f"unused snapshot: {state.relative(p)}" for p in state.unused)
        if options.update:
            delete_unused(state.unused)
        elif options.warn_unused:
            conclusion.lines.append("(a warning only: --nnviz-warn-unused)")
        else:
            conclusion.lines.append("delete them with: pytest --nnviz-update")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    conclusion.lines.extend(_report(state, conclusion))
    return conclusion


def _report(state: SessionState, conclusion: Conclusion) -> list[str]:
    from pytest_nnviz.report import (
        append_step_summary,
        build_report,
        github_annotations,
        on_github_actions,
        write_report,
    )

    report = build_report(state)
    path = write_report(report, state.options.artifacts_dir)
    counts = state.counts()
    troubled = any(counts[k] for k in ("drifted", "missing", "failed", "unused"))
    if state.options.github and on_github_actions() and troubled:
        conclusion.annotations = github_annotations(report, state.options.rootdir)
        append_step_summary(report, state.options.rootdir)
    if not counts["drifted"]:
        return []
    shown = _shown(path, state.options.rootdir)
    return [f"drift report: {shown} (read it with: nnviz report {shown})"]


def _shown(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return path.as_posix()
