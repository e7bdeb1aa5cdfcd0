"""HTML-like Graphviz labels for nodes, clusters and edges, and deterministic colours.

Every user-derived text passes through `text()` (control characters made visible, length capped,
then `html.escape`), so a module named `<TABLE>` or an argument `"a & b"` is drawn literally.
Colours are a hash of the op family (`Conv2d` and `Conv1d` are both `Conv`), never of the order
in which ops appear, so adding a layer does not repaint the others.
"""

from __future__ import annotations

import colorsys
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from nnviz import costs
from nnviz.experts import summary
from nnviz.graph import Graph, Module, Node
from nnviz.render.style import Style
from nnviz.values import Value, format_tensor, format_value, is_tensor_spec

MAX_TEXT = 80
"""Longest text shown in one label line; longer text ends in an ellipsis."""
MAX_ITEMS = 8
"""Most items of a list/dict spec shown as table rows; the rest are counted."""
MAX_ARGUMENTS = 12
"""Most argument lines shown in a node label."""

# Characters shown as escapes: C0/C1 controls, and what XML forbids (lone surrogates, U+FFFE,
# U+FFFF), which would make Graphviz's HTML-label parser and the SVG output fail.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_FAMILY_SUFFIX = re.compile(r"(?:[123]d|_?\d+)$", re.IGNORECASE)


def text(value: object, limit: int = MAX_TEXT) -> str:
    """Escape `value` for an HTML-like label: visible control characters, capped length."""
    raw = CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    # Graphviz expands escapes such as `\N` (the node name) even inside HTML-like labels, after
    # decoding entities: a literal backslash must reach it doubled.
    return html.escape(raw, quote=True).replace("\\", "&#92;&#92;")


def family(node: Node) -> str:
    """The op family that picks a node's colour: `Conv`, `BatchNorm`, `add`, `flatten`."""
    title = node.title.split(":", 1)[0]
    stripped = _FAMILY_SUFFIX.sub("", title)
    return stripped or title


