"""The diff of two graphs: `diff(old, new)` matches them (`nnviz.diffing.matching`), then builds
the union graph: entries, their field changes (`nnviz.diffing.fields`), order, causes, and edges.

A change that is only the consequence of another one (a shape that follows an upstream change, an
input slot rewired by an inserted or deleted node) carries a `cause`: the name of the root-cause
entry it is folded under. Every pass is linear in the number of nodes and modules (times the
module depth for the ancestor walks); nothing iterates a set for output order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nnviz.diffing import checkpoint
from nnviz.diffing.document import Status, fold_root
from nnviz.diffing.fields import (
    across_formats,
    check_ignore,
    ignored,
    input_changes,
    module_changes,
    node_changes,
    positional_format,
)
from nnviz.diffing.matching import Matching, match
from nnviz.diffing.model import Change, EdgeDiff, GraphDiff, NodeDiff
from nnviz.diffing.ops import same_inputs
from nnviz.diffing.plumbing import Plumbing
from nnviz.diffing.records import ABSENT
from nnviz.graph import (
    Edge,
    Graph,
    Module,
    Node,
    assemble,
    gc_paused,
    parent_path,
    path_depth,
)

_FLOW_LAST = 10_000


@dataclass(slots=True)
class _Entry:
    name: str
    old_name: str | None
    new_name: str | None
    old_node: Node | None = None
    new_node: Node | None = None
    old_module: Module | None = None
    new_module: Module | None = None
    scope: str = ""
    path: str | None = None
    changes: dict[str, Change] = field(default_factory=dict)
    key: tuple[Any, ...] = ()
    info: str | None = None

    @property
    def status(self) -> Status:
        if self.old_name is None:
            return "added"
        if self.new_name is None:
            return "removed"
        if self.changes:
            return "changed"
        if self.old_name == self.new_name or self.calls_op:
            return "unchanged"  # a call's id is a counter in its scope, not its identity
        return "renamed"

    @property
    def calls_op(self) -> bool:
        """Whether a side is a function or method call, whose id is a counter, not an identity
        (a module call inlined on the other side is named by its module's entry)."""
        if self.old_node is None or self.new_node is None:
            return False
        return bool({self.old_node.kind, self.new_node.kind} & {"function", "method"})

    @property
    def drifts(self) -> bool:
        if self.status in ("added", "removed"):
            return self.info is None
        return self.status == "renamed" or any(c.info is None for c in self.changes.values())

    @property
    def module(self) -> Module | None:
        return self.new_module or self.old_module

    @property
    def node(self) -> Node | None:
        return self.new_node or self.old_node


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
) -> tuple[tuple[NodeDiff, ...], tuple[EdgeDiff, ...]]:
    """The union entries (in union order, with changes and causes) and the union edges."""
    old_nodes, new_nodes = old.nodes, new.nodes  # each call builds a list: build them once
    entries = _entries(old, new, m, old_nodes, new_nodes)
    by_name = {e.name: e for e in entries}
    node_name_old = {n.id: m.nodes.get(n.id, n.id) for n in old_nodes}
    _rename_collisions(entries, by_name, node_name_old)
    specs = old.traced_with_data and new.traced_with_data
    old_edges, new_edges = old.edges, new.edges
    raw_old, new_inputs = m.inputs or (_inputs(old_edges, None), _inputs(new_edges, None))
    old_inputs = _inputs(old_edges, node_name_old)
    plumbing = Plumbing(old, new, raw_old, new_inputs)
    formats_differ = positional_format(old) != positional_format(new)
    for e in entries:
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
        if formats_differ and e.old_node is not None and e.new_node is not None:
            a, b = old_inputs.get(e.old_node.id, {}), new_inputs.get(e.new_node.id, {})
            across_formats(e.changes, e.old_node, e.new_node, a, b)
        if formats_differ:  # format 3 started recording tied parameters
            for key in [k for k in e.changes if k.startswith("ties.")]:
                e.changes[key] = replace(e.changes[key], info="format")
        for key in [k for k in e.changes if ignored(k, ignore)]:
            del e.changes[key]
    _fold_inlining(entries, by_name)
    _order(entries, old_nodes, new_nodes, new, m, by_name)
    entries.sort(key=lambda e: e.key)
    _mark_causes(entries, by_name, new)
    _mark_attributes(entries, by_name, _containers(new, new_nodes))
    nodes = tuple(_freeze(e) for e in entries)
    return nodes, _edges(old_edges, new_edges, node_name_old)


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


