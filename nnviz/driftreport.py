"""The drift report: what the pytest plugin found in one session, for CI tooling to present.

The plugin writes `report.json` (format "nnviz-drift-report", version 1) into its artifacts
folder; `nnviz report` and the GitHub Action read it back with `DriftReport.load` and present it
as plain text (`text`), GitHub workflow-command annotations (`github_annotations`) or markdown for
the job summary and PR comment (`summary_markdown`). Every path in the file is relative to pytest's
rootdir, in POSIX form. Each drift carries the `GraphDiff.to_json()` document, so presenting a
report needs no torch and no snapshot files. See docs/drift-report.md.
"""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from nnviz import untrusted
from nnviz.diffing import changelog as renderings
from nnviz.diffing import document
from nnviz.errors import DriftReportError
from nnviz.fs import atomic_write

FORMAT = "nnviz-drift-report"
VERSION = 1
REPORT_NAME = "report.json"
MAX_ERROR_ANNOTATIONS = 10
"""GitHub shows at most 10 error annotations per step; the rest go into one warning line."""
SUMMARY_LIMIT = 1_000_000
"""Bytes; GitHub refuses a step summary over 1 MiB (1,048,576 bytes), so stay clearly below."""
COMMENT_LIMIT = 60_000
"""Bytes; a PR comment body may hold at most 65,536 characters."""
COMMENT_MARKER = "<!-- nnviz-drift-report -->"
"""Hidden marker that identifies the one sticky PR comment the GitHub Action keeps updated."""
UPDATE_COMMAND = "pytest --nnviz-update"
_ANNOTATION_LINES = 30
_ANNOTATION_CHARS = 4000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Summary(_Strict):
    """Counts of snapshot checks in the session."""

    passed: int = Field(default=0, ge=0, description="Snapshots that matched.")
    drifted: int = Field(default=0, ge=0, description="Snapshots whose architecture changed.")
    written: int = Field(default=0, ge=0, description="Snapshots written by --nnviz-update.")
    missing: int = Field(default=0, ge=0, description="Snapshots that do not exist yet.")
    failed: int = Field(default=0, ge=0, description="Checks that failed for another reason.")
    unused: int = Field(default=0, ge=0, description="Snapshot files no test used.")


class DriftArtifacts(_Strict):
    """Files written for one drift, relative to the rootdir; `None` when not produced."""

    pdf: str | None = Field(default=None, description="Highlighted diff drawing, PDF.")
    svg: str | None = Field(default=None, description="Highlighted diff drawing, SVG.")
    html: str | None = Field(
        default=None, description="The diff as one interactive offline page (open in a browser)."
    )
    snapshot: str | None = Field(default=None, description="The snapshot as traced now.")


class Drift(_Strict):
    """One snapshot whose stored architecture differs from the model's current one."""

    nodeid: str = Field(min_length=1, description="pytest node id of the test.")
    file: str = Field(min_length=1, description="Test file, relative to the rootdir.")
    line: int = Field(ge=1, description="1-based line of the nnviz_snapshot(...) call.")
    snapshot: str = Field(min_length=1, description="Stored snapshot, relative to the rootdir.")
    artifacts: DriftArtifacts = Field(default_factory=DriftArtifacts)
    diff: dict[str, JsonValue] = Field(description="The GraphDiff.to_json() document.")

    @property
    def changes(self) -> int:
        """How many nodes differ: the order of importance when space is short."""
        return change_count(self.diff)

    @property
    def test_name(self) -> str:
        """The node id without its file part, e.g. `test_model[small]`."""
        return self.nodeid.split("::", 1)[-1]


class DriftReport(_Strict):
    """A whole drift report document, format version 1."""

    format: Literal["nnviz-drift-report"] = "nnviz-drift-report"
    version: Literal[1] = 1
    summary: Summary = Summary()
    drifts: list[Drift] = Field(default_factory=list)
    unused: list[str] = Field(default_factory=list, description="Unused snapshot files.")

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
            reads=(VERSION,),
            max_bytes=untrusted.MAX_REPORT_BYTES,
        )
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
        return sorted(self.drifts, key=lambda d: (-d.changes, d.file, d.line, d.nodeid))


# --- presenting -------------------------------------------------------------------------------


def changelog(diff_doc: dict[str, Any]) -> str:
    """The text changelog of one diff document, exactly as `nnviz diff` prints it."""
    return renderings.changelog(diff_doc).rstrip("\n")


def mermaid(diff_doc: dict[str, Any]) -> str:
    """The Mermaid flowchart source of one diff's changed region (no code fence)."""
    return renderings.mermaid(diff_doc).strip("\n")


