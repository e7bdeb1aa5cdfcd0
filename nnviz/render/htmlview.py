"""What the interactive HTML page embeds: the DOT fragments of every expansion state.

The page never builds a label or picks a colour itself. For each op of the fully expanded graph
this module precomputes its DOT node statement; for each module, its cluster attributes (drawn
when expanded) and the node of each piece it collapses into (as `nnviz.transform` collapses:
one node per connected piece); for each edge, its attributes with the tensor shape. All of them
come from `nnviz.render.dot.elements`, the code that writes the PDF. The page then walks the
module tree for the current expansion state and gives the assembled DOT to Graphviz (wasm).

A view is plain JSON (see `model_view` and `diff_view`); `nnviz.render.html` writes it into
the page. Not drawn here, unlike the PDF: buses (a value with many far readers as one trunk) and
the diff drawing's merged runs of unchanged blocks (the page folds whole modules instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import graphviz

from nnviz import collapsing, costs
from nnviz.diffing.changelog import listing, totals
from nnviz.diffing.model import GraphDiff
from nnviz.graph import Graph, Node, parent_path, path_depth
from nnviz.render import labels
from nnviz.render.buses import edge_span
from nnviz.render.diffpaint import COLOURS, counts, fold, paint_for, union_graph
from nnviz.render.dot import LONG_EDGE_BUDGET, cluster_path, elements, shown_graph, to_dot
from nnviz.render.paint import NodePaint, Paint
from nnviz.render.repeats import Once, draw_once
from nnviz.render.style import Style
from nnviz.values import format_value

View = dict[str, Any]


def attr_list(attrs: Mapping[str, str]) -> str:
    """`[label=<...> id="x"]`, quoted exactly as `to_dot` quotes it (graphviz's own writer)."""
    dot = graphviz.Digraph()
    dot.node("x", **attrs)
    line: str = dot.body[0].strip()
    return line[1:].strip()  # drop the placeholder node name


def header(graph: Graph, style: Style, paint: Paint | None) -> str:
    """The `digraph ... {` line and graph/node/edge defaults (title included) of `to_dot`, with
    its cap on Graphviz's x-placement when the expanded graph has dense long edges (densenet):
    the page draws no buses, so any view of such a graph gets the cap."""
    empty = Graph([], [], graph.modules.values(), graph.meta)
    source = to_dot(empty, style, paint)
    head = source[: source.rindex("}")]
    if edge_span(graph) > LONG_EDGE_BUDGET:
        head += "\tgraph [nslimit=1 nslimit1=1]\n"
    return head


def model_view(graph: Graph, style: Style, *, depth: int, collapse: Sequence[str] = ()) -> View:
    """The view of `graph` (already selected by `-l`) opening as `-d depth -c collapse` draws.
    Its ops are those of the fully expanded drawing (scalar bookkeeping folded, crowded scopes
    in runs, as the style says)."""
    first = shown_graph(graph, style, depth=depth, collapse=collapse)
    return _view(shown_graph(graph, style, depth=-1), style, None, first)


def diff_view(diff: GraphDiff, style: Style, *, context: int) -> View:
    """The view of a diff: the union graph painted by status, opening folded around changes."""
    once = draw_once(union_graph(diff), diff)
    union, paint = once.graph, paint_for(diff, once)
    first = fold(union, diff, context)
    view = _view(union, style, paint, first, diff)
    view["changes"] = _changes(diff, once)
    verdict = diff.checkpoint.shown(diff.identical) if diff.checkpoint else []
    view["summary"] = " · ".join([totals(diff.to_dict()), *verdict])  # the header's one line
    view["statuses"] = {status: list(colours) for status, colours in COLOURS.items()}
    return view


def _view(
    graph: Graph, style: Style, paint: Paint | None, first: Graph, diff: GraphDiff | None = None
) -> View:
    leaves = graph.nodes
    index = {n.id: i for i, n in enumerate(leaves)}
    chains = [_chain(graph, n) for n in leaves]
    paths = list(dict.fromkeys(p for chain in chains for p in chain))
    module_index = {p: i for i, p in enumerate(paths)}
    members: dict[str, list[int]] = {p: [] for p in paths}
    for i, chain in enumerate(chains):
        for p in chain:
            members[p].append(i)
    pieces = {p: _pieces(graph, p, [leaves[i] for i in members[p]], index) for p in paths}
    paint = _with_piece_paints(paint, pieces, diff)
    make = elements(graph, style, paint)
    order = sorted(graph.edges, key=lambda e: (index[e.target], index[e.source]))
    shown = {p for n in first.nodes for p in _chain(first, n)}
    base = path_depth(str(graph.meta.get("layer") or ""))
    sums = costs.per_module(graph)
    return {
        "title": graph.name,
        "header": header(graph, style, paint),
        "clusters": style.show_clusters,
        "nodes": [
            {
                "id": n.id,
                "dot": attr_list(make.node_attrs(n)),
                "chain": [module_index[p] for p in chains[i]],
                "info": _node_info(graph, n),
            }
            for i, n in enumerate(leaves)
        ],
        "modules": [
            {
                "path": p,
                "parent": module_index.get(_chain_parent(chains, members, p), -1),
                "depth": path_depth(p) - base,
                "dot": attr_list(make.cluster_attrs(p, _level(chains, members, p))),
                "pieces": [
                    {"id": node.id, "dot": attr_list(make.node_attrs(node)), "members": m}
                    for node, m in pieces[p]
                ],
                "info": _module_info(graph, p, sums.get(p)),
            }
            for p in paths
        ],
        "edges": [
            [index[e.source], index[e.target], attr_list(make.edge_attrs(e.source, e.target))]
            for e in order
        ],
        "expanded": [module_index[p] for p in paths if p in shown],
    }


def _chain(graph: Graph, node: Node) -> list[str]:
    """The drawn modules around `node`, outermost first (the clusters `to_dot` nests it in)."""
    chain: list[str] = []
    path = cluster_path(graph, node)
    while path:
        if path in graph.modules:
            chain.append(path)
        path = parent_path(path)
    return chain[::-1]


def _chain_parent(chains: list[list[str]], members: dict[str, list[int]], path: str) -> str:
    chain = chains[members[path][0]]
    at = chain.index(path)
    return chain[at - 1] if at else ""


def _level(chains: list[list[str]], members: dict[str, list[int]], path: str) -> int:
    return chains[members[path][0]].index(path) + 1


def _pieces(
    graph: Graph, path: str, inside: list[Node], index: dict[str, int]
) -> list[tuple[Node, list[int]]]:
    """The nodes module `path` collapses into, as `transform` collapses it (per call, per
    connected part)."""
    result = []
    for k, component in enumerate(collapsing.collapsed_pieces(graph, inside, index)):
        node_id = path if k == 0 else f"{path}:{k}"
        nodes = [graph.node(i) for i in component]
        piece = collapsing.collapsed_node(graph, node_id, path, nodes)
        result.append((piece, [index[i] for i in component]))
    return result


def _with_piece_paints(
    paint: Paint | None, pieces: dict[str, list[tuple[Node, list[int]]]], diff: GraphDiff | None
) -> Paint | None:
    """A diff's collapsed module that hides changes is painted as changed, with their count."""
    if paint is None or diff is None:
        return paint
    extra: dict[str, NodePaint] = {}
    for entries in pieces.values():
        for node, _members in entries:
            inside = [
                e
                for e in diff
                if e.flow and counts(diff, e) and _within(e.scope, e.name, str(node.module))
            ]  # information inside folds like the unchanged, as in the PDF
            if inside and node.id not in paint.nodes:
                fill, border = COLOURS["changed"]
                badge = f"{len(inside)} change{'s' if len(inside) != 1 else ''} inside"
                extra[node.id] = NodePaint(fill=fill, border=border, penwidth=2.0, badge=badge)
    return Paint({**paint.nodes, **extra}, paint.edges, paint.subtitle, paint.dim, paint.repeats)


def _within(scope: str, name: str, path: str) -> bool:
    return scope == path or scope.startswith(path + ".") or name.startswith(path + ".")


def _node_info(graph: Graph, node: Node) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": node.kind, "op": labels.node_source(node)}
    where = graph.sources.get(node.id)
    if where is not None:  # `model.py:12`: shown, never compared (`Graph.sources`)
        info["source"] = str(where)
    if node.args:
        info["args"] = [[k, format_value(v)] for k, v in node.args.items()]
    if node.spec is not None:
        info["output"] = format_value(node.spec)
    if node.cost is not None:
        info.update(_cost_facts(costs.add([node.cost])))
    inputs = [  # the source, what flows, and the parameters it feeds (`input`, `size.0`)
        [source, format_value(spec), ", ".join(graph.edge(source, node.id).slots)]
        for source in graph.predecessors(node.id)
        if (spec := graph.edge_value(source, node.id)) is not None
    ]
    if inputs:
        info["inputs"] = inputs
    if node.module is not None and node.module in graph.modules:
        info["module"] = _module_info(graph, node.module)
    return info


def _cost_facts(cost: costs.Cost) -> dict[str, str]:
    """A node's or a module's compute, activations and what was not counted, as the details
    panel shows them."""
    flops = costs.macs_text(cost.flops).replace("MACs", "FLOPs")
    facts = {"cost": f"{costs.macs_text(cost.macs)} ({flops})"}
    facts["activations"] = costs.bytes_text(cost.out_bytes)
    missing = costs.uncounted_text(cost.uncounted)
    return facts | ({"uncounted": missing} if missing else {})


def _module_info(graph: Graph, path: str, cost: costs.Cost | None = None) -> dict[str, Any]:
    """A module's facts; with `cost`, what it runs over all its calls (the cluster's panel)."""
    module = graph.modules[path]
    info: dict[str, Any] = {"class": module.cls, "params": module.params}
    if module.hparams:
        info["hparams"] = [[k, format_value(v)] for k, v in module.hparams.items()]
    if module.parameters:
        info["parameters"] = [[k, list(v)] for k, v in module.parameters.items()]
    if cost is not None:
        info.update(_cost_facts(cost))
    return info


def _changes(diff: GraphDiff, once: Once) -> list[dict[str, Any]]:
    """The changelog's items (`nnviz.diffing.changelog.listing`: the same entries the text
    lists), each linked to the node that stands for its first place in the drawing."""
    union = once.graph
    paths = {e.name: e.path or e.scope for e in diff.entries}
    result: list[dict[str, Any]] = []
    for listed in listing(diff.changelog()):
        name = once.names.get(listed.place) or once.standing(listed.place)
        target = name if name in union else once.standing(paths.get(listed.place, ""))
        change: dict[str, Any] = {"name": listed.name, "status": listed.status}
        change.update(lines=list(listed.lines), target=target)
        if listed.info is not None:
            change["info"] = listed.info  # listed, but not drift
        result.append(change)
    return result
