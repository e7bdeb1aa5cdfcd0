"""The session report: `report.json` in the artifacts folder, and GitHub Actions output.

The document is `nnviz.driftreport.DriftReport` (format `nnviz-drift-report`, version 1; see
docs/drift-report.md), read back by `nnviz report`. Only the controller writes it, once per
session, atomically. On GitHub Actions the same report becomes one `::error` annotation per
drift and a markdown section appended to `$GITHUB_STEP_SUMMARY`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nnviz.fs import atomic_write
from pytest_nnviz.session import SessionState


def build_report(state: SessionState) -> Any:
    """The session's `DriftReport`: summary counts, every drift, every unused snapshot."""
    from nnviz.driftreport import DriftReport

    drifts = [
        {
            "nodeid": r.nodeid,
            "file": r.file,
            "line": r.line,
            "snapshot": r.snapshot,
            "artifacts": {key: r.artifacts.get(key) for key in ("pdf", "svg", "html", "snapshot")},
            "diff": r.diff,
        }
        for r in sorted(state.results, key=lambda r: (r.nodeid, r.snapshot))
        if r.status == "drifted"
    ]
    return DriftReport.model_validate(
        {
            "format": "nnviz-drift-report",
            "version": 1,
            "summary": state.counts(),
            "drifts": drifts,
            "unused": [state.relative(p) for p in state.unused],
        }
    )


def write_report(report: Any, artifacts_dir: Path) -> Path:
    """Write `report.json` into `artifacts_dir` atomically; return its path."""
    from nnviz.driftreport import REPORT_NAME

    return Path(report.save(artifacts_dir / REPORT_NAME))


def on_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def github_annotations(report: Any, rootdir: Path) -> list[str]:
    """The `::error file=…,line=…::` workflow commands for the report's drifts.

    GitHub resolves `file=` from the checkout (`$GITHUB_WORKSPACE`), report paths are relative
    to pytest's rootdir: pass the difference along.
    """
    from nnviz.driftreport import github_annotations as annotations
    from nnviz.driftreport import workspace_root

    return list(annotations(report, root=workspace_root(cwd=rootdir)))


def append_step_summary(report: Any, rootdir: Path) -> Path | None:
    """Append the report's markdown to `$GITHUB_STEP_SUMMARY` (when that is set)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    from nnviz.driftreport import source_url, summary_markdown, workspace_root

    markdown = summary_markdown(report, source_url=source_url(), root=workspace_root(cwd=rootdir))
    path = Path(target)
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    return atomic_write(path, before + markdown.rstrip("\n") + "\n")
