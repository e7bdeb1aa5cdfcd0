"""Sibling blocks with the same changes drawn once: `blocks.{0..11} ×12` instead of twelve
identical highlighted blocks.

Which blocks carry the same changes is decided by `nnviz.diffing.blocks.repeated_changes` (the
rule the text shares). The drawing then keeps, of each such group, the runs of blocks that are
also drawn alike (the same ops, arguments, shapes, module settings and inner wiring, written
relative to the block: `layer2.0` with its downsample is not drawn for `layer2.1`) and whose
merging closes no cycle (`blocks.0` and `blocks.2` with an unchanged `blocks.1` between them stay
apart). The first block of a run stands for the run; the others' nodes are left out, an edge from
or to them is drawn from or to the standing block's counterpart, and edges between two blocks of
the run (one block feeding the next) are left out. Outer groups first: a group inside a left-out
block is left out with it; one inside the standing block reads with both titles
(`stages.{0,1}.blocks.{0..2}`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx

from nnviz import transform
from nnviz.diffing.blocks import Siblings, relative, repeated_changes
from nnviz.diffing.model import GraphDiff
from nnviz.graph import Edge, Graph, Node, is_within
from nnviz.render.paint import Paint, Repeat


@dataclass(frozen=True)
class Once:
    """The union graph with repeated blocks drawn once."""

    graph: Graph
    names: Mapping[str, str]
    """A left-out node's id → the id of its counterpart in the standing block."""
    repeats: Mapping[str, Repeat]
    """The standing blocks' paths → their title and count."""
    left_out: Mapping[str, str] = field(default_factory=dict)
    """A left-out block's path → the path of the block standing for it."""

    def standing(self, path: str) -> str:
        """Module `path`, or its counterpart in the block standing for the one it lies in."""
        at = path
        while at:
            if at in self.left_out:
                return self.standing(self.left_out[at] + path[len(at) :])
            at = at.rpartition(".")[0]
        return path


def draw_once(union: Graph, diff: GraphDiff) -> Once:
    """`union` (`diffpaint.union_graph(diff)`) with each run of repeated blocks drawn once."""
    groups = repeated_changes(
        [e.to_dict() for e in diff.entries], [e.to_dict() for e in diff.edges]
    )
    if not groups:
        return Once(union, {}, {})
    inside = _inside(union, {p for g in groups for p in g.paths})
    rank = _rank(union)
    repeats: dict[str, Repeat] = {}
    left_out: dict[str, str] = {}  # a left-out block → the block standing for it
    for group in groups:
        if _in_any(group.parent, left_out):
            continue
        for run in _runs(union, group, inside, rank):
            title = Paint(repeats=repeats).shown(run.title)
            repeats[run.paths[0]] = Repeat(title, len(run.indices))
            left_out.update(dict.fromkeys(run.paths[1:], run.paths[0]))
    return _without(union, inside, repeats, left_out)


def _inside(graph: Graph, blocks: set[str]) -> dict[str, list[Node]]:
    """The nodes inside each of `blocks`, in graph order."""
    found: dict[str, list[Node]] = {block: [] for block in blocks}
    for node in graph.nodes:
        path = transform.owner(node)
        while path:
            if path in found:
                found[path].append(node)
            path = path.rpartition(".")[0]
    return found


def _rank(graph: Graph) -> dict[str, int]:
    """A topological position per node (graph order if the union has a cycle)."""
    try:
        order = list(networkx.topological_sort(graph.nx))
    except networkx.NetworkXUnfeasible:
        order = [n.id for n in graph.nodes]
    return {node_id: i for i, node_id in enumerate(order)}


def _runs(
    graph: Graph, group: Siblings, inside: Mapping[str, list[Node]], rank: Mapping[str, int]
) -> list[Siblings]:
    """The parts of `group` drawn as one: blocks drawn alike, added in index order while
    merging them closes no cycle."""
    alike: dict[str, list[int]] = {}
    for index, path in zip(group.indices, group.paths, strict=True):
        alike.setdefault(_look(graph, path, inside[path]), []).append(index)
    runs: list[Siblings] = []
    for indices in alike.values():
        run: list[int] = []
        for index in indices:
            ids = {n.id for i in [*run, index] for n in inside[group.only([i]).paths[0]]}
            if run and _closes_cycle(graph, ids, rank):
                runs.append(group.only(run))
                run = []
            run.append(index)
        runs.append(group.only(run))
    return [run for run in runs if len(run.indices) > 1]


def _look(graph: Graph, block: str, nodes: Sequence[Node]) -> str:
    """What a drawing of `block` shows, written relative to it."""
    ids = {n.id for n in nodes}
    drawn = [
        [
            relative(n.id, block),
            n.kind,
            n.op,
            relative(n.args, block),
            n.spec,
            relative(n.module, block),
        ]
        for n in nodes
    ]
    wires = [
        [relative(e.source, block), relative(e.target, block), list(e.slots)]
        for n in nodes
        for e in graph.in_edges(n.id)
        if e.source in ids
    ]
    modules = [
        [relative(m.path, block), m.cls, dict(m.hparams), dict(m.parameters)]
        for m in graph.modules.values()
        if is_within(m.path, block)
    ]
    return json.dumps([drawn, wires, modules], sort_keys=True, default=str)


def _closes_cycle(graph: Graph, ids: set[str], rank: Mapping[str, int]) -> bool:
    """Whether a path leaves `ids` and comes back (then drawing them as one makes a loop)."""
    last = max((rank[i] for i in ids), default=-1)
    stack = [s for i in ids for s in graph.successors(i) if s not in ids]
    seen: set[str] = set()
    while stack:
        node_id = stack.pop()
        if node_id in seen or rank[node_id] > last:  # after every block node: cannot come back
            continue
        seen.add(node_id)
        for successor in graph.successors(node_id):
            if successor in ids:
                return True
            stack.append(successor)
    return False


def _without(
    union: Graph,
    inside: Mapping[str, list[Node]],
    repeats: dict[str, Repeat],
    left_out: dict[str, str],
) -> Once:
    runs: dict[str, dict[str, str]] = {}  # node → {standing block of a run: its block in it}
    for block, standing in [*left_out.items(), *((s, s) for s in repeats)]:
        for node in inside[block]:
            runs.setdefault(node.id, {})[standing] = block
    names: dict[str, str] = {}
    for block, standing in left_out.items():
        for node in inside[block]:
            names[node.id] = standing + node.id[len(block) :]
    for node_id, name in names.items():
        while name in names:  # a block left out inside a block left out
            name = names[name]
        names[node_id] = name
    edges: dict[tuple[str, str], Edge] = {}
    for edge in union.edges:
        source, target = runs.get(edge.source, {}), runs.get(edge.target, {})
        if any(target.get(standing, block) != block for standing, block in source.items()):
            continue  # one block of a run feeding another
        ends = names.get(edge.source, edge.source), names.get(edge.target, edge.target)
        if ends[0] != ends[1]:
            edges.setdefault(ends, Edge(*ends, edge.slots))
    nodes = [n for n in union.nodes if n.id not in names]
    modules = [m for m in union.modules.values() if not _in_any(m.path, left_out)]
    return Once(union.replace(nodes, edges.values(), modules), names, repeats, left_out)


def _in_any(path: str, blocks: Mapping[str, str]) -> bool:
    """Whether module `path` is one of `blocks` or lies inside one."""
    while path:
        if path in blocks:
            return True
        path = path.rpartition(".")[0]
    return False
