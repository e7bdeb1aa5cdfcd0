"""Sibling blocks with the same changes drawn once: `blocks.{0..11} ×12` instead of twelve
identical highlighted blocks.

Which blocks carry the same changes is decided by `nnviz.diffing.blocks.repeated_changes` (the
rule the text shares). The drawing then keeps, of each such group, the runs of blocks that are
also drawn alike (the same ops, arguments, shapes, module settings and inner wiring, written
relative to the block: `layer2.0` with its downsample is not drawn for `layer2.1`) and whose
merging closes no cycle (`blocks.0` and `blocks.2` with an unchanged `blocks.1` between them stay
apart). The first block of a run stands for the run; the others' nodes are left out, an edge from
or to them is drawn from or to the standing block's counterpart, and edges between two blocks of
the run (one block feeding the next) are left out. Only blocks drawn as clusters (containers,
not a leaf module such as `conv1`) are drawn once. Outer groups first: a group inside a left-out
block is left out with it; one inside the standing block reads with both titles
(`stages.{0,1}.blocks.{0..2}`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import networkx

from nnviz import collapsing
from nnviz.diffing.blocks import Siblings, prefixes, relative, repeated_changes
from nnviz.diffing.model import GraphDiff
from nnviz.graph import Edge, Graph, Module, Node
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

    def standing(self, name: str) -> str:
        """Node id or module path `name`, or its counterpart in the block standing for the one
        it lies in."""
        return _resolve(name, self.repeats, self.left_out)[0]


def draw_once(union: Graph, diff: GraphDiff) -> Once:
    """`union` (`diffpaint.union_graph(diff)`) with each run of repeated blocks drawn once."""
    groups = repeated_changes([e.to_dict() for e in diff.entries])
    if not groups:
        return Once(union, {}, {})
    blocks = {p for g in groups for p in g.paths}
    inside, modules = _inside(union, blocks), _modules(union, blocks)
    rank = _rank(union)
    repeats: dict[str, Repeat] = {}
    left_out: dict[str, str] = {}  # a left-out block → the block standing for it
    for group in groups:
        if _resolve(group.parent, {}, left_out)[0] != group.parent:
            continue  # inside a left-out block
        if any(n.kind == "module" and n.module in group.paths for n in inside[group.paths[0]]):
            continue  # leaves (conv1, conv2): one box has no title to carry the ×N
        looks = {p: _look(union, p, inside[p], modules[p]) for p in group.paths}
        for run in _runs(union, group, looks, inside, rank):
            title = Paint(repeats=repeats).shown(run.title)
            outer = _resolve(group.parent, repeats, left_out)[1]  # the blocks drawn once around
            times = math.prod(repeats[s].count for s in outer) * len(run.indices)
            repeats[run.paths[0]] = Repeat(title, len(run.indices), times)
            left_out.update(dict.fromkeys(run.paths[1:], run.paths[0]))
    return _without(union, repeats, left_out)


def _inside(graph: Graph, blocks: set[str]) -> dict[str, list[Node]]:
    """The nodes inside each of `blocks`, in graph order."""
    found: dict[str, list[Node]] = {block: [] for block in blocks}
    for node in graph.nodes:
        path = collapsing.owner(node)
        while path:
            if path in found:
                found[path].append(node)
            path = path.rpartition(".")[0]
    return found


def _modules(graph: Graph, blocks: set[str]) -> dict[str, list[Module]]:
    """The modules inside each of `blocks` (each block's own included)."""
    found: dict[str, list[Module]] = {block: [] for block in blocks}
    for module in graph.modules.values():
        path = module.path
        while path:
            if path in found:
                found[path].append(module)
            path = path.rpartition(".")[0]
    return found


def _rank(graph: Graph) -> dict[str, int]:
    """A topological position per node; all 0 if the union has a cycle (then the loop search
    cannot stop early)."""
    try:
        order = list(networkx.topological_sort(graph.nx))
    except networkx.NetworkXUnfeasible:
        return dict.fromkeys((n.id for n in graph.nodes), 0)
    return {node_id: i for i, node_id in enumerate(order)}


def _runs(
    graph: Graph,
    group: Siblings,
    looks: Mapping[str, str],
    inside: Mapping[str, list[Node]],
    rank: Mapping[str, int],
) -> list[Siblings]:
    """The parts of `group` drawn as one: blocks drawn alike (same `looks`), added in index
    order while merging them closes no cycle."""
    alike: dict[str, list[int]] = {}
    for index, path in zip(group.indices, group.paths, strict=True):
        alike.setdefault(looks[path], []).append(index)
    runs: list[Siblings] = []
    for indices in alike.values():
        run: list[int] = []
        ids: set[str] = set()
        exits: set[str] = set()  # successors of the run's nodes outside it
        for index in indices:
            added = {n.id for n in inside[group.only([index]).paths[0]]}
            more = {s for i in added for s in graph.successors(i)}
            if run and _closes_cycle(graph, ids | added, (exits | more) - added, rank):
                runs.append(group.only(run))
                run, ids, exits = [], set(), set()
            run.append(index)
            ids |= added
            exits = (exits | more) - ids
        runs.append(group.only(run))
    return [run for run in runs if len(run.indices) > 1]


def _look(graph: Graph, block: str, nodes: Sequence[Node], modules: Sequence[Module]) -> str:
    """What a drawing of `block` shows, written relative to it: its ops (arguments, shapes),
    inner wiring, module classes and parameter counts, and the settings of the modules drawn as
    nodes (a container's `layer_idx` is never drawn)."""
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
    called = {n.module for n in nodes if n.kind == "module"}  # drawn with their settings
    settings = [
        [relative(m.path, block), m.cls, m.params, dict(m.hparams) if m.path in called else None]
        for m in modules
    ]
    return json.dumps([drawn, wires, settings], sort_keys=True, default=str)


def _closes_cycle(graph: Graph, ids: set[str], exits: set[str], rank: Mapping[str, int]) -> bool:
    """Whether a path leaves `ids` (through `exits`, their successors outside) and comes back:
    then drawing them as one would draw a loop."""
    last = max((rank[i] for i in ids), default=-1)
    stack = list(exits)
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


def _without(union: Graph, repeats: dict[str, Repeat], left_out: dict[str, str]) -> Once:
    names: dict[str, str] = {}
    runs: dict[str, dict[str, str]] = {}  # node → {standing block of a run: its block in it}
    for node in union.nodes:
        name, runs[node.id] = _resolve(node.id, repeats, left_out)
        if name != node.id:
            names[node.id] = name
    edges: dict[tuple[str, str], Edge] = {}
    for edge in union.edges:
        source, target = runs[edge.source], runs[edge.target]
        if any(target.get(standing, block) != block for standing, block in source.items()):
            continue  # one block of a run feeding another
        ends = names.get(edge.source, edge.source), names.get(edge.target, edge.target)
        if ends[0] != ends[1]:
            edges.setdefault(ends, Edge(*ends, edge.slots))
    nodes = [_times(n, runs[n.id], repeats) for n in union.nodes if n.id not in names]
    modules = [m for m in union.modules.values() if _resolve(m.path, {}, left_out)[0] == m.path]
    return Once(union.replace(nodes, edges.values(), modules), names, repeats, left_out)


def _times(node: Node, runs: Mapping[str, str], repeats: Mapping[str, Repeat]) -> Node:
    """`node`, marked with how many nodes it stands for (`meta["times"]`, for op counts)."""
    times = math.prod(repeats[standing].count for standing in runs)
    return replace(node, meta={**node.meta, "times": times}) if times > 1 else node


def _resolve(
    name: str, repeats: Mapping[str, Repeat], left_out: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """`name` (a node id or module path) as drawn: moved into the block standing for each
    left-out block it lies in, outermost first; and for each run it lies in, the block of the
    run it lies in (`{"blocks.0": "blocks.3"}`)."""
    runs: dict[str, str] = {}
    moved = True
    while moved:
        moved = False
        for prefix in prefixes(name):
            if prefix in left_out:
                runs.setdefault(left_out[prefix], prefix)
                name, moved = left_out[prefix] + name[len(prefix) :], True
                break
            if prefix in repeats:
                runs.setdefault(prefix, prefix)
    return name, runs
