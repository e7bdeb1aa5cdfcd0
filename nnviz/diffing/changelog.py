"""The rendering module of a diff's changelog: text, markdown, the HTML page's list and the JSON
`changelog` key, all from the same records (`nnviz.diffing.entries.changelog_of(doc)`, see
`nnviz.diffing.records`), each fact worded by `nnviz.diffing.wording`; the markdown's Mermaid
chart is drawn by `nnviz.diffing.mermaid`.

Everything here works from the JSON document alone (`GraphDiff.to_dict()`, docs/diff-format.md),
so tools that only hold JSON (the pytest plugin's report.json, `nnviz report`) print exactly what
`nnviz diff` prints:

- `changelog(doc)`: each real change once, its consequences folded under it (`verbose=True`
  lists every change), then one line of totals and the information that is not drift. An
  identical diff is one line. `colour=True` adds ANSI colours for a terminal.
- `markdown(doc)`: a summary table, the changelog and a Mermaid flowchart of the changed region,
  folded to stay well under GitHub's 65,536-character comment limit.
- `item_lines(item)`: one record's lines, for readers that place them (annotations).

Each refuses (`NNVizError`) a document of another format or an unknown version. No function
here reads text back: every line is made from records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnviz.diffing import document, entries
from nnviz.diffing.mermaid import sketch_of
from nnviz.diffing.records import (
    ABSENT,
    Changelog,
    Entry,
    FieldChange,
    Folded,
    Inside,
    Item,
    Orphans,
    Places,
    Shift,
)
from nnviz.diffing.wording import counted, describe, inside_text, note_of, size_text

Doc = Mapping[str, Any]
_MAX_MARKDOWN_LINES = 400
_MAX_MARKDOWN_CHARS = 30_000
_MAX_MERMAID_CHARS = 25_000  # with the changelog's cap, a PR comment stays under 65,536
_MAX_INFO_LINES = 10
_FOLLOWER = "    ↳ "
ORPHANS = "(downstream of no entry above: a reordering, or information)"
"""The heading of the consequences whose cause has no line of its own (counted `downstream`)."""
SYMBOL = {"changed": "~", "added": "+", "removed": "-", "renamed": "→", "moved": "→", "ops": "~"}
_INFO_NAMES = {
    "attribute": "attribute-only change",
    "plumbing": "scalar-plumbing change",
    "spelling": "same-op spelling change",
    "input": "optional-input change",
    "format": "older-format change",
}
_FOLDED = {"output": "output shapes follow", "input": "inputs rewired"}

Line = tuple[str, str]
"""A line and its colour class: `+`, `-`, `~`, `→`, ` ` (folded, dim) or `` (none)."""


# --- one change, one entry ----------------------------------------------------------------------


def _times(entry: Entry) -> str:
    return f" ×{entry.count}" if entry.count > 1 and entry.kind != "follows" else ""


def entry_lines(entry: Entry) -> list[Line]:
    """An entry's lines: its rename, its change line, what changed inside, its followers."""
    out: list[Line] = []
    name, head = str(entry.places), f"{entry.places}  {entry.title}"
    if entry.was is not None:
        verb = "moved to" if entry.moved else "renamed to"
        out.append((f"→ {entry.was} {verb} {name}", "→"))
    if entry.kind in ("added", "removed"):
        symbol = SYMBOL[entry.kind]
        out.append((f"{symbol} {head}{size_text(entry.size)}{_times(entry)}{_cost(entry)}", symbol))
    elif entry.kind == "ops":
        ops = inside_text(entry.inside or Inside(), ops_line=True)
        out.append((f"~ {head}  ops {ops}{_times(entry)}", "~"))
    elif entry.kind == "follows":
        out.append((f"{_FOLLOWER}{name}  {describe(entry.changes[0])}", " "))
    elif entry.changes:
        changes = "; ".join(describe(c) for c in entry.changes)
        out.append((f"~ {head}  {changes}{_times(entry)}{_cost(entry)}", "~"))
    if entry.inside and entry.kind != "ops":
        out.append((f"{_FOLLOWER}inside: {inside_text(entry.inside)}", " "))
    for follower in entry.followers:
        out += entry_lines(follower) if isinstance(follower, Entry) else [_folded(follower)]
    return out


def _cost(entry: Entry) -> str:
    moved = cost_text(entry)
    return f" · {moved}" if moved else ""


def _costed(entry: Entry) -> bool:
    """Whether the entry's line carries its cost (an added, removed or changed module)."""
    return entry.kind in ("added", "removed") or (
        entry.kind not in ("ops", "follows") and bool(entry.changes)
    )


