"""Pure graph transforms for drawing: select a submodule, collapse by depth or by path prefix.

Each function takes a `Graph` and returns a new one; the input is never changed. The CLI applies
them in the order `select` (-l), `collapse_depth` (-d), `collapse_prefixes` (-c).

A collapsed node stands for every op a module ran: it is a `module` node whose `module` is the
module's path, whose label shows the class, path and summed parameters, and whose
`meta["collapsed"]` counts the ops it replaces. Edges crossing its boundary are kept (argument
slots merged) and still carry their tensor specs. Collapsing never merges things that were apart:
two calls of a shared module, or a module whose ops fall into separate pieces, become separate
nodes (`block`, `block:1`), and a node id already taken gets the next free suffix.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from nnviz import bookkeeping
from nnviz.collapsing import collapsed_node, collapsed_pieces, ops_in, owner, summed_cost
from nnviz.errors import SelectionError
from nnviz.graph import Edge, Graph, Node, is_within, path_depth
from nnviz.values import Value

Placement = Callable[[Node], "str | None"]
"""Maps a node to the module path it collapses into, or None to keep it."""


def _closest(graph: Graph, path: str) -> str:
    candidates = [p for p in graph.modules if p]
    close = difflib.get_close_matches(path, candidates, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(close) + "?"
    top = [m.path for m in graph.children(str(graph.meta.get("layer") or ""))][:8]
    return "top-level modules: " + (", ".join(top) if top else "(none)")


def _require_module(graph: Graph, path: str, what: str) -> None:
    if path not in graph.modules or path == "":
        raise SelectionError(
            f"{what} {path!r}: no such module in {graph.name}; {_closest(graph, path)}"
        )


# --- select ----------------------------------------------------------------------------------


def select(graph: Graph, layer: str) -> Graph:
    """Keep only module `layer` (a dotted path) and everything it contains.

    Edges entering it come from new input nodes (`input:x`, or `input:x0`, `input:x1`, ... when
    several outside values enter, each with `meta["source"]` naming the outside node); edges
    leaving it go to one new `output` node. Module paths are unchanged; `meta["layer"]` records
    the selection. `SelectionError` (with close matches) when no module has that path.
    """
    if layer == "":
        return graph
    _require_module(graph, layer, "layer")
    inside = [n for n in graph.nodes if (o := owner(n)) is not None and is_within(o, layer)]
    if not inside:
        raise SelectionError(f"layer {layer!r} of {graph.name} is never called in forward()")
    kept = {n.id for n in inside}
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    edges = sorted(graph.edges, key=lambda e: (order[e.target], order[e.source]))
    sources = _unique(e.source for e in edges if e.target in kept and e.source not in kept)
    producers = _unique(e.source for e in edges if e.source in kept and e.target not in kept)

    names = ["x"] if len(sources) == 1 else [f"x{i}" for i in range(len(sources))]
    inputs: dict[str, Node] = {}
    for source, name in zip(sources, names, strict=True):
        in_spec = next(
            (graph.edge_value(e.source, e.target) for e in edges if e.source == source), None
        )
        node_id = _free_id(f"input:{name}", kept)  # a snapshot may hold any id
        inputs[source] = Node(node_id, "input", name, spec=in_spec, meta={"source": source})
    new_edges = [
        Edge(inputs[e.source].id if e.source in inputs else e.source, e.target, e.slots)
        for e in edges
        if e.target in kept and (e.source in kept or e.source in inputs)
    ]
    nodes = [*inputs.values(), *inside]
    if producers:
        out_specs = [
            next(
                graph.edge_value(e.source, e.target)
                for e in edges
                if e.source == p and e.target not in kept
            )
            for p in producers
        ]
        single = len(producers) == 1
        out_spec: Value | None = out_specs[0] if single else {"$tuple": out_specs}
        if all(s is None for s in out_specs):
            out_spec = None
        output = _free_id("output", kept)
        nodes.append(Node(output, "output", "output", spec=out_spec))
        for i, producer in enumerate(producers):
            new_edges.append(Edge(producer, output, ("0",) if single else (f"0.{i}",)))
    modules = [m for m in graph.modules.values() if is_within(m.path, layer)]
    return Graph(nodes, new_edges, modules, {**graph.meta, "layer": layer}, sources=graph.sources)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- collapse --------------------------------------------------------------------------------


def check_depth(depth: int) -> None:
    """`SelectionError` unless `depth` is -1 (fully expanded) or 1 or more."""
    if depth != -1 and depth < 1:
        raise SelectionError(f"depth {depth}: use -1 (fully expanded) or a depth of 1 or more")


def collapse_depth(graph: Graph, depth: int) -> Graph:
    """Collapse every module nested deeper than `depth` levels (counted from the drawn root:
    the model, or the layer `select` kept) into one node per module at that depth.

    `-1` keeps everything expanded. Function calls count one level below their module, so with
    depth 2 resnet18 shows `layer1.0` as a node inside the `layer1` cluster.
    """
    check_depth(depth)
    if depth == -1:
        return graph
    base = path_depth(str(graph.meta.get("layer") or ""))
    limit = base + depth

    def place(node: Node) -> str | None:
        path = owner(node)
        if path is None:
            return None
        level = path_depth(path) + (0 if node.kind == "module" else 1)
        if level <= limit:
            return None
        return ".".join(path.split(".")[:limit])

    return _collapse(graph, place)


def collapse_prefixes(graph: Graph, prefixes: Sequence[str]) -> Graph:
    """Collapse each named module (dotted path) into one node; the outermost of nested ones wins.

    `SelectionError` (with close matches) for a prefix that names no module.
    """
    if not prefixes:
        return graph
    for prefix in prefixes:
        _require_module(graph, prefix, "collapse prefix")
    ordered = sorted(dict.fromkeys(prefixes), key=lambda p: (path_depth(p), p))

    def place(node: Node) -> str | None:
        path = owner(node)
        if path is None:
            return None
        return next((p for p in ordered if is_within(path, p)), None)

    return _collapse(graph, place)


MAX_OPS = 60
"""Default `fold_runs` limit: a drawn scope with more ops than this shows them as runs."""


def apply(
    graph: Graph,
    *,
    layer: str | None = None,
    depth: int = 2,
    collapse: Sequence[str] = (),
    fold: bool = True,
    max_ops: int = MAX_OPS,
) -> Graph:
    """What `nnviz draw` shows: `select`, `collapse_depth`, `collapse_prefixes`, then (with
    `fold`) the scalar bookkeeping folded into its consumers and `fold_runs(max_ops)`."""
    if layer:
        graph = select(graph, layer)
    graph = collapse_prefixes(collapse_depth(graph, depth), collapse)
    if fold:
        graph = bookkeeping.fold(graph)
    return fold_runs(graph, max_ops)


def fold_runs(graph: Graph, max_ops: int = MAX_OPS) -> Graph:
    """In every scope that draws more than `max_ops` function/method nodes, replace each run of
    two or more of its ops that follow each other in trace order by one node (`rpn.ops`, kind
    `function`, op `ops`) counting them (`meta["collapsed"]`) and naming the commonest
    (`meta["summary"]`). A detector's post-processing (thousands of box-indexing ops in one
    `forward`) then reads as a few steps between its modules, and lays out in seconds. Likewise
    a scope drawing more than `max_ops` collapsed modules of one class shows each run of them
    as one node (`stage0.blocks`: `stage0.0 … stage0.99 · 100 × Block`).

    A run is contiguous in trace order, so no data path leaves it and comes back: merging it
    makes no cycle. `max_ops` -1 keeps every op."""
    if max_ops < 0:
        return graph
    counts: dict[tuple[str, ...], int] = {}
    for node in graph.nodes:
        counts[_run_key(node)] = counts.get(_run_key(node), 0) + 1
    crowded = {key for key, n in counts.items() if key and n > max_ops}
    if not crowded:
        return graph
    runs: list[list[Node]] = []
    for node in graph.nodes:
        key = _run_key(node)
        if key not in crowded:
            runs.append([])
        elif runs and runs[-1] and _run_key(runs[-1][-1]) == key:
            runs[-1].append(node)
        else:
            runs.append([node])
    runs = [run for run in runs if len(run) > 1]
    grouped = {n.id for run in runs for n in run}
    taken = {n.id for n in graph.nodes if n.id not in grouped}
    rename: dict[str, str] = {}
    merged: dict[str, Node] = {}
    for run in runs:
        kind = "ops" if run[0].kind != "module" else "blocks"
        new_id = _free_id(f"{run[0].scope}.{kind}" if run[0].scope else kind, taken)
        taken.add(new_id)
        merged[new_id] = _run_node(new_id, run) if kind == "ops" else _block_run(new_id, run)
        rename.update((n.id, new_id) for n in run)
    return _rebuild(graph, rename, merged)


def _run_key(node: Node) -> tuple[str, ...]:
    """What may share a run: ops of one scope, or collapsed modules of one class in one scope
    (a stage of 100 identical blocks); `()` for what never does."""
    if node.kind in ("function", "method"):
        return ("ops", node.scope)
    if node.kind == "module" and node.meta.get("collapsed"):
        return ("blocks", node.scope, node.op)
    return ()


def _block_run(node_id: str, run: list[Node]) -> Node:
    """`stage0.0 … stage0.99`: consecutive collapsed blocks of one class as one node."""
    count = sum(ops_in(n) for n in run)
    summary = f"{run[0].id} … {run[-1].id} · {len(run)} × {run[0].title}"
    meta = {"collapsed": count, "summary": summary, "blocks": len(run)}
    return Node(
        node_id, "function", run[0].op, scope=run[0].scope, meta=meta, cost=summed_cost(run)
    )


def _run_node(node_id: str, run: list[Node]) -> Node:
    tally: dict[str, int] = {}
    for node in run:
        tally[node.title] = tally.get(node.title, 0) + ops_in(node)
    common = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
    summary = " · ".join(f"{name} ×{n}" for name, n in common[:4])
    if len(common) > 4:
        summary += " · …"
    meta = {"collapsed": sum(tally.values()), "summary": summary}
    return Node(node_id, "function", "ops", scope=run[0].scope, meta=meta, cost=summed_cost(run))


def _collapse(graph: Graph, place: Placement) -> Graph:
    groups: dict[str, list[Node]] = {}
    for node in graph.nodes:
        target = place(node)
        # A module's own (uncollapsed) call is already one node: nothing to merge.
        if target is not None and not (
            node.kind == "module" and node.module == target and not node.meta.get("collapsed")
        ):
            groups.setdefault(target, []).append(node)
    if not groups:
        return graph
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    grouped = {n.id for members in groups.values() for n in members}
    taken = {n.id for n in graph.nodes if n.id not in grouped}
    rename: dict[str, str] = {}
    pieces: dict[str, tuple[str, list[Node]]] = {}
    for target, members in groups.items():
        for component in collapsed_pieces(graph, members, order):
            new_id = _free_id(target, taken)
            taken.add(new_id)
            pieces[new_id] = (target, [graph.node(i) for i in component])
            for old in component:
                rename[old] = new_id

    merged = {
        new_id: collapsed_node(graph, new_id, target, members)
        for new_id, (target, members) in pieces.items()
    }
    return _rebuild(graph, rename, merged)


def _rebuild(graph: Graph, rename: Mapping[str, str], merged: Mapping[str, Node]) -> Graph:
    """`graph` with the nodes `rename` maps replaced by the `merged` node they map to, at the
    place of their first member; edges between merged members vanish, boundary edges merge
    their slots and keep what flowed on them."""
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    nodes: list[Node] = []
    emitted: set[str] = set()
    for node in graph.nodes:
        new_id = rename.get(node.id, node.id)
        if new_id in emitted:
            continue
        emitted.add(new_id)
        nodes.append(merged.get(new_id, node))

    slots: dict[tuple[str, str], list[str]] = {}
    out_specs: dict[str, dict[str, Value]] = {}
    for edge in sorted(graph.edges, key=lambda e: (order[e.target], order[e.source])):
        u, v = rename.get(edge.source, edge.source), rename.get(edge.target, edge.target)
        if u == v:
            continue
        kept = slots.setdefault((u, v), [])
        kept.extend(s for s in edge.slots if s not in kept)
        out_specs.setdefault(u, {}).setdefault(v, graph.edge_value(edge.source, edge.target))
    nodes = [_with_edge_specs(n, out_specs.get(n.id, {})) for n in nodes]
    edges = [Edge(u, v, tuple(s)) for (u, v), s in slots.items()]
    return Graph(nodes, edges, graph.modules.values(), graph.meta, sources=graph.sources)


def _free_id(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    k = 1
    while f"{base}:{k}" in taken:
        k += 1
    return f"{base}:{k}"


def _with_edge_specs(node: Node, specs: dict[str, Value]) -> Node:
    """Give a collapsed node (or one that already had per-target specs) its outgoing specs."""
    if not node.meta.get("collapsed") and "edge_specs" not in node.meta:
        return node
    meta: dict[str, Any] = {k: v for k, v in node.meta.items() if k != "edge_specs"}
    distinct: list[Value] = []
    for spec in specs.values():
        if spec not in distinct:
            distinct.append(spec)
    spec = distinct[0] if distinct else None
    if len(distinct) > 1:
        meta["edge_specs"] = dict(specs)
    return dataclasses.replace(node, spec=spec, meta=meta)
