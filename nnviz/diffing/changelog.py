"""Human renderings of a diff document (`GraphDiff.to_dict()`, see docs/diff-format.md).

Everything here works from the JSON document alone, so tools that only hold JSON (the pytest
plugin's report.json, `nnviz report`) print exactly what `nnviz diff` prints:

- `changelog(doc)`: each real change once, its consequences folded under it (the lines of
  `nnviz.diffing.lines`; `verbose=True` lists every change), then one line of totals and the
  information that is not drift. An identical diff is one line. `coloured(text)` adds ANSI
  colours for a terminal.
- `markdown(doc)`: a summary table, the changelog and a Mermaid flowchart of the changed region,
  folded to stay well under GitHub's 65,536-character comment limit.
- `mermaid(doc)`: that flowchart alone (at most `max_nodes` nodes).

Each refuses (`NNVizError`) a document of another format or an unknown version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nnviz.diffing import document
from nnviz.diffing.blocks import chart
from nnviz.diffing.grouping import group_items, join_places
from nnviz.diffing.lines import Doc, Index, describe, display, groups, title
from nnviz.diffing.lines import human as human  # the renderings' number format, for readers
from nnviz.diffing.palette import PALETTE

_MAX_MARKDOWN_LINES = 400
_MAX_MARKDOWN_CHARS = 30_000
_MAX_MERMAID_CHARS = 25_000  # with the changelog's cap, a PR comment stays under 65,536


_INFO_NAMES = {
    "attribute": "attribute-only change",
    "plumbing": "scalar-plumbing change",
    "spelling": "same-op spelling change",
    "input": "optional-input change",
    "format": "older-format change",
}
_MAX_INFO_LINES = 10


def _info_lines(doc: Doc) -> list[str]:
    """Differences that are not drift, apart: a count per kind, then the attribute-only
    changes themselves (scalar plumbing is only counted)."""
    counts: dict[str, int] = {}
    shown: list[str] = []
    for e in doc.get("nodes", ()):
        kinds = [e["info"]] if e.get("info") else []
        for key, change in e.get("changes", {}).items():
            if change.get("info"):
                kinds.append(change["info"])
                if change["info"] == "attribute":
                    shown.append(f"~ {display(e['name'])}  {title(e)}  {describe(key, change)}")
        for kind in dict.fromkeys(kinds):
            counts[kind] = counts.get(kind, 0) + 1
    if not counts or doc.get("strict"):
        return []
    parts = [
        f"{n} {_INFO_NAMES.get(kind, kind)}{'s' if n != 1 else ''}" for kind, n in counts.items()
    ]
    strict = " (counted with --strict)"
    shown = ["  " + item[0] for item in join_places(group_items([[line] for line in shown]))]
    if len(shown) > _MAX_INFO_LINES:
        shown = [*shown[: _MAX_INFO_LINES - 1], f"  … and {len(shown) - _MAX_INFO_LINES + 1} more"]
    return [f"not drift{strict}: " + ", ".join(parts), *shown]


def _params(doc: Doc) -> str:
    p = doc["summary"]["params"]
    return f"params {p['old']:,} → {p['new']:,} ({p['delta']:+,})"


def _totals(counts: Mapping[str, int], propagated: int, doc: Doc) -> str:
    return _counts(counts, propagated) + " · " + _params(doc)


def _counts(counts: Mapping[str, int], propagated: int) -> str:
    parts = [f"{n} {status}" for status, n in counts.items() if n]
    if propagated:
        parts.append(f"{propagated} downstream")
    return ", ".join(parts)


def headline(doc: Doc) -> str:
    """The diff in a few words, as the changelog's totals count it: `1 changed, 3 downstream`,
    or `identical: no architecture changes`."""
    doc = document.read(doc)
    if doc.get("identical"):
        return "identical: no architecture changes"
    _, counts, propagated = groups(doc)
    return _counts(counts, propagated)


def totals(doc: Doc) -> str:
    """The changelog's totals line (`1 changed · params 11,689,512 → 11,181,642 (-507,870)`), or
    its `identical: ...` line; information lines may follow it in the changelog."""
    doc = document.read(doc)
    if doc.get("identical"):
        return _identical(doc)
    _, counts, propagated = groups(doc)
    return _totals(counts, propagated, doc)


def _identical(doc: Doc) -> str:
    side = doc.get("new", {})
    return (
        f"identical: no architecture changes ({side.get('nodes', 0)} nodes, "
        f"{side.get('params', 0):,} params)"
    )


def changelog(doc: Doc, verbose: bool = False) -> str:
    """The review changelog of a diff document, ending with a newline: each real change once,
    its consequences folded under it; `verbose` lists every change on its own line."""
    doc = document.read(doc)
    info = _info_lines(doc)
    if doc.get("identical"):
        return "\n".join([_identical(doc), *info]) + "\n"
    lines, counts, propagated = groups(doc, verbose)
    return "\n".join([*lines, _totals(counts, propagated, doc), *info]) + "\n"


_ANSI = {"+": "32", "-": "31", "~": "33", "→": "34", " ": "2"}


def coloured(text: str) -> str:
    """A changelog with ANSI colours by line kind, for a terminal: added green, removed red,
    changed yellow, renamed blue, folded `↳` lines dim; the totals line as it is."""
    lines = []
    for line in text.splitlines():
        code = _ANSI.get(line[:1]) if line[1:2] == " " or line.startswith("    ↳") else None
        lines.append(f"\x1b[{code}m{line}\x1b[0m" if code else line)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def markdown(doc: Doc) -> str:
    """A PR-comment / job-summary section: title, summary table, changelog, Mermaid flowchart."""
    doc = document.read(doc)
    old, new = doc.get("old", {}), doc.get("new", {})
    title = f"### nnviz diff: `{old.get('name', 'old')}` → `{new.get('name', 'new')}`"
    info = [line.replace("```", "'''") for line in _info_lines(doc)]
    if doc.get("identical"):
        extra = "\n\n```diff\n" + "\n".join(info) + "\n```" if info else ""
        return f"{title}\n\n{_identical(doc).capitalize()}.{extra}\n"
    lines, counts, propagated = groups(doc)
    table = ["| | |", "| --- | ---: |"]
    table += [f"| {status} | {n} |" for status, n in counts.items()]
    table.append(f"| downstream | {propagated} |")
    p = doc["summary"]["params"]
    table.append(f"| parameters | {p['old']:,} → {p['new']:,} ({p['delta']:+,}) |")
    body, size = [], 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if i >= _MAX_MARKDOWN_LINES or size > _MAX_MARKDOWN_CHARS:
            body.append(f"… {len(lines) - i} more lines (see the JSON diff)")
            break
        body.append(line.replace("```", "'''"))
    body.append(_totals(counts, propagated, doc))
    body.extend(info)
    parts = [title, "\n".join(table), "```diff\n" + "\n".join(body) + "\n```"]
    chart, boxes = mermaid(doc), 100
    while len(chart) > _MAX_MERMAID_CHARS and boxes > 5:
        boxes //= 2
        chart = mermaid(doc, max_nodes=boxes)
    if chart:
        parts.append("```mermaid\n" + chart + "```")
    return "\n\n".join(parts) + "\n"


def mermaid(doc: Doc, *, max_nodes: int = 100, context: int = 1) -> str:
    """A Mermaid flowchart of the changed region plus `context` hops of unchanged neighbours.

    Added/removed modules are one box each; at most `max_nodes` boxes (context goes first, then
    the tail of the changes, noted in a last box). Empty for an identical diff.
    """
    doc = document.read(doc)
    if doc.get("identical"):
        return ""
    index = Index(doc)
    runs = chart(index.entries)  # sibling blocks with the same changes: one box for a run
    group = {}
    for e in index.entries:
        name = index.root(e["name"]) if e["status"] in ("added", "removed") else e["name"]
        group[e["name"]] = runs.names.get(name, name)
    boxes, hidden = _chart_boxes(doc, index, group, max_nodes, context)
    ids = {name: f"n{i}" for i, name in enumerate(boxes)}
    out = ["flowchart TD"]
    for name in boxes:
        e = index.by_name.get(name, {"status": "unchanged", "kind": "", "op": ""})
        out.append(f'  {ids[name]}["{_box(e, runs.shown(name), runs.text)}"]:::{e["status"]}')
    if hidden:
        out.append(f'  more["… {hidden} more changes"]:::changed')
    done: set[tuple[str, str]] = set()
    for edge in doc.get("edges", ()):
        s, t = group.get(edge["source"]), group.get(edge["target"])
        if runs.between_blocks(edge["source"], edge["target"]):
            continue  # one block of a run feeding the next
        if s in ids and t in ids and s != t and (s, t) not in done:
            done.add((s, t))
            arrow = {"added": "==>", "removed": "-.->"}.get(edge["status"], "-->")
            out.append(f"  {ids[s]} {arrow} {ids[t]}")
    out += [f"  classDef {status} {_class_style(status)}" for status in PALETTE]
    return "\n".join(out) + "\n"


def _chart_boxes(
    doc: Doc, index: Index, group: dict[str, str], max_nodes: int, context: int
) -> tuple[list[str], int]:
    """The boxes of the chart: every changed group, then `context` hops of unchanged neighbours
    when they all fit; at most `max_nodes - 1` when more are changed (and how many are hidden)."""
    shown: dict[str, None] = {}
    for e in index.entries:
        if e["status"] != "unchanged" and not (e["status"] == "renamed" and index.folded(e)):
            shown[group[e["name"]]] = None
    neighbours: dict[str, list[str]] = {}
    for edge in doc.get("edges", ()):
        s, t = group.get(edge["source"], edge["source"]), group.get(edge["target"], edge["target"])
        neighbours.setdefault(s, []).append(t)
        neighbours.setdefault(t, []).append(s)
    extra: dict[str, None] = {}
    frontier = list(shown)
    for _ in range(max(context, 0)):
        frontier = [n for f in frontier for n in neighbours.get(f, ()) if n not in shown]
        frontier = [n for n in dict.fromkeys(frontier) if n not in extra]
        extra.update(dict.fromkeys(frontier))
    if len(shown) + len(extra) > max_nodes:
        extra = {}
    boxes = list(shown) + list(extra)
    hidden = max(0, len(boxes) - max_nodes)
    return (boxes[: max_nodes - 1] if hidden else boxes), hidden


def _class_style(status: str) -> str:
    c = PALETTE[status]
    dashed = ",stroke-dasharray:5 5" if status == "removed" else ""
    return f"fill:{c.fill},stroke:{c.line},color:{c.text}{dashed}"


def _box(e: Mapping[str, Any], name: str, shown: Callable[[str], str] = str) -> str:
    """A box's lines; `shown` rewrites the names in them (a block standing for several)."""
    lines = [display(name), title(e)]
    if e.get("renamed_from") is not None:
        lines.append(shown(f"was {display(e['renamed_from'])}"))
    roots = [(k, c) for k, c in e.get("changes", {}).items() if not c.get("propagated")]
    lines += [shown(describe(k, c)) for k, c in roots[:2]]
    if len(roots) > 2:
        lines.append(f"… {len(roots) - 2} more")
    return "<br/>".join(_escape(line[:80]) for line in lines if line)


def _escape(text: str) -> str:
    """Mermaid label text: its entity codes (`#quot;`) for what would end or break a label."""
    return (
        text.replace("#", "#35;")
        .replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("`", "'")
    )
