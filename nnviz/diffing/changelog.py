"""Human renderings of a diff document (`GraphDiff.to_dict()`, see docs/diff-format.md).

Everything here works from the JSON document alone, so tools that only hold JSON (the pytest
plugin's report.json, `nnviz report`) print exactly what `nnviz diff` prints:

- `changelog(doc)`: one line per change, grouped by module in graph order. `~` changed, `+`
  added, `-` removed, `→` renamed or moved; the contents of an added or removed module and the
  members of a renamed one are folded into its line; changes that only follow another one are
  listed under it with `↳`; runs of layers renumbered alike are one line; then one line of
  totals. An identical diff is one line. `coloured(text)` adds ANSI colours for a terminal.
- `markdown(doc)`: a summary table, the changelog and a Mermaid flowchart of the changed region,
  folded to stay well under GitHub's 65,536-character comment limit.
- `mermaid(doc)`: that flowchart alone (at most `max_nodes` nodes).

Each refuses (`NNVizError`) a document of another format or an unknown version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nnviz.diffing import document
from nnviz.diffing.document import fold_root
from nnviz.diffing.folding import (
    INSIDE,
    fold_shapes,
    inside_summary,
    is_shape_line,
    swap_owners,
)
from nnviz.diffing.grouping import group_items, group_lines, join_places
from nnviz.diffing.palette import PALETTE
from nnviz.graph import parent_path
from nnviz.values import format_value

Doc = Mapping[str, Any]
_FOLLOWER = "    ↳ "
_SYMBOL = {"changed": "~", "added": "+", "removed": "-", "renamed": "→"}
_MAX_FOLLOWERS = 5
_MAX_MARKDOWN_LINES = 400
_MAX_MARKDOWN_CHARS = 30_000
_MAX_MERMAID_CHARS = 25_000  # with the changelog's cap, a PR comment stays under 65,536


def human(n: int) -> str:
    """`2400000` -> `2.4M`, `9500` -> `9.5K`, `512` -> `512`."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def _display(name: str) -> str:
    return name if name else "(root)"


def _title(entry: Mapping[str, Any]) -> str:
    op = str(entry.get("op") or "")
    return op.rsplit(".", 1)[-1] if entry["kind"] == "module" else op


def _label(key: str) -> str:
    field, _, rest = key.partition(".")
    if field in ("hparams", "parameters"):
        return rest
    if field == "inputs":
        return f"input {rest}"
    if field == "args":
        return f"arg {rest}"
    return "output" if key == "spec" else key


def _value(key: str, change: Mapping[str, Any], side: str) -> str:
    if side not in change:
        return "(none)"
    value = change[side]
    if key == "class":
        return str(value).rsplit(".", 1)[-1]
    if key.startswith("inputs.") or key in ("op", "kind"):
        return str(value)
    return format_value(value)


def describe(key: str, change: Mapping[str, Any]) -> str:
    """`kernel_size (3, 3) → (5, 5)`; a class by its short name unless both are the same
    (`class torch.nn.LayerNorm → timm.layers.norm.LayerNorm (a subclass; same settings)`)."""
    old, new = _value(key, change, "old"), _value(key, change, "new")
    if key == "class" and old == new:
        old, new = str(change.get("old")), str(change.get("new"))
    note = f" ({change['note']})" if change.get("note") else ""
    return f"{_label(key)} {old} → {new}{note}"


class _Index:
    """Lookups over a document's entries: by name, folding, node counts."""

    def __init__(self, doc: Doc) -> None:
        self.entries: list[Mapping[str, Any]] = list(doc.get("nodes", ()))
        self.by_name = {e["name"]: e for e in self.entries}
        self.shape: dict[str, tuple[str, str | None, str | None]] = {
            e["name"]: (e["status"], e["scope"] if e["name"] else None, e.get("path"))
            for e in self.entries
        }
        self.counts: dict[str, int] = {}
        for e in self.entries:
            if not e.get("flow"):
                continue
            home, hops = (e["path"] if e["kind"] == "module" else e["scope"]), 0
            while home in self.by_name and hops < 256:
                self.counts[home] = self.counts.get(home, 0) + 1
                if home == "":
                    break
                home, hops = self.by_name[home]["scope"], hops + 1

    def root(self, name: str) -> str:
        return fold_root(name, self.shape)

    def folded(self, e: Mapping[str, Any]) -> bool:
        """Inside an added/removed module, or renamed only because an ancestor was."""
        if e["status"] in ("added", "removed"):
            return bool(self.root(e["name"]) != e["name"])
        return bool(e["status"] == "renamed" and self.implied_rename(e))

    def implied_rename(self, e: Mapping[str, Any]) -> bool:
        name, old = str(e["name"]), e.get("renamed_from")
        if old is None:
            return False
        up = e.get("path") if e.get("path") not in (None, name) else e["scope"]
        for _ in range(256):
            a = self.by_name.get(up)
            if a is None or up == name:
                return False
            if a.get("renamed_from") is not None:
                base, old_base = str(a["name"]), str(a["renamed_from"])
                return bool(
                    name.startswith(base)
                    and old.startswith(old_base)
                    and name[len(base) :] == old[len(old_base) :]
                )
            if up == "":
                return False
            name_up = a.get("path") if a.get("path") not in (None, up) else a["scope"]
            up = name_up
        return False


