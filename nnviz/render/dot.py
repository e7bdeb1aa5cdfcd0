"""The Graphviz builder: a `Graph` (plus a `Style` and optional `Paint`) as DOT source.

`to_dot` is a pure function: the same inputs give the same text, byte for byte. Modules become
nested clusters (shaded by depth, titled by path over class), ops become boxes with HTML-like
labels (see `nnviz.render.labels`), edges carry the traced tensor shapes, and a value with many
far readers is drawn as a bus (see `nnviz.render.buses`). DOT node names are positional
(`n0`, `n1`, ...) so user-derived names never reach DOT syntax; the structural id is kept in each
element's `id` attribute (`<g id="layer1.0.conv1">` in SVG), escaped like every other text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import graphviz

from nnviz import collapsing, costs, transform
from nnviz.bookkeeping import folded_edge
from nnviz.diffing.palette import PALETTE
from nnviz.graph import Graph, Node, parent_path
from nnviz.render import labels
from nnviz.render.buses import Bus, common_cluster, edge_span, plan_buses, ranks
from nnviz.render.paint import Paint
from nnviz.render.style import Style, make_style

_DIM_FILL = "#f7f7f7"
_DIM_LINE = "#b0b0b0"


def plain(value: object) -> str:
    """Escape text for a plain (non-HTML) DOT attribute: literal backslashes, no `<...>`."""
    flat = labels.CONTROL.sub(" ", str(value))
    # graphviz.escape returns a str subclass that the DOT writer never treats as HTML.
    escaped: str = graphviz.escape(flat)
    return escaped


def total_params(graph: Graph) -> int:
    """The parameter count percentages refer to: the drawn root (or selected layer)."""
    root = graph.modules.get(str(graph.meta.get("layer") or ""))
    return root.params if root is not None else graph.total_params


REPEAT_LEGEND = (
    "×N: N sibling blocks with the same changes, drawn once (edges between them left out)"
)

LONG_EDGE_BUDGET = 10000
"""Above this total edge span (see `buses.edge_span`) the layout's iteration limits are capped."""


def cluster_path(graph: Graph, node: Node) -> str | None:
    """The innermost drawn module that contains `node` (None: top level)."""
    scope: str | None = node.scope if node.kind not in ("input", "output") else None
    while scope:
        if scope in graph.modules:
            return scope
        scope = parent_path(scope)
    return None


def shown_graph(
    graph: Graph,
    style: Style,
    *,
    depth: int = 2,
    collapse: Sequence[str] = (),
    layer: str | None = None,
) -> Graph:
    """The graph a drawing shows: `transform.apply` with the style's folding choices."""
    return transform.apply(
        graph,
        layer=layer,
        depth=depth,
        collapse=collapse,
        fold=style.bookkeeping == "fold",
        max_ops=style.max_ops,
    )


def to_dot(
    graph: Graph,
    style: Style | Mapping[str, Any] | None = None,
    paint: Paint | None = None,
) -> str:
    """DOT source drawing `graph`; never mutates it."""
    style = make_style(style)
    paint = paint or Paint()
    dot = _canvas(graph, style, paint)
    rank = ranks(graph)
    if edge_span(graph, rank) > LONG_EDGE_BUDGET:
        # Dense skip connections (densenet) give Graphviz tens of thousands of virtual nodes, and
        # its x-placement (network simplex) then runs for many minutes; capping its iterations
        # keeps the layout to seconds at a small cost in straightness.
        dot.attr("graph", nslimit="1", nslimit1="1")
    state, owners = _clusters(graph, style, paint)
    trunks, branches = _route_buses(graph, state, owners, plan_buses(graph, rank))
    state.emit(dot, None, 0)
    for tail, head, trunk_attrs in trunks:
        dot.edge(tail, head, **trunk_attrs)
    _draw_edges(dot, graph, state, branches)
    return str(dot.source)


