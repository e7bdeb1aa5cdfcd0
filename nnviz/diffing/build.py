"""The diff of two graphs: `diff(old, new)` matches them (`nnviz.diffing.matching`), then builds
the union graph: entries (`nnviz.diffing.union`), their field changes (`nnviz.diffing.fields`,
`nnviz.diffing.plumbing`), order, causes, and edges.

A change that is only the consequence of another one (a shape that follows an upstream change, an
input slot rewired by an inserted or deleted node) carries a `cause`: the name of the root-cause
entry it is folded under (`nnviz.diffing.causes`). Every pass is linear in the number of nodes
and modules (times the module depth for the ancestor walks); nothing iterates a set for output
order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import overload

from nnviz.collector import gc_paused
from nnviz.diffing import checkpoint
from nnviz.diffing.causes import mark_causes
from nnviz.diffing.document import Status
from nnviz.diffing.fields import (
    Policy,
    check_ignore,
    input_changes,
    module_changes,
    node_changes,
)
from nnviz.diffing.matching import Matching, match
from nnviz.diffing.model import Change, EdgeDiff, GraphDiff, NodeDiff
from nnviz.diffing.ops import same_inputs
from nnviz.diffing.plumbing import Plumbing
from nnviz.diffing.records import ABSENT
from nnviz.diffing.union import UnionEntry, entries_of, order, rename_collisions
from nnviz.graph import Edge, Graph, Node, assemble


def diff(
    old: Graph, new: Graph, ignore: tuple[str, ...] | list[str] = (), strict: bool = False
) -> GraphDiff:
    """Compare two graphs. `ignore` names change fields to drop: a whole field (`spec`,
    `inputs`, `hparams`) or one of its keys (`hparams.eps`, or just `eps`). With `strict`,
    information-only differences (scalar plumbing, attribute-only changes) count as drift.
    An `ignore` name that can match no change raises `NNVizError`."""
    with gc_paused():
        check_ignore(tuple(ignore), old, new)
        matching = match(old, new)
        entries, edges = build(old, new, matching, tuple(ignore))
        loads = checkpoint.verdict(old, new, matching.modules)
        return GraphDiff(old, new, entries, edges, matching, tuple(ignore), strict, loads)


def build(
    old: Graph, new: Graph, m: Matching, ignore: tuple[str, ...]
) -> tuple[tuple[NodeDiff, ...], UnionEdges]:
    """The union entries (in union order, with changes and causes) and the union edges."""
    old_nodes, new_nodes = old.nodes, new.nodes  # each call builds a list: build them once
    entries = entries_of(old, new, m, old_nodes, new_nodes)
    by_name: dict[str, UnionEntry] = {}
    node_name_old = {n.id: n.id for n in old_nodes}
    node_name_old.update(m.nodes)
    rename_collisions(entries, by_name, node_name_old)
    specs = old.traced_with_data and new.traced_with_data
    raw_old, new_inputs = m.inputs or (_inputs(old.edges, None), _inputs(new.edges, None))
    old_inputs = _renamed_inputs(raw_old, node_name_old, old)
    plumbing = Plumbing(old, new, raw_old, new_inputs, m.scalars)
    policy = Policy.of(old, new, ignore)
    same = not policy.formats_differ  # across formats, equal records may still differ
    for e in entries:
        if same and _same_pair(e, old_inputs, new_inputs):
            continue  # nothing to compare, classify or drop
        a: dict[str, str] = {}
        b: dict[str, str] = {}
        if e.old_module is not None and e.new_module is not None:
            e.changes.update(module_changes(e.old_module, e.new_module))
        if e.old_node is not None and e.new_node is not None:
            e.changes.update(node_changes(e.old_node, e.new_node, specs))
            _follow_moves(e.changes, m)
            a, b = old_inputs.get(e.old_node.id, {}), new_inputs.get(e.new_node.id, {})
            if a != b:
                e.changes.update(input_changes(a, b))
                same_inputs(e.changes, e.old_node, e.new_node, a, b)
        elif e.old_module is not None and e.new_module is not None and (e.old_node or e.new_node):
            e.changes["called"] = Change(e.old_node is not None, e.new_node is not None)
        plumbing.classify(e)
        policy.apply(e.changes, e.old_node, e.new_node, a, b)
    _fold_inlining(entries, by_name)
    order(entries, new, by_name)
    entries.sort(key=lambda e: e.key)
    active = [e for e in entries if _speaks(e)]  # no pass below marks or classifies the rest
    mark_causes(active, by_name, new)
    _mark_attributes(active, by_name, new, new_nodes)
    nodes = tuple(_freeze(e) for e in entries)
    return nodes, UnionEdges(old, new, node_name_old)


def _same_pair(
    e: UnionEntry, old_inputs: dict[str, dict[str, str]], new_inputs: dict[str, dict[str, str]]
) -> bool:
    """Whether both sides of `e` are equal records under one name, a node's inputs read the
    counterparts of its old inputs in the same slots: no field can change (most entries of a
    large diff)."""
    a, b = e.old_node, e.new_node
    if e.old_name != e.new_name or e.old_module != e.new_module:
        return False
    if a is None or b is None:
        return a is None and b is None and e.old_module is not None
    return a == b and old_inputs.get(a.id) == new_inputs.get(b.id)


def _follow_moves(changes: dict[str, Change], m: Matching) -> None:
    """A buffer or parameter read (`{"$attr": "text_model.embeddings.position_ids"}`) of a
    module that moved reads the same tensor at its new path: no change of its own."""
    for key, change in list(changes.items()):
        old, new = change.old, change.new
        if not (key.startswith("args.") and isinstance(old, dict) and isinstance(new, dict)):
            continue
        a, b = old.get("$attr"), new.get("$attr")
        if isinstance(a, str) and isinstance(b, str):
            owner, _, leaf = a.rpartition(".")
            if f"{m.modules.get(owner, owner)}.{leaf}".lstrip(".") == b:
                del changes[key]


def _inputs(edges: list[Edge], rename: dict[str, str] | None) -> dict[str, dict[str, str]]:
    """For every node, which (renamed) source feeds each of its argument slots."""
    out: dict[str, dict[str, str]] = {}
    for edge in edges:
        src = rename.get(edge.source, edge.source) if rename is not None else edge.source
        slots = out.setdefault(edge.target, {})
        for slot in edge.slots:
            slots[slot] = src
    return out


def _renamed_inputs(
    raw: dict[str, dict[str, str]], rename: dict[str, str], graph: Graph
) -> dict[str, dict[str, str]]:
    """`_inputs(graph.edges, rename)` from `raw` (`_inputs(graph.edges, None)`): only the
    readers of a renamed node are read again (most of a large diff renames none)."""
    out = dict(raw)
    for source, name in rename.items():
        if name != source:
            for target in graph.successors(source):
                out[target] = {slot: rename.get(s, s) for slot, s in raw[target].items()}
    return out


def _fold_inlining(entries: list[UnionEntry], by_name: dict[str, UnionEntry]) -> None:
    """A module call on one side paired with the call that leaves its scope on the other (the
    module's class changed, so one side traces through it): the change of kind is the class
    change's doing, shown once on the module's line."""
    for e in entries:
        if "kind" not in e.changes or e.old_node is None or e.new_node is None:
            continue
        module = e.old_node.module if e.old_node.kind == "module" else e.new_node.module
        owner = by_name.get(module or "\0")
        if owner is not None and "class" in owner.changes:
            call = e.old_node if e.old_node.kind == "module" else e.new_node
            for key in [k for k in e.changes if k == "kind" or k.startswith("args.")]:
                if key == "kind" or key.removeprefix("args.") not in call.args:
                    del e.changes[key]  # the module call's settings, now spelled as arguments
            for key, change in list(e.changes.items()):
                if key.startswith("inputs.") and ABSENT in (change.old, change.new):
                    del e.changes[key]  # a slot named by forward() on one side, by the op's
                    # signature on the other (`input` vs `0`): how each is called, not wiring


def _containers(graph: Graph, nodes: list[Node]) -> set[str]:
    """Module paths traced through: with children, or the scope of some call."""
    return {p for p in graph.modules if graph.children(p)} | {n.scope for n in nodes}


def _mark_attributes(
    entries: list[UnionEntry], by_name: dict[str, UnionEntry], new: Graph, new_nodes: list[Node]
) -> None:
    """A traced-through container's hyperparameter changes are information (`attribute`) when
    nothing at or below it drifts: its ops, wiring, shapes and parameters say the same; and so
    is an attribute only one side keeps, on any module called on neither side (timm's never-called
    `rel_pos`, whose `get_bias()` runs in its holder's scope, gaining `prefix_tokens`). A changed
    value of a leaf, called or not, is architecture."""
    attributes = [e for e in entries if _attributes_only(e)]
    if not attributes:
        return  # nothing to mark (most diffs): no containers to find
    containers = _containers(new, new_nodes)
    drifting: set[str] = set()
    for e in entries:
        if not e.drifts or _quiet(e, containers):
            continue
        home = e.scope if e.module is None else e.name
        while home in by_name and home not in drifting:
            drifting.add(home)
            if home == "":
                break
            home = by_name[home].scope
    for e in attributes:
        container = e.name in containers and e.name not in drifting
        for key, change in e.changes.items():
            # an attribute only one side keeps is how the class is written, whatever changed
            # below; a changed value is information only when nothing below drifts
            if container or ABSENT in (change.old, change.new):
                e.changes[key] = replace(change, info="attribute")


def _attributes_only(e: UnionEntry) -> bool:
    """A module called on neither side whose only changes are hyperparameters."""
    return (
        e.old_module is not None
        and e.new_module is not None
        and e.old_node is None
        and e.new_node is None
        and bool(e.changes)
        and all(k.startswith("hparams.") for k in e.changes)
    )


def _quiet(e: UnionEntry, containers: set[str]) -> bool:
    """Whether an entry's changes may all be information (so it makes nothing above drift)."""
    return _attributes_only(e) and (
        e.name in containers or all(ABSENT in (c.old, c.new) for c in e.changes.values())
    )


def _speaks(e: UnionEntry) -> bool:
    """Whether `e` changed or was renamed: an entry under one name with no change (most of a
    large diff) is unchanged, and freezes as such."""
    return bool(e.changes) or e.old_name != e.new_name


def _freeze(e: UnionEntry) -> NodeDiff:
    node, module = e.new_node or e.old_node, e.new_module or e.old_module
    kind = node.kind if node is not None else "module"
    op = module.cls if module is not None else (node.op if node is not None else "")
    status: Status = "unchanged"  # one name, no change: most entries of a large diff
    renamed = info = None
    if _speaks(e):
        status = e.status
        if e.old_name is not None and e.new_name not in (None, e.old_name):
            renamed = e.old_name
        info = e.info if status != "unchanged" else None
        if info is None and e.changes and all(c.info is not None for c in e.changes.values()):
            info = next(c.info for c in e.changes.values())
    values = {
        "name": e.name,
        "kind": kind,
        "path": e.path if kind == "module" else None,
        "scope": e.scope,
        "status": status,
        "changes": dict(e.changes),
        "renamed_from": renamed,
        "op": op,
        "params": module.params if module is not None else None,
        "flow": node is not None,
        "old_name": e.old_name,
        "info": info,
    }
    return assemble(NodeDiff, values)  # one per union entry: 24,000 on huge.py


class UnionEdges(Sequence[EdgeDiff]):
    """The union edges, named by union names: the new side's in its order, then the removed
    ones; made when first read (a text changelog never reads them: 120,000 on huge.py's
    largest diff). Equal to the tuple of them."""

    def __init__(self, old: Graph, new: Graph, node_name_old: dict[str, str]) -> None:
        self._sides = (old, new, node_name_old)

    @functools.cached_property
    def _all(self) -> tuple[EdgeDiff, ...]:
        old, new, node_name_old = self._sides
        return _edges(old.edges, new.edges, node_name_old)

    @overload
    def __getitem__(self, i: int) -> EdgeDiff: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[EdgeDiff, ...]: ...

    def __getitem__(self, i: int | slice) -> EdgeDiff | tuple[EdgeDiff, ...]:
        return self._all[i]

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[EdgeDiff]:
        return iter(self._all)

    def __eq__(self, other: object) -> bool:
        return self._all == (other._all if isinstance(other, UnionEdges) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all)

    def __reduce__(self) -> tuple[type[tuple[EdgeDiff, ...]], tuple[tuple[EdgeDiff, ...]]]:
        return tuple, (self._all,)  # pickled and copied as the tuple it equals


def _edges(
    old_edges: list[Edge], new_edges: list[Edge], node_name_old: dict[str, str]
) -> tuple[EdgeDiff, ...]:
    seen: dict[tuple[str, str], tuple[str, ...]] = {}
    for edge in old_edges:
        seen[(node_name_old[edge.source], node_name_old[edge.target])] = edge.slots
    out: list[EdgeDiff] = []
    for edge in new_edges:
        before = seen.pop((edge.source, edge.target), None)
        status: Status = (
            "added" if before is None else ("unchanged" if before == edge.slots else "changed")
        )
        out.append(
            assemble(EdgeDiff, {"source": edge.source, "target": edge.target, "status": status})
        )
    out.extend(
        assemble(EdgeDiff, {"source": s, "target": t, "status": "removed"}) for (s, t) in seen
    )
    return tuple(out)
