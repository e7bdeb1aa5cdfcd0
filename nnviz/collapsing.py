"""What a collapsed module stands for: which module a node collapses into (`owner`), the
pieces one module's nodes collapse into (one per call, split by connectivity), the node each
piece becomes (`collapsed_node`: class, summed cost, `meta["collapsed"]` ops) and the residual
connections it hides (`skips`). `nnviz.transform` collapses with them; the diff drawing and the
HTML view build the same nodes from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnviz import costs
from nnviz.graph import Graph, Node, parent_path


def owner(node: Node) -> str | None:
    """The module path a node belongs to for collapsing: a module node's own path, an op's scope;
    None for inputs and outputs (never collapsed)."""
    if node.kind == "module":
        return node.module
    if node.kind in ("function", "method"):
        return node.scope
    return None


def collapsed_pieces(
    graph: Graph, members: list[Node], order: Mapping[str, int]
) -> list[list[str]]:
    """The ids of each node that `members` (one module's nodes, in graph order; `order` is every
    node's index) collapse into: one per call, each split into its connected parts."""
    return sorted(
        (
            sorted(c, key=order.__getitem__)
            for call in _calls(members, order)
            for c in connected_pieces(graph, call)
        ),
        key=lambda c: order[c[0]],
    )


def connected_pieces(graph: Graph, ids: list[str]) -> list[list[str]]:
    """The weakly connected pieces of the subgraph on `ids` (each in first-seen order)."""
    inside = set(ids)
    seen: set[str] = set()
    pieces: list[list[str]] = []
    for start in ids:
        if start in seen:
            continue
        seen.add(start)
        piece, stack = [], [start]
        while stack:
            current = stack.pop()
            piece.append(current)
            for other in (*graph.predecessors(current), *graph.successors(current)):
                if other in inside and other not in seen:
                    seen.add(other)
                    stack.append(other)
        pieces.append(piece)
    return pieces


def _calls(members: list[Node], order: Mapping[str, int]) -> list[list[str]]:
    """Members split where other nodes ran between them: one call of a module runs its ops one
    after another, so a recurrent block called twelve times (RAFT) stays twelve nodes, even
    though each call's output feeds the next call directly."""
    calls: list[list[str]] = []
    previous = -2
    for node in members:  # in graph order
        if order[node.id] != previous + 1:
            calls.append([])
        calls[-1].append(node.id)
        previous = order[node.id]
    return calls


def ops_in(node: Node) -> int:
    """How many traced ops `node` stands for: 1, a collapsed node's count, times
    `meta["times"]` on a node drawn once for several (a diff's repeated blocks)."""
    return int(node.meta.get("collapsed", 1)) * int(node.meta.get("times", 1))


def collapsed_node(graph: Graph, node_id: str, target: str, members: list[Node]) -> Node:
    """The node `node_id` standing for `members`, the ops module `target` ran (one piece).

    `meta["skips"]` lists the residual connections it hides (see `skips`), so that a drawing
    still shows that a collapsed ResNet block is residual."""
    module = graph.modules.get(target)
    meta: dict[str, Any] = {"collapsed": sum(ops_in(m) for m in members)}
    hidden = skips(graph, members, target)
    if hidden:
        meta["skips"] = hidden
    return Node(
        node_id,
        "module",
        module.cls if module is not None else target,
        scope=parent_path(target) or "",
        module=target,
        meta=meta,
        cost=summed_cost(members),
    )


# --- what a collapsed module hides -----------------------------------------------------------

_ADDS = frozenset({"add", "add_", "iadd", "__add__", "__iadd__"})


def skips(graph: Graph, members: list[Node], target: str) -> list[str]:
    """The residual connections among the ops of module `target`: per `add` whose two operands
    fork from one value (inside the module or entering it), `identity` when one operand is
    that value (a ResNet block, a transformer layer), else the module below `target` that the
    shorter path runs through (`downsample`), or `branch`. Members that are collapsed modules
    already contribute their own list."""
    inside = {n.id for n in members}
    region = inside | {p for i in inside for p in graph.predecessors(i)}
    found: list[str] = []
    for node in members:
        found.extend(node.meta.get("skips", ()))
        if node.kind in ("function", "method") and node.op.rsplit(".", 1)[-1] in _ADDS:
            skip = _skip(graph, region, node.id, target)
            if skip:
                found.append(skip)
    return found


def _skip(graph: Graph, region: set[str], add: str, target: str) -> str | None:
    operands = graph.predecessors(add)
    if len(operands) != 2:
        return None
    up = [_upstream(graph, region, o) for o in operands]
    if operands[0] in up[1] or operands[1] in up[0]:
        return "identity"
    if not up[0] & up[1]:
        return None  # two values that never met: a sum, not a skip
    paths = sorted((up[0] - up[1], up[1] - up[0]), key=len)
    if len(paths[0]) == len(paths[1]):
        return "branch"  # two alike paths: neither is the skip
    branch = paths[0]
    common = _common_module([owner(graph.node(i)) or "" for i in sorted(branch)])
    return common[len(target) + 1 :] if common.startswith(target + ".") else "branch"


def _upstream(graph: Graph, region: set[str], start: str) -> set[str]:
    """`start` and every node of `region` it is computed from (within `region`)."""
    seen, stack = {start}, [start]
    while stack:
        for pred in graph.predecessors(stack.pop()):
            if pred in region and pred not in seen:
                seen.add(pred)
                stack.append(pred)
    return seen


def _common_module(paths: list[str]) -> str:
    """The longest module path that holds every one of `paths`."""
    common: list[str] = []
    for level in zip(*(path.split(".") for path in paths), strict=False):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    return ".".join(common)


def summed_cost(nodes: list[Node]) -> dict[str, Any] | None:
    """The cost of nodes drawn as one (None when none has one)."""
    return costs.node_cost_dict(costs.add(n.cost for n in nodes))
