"""The changelog's records from a diff document (`GraphDiff.to_dict()`): what each entry says and
what folds under it.

One entry per changed entry of the document (its field changes), grouped by module in graph
order: changed, added, removed, renamed or moved. The contents of an added or removed module and
the members of a renamed one fold into its entry; consequences fold under their cause
(`nnviz.diffing.folding`); identical changes join across places (`nnviz.diffing.grouping`); runs
of layers renumbered alike are one `Shift`. `verbose` makes every change an entry of its own.
Pure functions of the JSON document, so every reader of it gets the same records.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from typing import Any

from nnviz.diffing import checkpoint
from nnviz.diffing.cost import CostDiff, EntryCost
from nnviz.diffing.document import STATUSES, Place, Shape, fold_root
from nnviz.diffing.exportability import ExportChange
from nnviz.diffing.folding import (
    arrange_followers,
    inside_summary,
    restates,
    rewritten_scopes,
    swap_owners,
)
from nnviz.diffing.grouping import group_items, join_places
from nnviz.diffing.records import (
    ABSENT,
    Changelog,
    Entry,
    FieldChange,
    Info,
    Item,
    Orphans,
    Places,
    Shift,
    Size,
)
from nnviz.graph import parent_path

Doc = Mapping[str, Any]


def title(entry: Mapping[str, Any]) -> str:
    """A document entry's class (short) or op."""
    op = str(entry.get("op") or "")
    return op.rsplit(".", 1)[-1] if entry["kind"] == "module" else op


def field_change(key: str, change: Mapping[str, Any]) -> FieldChange:
    """One change of the document as a record: the key's slot, an input's values (the nodes it
    reads) and a buffer or parameter read (`{"$attr": path}`) as the places they name."""
    old, new = change.get("old", ABSENT), change.get("new", ABSENT)
    if key.startswith("inputs."):
        old = Places.of(str(old)) if old is not ABSENT else old
        new = Places.of(str(new)) if new is not ABSENT else new
    else:
        old, new = _attr(old), _attr(new)
    _, dot, rest = key.partition(".")
    slot = Places.of(rest) if dot else None
    settings = change.get("settings")
    if key == "class" and isinstance(settings, list):
        pairs = tuple((str(s[0]), s[1] if len(s) > 1 else ABSENT) for s in settings)
        return FieldChange(key, old, new, change.get("relation"), pairs, slot)
    return FieldChange(key, old, new, change.get("note"), None, slot)


def _attr(value: Any) -> Any:
    """A read of a module's buffer or parameter (`{"$attr": "blocks.3.attn.index"}`) as the
    place it reads; any other value as it is."""
    if isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("$attr"), str):
        return Places.of(value["$attr"])
    return value


class Index:
    """Lookups over a document's entries: by name, folding, node counts."""

    def __init__(self, doc: Doc) -> None:
        self.entries: list[Mapping[str, Any]] = list(doc.get("nodes", ()))
        self.by_name = {e["name"]: e for e in self.entries}
        self.shape = Shape(self.by_name, _place)
        self.active = [e for e in self.entries if _says(e)]
        """The entries with something to say (most of a large diff's say nothing)."""

    def count(self, name: str) -> int:
        """The data-flow entries at or below entry `name` (an added or removed module's size):
        those whose scope chain reaches it within 256 hops (a hostile chain may loop)."""
        below, homes = self._tree
        total, todo = 0, [(name, 0)]
        while todo:
            up, hops = todo.pop()
            total += homes.get(up, 0)
            if hops < 255:
                todo.extend((child, hops + 1) for child in below.get(up, ()))
        return total

    @functools.cached_property
    def _tree(self) -> tuple[dict[str, list[str]], Counter[str]]:
        """The entries right below each entry (the root `""` is below none), and per entry
        the data-flow entries that live in it: what `count` walks down, made once it asks."""
        below: dict[str, list[str]] = {}
        for name, e in self.by_name.items():
            if name != "":
                below.setdefault(e["scope"], []).append(name)
        # counted in C; a home that names no entry is never walked to
        homes = Counter(
            [
                e["path"] if e["kind"] == "module" else e["scope"]
                for e in self.entries
                if e.get("flow")
            ]
        )
        return below, homes

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


