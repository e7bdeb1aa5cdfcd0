"""What Jupyter shows of a `Graph` or a `GraphDiff`: the SVG drawing at the default depth and the
interactive page in a sandboxed frame. Display only: nothing here writes a file (the file writers
are `nnviz.render.output`); `Graph._repr_*_` and `GraphDiff._repr_html_` call it lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnviz.graph import Graph
from nnviz.render.dot import shown_graph, to_dot
from nnviz.render.engine import render
from nnviz.render.style import Style, make_style

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff

INLINE_LIMIT = 4_000_000
"""Largest interactive page (characters) Jupyter shows inline; a bigger one (a graph of several
thousand ops) would make the notebook sluggish to open and save, so it shows the SVG instead."""


def notebook_html(obj: Graph | GraphDiff) -> str | None:
    """The interactive page of a Graph (default depth) or a GraphDiff (default context) in a
    sandboxed frame for Jupyter; None when larger than `INLINE_LIMIT`."""
    from nnviz.render import html, htmlview

    style = make_style(None)
    if isinstance(obj, Graph):
        view = htmlview.model_view(obj, style, depth=2)
    else:
        view = htmlview.diff_view(obj, style, context=3)
    page = html.page(view)
    return html.frame(page) if len(page) <= INLINE_LIMIT else None


def svg(
    graph: Graph, style: Style | None = None, *, depth: int = 2, engine: str | None = None
) -> str:
    """The SVG text of `graph` collapsed to `depth` (what Jupyter shows inline)."""
    style = make_style(style)
    data = render(to_dot(shown_graph(graph, style, depth=depth), style), "svg", engine)
    assert isinstance(data, bytes)
    return data.decode("utf-8")
