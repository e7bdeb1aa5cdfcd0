"""Drawing: `to_dot` builds DOT source from a Graph, `render` runs Graphviz on it.

    >>> from nnviz.render import to_dot, render, Style
    >>> svg = render(to_dot(graph, Style(rankdir="LR")), "svg")   # bytes
    >>> render(to_dot(graph), "out/resnet18.pdf")                  # written atomically

Never imports torch. `nnviz.render.paint.Paint` lets other stages (the diff) recolour a drawing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnviz.render.dot import to_dot
    from nnviz.render.engine import FORMATS, format_of, render
    from nnviz.render.paint import EdgePaint, NodePaint, Paint
    from nnviz.render.style import Style, make_style, parse_style

_HOMES = {"to_dot": "dot", "FORMATS": "engine", "format_of": "engine", "render": "engine"}
_HOMES |= dict.fromkeys(("EdgePaint", "NodePaint", "Paint"), "paint")
_HOMES |= dict.fromkeys(("Style", "make_style", "parse_style"), "style")


def __getattr__(name: str) -> Any:
    """The names below from their modules on first use: importing `nnviz.render.style` (every
    command checks its options with it) does not import the drawing code and Graphviz's
    package, 35 ms of CPU that `nnviz diff` without `-o` never needs."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"nnviz.render.{home}"), name)


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
