"""The drift report on GitHub: annotations, the job summary and the pull-request comment.

`workflow_commands` gives the annotations: one `::error` per drift on its `nnviz_snapshot(...)` line
(most changes first, at most 10), one `::warning` per model-code line that defines a changed
module. `page` is the reviewer's page (job summary and PR comment alike): a warning line for
destructive changes, one table row per drifting test, where to find the drawings, the exact
commands that accept the changes locally, and each test's changelog and Mermaid sketch folded in
`<details>`, within a byte limit. `comment` is the sticky PR comment's body (a hidden marker,
then the page, or a "no drift any more" note). Every text from the report is escaped.
"""

from __future__ import annotations

import html
import os
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from nnviz.costs import macs_text
from nnviz.diffing import changelog as renderings
from nnviz.diffing import mermaid
from nnviz.diffing.cost import CostDiff
from nnviz.diffing.records import Changelog, Entry
from nnviz.driftreport import (
    Drift,
    DriftReport,
    NewSnapshot,
    changelog,
    plural,
)
from nnviz.policy import DEFAULT_WARN_PARAMS, warnings

MAX_ERROR_ANNOTATIONS = 10
"""GitHub shows at most 10 error (and 10 warning) annotations per step; the rest are named."""
SUMMARY_LIMIT = 1_000_000
"""Bytes; GitHub refuses a step summary over 1 MiB (1,048,576 bytes), so stay clearly below."""
COMMENT_LIMIT = 60_000
"""Bytes; a PR comment body may hold at most 65,536 characters."""
COMMENT_MARKER = "<!-- nnviz-drift-report -->"
"""Hidden first line that identifies the one sticky PR comment the GitHub Action keeps updated."""
MERMAID_CHARS = 50_000
MERMAID_EDGES = 500
"""GitHub's Mermaid renderer refuses sources over 50,000 characters or 500 edges."""
ARTIFACT_NAME = "nnviz-drift"
UPDATE_COMMAND = "pytest --nnviz-update"
_ANNOTATION_LINES = 30
_ANNOTATION_CHARS = 4000
_OPEN_SECTIONS = 3
_UNUSED_LISTED = 100


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


# --- annotations ------------------------------------------------------------------------------


def workflow_commands(report: DriftReport, root: str = "") -> list[str]:
    """Workflow-command lines: one `::error` per drift on its test's line, one `::warning` per
    model-code line defining a changed module; at most `MAX_ERROR_ANNOTATIONS` of each, the
    rest named in one line. Unused snapshots give one `::notice`. `root` is pytest's rootdir
    relative to the repository checkout, because GitHub resolves `file=` from there."""
    ranked = report.ranked()
    lines = [
        _command(
            "error",
            annotation_path(d.file, root),
            d.line,
            f"nnviz: architecture drift in {d.test_name}",
            _annotation_message(d),
        )
        for d in ranked[:MAX_ERROR_ANNOTATIONS]
    ]
    rest = ranked[MAX_ERROR_ANNOTATIONS:]
    if rest:
        names = ", ".join(d.nodeid for d in rest[:20]) + (", …" if len(rest) > 20 else "")
        message = (
            f"{len(rest)} more architecture drift(s) not annotated (GitHub shows at most "
            f"{MAX_ERROR_ANNOTATIONS} errors per step; see the job summary): {names}"
        )
        title = escape_property("nnviz: more drifts")
        lines.append(f"::warning title={title}::{escape_data(message)}")
    lines += _source_annotations(ranked)
    if report.unused:
        names = ", ".join(report.unused[:20]) + (", …" if len(report.unused) > 20 else "")
        message = f"{len(report.unused)} snapshot file(s) no test used: {names}"
        title = escape_property("nnviz: unused snapshots")
        lines.append(f"::notice title={title}::{escape_data(message)}")
    return lines


def _command(kind: str, file: str, line: int, title: str, message: str) -> str:
    props = {"file": file, "line": str(line), "title": title}
    body = ",".join(f"{key}={escape_property(value)}" for key, value in props.items())
    return f"::{kind} {body}::{escape_data(message)}"


