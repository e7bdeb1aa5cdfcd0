"""Drawing: `to_dot` builds DOT source from a Graph, `render` runs Graphviz on it.

    >>> from nnviz.render import to_dot, render, Style
    >>> svg = render(to_dot(graph, Style(rankdir="LR")), "svg")   # bytes
    >>> render(to_dot(graph), "out/resnet18.pdf")                  # written atomically

Never imports torch. `nnviz.render.paint.Paint` lets other stages (the diff) recolour a drawing.
"""

from __future__ import annotations

from nnviz.render.dot import to_dot
from nnviz.render.engine import FORMATS, format_of, render
from nnviz.render.paint import EdgePaint, NodePaint, Paint
from nnviz.render.style import Style, make_style, parse_style

__all__ = [
    "FORMATS",
    "EdgePaint",
    "NodePaint",
    "Paint",
    "Style",
    "format_of",
    "make_style",
    "parse_style",
    "render",
    "to_dot",
]