def cost_text(entry: Entry) -> str:
    """What an entry's own cost did (`nnviz.diffing.cost.EntryCost.line`): in each of its
    places, said so when it has several (`×4 · +116 MMACs each`; grouped places always share
    their figures); the JSON item carries each place's and all places' figures."""
    moved = entry.cost.line() if entry.cost is not None else ""
    return f"{moved} each" if moved and entry.count > 1 else moved


def change_line(entry: Entry) -> str | None:
    """The line that says an entry's own change (`~`, `+`, `-`); None for a rename alone or a
    consequence."""
    if entry.kind in ("renamed", "moved", "follows"):
        return None
    return entry_lines(entry)[1 if entry.was is not None else 0][0]


def _folded(folded: Folded) -> Line:
    if folded.what == "more":
        return f"{_FOLLOWER}… and {folded.nodes} more", " "
    return f"{_FOLLOWER}{_FOLDED[folded.what]} in {folded.nodes} nodes ({counted(folded.ops)})", " "


def _shift(shift: Shift) -> Line:
    def at(parent: str, index: int) -> str:
        return f"{parent}.{index}" if parent else str(index)

    old, new = shift.old_parent, shift.new_parent
    return (
        f"→ {at(old, shift.old_first)} … {at(old, shift.old_last)} moved to "
        f"{at(new, shift.new_first)} … {at(new, shift.new_last)} ({shift.layers} layers)",
        "→",
    )


def item_lines(item: Item) -> list[str]:
    """One item's lines as text."""
    return [text for text, _ in _item_lines(item)]


def _item_lines(item: Item) -> list[Line]:
    if isinstance(item, Shift):
        return [_shift(item)]
    if isinstance(item, Orphans):  # under a heading of their own, not the entry above them
        return [
            (ORPHANS, " "),
            *(
                line
                for f in item.followers
                for line in (entry_lines(f) if isinstance(f, Entry) else [_folded(f)])
            ),
        ]
    return entry_lines(item)


@dataclass(frozen=True)
class Listed:
    """One item of a changelog as a list shows it (the HTML page): a status, a name, its
    details one per line, the first place it names (to select), and why it is not drift."""

    status: str
    name: str
    lines: tuple[str, ...]
    place: str
    info: str | None = None


_STATUS = {"ops": "changed", "moved": "renamed", "follows": "changed"}


def listing(log: Changelog) -> list[Listed]:
    """Every item of the changelog, then its attribute-only entries (information): the same
    entries, counted the same, as the text."""
    out = [_listed(item) for item in log.items]
    out += [_listed(e, "attribute") for e in log.info.attributes]
    return out


def _listed(item: Item, info: str | None = None) -> Listed:
    if isinstance(item, Shift):
        text, _ = _shift(item)
        first = f"{item.new_parent}.{item.new_first}" if item.new_parent else str(item.new_first)
        return Listed("renamed", text.removeprefix("→ "), (), first)
    if isinstance(item, Orphans):
        said = tuple(text.strip() for text, _ in _item_lines(item)[1:])
        place = next((f.places.names()[0] for f in item.followers if isinstance(f, Entry)), "")
        return Listed("downstream", ORPHANS, said, place)
    details = [f"was {item.was}"] if item.was is not None else []
    details += [describe(c) for c in item.changes] if item.kind != "follows" else []
    if item.kind in ("added", "removed") and item.size is not None:
        details.append(size_text(item.size).strip(" ()"))
    if item.inside:
        details.append(("ops " if item.kind == "ops" else "inside: ") + inside_text(item.inside))
    if _costed(item) and cost_text(item):
        details.append(f"cost {cost_text(item)}")
    for follower in item.followers:
        lines = entry_lines(follower) if isinstance(follower, Entry) else [_folded(follower)]
        details += [text.strip() for text, _ in lines]
    name = f"{item.places}{_times(item)}"
    return Listed(
        _STATUS.get(item.kind, item.kind), name, tuple(details), item.places.names()[0], info
    )


def to_json(log: Changelog) -> dict[str, Any]:
    """The records as JSON, for the document's `changelog` key (docs/diff-format.md): the
    totals, then each item with its places (`pattern` as shown, `places` every one), kind,
    title, field changes (old and new values, absent sides left out), size, inside, rename,
    count and followers."""
    totals = dict(log.counts) | {"downstream": log.propagated}
    return {
        "totals": totals,
        "items": [_json_item(item) for item in log.items],
        "info": {
            "counts": dict(log.info.counts),
            "attributes": [_json_item(e) for e in log.info.attributes],
        },
    }


