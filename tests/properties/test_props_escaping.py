"""Escaping, proven: any text placed in a graph comes out literally in the DOT and the SVG.

Text reaches a drawing two ways, and both are generated here: an edited snapshot (module paths,
class names, ops, argument reprs and hyperparameters as tagged values, tensor dtypes, the model
name) loaded with `nnviz.snapshot.loads`, and a real `nn.Module` with odd child names, class
names, module names and a string argument, traced by nnviz. Each drawing is checked twice:
the DOT is parsed by Graphviz (pygraphviz) with exactly the expected nodes, edges and clusters and
every HTML label parsed as XML holds the text; the SVG that Graphviz renders is parsed with
`xml.etree` and its text elements hold the text, character for character.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import pygraphviz
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from torch import nn

import nnviz
from nnviz import snapshot
from nnviz.diffing.changelog import changelog, markdown
from nnviz.diffing.mermaid import mermaid
from nnviz.graph import Graph
from nnviz.render import EdgePaint, NodePaint, Paint, html, htmlview, labels, render, to_dot
from nnviz.render.style import make_style

# Any character but controls, lone surrogates and the two XML non-characters: those are drawn as
# visible escapes instead (checked separately below).
SHOWN = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
TEXT = st.text(SHOWN, min_size=1, max_size=24)
NAME = TEXT.filter(lambda t: "." not in t)  # a child name or path component has no dot


def _svg(dot: str) -> bytes:
    """Render with Graphviz; it must not report an error (a broken HTML label is one)."""
    messages = io.StringIO()
    with contextlib.redirect_stderr(messages):
        svg = render(dot, "svg")
    assert isinstance(svg, bytes)
    assert "Error" not in messages.getvalue(), messages.getvalue()
    return svg


def _spaces(text: str) -> str:
    # Graphviz writes a run of spaces in an HTML label as ' \xa0...': the same text on screen.
    return text.replace("\xa0", " ")


def svg_texts(svg: bytes) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [_spaces("".join(t.itertext())) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def dot_texts(dot: str, graph: Graph, clusters: int) -> list[str]:
    """Parse the DOT as Graphviz does; check its shape; return the text of every label element
    (with Graphviz's escString backslashes undone)."""
    parsed = pygraphviz.AGraph(string=dot)
    assert parsed.number_of_nodes() == len(graph.nodes)
    assert parsed.number_of_edges() == len(graph.edges)
    found: list[str] = []
    subgraphs = list(parsed.subgraphs())
    while subgraphs:
        sub = subgraphs.pop()
        subgraphs.extend(sub.subgraphs())
        clusters -= 1
        found.extend(_label_texts(sub.graph_attr["label"]))
    assert clusters == 0
    found.extend(_label_texts(parsed.graph_attr["label"]))
    for element in [*parsed.nodes(), *parsed.edges()]:
        found.extend(_label_texts(element.attr["label"] or ""))
    return found


def _label_texts(label: str) -> list[str]:
    root = ElementTree.fromstring(f"<LABEL>{label}</LABEL>")  # HTML-like labels are XML
    return [_spaces("".join(e.itertext())).replace("\\\\", "\\") for e in root.iter()]


def _holds(texts: list[str], expected: str) -> bool:
    return any(_spaces(expected) in text for text in texts)


def _document(path: str, cls: str, op: str, arg: str, dtype: str, name: str) -> str:
    """A small snapshot as a stranger might edit it."""
    spec = {"$tensor": {"shape": [1, 2], "dtype": dtype}}
    return json.dumps(
        {
            "format": "nnviz-graph",
            "version": 1,
            "meta": {"name": name},
            "modules": [
                {"path": "", "class": "m.Root", "params": 7},
                {
                    "path": path,
                    "class": f"pkg.{cls}",
                    "params": 7,
                    "hparams": {"h": {"$repr": arg}, arg: 1},
                },
            ],
            "nodes": [
                {"id": "input:x", "kind": "input", "op": "x", "spec": spec},
                {"id": path, "kind": "module", "op": f"pkg.{cls}", "module": path, "spec": spec},
                {
                    "id": "f",
                    "kind": "function",
                    "op": f"ns.{op}",
                    "scope": path,  # so that the module is drawn as a cluster around it
                    "args": {"a": {"$repr": arg}},
                },
                {"id": "output", "kind": "output", "op": "output"},
            ],
            "edges": [
                {"source": "input:x", "target": path, "slots": ["0"]},
                {"source": path, "target": "f", "slots": ["0"]},
                {"source": "f", "target": "output", "slots": ["0"]},
            ],
        }
    )


@settings(max_examples=150)  # cheap: a small graph per example
@given(path=NAME, cls=TEXT, op=NAME, arg=TEXT, dtype=TEXT, name=TEXT)
def test_any_text_in_an_edited_snapshot_is_drawn_literally(
    path: str, cls: str, op: str, arg: str, dtype: str, name: str
) -> None:
    assume(path not in ("input:x", "f", "output") and dtype != "float32" and arg != "h")
    graph = snapshot.loads(_document(path, cls, op, arg, dtype, name))
    dot = to_dot(graph)
    svg = _svg(dot)
    shown = {
        "path": path,  # cluster title and the node's name line
        "class": cls.rsplit(".", 1)[-1],  # node and cluster titles show the class name
        "qualified class": f"pkg.{cls}",  # the node's source line
        "op": op,  # the function node's title
        "qualified op": f"ns.{op}",
        "argument": f"a={arg}",
        "hyperparameter": f"h={arg}",
        "hyperparameter key": f"{arg}=1",
        "tensor spec": f"[1, 2] {dtype}",
        "title": name,
    }
    in_dot = dot_texts(dot, graph, clusters=1)
    in_svg = svg_texts(svg)
    for what, text in shown.items():
        assert _holds(in_dot, text), (what, text)
        assert _holds(in_svg, text), (what, text)
    ids = {e.get("id") for e in ElementTree.fromstring(svg).iter()}
    assert path in ids and f"cluster:{path}" in ids


def _odd_model(child: str, cls: str, module: str, equation: str) -> nn.Module:
    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) + 1

    odd = type(cls, (nn.Module,), {"forward": forward})
    odd.__module__ = module

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add_module(child, odd())
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.get_submodule(child)(self.fc(x))
            return torch.einsum(equation, x)  # a constant string argument, never run by fx

    return Model()