def _source_annotations(ranked: list[Drift]) -> list[str]:
    # Source files are recorded relative to the repository: GitHub's own root.
    out: list[str] = []
    for drift in ranked:
        entries = renderings.changelog_of(drift.diff).entries
        for source in drift.sources:
            if len(out) == MAX_ERROR_ANNOTATIONS:
                return out
            names = ", ".join(source.modules)
            about = [e for e in entries if _about(e, source.modules)]
            if not about and source.what == "calls":  # a change told by its module's entry
                about = [e for e in entries if _holds(e, source.modules)]
            said = [renderings.change_line(e) for e in about]
            mine = [line for line in said if line is not None]
            message = "\n".join([*mine[:_ANNOTATION_LINES], f"(snapshot test: {drift.nodeid})"])
            call = "the call of " if source.what == "calls" else ""
            title = f"nnviz: {call}{names} changed the architecture"
            out.append(_command("warning", source.file, source.line, title, message))
    return out


def _about(entry: Entry, modules: list[str]) -> bool:
    """Whether a changelog entry names one of `modules` or a place inside one (`blocks.{0..11}.attn`
    names `blocks.3`)."""
    return any(n == m or n.startswith(m + ".") for n in entry.places.names() for m in modules)


def _holds(entry: Entry, ops: list[str]) -> bool:
    """Whether a changelog entry names a module that holds one of `ops` (an op changed inside a
    module whose class changed is folded into that module's entry)."""
    return any(o.startswith(n + ".") for n in entry.places.names() if n for o in ops)


def _annotation_message(drift: Drift) -> str:
    lines = changelog(drift.diff).splitlines()
    if len(lines) > _ANNOTATION_LINES:
        more = len(lines) - _ANNOTATION_LINES
        lines = [*lines[:_ANNOTATION_LINES], f"… {more} more line(s) in the job summary"]
    text = "\n".join(lines)
    if len(text) > _ANNOTATION_CHARS:
        text = text[:_ANNOTATION_CHARS] + "\n… (cut; see the job summary)"
    changed = plural(drift.changes, "change")
    head = f"{drift.snapshot} no longer matches the model ({changed})."
    accept = f"{UPDATE_COMMAND} {shlex.quote(drift.nodeid)}"
    tail = f"If the change is intended, run `{accept}` (or `nnviz accept`) and commit the snapshot."
    return f"{head}\n{text}\n{tail}"


# --- the page: job summary and PR comment -------------------------------------------------------


@dataclass(frozen=True)
class Presentation:
    """What the page links to and warns about (all optional)."""

    artifact_url: str | None = None
    """Link to the uploaded artifact."""
    artifact_name: str = ARTIFACT_NAME
    run_id: str | None = None
    """The Actions run whose artifact `gh run download` fetches."""
    source_url: str | None = None
    """`https://github.com/o/r/blob/SHA`: turns locations into links."""
    root: str = ""
    """pytest's rootdir relative to the repository checkout."""
    warn_params: float = DEFAULT_WARN_PARAMS
    """A parameter-count change above this fraction gets a ⚠️ line."""


def comment(
    report: DriftReport, how: Presentation = Presentation(), limit: int = COMMENT_LIMIT
) -> str:
    """The sticky PR comment: the marker line, then `page` (or, with no drift, a note that the
    architecture matches every snapshot again, so an earlier comment does not go stale)."""
    if not report.drifts and not any(n.pending for n in report.new):
        sha = os.environ.get("GITHUB_SHA", "")[:7]
        at = f" at `{sha}`" if sha else ""
        return (
            f"{COMMENT_MARKER}\n## nnviz: no architecture drift any more\n\n"
            f"The latest run{at} matches every snapshot "
            f"({plural(report.summary.passed, 'snapshot')} passed).\n"
        )
    body = page(report, how, limit=limit - len(COMMENT_MARKER) - 1)
    return f"{COMMENT_MARKER}\n{body}"


