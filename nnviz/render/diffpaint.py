"""The highlighted diff drawing: one union graph of old and new, painted by status.

Added nodes are green, removed ones red and dashed, changed ones orange with `old → new` lines,
renamed ones blue with their old name, unchanged ones grey. Unchanged regions are folded: every
module holding nothing within `context` hops of a change becomes one node (the largest such
module wins), and a chain of three or more folded sibling blocks of one class (the 30 untouched
Bottlenecks of a resnet stage), of ops beyond the context (a long flat Sequential) or of layers
only moved (renumbered after an insert into a flat Sequential: vgg16 -> vgg19) becomes one node
too. `context=-1` draws everything. Sibling blocks with the same changes are drawn once
before folding (`nnviz.render.repeats`).
Built on the drawing stage's `to_dot` + `Paint` and `nnviz.transform.collapse_prefixes`; never
imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nnviz import collapsing, transform
from nnviz.diffing.blocks import within
from nnviz.diffing.changelog import headline
from nnviz.diffing.model import GraphDiff, NodeDiff
from nnviz.diffing.palette import PALETTE
from nnviz.diffing.wording import describe_change
from nnviz.graph import Edge, Graph, Module, Node, parent_path
from nnviz.render.paint import EdgePaint, NodePaint, Paint

if TYPE_CHECKING:
    from nnviz.render.repeats import Once

COLOURS: Mapping[str, tuple[str, str]] = {
    status: (c.fill, c.line) for status, c in PALETTE.items() if status != "unchanged"
}
"""Fill and border colour per status; unchanged nodes are drawn dimmed (grey)."""
_EDGE_LINES: dict[str, dict[str, Any]] = {
    "added": {"penwidth": 2.0},
    "removed": {"line": "dashed"},
    "changed": {},
}
FOLLOWER_FILL = "#fffaf5"
"""Fill of a changed node whose changes all follow another change (a shape, a rewired input)."""
_MAX_LINES = 4
_CONTAINERS = frozenset({"torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict"})
"""Generic containers hold different stages (resnet's layer1 ... layer4): never merged."""
_RUN = 3


def union_graph(diff: GraphDiff) -> Graph:
    """Old and new as one graph named by union names (see `NodeDiff.name`)."""
    old_nodes = {n.id: n for n in diff.old.nodes}
    new_nodes = {n.id: n for n in diff.new.nodes}
    nodes, modules = [], {}
    for e in diff.entries:
        before = old_nodes.get(e.old_name) if e.old_name is not None else None
        after = new_nodes.get(e.name) if e.status != "removed" else None
        source = after or before
        if e.flow and source is not None:
            nodes.append(
                Node(e.name, source.kind, source.op, e.scope, e.path, source.args, source.spec)
            )
        path = e.path if e.path is not None else e.name
        if e.params is not None and path not in modules:  # a module-tree entry
            removed = e.status == "removed"
            tree = diff.old.modules if removed else diff.new.modules
            own = tree.get((e.old_name or path) if removed else path)
            hparams = own.hparams if own is not None else {}
            modules[path] = Module(path, e.op, e.params, hparams)
    names = {n.id for n in nodes}
    edges = [
        Edge(edge.source, edge.target)
        for edge in diff.edges
        if edge.source in names and edge.target in names
    ]
    sources = {e.name: diff.new.sources[e.name] for e in diff.entries if e.status != "removed"
               and e.name in diff.new.sources}  # fmt: skip
    return Graph(nodes, edges, modules.values(), {"name": _title(diff)}, sources=sources)


def _title(diff: GraphDiff) -> str:
    old, new = diff.old.name, diff.new.name
    return f"{old} → {new}" if old != new else f"{new}: diff"


def paint_for(diff: GraphDiff, once: Once | None = None) -> Paint:
    """The per-node and per-edge overrides for the union graph (`once`: with repeated blocks
    drawn once, see `nnviz.render.repeats`)."""
    names = once.names if once is not None else {}
    nodes: dict[str, NodePaint] = {}
    for e in diff.entries:
        if e.status == "unchanged":
            continue  # a module-tree entry (a container, a traced-through module) paints the
        fill, border = COLOURS[e.status]  # node it collapses into, or its cluster's frame
        # only follows a change elsewhere, or information only: painted lighter
        light = e.propagated or not counts(diff, e)
        nodes[e.name] = NodePaint(
            fill=FOLLOWER_FILL if light else fill,
            border=border,
            line="dashed" if e.status == "removed" else None,
            penwidth=1.2 if light else 2.0,
            lines=_lines(e, _standing(e.name, once)),
            badge=_badge(diff, e),
        )
    edges: dict[tuple[str, str], EdgePaint] = {}
    for edge in diff.edges:
        if edge.status in _EDGE_LINES:
            ends = names.get(edge.source, edge.source), names.get(edge.target, edge.target)
            edges.setdefault(
                ends, EdgePaint(color=PALETTE[edge.status].line, **_EDGE_LINES[edge.status])
            )
    repeats = once.repeats if once is not None else {}
    return Paint(nodes, edges, subtitle=headline(diff.to_dict()), dim=True, repeats=repeats)


def _standing(name: str, once: Once | None) -> str | None:
    """The block drawn for several that `name` lies in, if any (the innermost)."""
    if once is None:
        return None
    inside = [path for path in once.repeats if within(name, path)]
    return max(inside, key=len) if inside else None


def counts(diff: GraphDiff, e: NodeDiff) -> bool:
    """Whether entry `e` is drift (information counts only in a strict diff)."""
    return e.drifted or (diff.strict and e.status != "unchanged")


def _badge(diff: GraphDiff, e: NodeDiff) -> str:
    if e.propagated:
        return "follows"
    return e.status if counts(diff, e) else f"{e.status}: {e.info}, not drift"


def _lines(e: NodeDiff, standing: str | None = None) -> tuple[str, ...]:
    """The label lines of entry `e`; in a block drawn for several (`standing`), a change it
    follows outside that block differs per block and is not named."""
    lines = []
    if e.renamed_from is not None:
        lines.append(f"was {e.renamed_from or '(root)'}")
    changes = [(k, c) for k, c in e.changes.items() if not c.propagated]
    lines += [describe_change(k, c.to_dict()) for k, c in changes[:_MAX_LINES]]
    if len(changes) > _MAX_LINES:
        lines.append(f"… {len(changes) - _MAX_LINES} more changes")
    followers = [(k, c) for k, c in e.changes.items() if c.propagated]
    if followers and not changes:
        k, c = followers[0]
        cause = c.cause if standing is None or within(str(c.cause), standing) else "upstream"
        lines.append(f"{describe_change(k, c.to_dict())} (follows {cause})")
    return tuple(lines)


def fold(graph: Graph, diff: GraphDiff, context: int) -> Graph:
    """Collapse the modules that hold no change and no node within `context` hops of one
    (information such as scalar plumbing is a change only in a strict diff, as in the text)."""
    if context < 0:
        return graph
    # an added or removed module is one node, as it is one line of the changelog (its size on
    # it); what it holds is all new or all gone (drawn, it made resnet18 -> 34 15,128 px tall).
    # A consequence (a shape, a rewired input) opens nothing: the context of its cause shows it.
    whole = _whole(diff, graph)
    inner = {n.id for n in graph.nodes if _home(collapsing.owner(n), whole) in whole}
    changed = {e.name for e in diff.entries if e.flow and counts(diff, e) and not e.propagated}
    changed &= {n.id for n in graph.nodes}  # not those of blocks drawn once for several
    reached = set(changed | inner)  # hops are counted from the edge of an added module
    frontier = list(reached)
    undirected = graph.nx.to_undirected(as_view=True)
    for _ in range(context):
        frontier = [m for f in frontier for m in undirected.neighbors(f) if m not in reached]
        reached.update(frontier)
    kept = reached - inner
    # a changed module with no changed op inside (a class swap, same settings) is drawn: its
    # parent is kept open, itself one painted node never merged into a run of unchanged blocks
    modules = {e.name for e in diff.entries if not e.flow and counts(diff, e)}
    modules &= set(graph.modules)
    modules = {p for p in modules if _home(p, whole) == p}
    busy: set[str] = {""}  # the model itself is never folded into one node
    # only a change opens the modules around it; the context shows as the neighbouring
    # modules, each one node never merged into a run (an unchanged block beside an added one
    # is one node, not its insides: each opened block drew a dozen detailed boxes)
    starts = [collapsing.owner(graph.node(node_id)) for node_id in changed - inner]
    for start in [*starts, *(parent_path(p) for p in modules | whole)]:
        path = start
        while path is not None and path not in busy:
            busy.add(path)
            path = parent_path(path)
    kept |= modules
    prefixes = [p for p in graph.modules if p and p not in busy and (parent_path(p) or "") in busy]
    folded = transform.collapse_prefixes(graph, prefixes) if prefixes else graph
    kept |= {
        _home(collapsing.owner(graph.node(n)), set(prefixes)) or n for n in kept & set(graph.nx)
    }
    moved = {e.name: e.renamed_from for e in diff.entries if e.flow and e.status == "renamed"}
    return _merge_runs(folded, set(prefixes), kept, moved)


def carry(paint: Paint, before: Graph, after: Graph) -> Paint:
    """`paint` with the edges of folded nodes moved onto the node they were folded into (a
    new edge into an added block stays green when the block is one node); an edge inside one
    folded node is dropped, and the first paint of several edges that become one wins. A run
    of moved layers is painted renamed, with the old names of its ends."""
    shown = {n.id for n in after.nodes}
    folded = sorted(
        (str(n.module), n.id) for n in after.nodes if n.kind == "module" and n.meta.get("collapsed")
    )
    runs = {m: n.id for n in after.nodes for m in n.meta.get("members", ())}

    def home(name: str) -> str:
        if name in shown or name not in before:
            return name
        if name in runs:
            return runs[name]
        path = collapsing.owner(before.node(name)) or ""
        return next((i for m, i in reversed(folded) if path == m or path.startswith(m + ".")), name)

    edges: dict[tuple[str, str], EdgePaint] = {}
    for (source, target), edge in paint.edges.items():
        ends = home(source), home(target)
        if ends[0] != ends[1]:
            edges.setdefault(ends, edge)
    nodes = dict(paint.nodes)
    for node in after.nodes:
        if "moved" in node.meta:
            was = " … ".join(str(n or "(root)") for n in node.meta["moved"])
            fill, border = COLOURS["renamed"]
            nodes[node.id] = NodePaint(fill, border, None, 2.0, (f"was {was}",), "renamed")
    return replace(paint, nodes=nodes, edges=edges)


def _whole(diff: GraphDiff, graph: Graph) -> set[str]:
    """The outermost added or removed modules of the drawing (each drawn as one node)."""
    paths = {
        e.name
        for e in diff.entries
        if not e.flow and e.status in ("added", "removed") and counts(diff, e) and e.name
    }
    paths &= set(graph.modules)
    return {p for p in paths if not any(within(p, q) and p != q for q in paths)}


def _home(path: str | None, whole: set[str]) -> str | None:
    """The added or removed module `path` lies in (itself included), else `path`."""
    if path is None:
        return None
    return next((w for w in whole if path == w or path.startswith(w + ".")), path)


def _merge_runs(
    graph: Graph, folded: set[str], kept: set[str], moved: Mapping[str, str | None]
) -> Graph:
    """Chains of >= 3 nodes, a -> b -> c with nothing else in or out between, in one scope,
    become one node: folded sibling blocks of one class (not a generic container), ops beyond
    the context (a long flat Sequential), or layers only moved (`moved`: new name -> old; the
    later layers of a flat Sequential after an insert, each renumbered)."""
    nodes = graph.nodes
    kinds: dict[str, str] = {}
    for n in nodes:
        if n.id in moved:
            kinds[n.id] = "moved"
        elif n.meta.get("collapsed"):
            if n.module in folded and n.op not in _CONTAINERS and n.module not in kept:
                kinds[n.id] = f"block {n.op}"
        elif n.id not in kept and n.kind in ("module", "function", "method"):
            kinds[n.id] = "op"
    runs: dict[str, list[str]] = {}
    taken: set[str] = set()
    for node in nodes:
        kind = kinds.get(node.id)
        if kind is None or node.id in taken:
            continue
        run = [node.id]
        while True:
            succ = graph.successors(run[-1])
            if len(succ) != 1 or succ[0] in taken or kinds.get(succ[0]) != kind:
                break
            if graph.predecessors(succ[0]) != [run[-1]] or graph.node(succ[0]).scope != node.scope:
                break
            run.append(succ[0])
        if len(run) >= _RUN:
            runs[run[0]] = run
            taken.update(run)
    if not runs:
        return graph
    rename = {member: f"{run[0]} … {run[-1]}" for run in runs.values() for member in run}
    out_nodes: list[Node] = []
    for node in nodes:
        if node.id not in rename:
            out_nodes.append(node)
        elif node.id in runs:
            members = [graph.node(m) for m in runs[node.id]]
            meta: dict[str, Any] = {"collapsed": sum(collapsing.ops_in(m) for m in members)}
            meta["members"] = tuple(runs[node.id])
            if kinds[node.id] == "moved":
                meta["moved"] = (moved[members[0].id], moved[members[-1].id])
            title = "moved layers" if "moved" in meta else _run_title(graph, members)
            out_nodes.append(Node(rename[node.id], "module", title, node.scope, None, meta=meta))
    edges: dict[tuple[str, str], Edge] = {}
    for edge in graph.edges:
        u, v = rename.get(edge.source, edge.source), rename.get(edge.target, edge.target)
        if u != v:
            edges.setdefault((u, v), Edge(u, v, edge.slots))
    return Graph(
        out_nodes, edges.values(), graph.modules.values(), graph.meta, sources=graph.sources
    )


def _run_title(graph: Graph, members: list[Node]) -> str:
    """The qualified class of a run of blocks, or the op of ops that are all alike (the label
    shows its last part as the title); else `unchanged ops`."""
    first = members[0]
    if any(m.op != first.op for m in members):
        return "unchanged ops"
    module = graph.module_of(first)
    return module.cls if module is not None else first.op