@settings(max_examples=150)  # cheap: a small graph per example
@given(child=NAME, cls=TEXT, module=TEXT, equation=TEXT, title=TEXT)
def test_any_text_in_a_traced_model_is_drawn_literally(
    child: str, cls: str, module: str, equation: str, title: str
) -> None:
    assume(not hasattr(nn.Module(), child) and child != "fc")
    graph = nnviz.trace(_odd_model(child, cls, module, equation), name=title)
    assert graph.modules[child].cls == f"{module}.{cls}"
    dot = to_dot(graph)
    svg = _svg(dot)
    argument = f"arg0={equation!r}"
    # A module with calls inside is a cluster, titled by its path and class name.
    shown = [child, cls.rsplit(".", 1)[-1], title]
    if len(repr(equation)) <= labels.MAX_TEXT:
        shown.append(argument)
    in_dot = dot_texts(dot, graph, clusters=len({n.scope for n in graph.nodes if n.scope}))
    in_svg = svg_texts(svg)
    for text in shown:
        assert _holds(in_dot, text), text
        assert _holds(in_svg, text), text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("tab\there", "tab\\there"),
        ("nul\x00", "nul\\x00"),
        ("c1\x85", "c1\\x85"),
        ("non\ufffechar", "non\\ufffechar"),
        ("end\uffff", "end\\uffff"),
        ("x" * 100, "x" * (labels.MAX_TEXT - 1) + "…"),
    ],
)
def test_controls_and_xml_forbidden_characters_are_drawn_as_escapes(raw: str, shown: str) -> None:
    graph = snapshot.loads(_document("blk", raw, "op", raw, raw, raw))
    dot = to_dot(graph)
    svg = _svg(dot)
    texts = svg_texts(svg)  # parses: nothing XML forbids reached the SVG
    assert _holds(texts, shown) and _holds(texts, f"h={shown}")
    assert _holds(texts, f"[1, 2] {shown}"[:40])  # the whole edge label is capped
    assert _holds(dot_texts(dot, graph, clusters=1), shown)