def family_color(name: str) -> str:
    """A light colour derived from a hash of `name` (stable across runs and graphs)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    saturation = 0.45 + digest[2] / 255 * 0.25
    lightness = 0.78 + digest[3] / 255 * 0.08
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def cluster_color(depth: int) -> str:
    """Cluster fill: a grey that darkens one step per nesting level."""
    level = max(200, min(246 - 9 * depth, 255))
    return f"#{level:02x}{level:02x}{min(level + 6, 255):02x}"


def small_size(style: Style) -> int:
    """Font size of the secondary label lines."""
    return max(10, round(style.node_title_font_size * 0.55))


def _font(content: str, size: int, color: str | None = None, bold: bool = False) -> str:
    content = content or " "  # Graphviz refuses an empty <B> or <FONT> (a class named `pkg.`)
    inner = f"<B>{content}</B>" if bold else content
    colour = f' COLOR="{color}"' if color else ""
    return f'<FONT POINT-SIZE="{size}"{colour}>{inner}</FONT>'


def _row(content: str, align: str = "CENTER") -> str:
    return f'<TR><TD ALIGN="{align}" BALIGN="{align}">{content}</TD></TR>'


def _table(rows: Iterable[str]) -> str:
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        + "".join(rows)
        + "</TABLE>>"
    )


def params_text(params: int, total: int) -> str:
    """`params 36,864 (0.3%)`."""
    if total <= 0:
        return f"params {params:,}"
    share = 100 * params / total
    shown = "<0.1" if 0 < share < 0.05 else f"{share:.1f}"
    return f"params {params:,} ({shown}%)"


def node_source(node: Node) -> str:
    """Where an op comes from: `torch.nn.Conv2d`, `torch.flatten`, `Tensor.view`."""
    if node.kind == "method":
        return f"Tensor.{node.op}"
    return node.op


def node_arguments(graph: Graph, node: Node) -> list[tuple[str, Value]]:
    """What a node is configured with: a module's hyperparameters, a call's constants, and the
    scalar expressions folded into it (`arg1=x.shape[0] // 16`, see `nnviz.bookkeeping`)."""
    module = graph.module_of(node)
    if module is not None and not node.meta.get("collapsed"):
        shown = list(module.hparams.items())
    else:
        shown = list(node.args.items())
    folded = node.meta.get("folded")
    if isinstance(folded, Mapping):
        shown += [(key, {"$repr": str(expression)}) for key, expression in folded.items()]
    return [(f"arg{key}" if key[:1].isdigit() else key, value) for key, value in shown]


def display_name(node: Node) -> str:
    """The name line: the node id, with a repeated module call said in words
    (`transform:1` -> `transform (call 2)`)."""
    base, sep, count = node.id.rpartition(":")
    if node.kind == "module" and sep and base == node.module and count.isdigit():
        return f"{base} (call {int(count) + 1})"
    return node.id


def node_label(
    graph: Graph,
    node: Node,
    style: Style,
    total: int,
    extra: Iterable[str] = (),
    badge: str | None = None,
    shown: Callable[[str], str] = str,
    mark: str = "",
    total_macs: int = 0,
) -> str:
    """The HTML-like label of an op, module, collapsed module, input or output node (with its
    compute and share of `total_macs`, the drawing's, when it has any); `shown`
    rewrites the names in its name line, arguments and extra lines (a block drawn for several
    reads `blocks.{0..11}.attn`), `mark` follows its name (`×12`)."""
    small = small_size(style)
    module = graph.module_of(node)
    rows = [_row(_head(node, module, style, badge, small))]
    name = shown(display_name(node)) + (f" {mark}" if mark else "")
    rows += _facts(graph, node, module, style, (total, total_macs), small, name)
    if style.show_node_arguments:
        rows += _arguments(graph, node, style, small, shown)
    if node.kind == "output" and style.show_specs and _is_nested(node.spec):
        # The edges show each value; the output's own spec shows how they are nested.
        rows.append(f"<TR><TD>{_font(_spec_table(node.spec), small)}</TD></TR>")
    for line in extra:
        rows.append(_row(_font(text(shown(line), limit=2 * MAX_TEXT), small, bold=True)))
    source = module.cls if module is not None else node_source(node)
    if style.show_node_source and node.kind not in ("input", "output") and source != node.title:
        # not when it would repeat the title: a drawn run (`moved layers`), a bare `getattr`
        rows.append(_row(_font(text(source), max(8, small - 2), color="#333333")))
    return _table(rows)


def _head(node: Node, module: Module | None, style: Style, badge: str | None, small: int) -> str:
    """The bold title (`input`, `output`, the module's class, the op) and the diff's badge."""
    title: str
    if node.kind in ("input", "output"):
        title = node.kind
    elif module is not None:
        title = module.class_name
    else:
        title = node.title
    head = _font(text(title), style.node_title_font_size, bold=True)
    return head + " " + _font(f"[{text(badge)}]", small) if badge else head


def _facts(
    graph: Graph,
    node: Node,
    module: Module | None,
    style: Style,
    totals: tuple[int, int],
    small: int,
    name: str,
) -> list[str]:
    """The small rows under the title: where an input comes from, a collapsed module's op count
    and summary, or the node's name, parameters and compute (`totals`: the drawing's parameters
    and MACs, for the shares)."""
    total, total_macs = totals
    params = (
        params_text(module.params, total)
        if style.show_node_params and module is not None and module.params
        else None
    )
    macs = int(node.cost.get("macs", 0)) if node.cost is not None else 0
    if style.show_node_cost and macs:
        compute = costs.macs_text(macs)
        if total_macs:
            compute += f" ({costs.share(macs, total_macs)})"
        params = f"{params} · {compute}" if params else compute
    collapsed = node.meta.get("collapsed")
    if node.kind == "input":
        source = node.meta.get("source")
        shown = f"{node.op} (from {source})" if source else node.op
        return [_row(_font(text(shown), small))]
    if collapsed:
        rows = [_row(_font(text(name), small))] if style.show_node_name else []
        facts = " · ".join(p for p in (f"{collapsed} ops", params) if p)
        rows.append(_row(_font(text(facts), small, color="#303030")))
        if node.meta.get("summary"):
            rows.append(_row(_font(text(node.meta["summary"]), small, color="#303030")))
        moe = summary(graph, str(node.module)) if node.kind == "module" and node.module else None
        if moe:
            rows.append(_row(_font(text(moe, limit=2 * MAX_TEXT), small, EXPERTS_COLOR, True)))
        if node.meta.get("skips"):
            rows.append(_row(_font(text(skips_text(node.meta["skips"])), small, SKIP_COLOR, True)))
        return rows
    # The id, not the module path: a second call of a module shows as `relu (call 2)`.
    facts = " · ".join(p for p in (name if style.show_node_name else None, params) if p)
    return [_row(_font(text(facts), small))] if facts and node.kind != "output" else []


def _arguments(
    graph: Graph, node: Node, style: Style, small: int, shown: Callable[[str], str]
) -> list[str]:
    """The constant arguments as a grid, at most `MAX_ARGUMENTS` cells."""
    cells = [
        f"{text(key)}={text(shown(format_value(value)))}"
        for key, value in node_arguments(graph, node)
    ]
    if len(cells) > MAX_ARGUMENTS:
        cells = [*cells[: MAX_ARGUMENTS - 1], f"… {len(cells) - MAX_ARGUMENTS + 1} more"]
    if not cells:
        return []
    width = 3 if style.rankdir == "TB" else 1
    return [f"<TR><TD>{_grid(cells, small, width)}</TD></TR>"]


def _grid(cells: list[str], size: int, width: int) -> str:
    """Arguments in up to `width` columns: top-to-bottom drawings of long chains (the usual
    network) are limited by height, so their nodes grow wider; left-to-right ones the reverse."""
    rows = -(-len(cells) // width)
    cols = -(-len(cells) // rows)
    body = ""
    for start in range(0, len(cells), cols):
        body += "<TR>"
        for i, cell in enumerate(cells[start : start + cols]):
            gap = '<TD WIDTH="8"></TD>' if i else ""
            body += f'{gap}<TD ALIGN="LEFT">{_font(cell, size)}</TD>'
        body += "</TR>"
    return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{body}</TABLE>'


def cluster_label(path: str, cls_name: str, style: Style, extra: Sequence[str] = ()) -> str:
    """The module path in bold over its class: two short lines instead of one long one, so the
    edges that enter a cluster through its middle rarely cross the title; then `extra` lines
    (what changed in the module, in a diff drawing)."""
    size = style.cluster_title_font_size
    rows = [
        _row(_font(text(path), size, bold=True), "LEFT"),
        _row(_font(text(cls_name), max(8, round(size * 0.8)), color="#303040"), "LEFT"),
    ]
    rows += [_row(_font(text(line), small_size(style)), "LEFT") for line in extra]
    return _table(rows)


def graph_label(
    title: str,
    subtitle: str,
    style: Style,
    legend: Iterable[str] = (),
    keys: Iterable[tuple[str, str]] = (),
) -> str:
    """The title block: model name, then a smaller line of facts, then one line of coloured
    keys (`keys`: colour and what it means, e.g. a diff's statuses), then the legend lines."""
    rows = [_row(_font(text(title), style.graph_title_font_size, bold=True))] if title else []
    if subtitle:
        rows.append(_row(_font(text(subtitle), style.cluster_title_font_size)))
    swatches = [f"{_font('■', small_size(style), colour)} {text(what)}" for colour, what in keys]
    if swatches:
        rows.append(_row(_font("   ".join(swatches), small_size(style), "#303030")))
    for line in legend:
        rows.append(_row(_font(text(line, limit=2 * MAX_TEXT), small_size(style), "#303030")))
    return _table(rows)


SKIP_COLOR = "#1d5fa0"
EXPERTS_COLOR = "#7a3e00"
"""Colour of the mixture-of-experts line on a collapsed block (`experts ×256 · router`)."""
"""Colour of the residual mark on a collapsed block."""


def skips_text(skips: Sequence[str]) -> str:
    """The mark of a collapsed block that hides residual connections (see
    `nnviz.collapsing.skips`): `↻ residual: identity skip`, `skip via downsample`, `3 skips`."""
    if len(skips) > 1:
        return f"↻ residual: {len(skips)} skips"
    return (
        "↻ residual: identity skip"
        if skips[0] == "identity"
        else f"↻ residual: skip via {skips[0]}"
    )


def legend_lines(graph: Graph, style: Style) -> list[str]:
    """What the marks a drawing of `graph` uses mean, one line each: the double border of a
    collapsed node, the parameter percentage, the residual mark. Empty when none is drawn."""
    lines = []
    if any(node.meta.get("collapsed") for node in graph.nodes):
        lines.append(
            "double border: a collapsed module or run of ops, drawn as one node (-d -1 expands all)"
        )
    if (
        style.show_node_params
        and graph.total_params
        and any(
            (module := graph.module_of(node)) is not None and module.params for node in graph.nodes
        )
    ):
        lines.append("params n (x%): the module's parameters, x% of all parameters drawn")
    if style.show_node_cost and any(n.cost and n.cost.get("macs") for n in graph.nodes):
        lines.append(
            "n GMACs (x%): the node's multiply-accumulates (FLOPs = 2 × MACs), x% of all drawn"
        )
    if any(node.meta.get("skips") for node in graph.nodes):
        lines.append("↻ residual: the collapsed block adds its input back (a skip connection)")
    return lines


def spec_label(spec: Value, style: Style) -> str:
    """An edge label: `[1, 64, 56, 56]`, or a small table for nested lists, tuples and dicts."""
    size = small_size(style)
    if not _is_nested(spec):
        # Tensors, scalars and flat tuples of numbers (a `torch.Size`) read best as text.
        return "<" + _font(_spec_text(spec), size) + ">"
    return "<" + _font(_spec_table(spec), size) + ">"


def _is_nested(spec: Value) -> bool:
    """A list, tuple or dict holding tensors or further containers: drawn as a table."""
    if not _is_container(spec):
        return False
    return any(is_tensor_spec(v) or _is_container(v) for _, v in _items(spec))


def _is_container(spec: Value) -> bool:
    if isinstance(spec, list):
        return True
    return isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in ("$tuple", "$dict")


def _spec_text(spec: Value) -> str:
    if is_tensor_spec(spec):
        return text(format_tensor(spec["$tensor"]))
    return text(format_value(spec))


def _items(spec: Value) -> list[tuple[str | None, Value]]:
    if isinstance(spec, list):
        return [(None, v) for v in spec]
    tag, inner = next(iter(spec.items()))
    if tag == "$tuple":
        return [(None, v) for v in inner]
    return [(format_value(k) if not isinstance(k, str) else k, v) for k, v in inner]


def _spec_table(spec: Value, depth: int = 0) -> str:
    items = _items(spec)
    cells: list[str] = []
    for key, value in items[:MAX_ITEMS]:
        inner = _spec_table(value, depth + 1) if _is_nested(value) and depth < 3 else None
        shown = inner if inner is not None else _spec_text(value)
        key_cell = f"<TD>{text(key)}</TD>" if key is not None else ""
        cells.append(f"<TR>{key_cell}<TD>{shown}</TD></TR>")
    if len(items) > MAX_ITEMS:
        span = ' COLSPAN="2"' if any(k is not None for k, _ in items) else ""
        cells.append(f"<TR><TD{span}>… {len(items) - MAX_ITEMS} more</TD></TR>")
    if not cells:
        cells.append("<TR><TD>(empty)</TD></TR>")
    return (
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="2">'
        + "".join(cells)
        + "</TABLE>"
    )