def _rename_line(e: Mapping[str, Any]) -> str:
    old, new = e["renamed_from"], e["name"]
    same_parent = parent_path(old) == parent_path(new)
    positional = old.rsplit(".", 1)[-1].isdigit() and new.rsplit(".", 1)[-1].isdigit()
    verb = "renamed to" if same_parent and not positional else "moved to"
    return f"→ {_display(old)} {verb} {_display(new)}"


def _groups(doc: Doc, verbose: bool = False) -> tuple[list[str], dict[str, int], int]:
    """The changelog's entry lines, the count of printed items per status, propagated count.
    Unless `verbose`, consequences fold under their cause (`nnviz.diffing.folding`)."""
    index = _Index(doc)
    hide = not doc.get("strict")  # information is listed apart unless it counts as drift

    def shown(e: Mapping[str, Any]) -> bool:
        return not (e["status"] == "unchanged" or (hide and e.get("info")) or index.folded(e))

    owners = {} if verbose else swap_owners(index.entries, shown)
    followers: dict[str, list[str]] = {}
    for e in index.entries:
        for key, change in e.get("changes", {}).items():
            if change.get("propagated") and not (hide and change.get("info")):
                cause = str(change.get("cause", ""))
                owner = owners.get(cause)
                if owner is not None and owners.get(e["name"]) == owner:
                    continue  # a consequence inside a swapped module: its summary says it
                line = f"{_FOLLOWER}{_display(e['name'])}  {describe(key, change)}"
                followers.setdefault(owner or cause, []).append(line)
    inner: dict[str, list[Mapping[str, Any]]] = {}
    named: list[tuple[str, list[str]]] = []
    counts = dict.fromkeys(_SYMBOL, 0)
    for e in index.entries:
        status, name = e["status"], e["name"]
        if not shown(e):
            continue
        roots = {
            k: c
            for k, c in e.get("changes", {}).items()
            if not c.get("propagated") and not (hide and c.get("info"))
        }
        own = _own_lines(e, roots, index, verbose)
        owner = owners.get(name)
        if own and owner is not None and owner != name:
            inner.setdefault(owner, []).append(e)  # counted in its owner's summary
            continue
        counts["renamed"] += sum(1 for line in own if line.startswith("→"))
        if any(line.startswith(("~", "+", "-")) for line in own):
            counts[status if status in ("added", "removed") else "changed"] += 1
        if own:
            named.append((name, [*own, *followers.pop(name, [])]))
    items = []
    for name, item in named:
        summary = inside_summary(name, inner.get(name, []), _title)
        if summary:
            items.append([item[0], summary, *item[1:]])
        elif verbose:  # each change its own item, so that each groups across places
            heads = [line for line in item if not line.startswith(_FOLLOWER)]
            items += [[line] for line in heads[:-1]]
            items.append([heads[-1], *item[len(heads) :]])
        else:
            items.append(item)
    for cause in sorted(followers, key=lambda c: c not in index.by_name):
        items.append(followers[cause])
    lines: list[str] = []
    for item in join_places(group_items(items)):
        lines.extend(line for line in item if not line.startswith(_FOLLOWER))
        lines.extend(_followers([line for line in item if line.startswith(_FOLLOWER)], verbose))
    lines = _fold_shifts(lines)
    propagated = sum(1 for e in index.entries if _only_propagated(e))
    return lines, counts, propagated


def _own_lines(
    e: Mapping[str, Any], roots: Mapping[str, Any], index: _Index, verbose: bool
) -> list[str]:
    """An entry's own lines: its addition or removal; its rename; its changes, one line per
    entry (`view  arg 4 32 → 16; output [1, 16, 2, 32] → [1, 16, 4, 16]`) or, `verbose`, one
    per change. A module's parameter shapes and output follow its hyperparameters: unless
    `verbose`, a hyperparameter change stands for them."""
    status, name = e["status"], e["name"]
    head = f"{_display(name)}  {_title(e)}"
    if status in ("added", "removed"):
        extra = ""
        if e["kind"] == "module" and name in index.counts:
            n = index.counts[name]
            extra = f" ({n} node{'s' if n != 1 else ''}, {human(e.get('params') or 0)} params)"
        return [f"{_SYMBOL[status]} {head}{extra}"]
    own = []
    renamed = (
        e.get("renamed_from") is not None
        and "op" not in roots
        and e["kind"] not in ("function", "method")  # a call's id is a counter
    )
    if renamed and not index.implied_rename(e):
        own.append(_rename_line(e))
    if verbose:
        return own + [f"~ {head}  {describe(k, c)}" for k, c in roots.items()]
    if any(k.startswith("hparams.") for k in roots) and "class" not in roots:
        roots = {k: c for k, c in roots.items() if not k.startswith("parameters.") and k != "spec"}
    if roots:
        ordered = sorted(roots.items(), key=lambda kc: _RANK.get(kc[0].partition(".")[0], 5))
        own.append(f"~ {head}  " + "; ".join(describe(k, c) for k, c in ordered))
    return own