def _json_item(item: Item | Folded) -> dict[str, Any]:
    if isinstance(item, Shift):
        return {"kind": "shift", **{k: getattr(item, k) for k in _SHIFT_FIELDS}}
    if isinstance(item, Orphans):
        return {"kind": "orphans", "followers": [_json_item(f) for f in item.followers]}
    if isinstance(item, Folded):
        return {"kind": "folded", "what": item.what, "nodes": item.nodes, "ops": dict(item.ops)}
    out: dict[str, Any] = {"kind": item.kind, **_json_places(item.places), "title": item.title}
    out["changes"] = [_json_change(c) for c in item.changes]
    if item.size is not None:
        out["size"] = {"nodes": list(item.size.nodes), "params": list(item.size.params)}
    if item.inside:
        out["inside"] = inside_text(item.inside)
    if item.was is not None:
        out["was"] = _json_places(item.was)["pattern"]
    out["count"] = item.count
    if item.cost is not None and _costed(item):
        out["cost"] = {"each": item.cost.to_dict(), "all": item.cost.times(item.count).to_dict()}
    out["followers"] = [_json_item(f) for f in item.followers]
    return out


_SHIFT_FIELDS = ("old_parent", "new_parent", "old_first", "old_last", "new_first", "new_last")


def _json_places(places: Places) -> dict[str, Any]:
    return {"pattern": str(places), "places": places.names()}


def _json_change(change: FieldChange) -> dict[str, Any]:
    key = f"{change.field}.{change.slot}" if change.slot is not None else change.key
    out: dict[str, Any] = {"field": key}
    for side, value in (("old", change.old), ("new", change.new)):
        if value is not ABSENT:
            out[side] = str(value) if isinstance(value, Places) else value
    note = note_of(change)
    if note:
        out["note"] = note
    return out


# --- the changelog ------------------------------------------------------------------------------


def _counts(log: Changelog) -> str:
    parts = [f"{n} {status}" for status, n in log.counts if n]
    if log.propagated:
        parts.append(f"{log.propagated} downstream")
    if log.export is not None and log.export.drifted:
        parts.append("exportability changed")
    return ", ".join(parts)


def _params(log: Changelog) -> str:
    old, new = log.params
    return f"params {old:,} → {new:,} ({new - old:+,})"


def _identical(log: Changelog) -> str:
    line = f"identical: no architecture changes ({log.nodes} nodes, {log.params[1]:,} params)"
    if log.cost is not None and log.cost.moved:  # an input size: the same network, other cost
        line += f" · {log.cost.line()}"
    return line


def _totals(log: Changelog) -> str:
    if log.identical:
        return _identical(log)
    compute = log.cost.line() if log.cost is not None else ""
    return f"{_counts(log)} · {_params(log)}" + (f" · {compute}" if compute else "")


def _cost_lines(log: Changelog) -> list[Line]:
    """The one line saying a side's cost is unknown, and how to get it."""
    unknown = log.cost.unknown_line() if log.cost is not None else ""
    return [(unknown, "")] if unknown else []


def _info_lines(log: Changelog) -> list[Line]:
    """Differences that are not drift, apart: a count per kind, then the attribute-only
    changes themselves (scalar plumbing is only counted)."""
    if not log.info.counts:
        return []
    parts = [
        f"{n} {_INFO_NAMES.get(kind, kind)}{'s' if n != 1 else ''}" for kind, n in log.info.counts
    ]
    shown = ["  " + entry_lines(e)[0][0] for e in log.info.attributes]
    if len(shown) > _MAX_INFO_LINES:
        shown = [*shown[: _MAX_INFO_LINES - 1], f"  … and {len(shown) - _MAX_INFO_LINES + 1} more"]
    head = "not drift (counted with --strict): " + ", ".join(parts)
    return [(head, ""), *((line, " ") for line in shown)]


def _export_lines(log: Changelog) -> list[Line]:
    """Exportability's line, drift or not (first among the lines of information)."""
    return [] if log.export is None else [(log.export.line(), "")]


def _checkpoint_lines(log: Changelog) -> list[Line]:
    """The checkpoint verdict under the totals (every key with `verbose`)."""
    if log.checkpoint is None:
        return []
    shown: list[str] = log.checkpoint.shown(log.identical, log.verbose)
    return [(text, "" if i == 0 else " ") for i, text in enumerate(shown)]


def _lines(log: Changelog) -> list[Line]:
    body = [line for item in log.items for line in _item_lines(item)]
    return [
        *body,
        (_totals(log), ""),
        *_cost_lines(log),
        *_checkpoint_lines(log),
        *_export_lines(log),
        *_info_lines(log),
    ]