def _entries(
    old: Graph, new: Graph, m: Matching, old_nodes: list[Node], new_nodes: list[Node]
) -> list[_Entry]:
    """One entry per union module and node; a module merges with its first call node."""
    entries: list[_Entry] = []
    merged: dict[str, _Entry] = {}
    old_by_id = {n.id: n for n in old_nodes}
    for q, mod in new.modules.items():
        p = m.modules_back.get(q)
        e = _Entry(q, p, q, new_module=mod, old_module=old.modules[p] if p is not None else None)
        e.scope, e.path = parent_path(q) or "", q
        entries.append(e)
        merged[q] = e
    old_only: dict[str, _Entry] = {}
    for p, mod in old.modules.items():
        if p not in m.modules:
            e = _Entry(p, p, None, old_module=mod, scope=_module_parent(p, m) or "", path=p)
            entries.append(e)
            old_only[p] = e
    for node in new_nodes:
        i = m.nodes_back.get(node.id)
        f: _Entry | None = None
        if node.kind == "module" and node.module == node.id:
            f = merged.get(node.id)
        if f is None or f.new_node is not None:
            f = _Entry(node.id, i, node.id, scope=_node_scope(node, None), path=node.module)
            entries.append(f)
        f.new_node = node
        if i is not None:
            f.old_node = old_by_id[i]
    for node in old_nodes:
        if node.id in m.nodes:
            continue
        f = None
        if node.kind == "module" and node.module == node.id:
            f = old_only.get(node.id) or merged.get(m.modules.get(node.id, "\0"))
        if f is None or f.old_node is not None or f.new_node is not None:
            path = m.modules.get(node.module, node.module) if node.module is not None else None
            scope = _node_scope(node, m)
            name = node.id  # a removed call inside a moved module is named where it lives now
            if node.kind != "module" and scope != node.scope and node.id.startswith(node.scope):
                name = f"{scope}{node.id[len(node.scope) :]}".lstrip(".")
            f = _Entry(name, node.id, None, scope=scope, path=path)
            entries.append(f)
        f.old_node = node
    return entries


def _node_scope(node: Node, m: Matching | None) -> str:
    return m.modules.get(node.scope, node.scope) if m is not None else node.scope


def _rename_collisions(
    entries: list[_Entry], by_name: dict[str, _Entry], node_name_old: dict[str, str]
) -> None:
    """Two unrelated entries with one name (a container `x.add` and the op `x.add`, or a removed
    op and a new one with its id): the new side's data-flow nodes keep their ids, which edges
    use; a tree-only module gets `#module` appended, a removed node `#old`."""
    by_name.clear()
    keep = [e for e in entries if e.new_node is not None]
    for e in [*keep, *(e for e in entries if e.new_node is None)]:
        while e.name in by_name:
            e.name += "#module" if e.node is None else "#old"
        if e.old_node is not None and e.new_node is None:
            node_name_old[e.old_node.id] = e.name
        by_name[e.name] = e


def _inputs(edges: list[Edge], rename: dict[str, str] | None) -> dict[str, dict[str, str]]:
    """For every node, which (renamed) source feeds each of its argument slots."""
    out: dict[str, dict[str, str]] = {}
    for edge in edges:
        src = rename.get(edge.source, edge.source) if rename is not None else edge.source
        slots = out.setdefault(edge.target, {})
        for slot in edge.slots:
            slots[slot] = src
    return out


