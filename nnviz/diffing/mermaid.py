"""The Mermaid flowchart of a diff's changed region (`mermaid`, `sketch` with its edge count),
from the JSON document alone, for the markdown rendering (`nnviz.diffing.changelog.markdown`) and
the PR comment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nnviz.diffing import document
from nnviz.diffing.blocks import chart
from nnviz.diffing.entries import Index, field_change, title
from nnviz.diffing.palette import PALETTE
from nnviz.diffing.wording import describe, display

Doc = Mapping[str, Any]


@dataclass(frozen=True)
class Sketch:
    """A Mermaid flowchart and how many edges it draws (GitHub draws at most 500)."""

    text: str
    edges: int


def mermaid(doc: Doc, *, max_nodes: int = 100, context: int = 1) -> str:
    """A Mermaid flowchart of the changed region plus `context` hops of unchanged neighbours.

    Added/removed modules are one box each; at most `max_nodes` boxes (context goes first, then
    the tail of the changes, noted in a last box). Empty for an identical diff.
    """
    return sketch(doc, max_nodes=max_nodes, context=context).text


def sketch(doc: Doc, *, max_nodes: int = 100, context: int = 1) -> Sketch:
    """`mermaid`'s chart with its edge count."""
    return sketch_of(document.read(doc), max_nodes=max_nodes, context=context)


def sketch_of(doc: Doc, *, max_nodes: int = 100, context: int = 1) -> Sketch:
    """`sketch` of a document already read (`document.read`)."""
    if doc.get("identical"):
        return Sketch("", 0)
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
        out.append(f'  {ids[name]}["{_box(e, runs.shown(name), runs.rename)}"]:::{e["status"]}')
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
    return Sketch("\n".join(out) + "\n", len(done))


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


def _box(e: Mapping[str, Any], name: str, rename: Callable[[str], str] = str) -> str:
    """A box's lines; `rename` shows the names in them (a block standing for several)."""
    lines = [display(name), title(e) if e.get("kind") else ""]
    if e.get("renamed_from") is not None:
        lines.append(f"was {display(rename(e['renamed_from']))}")
    roots = [(k, c) for k, c in e.get("changes", {}).items() if not c.get("propagated")]
    lines += [describe(field_change(k, c), rename) for k, c in roots[:2]]
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