def _says(e: Mapping[str, Any]) -> bool:
    """Whether an entry has a status, a change or information to say."""
    return bool(e["status"] != "unchanged" or e.get("changes") or e.get("info"))


def _place(e: Mapping[str, Any]) -> Place:
    return e["status"], e["scope"] if e["name"] else None, e.get("path")


def changelog_of(doc: Doc, verbose: bool = False) -> Changelog:
    """The changelog of a (read) diff document: its items, totals and information."""
    sides = {side: doc.get(side, {}) for side in ("old", "new")}
    p = doc.get("summary", {}).get("params") or {s: sides[s].get("params", 0) for s in sides}
    nothing: tuple[list[Item], dict[str, int], int] = ([], dict.fromkeys(_SYMBOL_STATUS, 0), 0)
    index = Index(doc)
    items, counts, propagated = nothing if doc.get("identical") else _items(index, doc, verbose)
    return Changelog(
        identical=bool(doc.get("identical")),
        strict=bool(doc.get("strict")),
        items=tuple(items),
        counts=tuple(counts.items()),
        propagated=propagated,
        params=(int(p.get("old", 0)), int(p.get("new", 0))),
        nodes=int(sides["new"].get("nodes", 0)),
        info=_info(index.active, bool(doc.get("strict"))),
        names=(str(sides["old"].get("name", "old")), str(sides["new"].get("name", "new"))),
        checkpoint=checkpoint.of_document(doc),
        verbose=verbose,
        cost=CostDiff.from_dict(doc.get("cost")),
        export=ExportChange.from_dict(doc.get("export")),
    )


_SYMBOL_STATUS = ("changed", "added", "removed", "renamed")


def _items(index: Index, doc: Doc, verbose: bool) -> tuple[list[Item], dict[str, int], int]:
    """The changelog's items, the count of entries per status, the propagated count. Unless
    `verbose`, consequences fold under their cause (`nnviz.diffing.folding`)."""
    hide = not doc.get("strict")  # information is listed apart unless it counts as drift

    def shown(e: Mapping[str, Any]) -> bool:
        return not (e["status"] == "unchanged" or (hide and e.get("info")) or index.folded(e))

    owners = {} if verbose else swap_owners(index.entries, shown, index.active)
    rewritten = {} if verbose else rewritten_scopes(index.active, shown, owners)
    owners |= rewritten
    scopes = set(rewritten.values())
    followers = _followers(index, owners, scopes, hide, verbose)
    inner: dict[str, list[Mapping[str, Any]]] = {}
    named: list[tuple[str, list[Entry]]] = []
    counts = dict.fromkeys(_SYMBOL_STATUS, 0)
    walk = [e for e in index.entries if _says(e) or e["name"] in scopes] if scopes else None
    for e in walk or index.active:  # and each scope whose ops are one line, said or not
        status, name = e["status"], e["name"]
        if name in scopes and not shown(e):
            named.append((name, []))  # its ops' entry, once they are known
        if not shown(e):
            continue
        roots = {
            k: c
            for k, c in e.get("changes", {}).items()
            if not c.get("propagated") and not (hide and c.get("info"))
        }
        own = _own(e, roots, index, verbose)
        owner = owners.get(name)
        if own and owner is not None and owner != name:
            inner.setdefault(owner, []).append(e)  # counted in its owner's summary
            continue
        counts["renamed"] += sum(1 for entry in own if entry.was is not None)
        if any(entry.kind != "renamed" and entry.kind != "moved" for entry in own):
            counts[status if status in ("added", "removed") else "changed"] += 1
        if own:
            named.append((name, own))
    items: list[Entry | Orphans] = []
    for name, own in named:
        inside = inside_summary(name, inner.get(name, []), title)
        mine = tuple(followers.pop(name, []))
        if not own:  # a module that only rewrote its own ops: they are its entry
            counts["changed"] += 1
            e = index.by_name[name]
            items.append(Entry("ops", Places.of(name), title(e), inside=inside, followers=mine))
        elif inside:
            first = own[0]
            items.append(_with(first, inside=inside, followers=mine))
        else:  # verbose: each change its own entry, so that each groups across places
            items += own[:-1]
            items.append(_with(own[-1], followers=mine))
    orphans = [
        f for cause in sorted(followers, key=index.by_name.__contains__) for f in followers[cause]
    ]
    if orphans:  # consequences of what has no line of its own (information): grouped together
        items.append(Orphans(tuple(orphans)))
    out: list[Item] = [_arranged(item, verbose) for item in join_places(group_items(items))]
    propagated = sum(1 for e in index.active if _only_propagated(e))
    return _fold_shifts(out), {s: counts[s] for s in _SYMBOL_STATUS}, propagated


