"""The changelog's lines from a diff document (`GraphDiff.to_dict()`): what each entry says and
what folds under it.

One line per changed entry (its fields joined by `;`), grouped by module in graph order: `~`
changed, `+` added, `-` removed, `→` renamed or moved. The contents of an added or removed module
and the members of a renamed one fold into its line; consequences fold under their cause
(`nnviz.diffing.folding`); identical changes join across places (`nnviz.diffing.grouping`); runs
of layers renumbered alike are one line. `verbose` lists every change on its own line instead.
Pure functions of the JSON document, so every reader of it prints the same lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nnviz.diffing.document import fold_root
from nnviz.diffing.folding import (
    INSIDE,
    consequence,
    fold_consequences,
    inside_summary,
    restates,
    rewritten_scopes,
    swap_owners,
)
from nnviz.diffing.grouping import group_items, group_lines, join_places
from nnviz.graph import parent_path
from nnviz.values import format_value

Doc = Mapping[str, Any]
_FOLLOWER = "    ↳ "
SYMBOL = {"changed": "~", "added": "+", "removed": "-", "renamed": "→"}
_MAX_FOLLOWERS = 5


def human(n: int) -> str:
    """`2400000` -> `2.4M`, `9500` -> `9.5K`, `512` -> `512`."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def display(name: str) -> str:
    return name if name else "(root)"


def title(entry: Mapping[str, Any]) -> str:
    op = str(entry.get("op") or "")
    return op.rsplit(".", 1)[-1] if entry["kind"] == "module" else op


def _label(key: str) -> str:
    field, _, rest = key.partition(".")
    if field in ("hparams", "parameters"):
        return rest
    if field == "inputs":  # `input 0` (a position), `input other`, `input input` (the slot)
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


class Index:
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
    return f"→ {display(old)} {verb} {display(new)}"


def groups(doc: Doc, verbose: bool = False) -> tuple[list[str], dict[str, int], int]:
    """The changelog's entry lines, the count of printed items per status, propagated count.
    Unless `verbose`, consequences fold under their cause (`nnviz.diffing.folding`)."""
    index = Index(doc)
    hide = not doc.get("strict")  # information is listed apart unless it counts as drift

    def shown(e: Mapping[str, Any]) -> bool:
        return not (e["status"] == "unchanged" or (hide and e.get("info")) or index.folded(e))

    owners = {} if verbose else swap_owners(index.entries, shown)
    rewritten = {} if verbose else rewritten_scopes(index.entries, shown, owners)
    owners |= rewritten
    scopes = set(rewritten.values())
    followers: dict[str, list[str]] = {}
    for e in index.entries:
        for key, change in e.get("changes", {}).items():
            if change.get("propagated") and not (hide and change.get("info")):
                cause = str(change.get("cause", ""))
                owner = owners.get(cause)
                if _caller(e, scopes) or (owner is not None and owner == owners.get(e["name"])):
                    continue  # a consequence inside a module whose line sums up what changed
                ends = {owners.get(str(change.get(side))) for side in ("old", "new")}
                if key.startswith("inputs.") and owner is not None and ends == {owner}:
                    continue  # still reads the swapped module's output, made by another op
                if not verbose and key == "spec" and restates(change, index.by_name.get(cause)):
                    continue  # the sizes its cause's line already changes: the totals count it
                line = f"{_FOLLOWER}{display(e['name'])}  {describe(key, change)}"
                followers.setdefault(owner or cause, []).append(line)
    inner: dict[str, list[Mapping[str, Any]]] = {}
    named: list[tuple[str, list[str]]] = []
    counts = dict.fromkeys(SYMBOL, 0)
    for e in index.entries:
        status, name = e["status"], e["name"]
        if name in scopes and not shown(e):
            named.append((name, []))  # its ops' line, once they are known
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
        summary = inside_summary(name, inner.get(name, []), title)
        if not item:  # a module that only rewrote its own ops: they are its line
            e = index.by_name[name]
            ops = summary.replace(" ops (", " (").replace(" op (", " (")
            counts["changed"] += 1
            items.append([f"~ {display(name)}  {title(e)}  ops {ops}", *followers.pop(name, [])])
        elif summary:
            items.append([item[0], INSIDE + summary, *item[1:]])
        elif verbose:  # each change its own item, so that each groups across places
            heads = [line for line in item if not line.startswith(_FOLLOWER)]
            items += [[line] for line in heads[:-1]]
            items.append([heads[-1], *item[len(heads) :]])
        else:
            items.append(item)
    orphans = [
        line
        for cause in sorted(followers, key=index.by_name.__contains__)
        for line in followers[cause]
    ]
    if orphans:  # consequences of what has no line of its own (information): grouped together
        items.append(orphans)
    lines: list[str] = []
    for item in join_places(group_items(items)):
        lines.extend(line for line in item if not line.startswith(_FOLLOWER))
        lines.extend(_followers([line for line in item if line.startswith(_FOLLOWER)], verbose))
    lines = _fold_shifts(lines)
    propagated = sum(1 for e in index.entries if _only_propagated(e))
    return lines, counts, propagated