def test_empty_names_still_draw() -> None:
    """An empty class name or title once made an empty `<B></B>`, which Graphviz refuses."""
    graph = snapshot.loads(_document("blk", "pkg.", "op", "", "x", ""))
    texts = svg_texts(_svg(to_dot(graph)))
    assert _holds(texts, "pkg.pkg.") and _holds(texts, "h=") and _holds(texts, "Root · 7 params")


@given(line=TEXT | st.just(""), badge=TEXT, label=TEXT | st.just(""), subtitle=TEXT)
def test_any_text_a_diff_paints_is_drawn_literally(
    line: str, badge: str, label: str, subtitle: str
) -> None:
    """The diff painter's extra lines (`kernel_size (3, 3) → (5, 5)` from the models' values),
    badges, edge labels and subtitle go through the same escaping."""
    graph = snapshot.loads(_document("blk", "C", "op", "a", "int64", "name"))
    paint = Paint(
        nodes={"f": NodePaint(lines=(line,), badge=badge)},
        edges={("blk", "f"): EdgePaint(label=label)},
        subtitle=subtitle,
    )
    dot = to_dot(graph, paint=paint)
    in_svg = svg_texts(_svg(dot))
    in_dot = dot_texts(dot, graph, clusters=1)
    for text in (line, f"[{badge}]", label, subtitle):
        assert _holds(in_dot, text) and _holds(in_svg, text), text


@given(text=st.text(st.characters(categories=("Cc",)) | SHOWN, min_size=1, max_size=12))
@example(text='x"]\n  click n0 "https://example.com"\n')
@example(text="\x1b[Kowned\x07")
def test_any_text_in_a_diff_stays_inside_its_report_line(text: str) -> None:
    # Values the old side holds would change fewer fields.
    assume(text not in ("A", "1", "h", "z"))
    old = snapshot.loads(_document("blk", "A", "op", "1", "int64", "old"))

    def report(shown: str) -> list[str]:
        new = snapshot.loads(_document("blk", shown, "op", shown, "int64", "new"))
        doc = nnviz.diff(old, new).to_dict()
        return [changelog(doc), markdown(doc), mermaid(doc)]

    for hostile, plain in zip(report(text), report("z"), strict=True):
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", hostile)
        assert len(hostile.splitlines()) == len(plain.splitlines())


def test_a_superscript_digit_key_diffs() -> None:
    old = snapshot.loads(_document("blk", "A", "op", "1", "int64", "old"))
    new = snapshot.loads(_document("blk", "A", "op", "\u00b9", "int64", "new"))
    assert not nnviz.diff(old, new).identical


# --- the interactive HTML page -----------------------------------------------------------------