def page(
    report: DriftReport, how: Presentation = Presentation(), limit: int = SUMMARY_LIMIT
) -> str:
    """Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment, at most `limit` bytes (UTF-8).

    Headline; ⚠️ lines for drifts that remove modules or move the parameter count by more than
    `how.warn_params`; one table row per drifting test; the drawings and the commands that
    accept the changes locally; then per drift its changelog and Mermaid sketch in `<details>`.
    Sections that would pass `limit` are left out and counted; the table names every drift
    while it fits.
    """
    logs = report.ranked_logs()  # each drift's changelog records, made once for the page
    ranked = [drift for drift, _ in logs]
    source_url, root = how.source_url, how.root
    headline = plural(len(ranked), "architecture drift") if ranked else "no architecture drift"
    head = [f"## nnviz: {headline}", ""]
    alarms = [
        f"⚠️ **{_cell(d.test_name)}** {_cell(w)}"
        for d, log in logs
        for w in warnings(d, how.warn_params, log=log)
    ]
    head += [*(f"{a}  " for a in alarms[:20]), ""] if alarms else []
    head += _table(logs, source_url, root, limit)
    head += [_counts_line(report), ""]
    if report.run is not None and report.run.partial:  # a shard lost, or a -k/--lf run
        head += [f"Unused snapshots not judged: {_code('; '.join(report.run.partial))}.", ""]
    new = [n for n in report.new if n.pending]
    if new:
        named = ", ".join(_code(n.test_name) for n in new[:20]) + (" …" if len(new) > 20 else "")
        head += [
            f"**{plural(len(new), 'new snapshot')} pending** (no stored one yet: accepting "
            f"creates it): {named}.",
            "",
        ]
    if ranked or new:
        head += _where_and_how([*ranked, *new], how, report.root)
    tail = _unused(report.unused, limit)
    budget = limit - _size(head) - _size(tail) - 300
    body: list[str] = []
    for i, (drift, log) in enumerate(logs, 1):
        section = _drift_section(i, drift, log, source_url, root, open_=i <= _OPEN_SECTIONS)
        if _size(body) + _size(section) > budget:
            left = len(ranked) - i + 1
            body += [
                f"*{plural(left, 'more drift')} not shown here to stay under GitHub's size "
                f"limit: see `report.json` and the drawings in the artifact.*",
                "",
            ]
            break
        body += section
    return "\n".join([*head, *body, *tail]).rstrip("\n") + "\n"