def _caller(e: Mapping[str, Any], scopes: set[str]) -> bool:
    """Whether `e` is called by a module whose op changes are one line (one of its ops, or a
    child module it calls)."""
    return str(e.get("scope", "")) in scopes and e["name"] != e.get("scope")


def _own_lines(
    e: Mapping[str, Any], roots: Mapping[str, Any], index: Index, verbose: bool
) -> list[str]:
    """An entry's own lines: its addition or removal; its rename; its changes, one line per
    entry (`view  arg 4 32 → 16; output [1, 16, 2, 32] → [1, 16, 4, 16]`) or, `verbose`, one
    per change. A module's parameter shapes and output follow its hyperparameters: unless
    `verbose`, a hyperparameter change stands for them."""
    status, name = e["status"], e["name"]
    head = f"{display(name)}  {title(e)}"
    if status in ("added", "removed"):
        extra = ""
        if e["kind"] == "module" and name in index.counts:
            n = index.counts[name]
            extra = f" ({n} node{'s' if n != 1 else ''}, {human(e.get('params') or 0)} params)"
        return [f"{SYMBOL[status]} {head}{extra}"]
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
    if "class" in roots:  # a leaf now, or traced through (a pass-through forward has no op)
        roots = {k: c for k, c in roots.items() if k != "called"}
    if roots:
        ordered = sorted(roots.items(), key=lambda kc: _RANK.get(kc[0].partition(".")[0], 5))
        own.append(f"~ {head}  " + "; ".join(describe(k, c) for k, c in ordered))
    return own


# one entry's changes in the order a reader follows them: what it is, its settings, then what
# it reads and what it gives
_RANK = {"class": 0, "op": 1, "kind": 2, "hparams": 3, "parameters": 4, "args": 6, "inputs": 7}
_RANK |= {"called": 8, "spec": 9}


def _followers(lines: list[str], verbose: bool) -> list[str]:
    """An item's `↳` lines: the `inside:` summary, other followers, then rewired inputs and
    shapes that follow, each run folded to one counting line when long."""
    if verbose:
        return group_lines(lines)
    summary = [line for line in lines if line.startswith(INSIDE)]
    rest = [line for line in lines if line not in summary]
    kinds = [consequence(line) for line in rest]
    others = [line for line, kind in zip(rest, kinds, strict=True) if kind is None]
    out = [*summary, *_fold(group_lines(others))]
    for kind in ("input", "output"):
        same = [line for line, k in zip(rest, kinds, strict=True) if k == kind]
        out += fold_consequences(group_lines(same), kind)
    return out


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


def _only_propagated(e: Mapping[str, Any]) -> bool:
    changes = e.get("changes") or {}
    return bool(changes) and all(c.get("propagated") for c in changes.values())


def _fold(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_FOLLOWERS + 1:
        return lines
    return [*lines[:_MAX_FOLLOWERS], f"    ↳ … and {len(lines) - _MAX_FOLLOWERS} more"]