def _canvas(graph: Graph, style: Style, paint: Paint) -> graphviz.Digraph:
    """An empty digraph with the graph, node and edge defaults of `style`, and the title."""
    dot = graphviz.Digraph(name=plain(graph.name), strict=False)
    dot.attr(
        "graph",
        rankdir=style.rankdir,
        fontname=plain(style.fontname),
        newrank="true",
        nodesep="0.3",
        ranksep="0.4",
        pad="0.3",
        bgcolor="white",
        labelloc="t",
        labeljust="c",
        id="graph",
    )
    legend = labels.legend_lines(graph, style) if style.legend else []
    keys = diff_keys(paint) if style.legend else []
    badges = {p.badge or "" for p in paint.nodes.values()} if style.legend else set()
    if any(b.endswith("not drift") for b in badges):
        legend.insert(0, INFO_LEGEND)
    if "follows" in badges:
        legend.insert(0, FOLLOWS_LEGEND)
    if style.legend and paint.repeats:
        legend.append(REPEAT_LEGEND)
    if style.show_title or legend or keys:
        title, subtitle = (_title(graph), _subtitle(graph, paint)) if style.show_title else ("", "")
        dot.attr("graph", label=labels.graph_label(title, subtitle, style, legend, keys))
    dot.attr(
        "node",
        shape="box",
        style=plain(style.node_style),
        margin=plain(style.node_margin),
        fontname=plain(style.fontname),
        color="#404040",
        penwidth="1.2",
    )
    dot.attr(
        "edge",
        color=plain(style.default_edge_color),
        penwidth=plain(style.edge_thickness),
        fontname=plain(style.fontname),
        arrowsize="0.8",
    )
    return dot


def _clusters(graph: Graph, style: Style, paint: Paint) -> tuple[_Builder, dict[str, str | None]]:
    """The builder, with every node placed in its cluster (its drawn module), and each node's
    cluster."""
    names = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    members: dict[str | None, list[Node]] = {}
    children: dict[str | None, list[str]] = {}
    owners: dict[str, str | None] = {}
    for node in graph.nodes:
        owner = cluster_path(graph, node) if style.show_clusters else None
        owners[node.id] = owner
        members.setdefault(owner, []).append(node)
        _register(graph, owner, children)
    state = _Builder(graph, style, paint, total_params(graph), names, members, children)
    return state, owners


Trunk = tuple[str, str, dict[str, str]]


def _route_buses(
    graph: Graph, state: _Builder, owners: dict[str, str | None], buses: list[Bus]
) -> tuple[list[Trunk], dict[tuple[str, str], str]]:
    """A bus's trunk as a chain of relay points (each placed in the innermost cluster holding
    both ends), and for each (source, target) the relay its branch leaves from."""
    trunks: list[Trunk] = []
    branches: dict[tuple[str, str], str] = {}
    for bus in buses:
        previous = state.names[bus.source]
        for i, target in enumerate(bus.targets):
            relay = f"{state.names[bus.source]}_{i}"
            place = common_cluster(graph, owners[bus.source], owners[target])
            state.relays.setdefault(place, []).append((relay, f"relay:{bus.source}:{i}"))
            trunk = {"dir": "none", "id": plain(f"bus:{bus.source}:{i}")}
            if i == 0:
                first = state.edge_attrs(bus.source, target)
                trunk.update({k: v for k, v in first.items() if k == "label"})
            trunks.append((previous, relay, trunk))
            branches[(bus.source, target)] = relay
            previous = relay
    return trunks, branches


def _draw_edges(
    dot: graphviz.Digraph, graph: Graph, state: _Builder, branches: dict[tuple[str, str], str]
) -> None:
    for edge in graph.edges:
        attrs = state.edge_attrs(edge.source, edge.target)
        branch = branches.get((edge.source, edge.target))
        if branch is not None:
            attrs.pop("label", None)  # the value's shape is on its trunk
            dot.edge(branch, state.names[edge.target], **attrs)
        else:
            dot.edge(state.names[edge.source], state.names[edge.target], **attrs)