def _fold_inlining(entries: list[_Entry], by_name: dict[str, _Entry]) -> None:
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
    entries: list[_Entry], by_name: dict[str, _Entry], containers: set[str]
) -> None:
    """A traced-through container's hyperparameter changes are information (`attribute`) when
    nothing at or below it drifts: its ops, wiring, shapes and parameters say the same; and so
    is an attribute only one side keeps, on any module called on neither side (timm's never-called
    `rel_pos`, whose `get_bias()` runs in its holder's scope, gaining `prefix_tokens`). A changed
    value of a leaf, called or not, is architecture."""
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
    for e in entries:
        if not _attributes_only(e):
            continue
        container = e.name in containers and e.name not in drifting
        for key, change in e.changes.items():
            # an attribute only one side keeps is how the class is written, whatever changed
            # below; a changed value is information only when nothing below drifts
            if container or ABSENT in (change.old, change.new):
                e.changes[key] = replace(change, info="attribute")


def _attributes_only(e: _Entry) -> bool:
    """A module called on neither side whose only changes are hyperparameters."""
    return (
        e.old_module is not None
        and e.new_module is not None
        and e.old_node is None
        and e.new_node is None
        and bool(e.changes)
        and all(k.startswith("hparams.") for k in e.changes)
    )


def _quiet(e: _Entry, containers: set[str]) -> bool:
    """Whether an entry's changes may all be information (so it makes nothing above drift)."""
    return _attributes_only(e) and (
        e.name in containers or all(ABSENT in (c.old, c.new) for c in e.changes.values())
    )


def _order(
    entries: list[_Entry],
    old_nodes: list[Node],
    new_nodes: list[Node],
    new: Graph,
    m: Matching,
    by_name: dict[str, _Entry],
) -> None:
    """Union order: new trace order, each removed node after its nearest matched predecessor,
    each tree-only module just before the first node of its subtree (ancestors first)."""
    new_index = {n.id: i for i, n in enumerate(new_nodes)}
    removed_keys: dict[str, tuple[Any, ...]] = {}
    last: float = -1
    for i, node in enumerate(old_nodes):
        paired = m.nodes.get(node.id)
        if paired is not None:
            last = new_index[paired]
        else:
            removed_keys[node.id] = (last, 1, i)
    flow = []
    for e in entries:
        if e.new_node is not None:
            e.key = (new_index[e.new_node.id], 0, 0, _FLOW_LAST)
        elif e.old_node is not None:
            e.key = (*removed_keys[e.old_node.id], _FLOW_LAST)
        else:
            continue
        flow.append(e)
    flow.sort(key=lambda e: e.key)
    # in key order, the first entry to reach a module gives its key; climbing stops where an
    # earlier one has been, so each module is visited once
    best: dict[str, tuple[Any, ...]] = {}
    for e in flow:
        home = e.name if e.module is not None else e.scope
        while home in by_name and home not in best:
            best[home] = e.key
            up = by_name[home].scope
            if home == "" or up == home:
                break
            home = up
    tree_rank = {p: i for i, p in enumerate(new.modules)}
    for e in entries:
        if e.node is None:
            depth = path_depth(e.name)
            found = best.get(e.name)
            rank = tree_rank.get(e.name, len(tree_rank))
            e.key = (*found[:3], depth) if found else (float("inf"), 0, rank, depth)


Shape = dict[str, tuple[str, str | None, str | None]]
"""Per entry name: status, enclosing module's name, module path (what `fold_root` walks)."""


def _mark_causes(entries: list[_Entry], by_name: dict[str, _Entry], new: Graph) -> None:
    """Mark input rewiring by added/removed nodes (or modules now called or no longer called),
    and specs that follow an upstream change."""
    shape: Shape = {e.name: (e.status, e.scope, _module_path(e)) for e in entries}
    for e in entries:
        _mark_rewired_inputs(e, by_name, shape)
    spec_cause: dict[str, str] = {}  # entry -> the root its changed spec follows (or itself)
    for e in entries:
        if e.new_node is None or "spec" not in e.changes:
            continue
        cause = _spec_cause(e, e.new_node, by_name, new, shape, spec_cause)
        spec_cause[e.name] = e.name if cause is None else cause
        if cause is not None:
            c = e.changes["spec"]
            e.changes["spec"] = replace(c, cause=cause)