class _Scripts(HTMLParser):
    """The text of every `<script>` element, split exactly where a browser would split it."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open = tag == "script"
        if self._open:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._open = False

    def handle_data(self, data: str) -> None:
        if self._open:
            self.scripts[-1] += data


def _page_dot(view: dict) -> str:
    """Every fragment of the page's view in one DOT: each op, each module's cluster with each
    of its collapsed pieces, each edge (what the page's script joins, all at once)."""
    lines = [f"n{i} {n['dot']}" for i, n in enumerate(view["nodes"])]
    for k, m in enumerate(view["modules"]):
        lines += [f"subgraph cluster_{k} {{", f"graph {m['dot']}"]
        lines += [f"p{k}_{j} {p['dot']}" for j, p in enumerate(m["pieces"])]
        lines.append("}")
    lines += [f"n{u} -> n{v} {attrs}" for u, v, attrs in view["edges"]]
    return view["header"] + "\n".join(lines) + "\n}\n"


@settings(max_examples=60)  # a Graphviz run per example
@given(path=NAME, cls=TEXT, op=NAME, arg=TEXT, dtype=TEXT, name=TEXT)
@example(path="</script>", cls="<!--", op="\u2028", arg="</SCRIPT ", dtype="&amp;", name="]]>")
def test_any_text_in_an_edited_snapshot_stays_data_in_the_html_page(
    path: str, cls: str, op: str, arg: str, dtype: str, name: str
) -> None:
    """The view JSON cannot end its `<script>` and reads back unchanged; every DOT fragment the
    page joins is valid and draws the text literally."""
    assume(path not in ("input:x", "f", "output") and dtype != "float32" and arg != "h")
    graph = snapshot.loads(_document(path, cls, op, arg, dtype, name))
    view = htmlview.model_view(graph, make_style(None), depth=1)
    document = html.page(view)
    parser = _Scripts()
    parser.feed(document)
    assert len(parser.scripts) == 2  # the view, then the code: nothing closed or opened early
    assert json.loads(parser.scripts[0]) == view
    assert not re.search("[<>&\u2028\u2029]", parser.scripts[0])
    in_svg = svg_texts(_svg(_page_dot(view)))
    for text in (path, cls.rsplit(".", 1)[-1], f"pkg.{cls}", op, f"h={arg}", f"[1, 2] {dtype}"):
        assert _holds(in_svg, text), text
    assert _holds(in_svg, name)


def test_controls_and_line_separators_reach_the_html_page_as_escapes() -> None:
    raw = "a\x00c\u2028d\u2029"
    graph = snapshot.loads(_document("blk", raw, "op", raw, raw, raw))
    document = html.page(htmlview.model_view(graph, make_style(None), depth=-1))
    assert "\u2028" not in document and "\x00" not in document
    assert "a\\u0000c\\u2028d\\u2029" in document
    # A lone surrogate (possible in a traced module's name) is escaped too: the page stays UTF-8.
    assert html.script_json({"k": "x\ud800"}).encode("utf-8") == b'{"k":"x\\ud800"}'


STYLE_TEXT = st.text(SHOWN, min_size=1, max_size=16) | st.sampled_from(
    ['Helvetica"]; x [label="y', "red<b>", "a&b", "#ff0000", "DejaVu Sans", "0.5,0.2 0.9"]
)


STYLE_KEYS = [
    "fontname",
    "default_node_color",
    "default_edge_color",
    "node_style",
    "node_margin",
    "edge_thickness",
]


@settings(max_examples=30)  # one Graphviz run per accepted example
@given(key=st.sampled_from(STYLE_KEYS), value=STYLE_TEXT)
def test_any_style_value_is_refused_or_drawn_as_well_formed_svg(key: str, value: str) -> None:
    from nnviz.errors import StyleError
    from nnviz.render.style import parse_style

    graph = snapshot.loads(_document("m", "C", "f", "a", "int8", "n"))
    try:
        style = parse_style([f"{key}={value}"])
    except StyleError as exc:
        assert str(exc).startswith(f"bad value {value.strip()!r} for style key {key!r}")
        assert "\n" not in str(exc)
        return
    assert not set(value) & set('"<>&[];='), value  # nothing that could leave an attribute
    svg = render(to_dot(graph, style), "svg")
    root = ElementTree.fromstring(svg)  # well-formed XML
    if key == "fontname":
        fonts = {e.get("font-family") for e in root.iter() if e.get("font-family")}
        assert fonts == {value.strip()}
