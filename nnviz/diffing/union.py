"""The union of two matched graphs while a diff is built: one `UnionEntry` per union module and
node (a module merged with its first call node), their names (`rename_collisions`) and their
order (`order`: new trace order, removed nodes after their nearest matched predecessor,
tree-only modules before their subtree). `nnviz.diffing.build` fills in their changes,
`nnviz.diffing.causes` their causes, and `build` freezes them as `NodeDiff`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnviz.diffing.document import Status
from nnviz.diffing.matching import Matching
from nnviz.diffing.model import Change
from nnviz.graph import Graph, Module, Node, parent_path, path_depth

_FLOW_LAST = 10_000


@dataclass(slots=True)
class UnionEntry:
    """One union entry: both sides' node and module (None where a side has none), its union
    name, scope and module path, its field changes and its order key."""

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


def entries_of(
    old: Graph, new: Graph, m: Matching, old_nodes: list[Node], new_nodes: list[Node]
) -> list[UnionEntry]:
    """One entry per union module and node; a module merges with its first call node. An entry
    with a node gets its order key (`order`) here: its place in the new trace, or a removed
    node's just after its nearest matched predecessor."""
    out: list[UnionEntry] = []
    merged: dict[str, UnionEntry] = {}
    old_modules, modules_back, nodes_back = old.modules, m.modules_back, m.nodes_back
    for q, mod in new.modules.items():
        p = modules_back.get(q)
        before = old_modules[p] if p is not None else None
        e = UnionEntry(
            q, p, q, old_module=before, new_module=mod, scope=parent_path(q) or "", path=q
        )
        out.append(e)
        merged[q] = e
    old_only: dict[str, UnionEntry] = {}
    for p, mod in old_modules.items():
        if p not in m.modules:
            e = UnionEntry(p, p, None, old_module=mod, scope=_module_parent(p, m) or "", path=p)
            out.append(e)
            old_only[p] = e
    placed: dict[str, int] = {}  # old node id -> where its counterpart is in the new trace
    for at, node in enumerate(new_nodes):
        i = nodes_back.get(node.id)
        f: UnionEntry | None = None
        if node.kind == "module" and node.module == node.id:
            f = merged.get(node.id)
        if f is None or f.new_node is not None:
            f = UnionEntry(node.id, i, node.id, scope=node.scope, path=node.module)
            out.append(f)
        f.new_node, f.key = node, (at, 0, 0, _FLOW_LAST)
        if i is not None:
            f.old_node, placed[i] = old.node(i), at
    last = -1
    for at, node in enumerate(old_nodes):
        if node.id in placed:
            last = placed[node.id]
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
            f = UnionEntry(name, node.id, None, scope=scope, path=path)
            out.append(f)
        f.old_node, f.key = node, (last, 1, at, _FLOW_LAST)
    return out


def _node_scope(node: Node, m: Matching) -> str:
    return m.modules.get(node.scope, node.scope)


def rename_collisions(
    entries: list[UnionEntry], by_name: dict[str, UnionEntry], node_name_old: dict[str, str]
) -> None:
    """Two unrelated entries with one name (a container `x.add` and the op `x.add`, or a removed
    op and a new one with its id): the new side's data-flow nodes keep their ids, which edges
    use; a tree-only module gets `#module` appended, a removed node `#old`."""
    by_name.clear()
    rest = []  # named after every new-side entry
    for e in entries:
        if e.new_node is None:
            rest.append(e)
            continue
        while e.name in by_name:
            e.name += "#old"
        by_name[e.name] = e
    for e in rest:
        while e.name in by_name:
            e.name += "#module" if e.old_node is None else "#old"
        if e.old_node is not None:
            node_name_old[e.old_node.id] = e.name
        by_name[e.name] = e


def order(entries: list[UnionEntry], new: Graph, by_name: dict[str, UnionEntry]) -> None:
    """Union order: new trace order, each removed node after its nearest matched predecessor
    (the keys `entries_of` gave them), each tree-only module just before the first node of its
    subtree (ancestors first)."""
    flow: list[UnionEntry] = []
    tree: list[UnionEntry] = []
    for e in entries:
        (tree if e.new_node is None and e.old_node is None else flow).append(e)
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
    tree_rank: dict[str, int] = {}
    for e in tree:
        depth = path_depth(e.name)
        found = best.get(e.name)
        if found:
            e.key = (*found[:3], depth)
            continue
        if not tree_rank:  # a module whose subtree nobody calls (a few, if any)
            tree_rank = {p: i for i, p in enumerate(new.modules)}
        e.key = (float("inf"), 0, tree_rank.get(e.name, len(tree_rank)), depth)


def _module_parent(path: str, matching: Matching) -> str | None:
    """Union name of the parent of an old module path."""
    parent = parent_path(path)
    return None if parent is None else matching.modules.get(parent, parent)