def _module_path(e: _Entry) -> str | None:
    """The module an entry is or calls (a repeated call `drop_path:1` calls `drop_path`)."""
    if e.module is not None:
        return e.module.path
    node = e.node
    return node.module if node is not None and node.kind == "module" else None


def _mark_rewired_inputs(e: _Entry, by_name: dict[str, _Entry], shape: Shape) -> None:
    """An input slot that now reads from, or no longer reads from, an added or removed entry
    (or a module now called or no longer called) follows that entry's change; one rewired by
    siblings that swapped places follows the move."""
    for key, change in list(e.changes.items()):
        if not key.startswith("inputs.") or change.info is not None:
            continue
        for end in (change.old, change.new):
            other = by_name.get(end) if isinstance(end, str) else None
            if other is not None and (
                other.status in ("added", "removed") or "called" in other.changes
            ):
                e.changes[key] = replace(change, cause=fold_root(end, shape))
                break
        else:
            moved = _moved_end(e, change, by_name)
            if moved is not None:  # siblings that swapped places rewire their readers
                e.changes[key] = replace(change, cause=moved)


def _spec_cause(
    e: _Entry,
    node: Node,
    by_name: dict[str, _Entry],
    new: Graph,
    shape: Shape,
    spec_cause: dict[str, str],
) -> str | None:
    """What a changed output spec follows: the changed module it is a repeated call of; else,
    when the entry has no change of its own, what its rewired inputs follow, or the first
    upstream entry that was added or whose spec changed. None for a root cause."""
    module_entry = by_name.get(node.module or "\0")
    if (
        module_entry is not None
        and module_entry is not e
        and any(not c.propagated for c in module_entry.changes.values())
    ):
        return module_entry.name  # a repeated call of a changed module
    if any(k != "spec" and not c.propagated for k, c in e.changes.items()):
        return None
    from_inputs = (c.cause for k, c in e.changes.items() if k.startswith("inputs.") and c.cause)
    found = next(from_inputs, None)
    if found is not None:
        return found
    for p in new.predecessors(node.id):
        pe = by_name.get(p)
        if pe is None or pe.info is not None:
            continue  # scalar plumbing (a size tuple) says how, the tensor it reshapes says why
        if pe.status == "added":
            return fold_root(p, shape)
        if "spec" in pe.changes:
            return spec_cause.get(p, p)
    scope = by_name.get(e.scope)
    if scope is not None and any(
        k.startswith(("hparams.", "parameters.")) and not c.propagated
        for k, c in scope.changes.items()
    ):
        return scope.name  # an op that reads its module's resized parameters
    return None


def _moved(e: _Entry) -> bool:
    """A module call whose module moved (renamed within the tree, e.g. reordered siblings)."""
    return (
        e.new_node is not None
        and e.new_node.kind == "module"
        and e.old_name is not None
        and e.old_name != e.new_name
    )


def _moved_end(e: _Entry, change: Change, by_name: dict[str, _Entry]) -> str | None:
    """The moved module an input rewiring follows from: the entry itself when it moved, else
    the new (or old) source when that one moved."""
    if _moved(e):
        return e.name
    for end in (change.new, change.old):
        other = by_name.get(end) if isinstance(end, str) else None
        if other is not None and _moved(other):
            return other.name
    return None


def _freeze(e: _Entry) -> NodeDiff:
    node, module = e.node, e.module
    kind = node.kind if node is not None else "module"
    op = module.cls if module is not None else (node.op if node is not None else "")
    renamed = (
        e.old_name if e.old_name is not None and e.new_name not in (None, e.old_name) else None
    )
    status = e.status
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


def _module_parent(path: str, matching: Matching) -> str | None:
    """Union name of the parent of an old module path."""
    parent = parent_path(path)
    return None if parent is None else matching.modules.get(parent, parent)