def _register(graph: Graph, path: str | None, children: dict[str | None, list[str]]) -> None:
    """Add `path` and its drawn ancestors to the cluster tree, in first-seen order."""
    while path is not None:
        parent = parent_path(path)
        while parent and parent not in graph.modules:
            parent = parent_path(parent)
        key = parent or None
        siblings = children.setdefault(key, [])
        if path in siblings:
            return
        siblings.append(path)
        path = key


def _title(graph: Graph) -> str:
    layer = graph.meta.get("layer")
    return f"{graph.name} · {layer}" if layer else graph.name


FOLLOWS_LEGEND = "[follows]: changed only by a change upstream (a shape, an input), drawn light"
INFO_LEGEND = "[…, not drift]: information only (counted with --strict), drawn light"


def diff_keys(paint: Paint) -> list[tuple[str, str]]:
    """The colour keys of a diff drawing: each status its nodes or edges are painted in, then
    the grey of unchanged context; none for a drawing of one model."""
    if not paint.dim:
        return []
    used = {PALETTE[s].line for s in PALETTE} & (
        {p.border for p in paint.nodes.values()} | {e.color for e in paint.edges.values()}
    )
    words = {"removed": "removed (dashed)", "renamed": "renamed (was …)"}
    keys = [
        (c.line, words.get(status, status))
        for status, c in PALETTE.items()
        if status != "unchanged" and c.line in used
    ]
    return [*keys, (PALETTE["unchanged"].line, "unchanged context (grey)")]


def _subtitle(graph: Graph, paint: Paint) -> str:
    root = graph.modules.get(str(graph.meta.get("layer") or ""))
    parts = [root.class_name] if root is not None else []
    parts.append(f"{total_params(graph):,} params")
    cost = costs.total(graph)
    if cost.known:
        parts.append(
            f"{costs.macs_text(cost.macs)} · activations {costs.bytes_text(cost.out_bytes)}"
        )
    if paint.subtitle:
        parts.append(paint.subtitle)
    return " · ".join(parts)


def elements(graph: Graph, style: Style, paint: Paint | None = None) -> _Builder:
    """The attributes `to_dot` gives each node (`node_attrs`), edge (`edge_attrs`) and cluster
    (`cluster_attrs`) of `graph`: the interactive HTML view assembles its DOT from these, so
    both drawings look the same."""
    names: dict[str, str] = {}
    return _Builder(graph, style, paint or Paint(), total_params(graph), names, {}, {})


