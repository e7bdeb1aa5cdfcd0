"""From a Graph (or a GraphDiff, `draw_diff`) to a file: select, collapse, build DOT, run
Graphviz, write atomically.

The format follows the extension (`.pdf .svg .png .dot .gv .json .html .txt`; `.txt` is the
summary table of `nnviz.render.table`). A `.json` output is the
snapshot of the graph as selected by `layer` but never collapsed: depth and collapsing change
the picture, never what is stored, so any two snapshots of a model stay comparable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnviz import snapshot, transform
from nnviz.fs import atomic_write
from nnviz.graph import Graph
from nnviz.render.dot import shown_graph, to_dot
from nnviz.render.engine import format_of, render
from nnviz.render.paint import Paint
from nnviz.render.style import Style, make_style

if TYPE_CHECKING:
    from nnviz.diffing.model import GraphDiff

StyleLike = Style | Mapping[str, Any] | None


def draw_graph(
    graph: Graph,
    path: str | os.PathLike[str],
    *,
    depth: int = 2,
    collapse: Sequence[str] = (),
    layer: str | None = None,
    style: StyleLike = None,
    engine: str | None = None,
    paint: Paint | None = None,
) -> Path:
    """Write `graph` to `path` as the extension says; return the path."""
    fmt = format_of(path)
    style = make_style(style)
    selected = transform.select(graph, layer) if layer else graph
    if fmt == "json":
        return snapshot.save(selected, path)
    if fmt == "text":
        from nnviz.render.table import summary

        return atomic_write(path, summary(selected, depth))
    if fmt == "html":
        # lazy, like the diff's modules: a drawing from a snapshot starts without them
        from nnviz.render import html, htmlview

        view = htmlview.model_view(selected, style, depth=depth, collapse=collapse)
        return html.write(view, path)
    shown = shown_graph(graph, style, depth=depth, collapse=collapse, layer=layer)
    result = render(to_dot(shown, style, paint), path, engine, dpi=style.dpi)
    assert isinstance(result, Path)
    return result


def draw_diff(
    diff: GraphDiff,
    path: str | os.PathLike[str],
    *,
    context: int = 3,
    style: Style | Mapping[str, Any] | None = None,
    engine: str | None = None,
) -> Path:
    """Draw the highlighted union graph of `diff` to `path` (format by extension); return it.

    A `.json` path gets the diff document (`GraphDiff.to_dict()`) instead of a drawing. The
    folding around the changes decides what is expanded (`context` hops of unchanged
    neighbours stay), so there is no `depth`: `nnviz.draw` refuses one for a diff.
    """
    from nnviz.diffing.model import GraphDiff
    from nnviz.render import html, htmlview
    from nnviz.render.diffpaint import carry, fold, paint_for, union_graph
    from nnviz.render.repeats import draw_once

    if not isinstance(diff, GraphDiff):
        from nnviz.errors import RenderError

        raise RenderError(f"cannot draw a {type(diff).__name__}: give a Graph or a GraphDiff")
    if format_of(path) == "json":
        import json

        return atomic_write(path, json.dumps(diff.to_dict(), indent=1, ensure_ascii=False) + "\n")
    style = make_style(style)
    if format_of(path) == "html":
        return html.write(htmlview.diff_view(diff, style, context=context), path)
    once = draw_once(union_graph(diff), diff)
    shown = fold(once.graph, diff, context)
    paint = carry(paint_for(diff, once), once.graph, shown)
    result = render(to_dot(shown, style, paint), path, engine, dpi=style.dpi)
    assert isinstance(result, Path)
    return result