def escape_data(text: str) -> str:
    """Escape a workflow-command message: `%`, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value: as data, plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_path(file: str, root: str = "") -> str:
    """`file` (relative to pytest's rootdir) as a path relative to the repository checkout."""
    if not root or root == ".":
        return file
    return posixpath.normpath(posixpath.join(root.replace(os.sep, "/"), file))


def workspace_root(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The current folder relative to `$GITHUB_WORKSPACE` (the checkout), `""` outside of it.

    When pytest ran in the current folder this is its rootdir as GitHub wants annotation paths.
    """
    environ = os.environ if environ is None else environ
    workspace = environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return ""
    here = (cwd or Path.cwd()).resolve()
    try:
        relative = here.relative_to(Path(workspace).resolve())
    except ValueError:
        return ""
    return "" if relative == Path(".") else relative.as_posix()


def source_url(environ: Mapping[str, str] | None = None) -> str | None:
    """`<server>/<owner>/<repo>/blob/<sha>` of the commit a GitHub Actions run checked out."""
    environ = os.environ if environ is None else environ
    parts = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")]
    if not all(parts):
        return None
    server, repository, sha = parts
    return f"{server}/{repository}/blob/{sha}"


def github_annotations(report: DriftReport, root: str = "") -> list[str]:
    """Workflow-command lines for GitHub Actions: one `::error` per drift on its test's line.

    Most changes first; at most `MAX_ERROR_ANNOTATIONS` errors, the rest named in one `::warning`
    line. Unused snapshots give one `::notice`. `root` is pytest's rootdir relative to the
    repository checkout (`""` when they are the same), because GitHub resolves `file=` from there.
    """
    ranked = report.ranked()
    lines = []
    for drift in ranked[:MAX_ERROR_ANNOTATIONS]:
        props = {
            "file": annotation_path(drift.file, root),
            "line": str(drift.line),
            "title": f"nnviz: architecture drift in {drift.test_name}",
        }
        body = ",".join(f"{key}={escape_property(value)}" for key, value in props.items())
        lines.append(f"::error {body}::{escape_data(_annotation_message(drift))}")
    rest = ranked[MAX_ERROR_ANNOTATIONS:]
    if rest:
        names = ", ".join(d.nodeid for d in rest[:20]) + (", …" if len(rest) > 20 else "")
        message = (
            f"{len(rest)} more architecture drift(s) not annotated (GitHub shows at most "
            f"{MAX_ERROR_ANNOTATIONS} errors per step; see the job summary): {names}"
        )
        title = escape_property("nnviz: more drifts")
        lines.append(f"::warning title={title}::{escape_data(message)}")
    if report.unused:
        names = ", ".join(report.unused[:20]) + (", …" if len(report.unused) > 20 else "")
        message = f"{len(report.unused)} snapshot file(s) no test used: {names}"
        title = escape_property("nnviz: unused snapshots")
        lines.append(f"::notice title={title}::{escape_data(message)}")
    return lines


def _annotation_message(drift: Drift) -> str:
    lines = changelog(drift.diff).splitlines()
    if len(lines) > _ANNOTATION_LINES:
        more = len(lines) - _ANNOTATION_LINES
        lines = [*lines[:_ANNOTATION_LINES], f"… {more} more line(s) in the job summary"]
    text = "\n".join(lines)
    if len(text) > _ANNOTATION_CHARS:
        text = text[:_ANNOTATION_CHARS] + "\n… (cut; see the job summary)"
    changed = _plural(drift.changes, "changed node")
    head = f"{drift.snapshot} no longer matches the model ({changed})."
    accept = f"{UPDATE_COMMAND} {shlex.quote(drift.nodeid)}"
    tail = f"If the change is intended, run `{accept}` and commit the snapshot."
    return f"{head}\n{text}\n{tail}"


def text(report: DriftReport) -> str:
    """A plain-text report: the counts line, then each drift with its changelog and drawings."""
    out = [f"nnviz: {_counts(report)}"]
    for drift in report.ranked():
        out.append("")
        out.append(f"DRIFT {drift.file}:{drift.line}  {drift.nodeid}")
        out.append(f"  snapshot: {drift.snapshot}")
        out.extend(f"  {line}" for line in changelog(drift.diff).splitlines())
        files = _artifact_files(drift)
        if files:
            out.append(f"  drawings: {', '.join(files)}")
    if report.unused:
        out.append("")
        out.append("unused snapshots:")
        out.extend(f"  {path}" for path in report.unused)
    if report.drifts:
        out.append("")
        out.append(f"If the changes are intended, run `{UPDATE_COMMAND}` and commit the snapshots.")
    return "\n".join(out) + "\n"


def _counts(report: DriftReport) -> str:
    s = report.summary
    return (
        f"{s.passed} passed, {s.drifted} drifted, {s.written} written, {s.missing} missing, "
        f"{s.failed} failed, {s.unused} unused"
    )


def _artifact_files(drift: Drift) -> list[str]:
    a = drift.artifacts
    return [path for path in (a.html, a.pdf, a.svg, a.snapshot) if path]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_markdown(
    report: DriftReport,
    *,
    artifact_url: str | None = None,
    source_url: str | None = None,
    root: str = "",
    limit: int = SUMMARY_LIMIT,
) -> str:
    """Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment, at most `limit` bytes (UTF-8).

    A headline, the counts table, links to the drawings (`artifact_url`), an index of every drift,
    then per drift (most changes first) its changelog and a Mermaid picture of the changed region,
    folded in `<details>`. Sections that would pass `limit` are left out and counted in a note;
    the index always names every drift. `source_url` (e.g. `https://github.com/o/r/blob/SHA`)
    turns test locations into links; `root` is pytest's rootdir relative to the repository.
    """
    ranked = report.ranked()
    s = report.summary
    headline = _plural(len(ranked), "architecture drift") if ranked else "no architecture drift"
    head = [f"## nnviz: {headline}", ""]
    head += ["| passed | drifted | written | missing | failed | unused |"]
    head += ["| ---: | ---: | ---: | ---: | ---: | ---: |"]
    head += [f"| {s.passed} | {s.drifted} | {s.written} | {s.missing} | {s.failed} | {s.unused} |"]
    head.append("")
    if ranked and artifact_url:
        head += [
            f"Drawings of every drift (highlighted diff as PDF and SVG, the new snapshot): "
            f"[download the artifact]({artifact_url}); open each `.diff.html` in a browser to "
            f"expand, search and follow the changes (offline, one file).",
            "",
        ]
    if ranked:
        head += ["| # | test | location | changed nodes |", "| ---: | --- | --- | ---: |"]
        for i, drift in enumerate(ranked, 1):
            if _size(head) > limit // 2:  # thousands of drifts: keep room for the details
                head.append(f"| … | {len(ranked) - i + 1} more: see `report.json` | | |")
                break
            where = _where(drift, source_url, root, cell=True)
            head.append(
                f"| {i} | {_code(drift.test_name, cell=True)} | {where} | {drift.changes} |"
            )
        head.append("")
    tail = []
    if report.unused:
        tail += [f"<details><summary>{len(report.unused)} unused snapshot file(s)</summary>", ""]
        for i, path in enumerate(report.unused):
            if i == _UNUSED_LISTED or _size(tail) > limit // 4:
                tail.append(f"- … {len(report.unused) - i} more in `report.json`")
                break
            tail.append(f"- {_code(path)}")
        tail += ["", "</details>", ""]
    if ranked:
        tail.append(
            f"If the changes are intended, run `{UPDATE_COMMAND}` and commit the snapshots."
        )
    budget = limit - _size(head) - _size(tail) - 300
    body: list[str] = []
    for i, drift in enumerate(ranked, 1):
        section = _drift_section(i, drift, source_url, root, open_=i <= _OPEN_SECTIONS)
        if _size(body) + _size(section) > budget:
            left = len(ranked) - i + 1
            body += [
                f"*{_plural(left, 'more drift')} not shown here to stay under GitHub's size "
                f"limit: see `report.json` and the drawings in the artifact.*",
                "",
            ]
            break
        body += section
    return "\n".join([*head, *body, *tail]).rstrip("\n") + "\n"


_OPEN_SECTIONS = 3
_UNUSED_LISTED = 100
_MERMAID_CHARS = 40_000  # GitHub's Mermaid renderer refuses larger sources


def _drift_section(
    index: int, drift: Drift, source_url: str | None, root: str, open_: bool
) -> list[str]:
    summary = f"{index}. {drift.test_name}: {_plural(drift.changes, 'changed node')}"
    lines = [f"<details{' open' if open_ else ''}><summary>{html.escape(summary)}</summary>", ""]
    lines.append(f"Test {_where(drift, source_url, root)}, snapshot {_code(drift.snapshot)}.")
    files = _artifact_files(drift)
    if files:
        lines.append(f"Drawings: {', '.join(_code(f) for f in files)}.")
    if drift.artifacts.html:
        lines.append(f"Open {_code(drift.artifacts.html)} in a browser to explore the diff.")
    lines += ["", *_fence("text", changelog(drift.diff)), ""]
    picture = mermaid(drift.diff)
    if len(picture) <= _MERMAID_CHARS:
        lines += [*_fence("mermaid", picture), ""]
    else:
        lines += [
            "*(The picture is too large for GitHub's Mermaid renderer: see the drawings.)*",
            "",
        ]
    return [*lines, "</details>", ""]


def _where(drift: Drift, source_url: str | None, root: str, cell: bool = False) -> str:
    path = annotation_path(drift.file, root)
    label = _code(f"{path}:{drift.line}", cell=cell)
    if source_url:
        return f"[{label}]({source_url.rstrip('/')}/{quote(path)}#L{drift.line})"
    return label


def _code(value: str, cell: bool = False) -> str:
    """An inline code span that survives backticks (and `|` inside a table cell)."""
    value = " ".join(value.split())
    ticks = "`" * (max((len(r) for r in re.findall("`+", value)), default=0) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    span = f"{ticks}{pad}{value}{pad}{ticks}"
    return span.replace("|", "\\|") if cell else span


def _fence(language: str, body: str) -> list[str]:
    ticks = "`" * max(3, max((len(r) for r in re.findall("`+", body)), default=0) + 1)
    return [f"{ticks}{language}", body.rstrip("\n"), ticks]


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


# --- the diff document ----------------------------------------------------------------------


def change_count(doc: dict[str, Any]) -> int:
    """How many nodes of a diff document were added, removed, changed or renamed."""
    return sum(1 for node in doc.get("nodes", ()) if node.get("status") != "unchanged")