def _with(entry: Entry, **fields: Any) -> Entry:
    from dataclasses import replace

    return replace(entry, **fields)


def _arranged(item: Entry | Orphans, verbose: bool) -> Entry | Orphans:
    if isinstance(item, Orphans):
        return Orphans(tuple(arrange_followers(list(item.followers), verbose)))
    return _with(item, followers=tuple(arrange_followers(list(item.followers), verbose)))


def _followers(
    index: Index, owners: Mapping[str, str], scopes: set[str], hide: bool, verbose: bool
) -> dict[str, list[Entry]]:
    """The consequences (`follows` entries), by the name of the entry they fold under."""
    out: dict[str, list[Entry]] = {}
    for e in index.active:
        for key, change in e.get("changes", {}).items():
            if not change.get("propagated") or (hide and change.get("info")):
                continue
            cause = str(change.get("cause", ""))
            if cause == e["name"] and key.startswith("inputs.") and not _has_line(e, index):
                # rewired by no change of its own (a swap or a move upstream): it follows what
                # it reads now, so it folds under that entry's line rather than on its own
                cause = str(change.get("new") or cause)
            owner = owners.get(cause)
            if _caller(e, scopes) or (owner is not None and owner == owners.get(e["name"])):
                continue  # a consequence inside a module whose line sums up what changed
            ends = {owners.get(str(change.get(side))) for side in ("old", "new")}
            if key.startswith("inputs.") and owner is not None and ends == {owner}:
                continue  # still reads the swapped module's output, made by another op
            if not verbose and key == "spec" and restates(change, index.by_name.get(cause)):
                continue  # the sizes its cause's line already changes: the totals count it
            follower = Entry("follows", Places.of(e["name"]), changes=(field_change(key, change),))
            out.setdefault(owner or cause, []).append(follower)
    return out


def _has_line(e: Mapping[str, Any], index: Index) -> bool:
    """Whether an entry has a line of its own: a change that is not a consequence, or a
    rename its ancestor's does not imply."""
    if e.get("renamed_from") is not None and not index.implied_rename(e):
        return True
    return any(not c.get("propagated") for c in e.get("changes", {}).values())


def _caller(e: Mapping[str, Any], scopes: set[str]) -> bool:
    """Whether `e` is called by a module whose op changes are one line (one of its ops, or a
    child module it calls)."""
    return str(e.get("scope", "")) in scopes and e["name"] != e.get("scope")


def _own(
    e: Mapping[str, Any], roots: Mapping[str, Any], index: Index, verbose: bool
) -> list[Entry]:
    """An entry's own records: its addition or removal; its rename; its changes, one entry (or,
    `verbose`, one per change). A module's parameter shapes and output follow its
    hyperparameters: unless `verbose`, a hyperparameter change stands for them."""
    status, name = e["status"], e["name"]
    places, head = Places.of(name), title(e)
    if status in ("added", "removed"):
        size = None
        nodes = index.count(name) if e["kind"] == "module" else 0
        if nodes:
            size = Size((nodes,), (int(e.get("params") or 0),))
        return [Entry(status, places, head, size=size, cost=EntryCost.from_dict(e.get("cost")))]
    renamed = (
        e.get("renamed_from") is not None
        and "op" not in roots
        and e["kind"] not in ("function", "method")  # a call's id is a counter
    )
    rename: Entry | None = None
    if renamed and not index.implied_rename(e):
        old = str(e["renamed_from"])
        positional = old.rsplit(".", 1)[-1].isdigit() and name.rsplit(".", 1)[-1].isdigit()
        moved = parent_path(old) != parent_path(name) or positional
        rename = Entry(
            "moved" if moved else "renamed", places, head, was=Places.of(old), moved=moved
        )
    if verbose:
        each = [Entry("changed", places, head, (field_change(k, c),)) for k, c in roots.items()]
        return ([rename] if rename else []) + each
    if any(k.startswith("hparams.") for k in roots) and "class" not in roots:
        roots = {k: c for k, c in roots.items() if not k.startswith("parameters.") and k != "spec"}
    if "class" in roots:  # a leaf now, or traced through (a pass-through forward has no op)
        roots = {k: c for k, c in roots.items() if k != "called"}
    if not roots:
        return [rename] if rename else []
    ordered = sorted(roots.items(), key=lambda kc: _RANK.get(kc[0].partition(".")[0], 5))
    changes = tuple(field_change(k, c) for k, c in ordered)
    cost = EntryCost.from_dict(e.get("cost"))
    if rename is not None:  # one entry: the rename, then its changes
        return [_with(rename, kind="changed", changes=changes, cost=cost)]
    return [Entry("changed", places, head, changes, cost=cost)]