@dataclass(frozen=True)
class Parts:
    """The changelog's text in its parts, for a reader that lays them out itself (a failing
    test's message): the entries' lines, the totals line, and the lines under it."""

    body: tuple[str, ...]
    totals: str
    cost: tuple[str, ...]
    checkpoint: tuple[str, ...]
    """The verdict's line first, then (verbose) its keys."""
    export: tuple[str, ...]
    info: tuple[str, ...]
    """The `not drift` line first, then the attribute-only entries."""


def parts(doc: Doc, verbose: bool = False) -> Parts:
    """`changelog(doc, verbose)` in its parts."""
    log = changelog_of(doc, verbose)

    def texts(lines: list[Line]) -> tuple[str, ...]:
        return tuple(text for text, _ in lines)

    body = texts([line for item in log.items for line in _item_lines(item)])
    checkpoint, export = texts(_checkpoint_lines(log)), texts(_export_lines(log))
    return Parts(
        body, _totals(log), texts(_cost_lines(log)), checkpoint, export, texts(_info_lines(log))
    )


def headline(doc: Doc) -> str:
    """The diff in a few words, as the changelog's totals count it: `1 changed, 3 downstream`,
    or `identical: no architecture changes`."""
    log = changelog_of(doc)
    return "identical: no architecture changes" if log.identical else _counts(log)


def totals(doc: Doc) -> str:
    """The changelog's totals line (`1 changed · params 11,689,512 → 11,181,642 (-507,870)`), or
    its `identical: ...` line; information lines may follow it in the changelog."""
    return _totals(changelog_of(doc))


_ANSI = {"+": "32", "-": "31", "~": "33", "→": "34", " ": "2"}


def changelog_of(doc: Doc, verbose: bool = False) -> Changelog:
    """The records of a diff document (read: format, version and entries checked)."""
    return entries.changelog_of(document.read(doc), verbose)


def changelog(doc: Doc, verbose: bool = False, colour: bool = False) -> str:
    """The review changelog of a diff document, ending with a newline: each real change once,
    its consequences folded under it; `verbose` lists every change on its own line; `colour`
    adds ANSI colours for a terminal (added green, removed red, changed yellow, renamed blue,
    folded lines dim)."""
    return text_of(changelog_of(doc, verbose), colour)


def text_of(log: Changelog, colour: bool = False) -> str:
    """The text `changelog` renders, of records already made (`GraphDiff.to_text`)."""
    lines = _lines(log)
    if colour:
        return "".join(
            f"\x1b[{_ANSI[kind]}m{text}\x1b[0m\n" if kind else f"{text}\n" for text, kind in lines
        )
    return "".join(f"{text}\n" for text, _ in lines)


def markdown(doc: Doc) -> str:
    """A PR-comment / job-summary section: title, summary table, changelog, Mermaid flowchart."""
    read = document.read(doc)
    return markdown_of(read, entries.changelog_of(read))


def markdown_of(doc: Doc, log: Changelog) -> str:
    """`markdown` of a document already read (`document.read`) and its changelog's records."""
    old, new = log.names
    heading = f"### nnviz diff: `{old}` → `{new}`"
    after = [*_checkpoint_lines(log), *_export_lines(log), *_info_lines(log)]
    info = [text.replace("```", "'''") for text, _ in after]
    if log.identical:
        extra = "\n\n```diff\n" + "\n".join(info) + "\n```" if info else ""
        return f"{heading}\n\n{_identical(log).capitalize()}.{extra}\n"
    table = ["| | |", "| --- | ---: |"]
    table += [f"| {status} | {n} |" for status, n in log.counts]
    table.append(f"| downstream | {log.propagated} |")
    p_old, p_new = log.params
    table.append(f"| parameters | {p_old:,} → {p_new:,} ({p_new - p_old:+,}) |")
    if log.cost is not None and log.cost.known:
        table += [f"| {row} |" for row in log.cost.rows()]
    lines = [text for item in log.items for text in item_lines(item)]
    body, size = [], 0
    for i, line in enumerate(lines):
        size += len(line) + 1
        if i >= _MAX_MARKDOWN_LINES or size > _MAX_MARKDOWN_CHARS:
            body.append(f"… {len(lines) - i} more lines (see the JSON diff)")
            break
        body.append(line.replace("```", "'''"))
    body.append(_totals(log))
    body.extend(text for text, _ in _cost_lines(log))
    body.extend(info)
    parts = [heading, "\n".join(table), "```diff\n" + "\n".join(body) + "\n```"]
    picture, boxes = sketch_of(doc).text, 100
    while len(picture) > _MAX_MERMAID_CHARS and boxes > 5:
        boxes //= 2
        picture = sketch_of(doc, max_nodes=boxes).text
    if picture:
        parts.append("```mermaid\n" + picture + "```")
    return "\n\n".join(parts) + "\n"


# --- the Mermaid chart --------------------------------------------------------------------------