class _Builder:
    """Walks the cluster tree, emitting subgraphs and nodes."""

    def __init__(
        self,
        graph: Graph,
        style: Style,
        paint: Paint,
        total: int,
        names: dict[str, str],
        members: dict[str | None, list[Node]],
        children: dict[str | None, list[str]],
    ) -> None:
        self.graph, self.style, self.paint, self.total = graph, style, paint, total
        self.total_macs = costs.total(graph).macs
        self.names, self.members, self.children = names, members, children
        self.cluster_index = 0
        self.relays: dict[str | None, list[tuple[str, str]]] = {}

    def emit(self, dot: graphviz.Digraph, path: str | None, level: int) -> None:
        for node in self.members.get(path, []):
            dot.node(self.names[node.id], **self.node_attrs(node))
        for relay, relay_id in self.relays.get(path, []):
            dot.node(
                relay,
                label="",
                shape="point",
                width="0.08",
                style="filled",
                color="#404040",
                id=plain(relay_id),
                **{"class": "relay"},
            )
        for child in self.children.get(path, []):
            index = self.cluster_index
            self.cluster_index += 1
            with dot.subgraph(name=f"cluster_{index}") as sub:
                sub.attr(**self.cluster_attrs(child, level + 1))
                self.emit(sub, child, level + 1)

    def cluster_attrs(self, path: str, level: int) -> dict[str, str]:
        """A module's cluster at nesting `level` (1: outermost); a block drawn for several
        reads `blocks.{0..11} ×12`."""
        module = self.graph.modules[path]
        title = self.paint.shown(path)
        repeat = self.paint.repeats.get(path)
        if repeat is not None:
            title += f" ×{repeat.count}"
        painted = self.paint.node(path)  # the module changed (its class, its settings)
        if painted is not None and path in self.graph:
            painted = None  # the module's call is drawn as a node of its own: that carries it
        lines = painted.lines if painted is not None else ()
        if painted is not None and painted.badge:
            title += f" [{painted.badge}]"
        return {
            "label": labels.cluster_label(title, module.class_name, self.style, lines),
            "id": plain(f"cluster:{path}"),
            "style": "rounded,filled" + (f",{painted.line}" if painted and painted.line else ""),
            "fillcolor": labels.cluster_color(level),
            "color": plain(painted.border) if painted and painted.border else "#9a9aa6",
            "penwidth": f"{painted.penwidth:g}" if painted and painted.penwidth else "1",
            "labeljust": "l",
            "labelloc": "t",
            "fontname": plain(self.style.fontname),
            "margin": "12",
        }

    def node_attrs(self, node: Node) -> dict[str, str]:
        repeat = self.paint.repeats.get(node.module or "") if node.meta.get("collapsed") else None
        node = self._per_block(node)
        painted = self.paint.node(node.id)
        piece = node.meta.get("collapsed") and node.module and node.id.split(":")[0] == node.module
        if painted is None and piece:  # a second piece of a module (`block:1`)
            painted = self.paint.node(str(node.module))
        label = labels.node_label(
            self.graph,
            node,
            self.style,
            self.total,
            extra=painted.lines if painted else (),
            badge=painted.badge if painted else None,
            shown=self.paint.shown,
            mark=f"×{repeat.count}" if repeat is not None else "",
            total_macs=self.total_macs,
        )
        attrs: dict[str, str] = {"label": label, "id": plain(node.id)}
        if node.kind in ("input", "output"):
            attrs["fillcolor"] = plain(self.style.default_node_color)
        else:
            attrs["fillcolor"] = labels.family_color(labels.family(node))
        if node.meta.get("collapsed"):
            attrs["peripheries"] = "2"
        if painted is not None:
            if painted.fill:
                attrs["fillcolor"] = plain(painted.fill)
            if painted.border:
                attrs["color"] = plain(painted.border)
            if painted.line:
                attrs["style"] = plain(f"{self.style.node_style},{painted.line}")
            if painted.penwidth is not None:
                attrs["penwidth"] = f"{painted.penwidth:g}"
        elif self.paint.dim:
            attrs.update(fillcolor=_DIM_FILL, color=_DIM_LINE, fontcolor="#808080")
        return attrs

    def _per_block(self, node: Node) -> Node:
        """A collapsed node in a block drawn for several (or that block, collapsed) counts the
        ops of one block; one around it (the list holding the blocks) counts all of theirs."""
        path = (node.module or node.scope) if node.meta.get("collapsed") else None
        while path and self.paint.repeats:
            repeat = self.paint.repeats.get(path)
            if repeat is not None:
                count = collapsing.ops_in(node) // repeat.times
                return replace(node, meta={**node.meta, "collapsed": count})
            path = parent_path(path)
        return node

    def edge_attrs(self, source: str, target: str) -> dict[str, str]:
        attrs: dict[str, str] = {"id": plain(f"edge:{source}->{target}")}
        read = folded_edge(self.graph, self.graph.edge(source, target))
        if read:  # only metadata (a shape) is read: no tensor flows here
            attrs.update(style="dashed", penwidth="1", color="#808080", arrowsize="0.5")
        spec = self.graph.edge_value(source, target) if self.style.show_specs and not read else None
        if spec is not None:
            attrs["label"] = labels.spec_label(spec, self.style)
        painted = self.paint.edge(source, target)
        if painted is not None:
            if painted.color:
                attrs["color"] = plain(painted.color)
            if painted.line:
                attrs["style"] = plain(painted.line)
            if painted.penwidth is not None:
                attrs["penwidth"] = f"{painted.penwidth:g}"
            if painted.label is not None:
                # An empty HTML label `<>` is a Graphviz syntax error.
                attrs["label"] = "<" + (labels.text(painted.label) or " ") + ">"
        elif self.paint.dim and self.paint.nodes:
            attrs["color"] = _DIM_LINE
        return attrs