# one entry's changes in the order a reader follows them: what it is, its settings, then what
# it reads and what it gives
_RANK = {"class": 0, "op": 1, "kind": 2, "hparams": 3, "parameters": 4, "args": 6, "inputs": 7}
_RANK |= {"called": 8, "spec": 9}


def _fold_shifts(items: list[Item]) -> list[Item]:
    """Runs of numbered layers that all moved alike (renumbered by an insertion or deletion, or
    all wrapped into a new container) become one `Shift`."""
    out: list[Item] = []
    run: list[tuple[Entry, tuple[str, int, str, int]]] = []

    def flush() -> None:
        if len(run) >= 3:
            (_, first), (_, last) = run[0], run[-1]
            out.append(Shift(first[0], first[2], first[1], last[1], first[3], last[3]))
        else:
            out.extend(entry for entry, _ in run)
        run.clear()

    for item in items:
        found = _shifted(item)
        if found is None or (run and not _follows(found, run[-1][1])):
            flush()
        if found is not None and isinstance(item, Entry):
            run.append((item, found))
        else:
            out.append(item)
    flush()
    return out


def _shifted(item: Item) -> tuple[str, int, str, int] | None:
    """(old parent, old index, new parent, new index) of a lone move of a numbered layer."""
    if not isinstance(item, Entry) or item.kind != "moved" or item.followers or item.was is None:
        return None
    old, new = item.was.single, item.places.single
    if old is None or new is None:
        return None
    old_parent, _, old_index = old.rpartition(".")
    new_parent, _, new_index = new.rpartition(".")
    if not (old_index.isdigit() and new_index.isdigit()):
        return None
    return old_parent, int(old_index), new_parent, int(new_index)


def _follows(found: tuple[str, int, str, int], prev: tuple[str, int, str, int]) -> bool:
    return (
        (found[0], found[2]) == (prev[0], prev[2])
        and found[3] - found[1] == prev[3] - prev[1]
        and found[1] == prev[1] + 1
    )


def _only_propagated(e: Mapping[str, Any]) -> bool:
    changes = e.get("changes") or {}
    return bool(changes) and all(c.get("propagated") for c in changes.values())


_MAX_INFO = 10


def _info(entries: list[Mapping[str, Any]], strict: bool) -> Info:
    """Differences that are not drift, apart: a count per kind, then the attribute-only
    changes themselves (scalar plumbing is only counted)."""
    counts: dict[str, int] = {}
    shown: list[Entry | Orphans] = []
    for e in entries:
        kinds = [e["info"]] if e.get("info") else []
        settings: list[FieldChange] = []
        for key, change in e.get("changes", {}).items():
            if change.get("info"):
                kinds.append(change["info"])
                if change["info"] == "attribute":
                    settings.append(field_change(key, change))
        if settings:  # one entry per module, as counted: all its attribute changes on it
            shown.append(Entry("changed", Places.of(e["name"]), title(e), tuple(settings)))
        for kind in dict.fromkeys(kinds):
            counts[kind] = counts.get(kind, 0) + 1
    if not counts or strict:
        return Info()
    attributes = [item for item in join_places(group_items(shown)) if isinstance(item, Entry)]
    return Info(tuple(counts.items()), tuple(attributes))


assert set(_SYMBOL_STATUS) <= set(STATUSES)