# one entry's changes in the order a reader follows them: what it is, its settings, then what
# it reads and what it gives
_RANK = {"class": 0, "op": 1, "kind": 2, "hparams": 3, "parameters": 4, "args": 6, "inputs": 7}
_RANK |= {"called": 8, "spec": 9}


def _followers(lines: list[str], verbose: bool) -> list[str]:
    """An item's `↳` lines: the `inside:` summary, then grouped rewiring and other followers,
    then shape followers (folded to one counting line when they take more than one)."""
    if verbose:
        return group_lines(lines)
    summary = [line for line in lines if line.startswith(INSIDE)]
    rest = [line for line in lines if line not in summary]
    shapes = [line for line in rest if is_shape_line(line)]
    others = [line for line in rest if not is_shape_line(line)]
    return [*summary, *_fold(group_lines(others)), *fold_shapes(group_lines(shapes))]


_SHIFT = re.compile(
    r"^→ (?:(?P<old_parent>.+)\.)?(?P<old>\d+) moved to (?:(?P<new_parent>.+)\.)?(?P<new>\d+)$"
)


def _fold_shifts(lines: list[str]) -> list[str]:
    """Runs of numbered layers that all moved alike (renumbered by an insertion or deletion, or
    all wrapped into a new container) become one line."""
    out: list[str] = []
    run: list[re.Match[str]] = []

    def at(parent: str | None, index: str) -> str:
        return f"{parent}.{index}" if parent else index

    def flush() -> None:
        if len(run) >= 3:
            first, last = run[0], run[-1]
            old, new = first["old_parent"], first["new_parent"]
            out.append(
                f"→ {at(old, first['old'])} … {at(old, last['old'])} moved to "
                f"{at(new, first['new'])} … {at(new, last['new'])} ({len(run)} layers)"
            )
        else:
            out.extend(match.string for match in run)
        run.clear()

    def follows(found: re.Match[str], prev: re.Match[str]) -> bool:
        return (
            (found["old_parent"], found["new_parent"]) == (prev["old_parent"], prev["new_parent"])
            and int(found["new"]) - int(found["old"]) == int(prev["new"]) - int(prev["old"])
            and int(found["old"]) == int(prev["old"]) + 1
        )

    for line in lines:
        found = _SHIFT.match(line)
        if not found or (run and not follows(found, run[-1])):
            flush()
        if found:
            run.append(found)
        else:
            out.append(line)
    flush()
    return out


_INFO_NAMES = {
    "attribute": "attribute-only change",
    "plumbing": "scalar-plumbing change",
    "input": "optional-input change",
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
                    shown.append(f"~ {_display(e['name'])}  {_title(e)}  {describe(key, change)}")
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


def _only_propagated(e: Mapping[str, Any]) -> bool:
    changes = e.get("changes") or {}
    return bool(changes) and all(c.get("propagated") for c in changes.values())


def _fold(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_FOLLOWERS + 1:
        return lines
    return [*lines[:_MAX_FOLLOWERS], f"    ↳ … and {len(lines) - _MAX_FOLLOWERS} more"]


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
    _, counts, propagated = _groups(doc)
    return _counts(counts, propagated)


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
    lines, counts, propagated = _groups(doc, verbose)
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
    lines, counts, propagated = _groups(doc)
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
    index = _Index(doc)
    group = {
        e["name"]: index.root(e["name"]) if e["status"] in ("added", "removed") else e["name"]
        for e in index.entries
    }
    boxes, hidden = _chart_boxes(doc, index, group, max_nodes, context)
    ids = {name: f"n{i}" for i, name in enumerate(boxes)}
    out = ["flowchart TD"]
    for name in boxes:
        e = index.by_name.get(name, {"status": "unchanged", "kind": "", "op": ""})
        out.append(f'  {ids[name]}["{_box(e, name)}"]:::{e["status"]}')
    if hidden:
        out.append(f'  more["… {hidden} more changes"]:::changed')
    done: set[tuple[str, str]] = set()
    for edge in doc.get("edges", ()):
        s, t = group.get(edge["source"]), group.get(edge["target"])
        if s in ids and t in ids and s != t and (s, t) not in done:
            done.add((s, t))
            arrow = {"added": "==>", "removed": "-.->"}.get(edge["status"], "-->")
            out.append(f"  {ids[s]} {arrow} {ids[t]}")
    out += [f"  classDef {status} {_class_style(status)}" for status in PALETTE]
    return "\n".join(out) + "\n"


def _chart_boxes(
    doc: Doc, index: _Index, group: dict[str, str], max_nodes: int, context: int
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


def _box(e: Mapping[str, Any], name: str) -> str:
    lines = [_display(name), _title(e)]
    if e.get("renamed_from") is not None:
        lines.append(f"was {_display(e['renamed_from'])}")
    roots = [(k, c) for k, c in e.get("changes", {}).items() if not c.get("propagated")]
    lines += [describe(k, c) for k, c in roots[:2]]
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