def _table(
    ranked: list[tuple[Drift, Changelog]], source_url: str | None, root: str, limit: int
) -> list[str]:
    if not ranked:
        return []
    out = [
        "| test | model | changed | added | removed | renamed | params | compute (MACs) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, (drift, log) in enumerate(ranked):
        if _size(out) > limit // 3:  # thousands of drifts: keep room for the details
            out.append(f"| … {len(ranked) - i} more: see `report.json` | | | | | | | |")
            break
        counts = dict(log.counts)
        model = str(_side(drift, "new").get("name") or _side(drift, "old").get("name") or "?")
        cells = [
            _link(_code(drift.test_name, cell=True), drift.file, drift.line, source_url, root),
            _code(model, cell=True),
            *(str(counts[s]) for s in ("changed", "added", "removed", "renamed")),
            _params(log),
            _compute(drift),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return [*out, ""]


def _side(drift: Drift, side: str) -> Mapping[str, object]:
    value = drift.diff.get(side)
    return value if isinstance(value, dict) else {}


def _params(log: Changelog) -> str:
    old, new = log.params
    if old == new:
        return "±0"
    share = f" ({(new - old) / old:+.1%})" if old else ""
    return f"{new - old:+,}{share}"


def _compute(drift: Drift) -> str:
    """`+206 MMACs (+11.3%)`, `±0`, or `unknown` (traced without inputs, older snapshot)."""
    cost = CostDiff.from_dict(drift.diff.get("cost"))
    if cost is None or not cost.known:
        return "unknown"
    old, new = cost.old.macs, cost.new.macs
    if old == new:
        return "±0"
    share = f" ({(new - old) / old:+.1%})" if old else ""
    return f"{'+' if new > old else '-'}{macs_text(abs(new - old))}{share}"


def _counts_line(report: DriftReport) -> str:
    s = report.summary
    parts = [f"{s.passed} passed", f"{s.drifted} drifted", f"{s.written} written"]
    parts += [f"{s.missing} missing", f"{s.failed} unreadable", f"{s.unused} unused"]
    return "Snapshots: " + " · ".join(parts) + "."


def _where_and_how(ranked: list[NewSnapshot], how: Presentation, root: str) -> list[str]:
    first = ranked[0].drawings[0] if ranked[0].drawings else None
    artifact_url, name, run_id = how.artifact_url, how.artifact_name, how.run_id
    out = []
    if artifact_url:
        opened = f" and open {_code(first)} (each test's files are named below)" if first else ""
        if first and first.endswith(".html"):
            opened += "; a `.diff.html` opens in any browser, offline, to expand and search"
        out += [f"**Drawings:** [download the `{name}` artifact]({artifact_url}){opened}.", ""]
    folder = ".nnviz-artifacts"
    download = f"gh run download {run_id} -n {shlex.quote(name)} -D {folder} && " if run_id else ""
    where = f" (snapshots under `{root}/`)" if root else ""
    out += [
        f"**Accept locally**, from the repository's root{where}: all of them,",
        "",
        "```bash",
        f"{download}nnviz accept {folder}",
        "```",
        "",
        f"or one test with `nnviz accept {folder} {shlex.quote(ranked[0].nodeid)}`, or one by "
        f"one with `nnviz review {folder}`; then commit the snapshots. A snapshot changed since "
        "this run is refused, never overwritten.",
        "",
    ]
    return out


def _unused(unused: list[str], limit: int) -> list[str]:
    if not unused:
        return []
    out = [f"<details><summary>{len(unused)} unused snapshot file(s)</summary>", ""]
    for i, path in enumerate(unused):
        if i == _UNUSED_LISTED or _size(out) > limit // 4:
            out.append(f"- … {len(unused) - i} more in `report.json`")
            break
        out.append(f"- {_code(path)}")
    return [*out, "", "</details>", ""]


def _drift_section(
    index: int, drift: Drift, log: Changelog, source_url: str | None, root: str, open_: bool
) -> list[str]:
    changes = sum(n for _, n in log.counts)
    summary = f"{index}. {drift.test_name}: {plural(changes, 'change')}"
    lines = [f"<details{' open' if open_ else ''}><summary>{html.escape(summary)}</summary>", ""]
    where = _link(
        _code(f"{annotation_path(drift.file, root)}:{drift.line}"),
        drift.file,
        drift.line,
        source_url,
        root,
    )
    lines.append(f"Test {where}, snapshot {_code(drift.snapshot)}.")
    if drift.drawings:
        lines.append(f"In the artifact: {', '.join(_code(f) for f in drift.drawings)}.")
    for source in drift.sources:
        label = _code(f"{source.file}:{source.line}")
        link = _link(label, source.file, source.line, source_url, "")
        many = "s" if len(source.modules) > 1 else ""
        what = f"makes the changed call{many} of" if source.what == "calls" else "defines"
        lines.append(f"Model code: {link} {what} {', '.join(_code(m) for m in source.modules)}.")
    lines += ["", *_fence("text", renderings.text_of(log).rstrip("\n")), ""]
    lines += [*_mermaid(drift), ""]
    return [*lines, "</details>", ""]


def _mermaid(drift: Drift) -> list[str]:
    sketch = mermaid.sketch(drift.diff)
    picture, edges = sketch.text.strip("\n"), sketch.edges
    if len(picture) <= MERMAID_CHARS and edges <= MERMAID_EDGES:
        return _fence("mermaid", picture)
    return [
        f"*(The sketch of the changed region has {len(picture):,} characters and {edges} edges, "
        f"more than GitHub's Mermaid draws ({MERMAID_CHARS:,} and {MERMAID_EDGES}): open the "
        "drawing from the artifact.)*"
    ]


def _link(label: str, file: str, line: int, source_url: str | None, root: str) -> str:
    if not source_url:
        return label
    path = annotation_path(file, root)
    return f"[{label}]({source_url.rstrip('/')}/{quote(path)}#L{line})"


def _cell(value: str) -> str:
    return html.escape(" ".join(value.split())).replace("|", "\\|").replace("*", "\\*")


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
