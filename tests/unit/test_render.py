"""The drawing itself: parse the SVG that the embedded Graphviz writes and check its content."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import traced

from nnviz.errors import RenderError, StyleError
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.render import EdgePaint, NodePaint, Paint, Style, parse_style, render, to_dot
from nnviz.render.labels import family_color
from nnviz.transform import collapse_depth, select

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _no_system_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Draw as on a machine without Graphviz installed: only the bundled engine is there."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in path if not (Path(p) / "dot").exists()))
    monkeypatch.delenv("NNVIZ_ENGINE", raising=False)


def svg_of(graph: Graph, style: Style | None = None, paint: Paint | None = None) -> ET.Element:
    data = render(to_dot(graph, style, paint), "svg")
    assert isinstance(data, bytes)
    return ET.fromstring(data)


def groups(root: ET.Element, kind: str) -> dict[str, ET.Element]:
    """`<g class="node|cluster|edge">` elements by their id (the graph's structural ids)."""
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g") if g.get("class") == kind}


def text_of(element: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in element.iter(f"{SVG}text"))


def fill_of(element: ET.Element) -> str:
    shape = next(s for s in element if s.tag in (f"{SVG}path", f"{SVG}polygon"))
    return shape.get("fill", "")


@pytest.mark.parametrize(("depth", "count"), [(-1, 71), (1, 13), (2, 17), (3, 68)])
def test_node_count_at_each_depth(depth: int, count: int) -> None:
    root = svg_of(collapse_depth(traced("resnet18"), depth))
    assert len(groups(root, "node")) == count


def test_clusters_are_titled_by_path_and_class() -> None:
    root = svg_of(collapse_depth(traced("resnet18"), 2))
    clusters = groups(root, "cluster")
    titles = {key: " ".join(text_of(g).split()) for key, g in clusters.items()}
    assert titles == {f"cluster:layer{i}": f"layer{i} Sequential" for i in range(1, 5)}
    block = groups(root, "node")["layer2.0"]
    assert "BasicBlock" in text_of(block)
    assert "9 ops · params 230,144 (2.0%)" in text_of(block)
    assert "torchvision.models.resnet.BasicBlock" in text_of(block)
    deep = groups(svg_of(collapse_depth(traced("resnet18"), -1)), "cluster")
    assert "cluster:layer2.0.downsample" in deep
    # Shaded by depth: a nested cluster is darker than its parent.
    assert fill_of(deep["cluster:layer2.0.downsample"]) < fill_of(deep["cluster:layer2.0"])
    assert fill_of(deep["cluster:layer2.0"]) < fill_of(deep["cluster:layer2"])


def test_node_labels_show_op_name_params_arguments_and_source() -> None:
    nodes = groups(svg_of(collapse_depth(traced("resnet18"), 2)), "node")
    conv = text_of(nodes["conv1"])
    for expected in (
        "Conv2d",
        "conv1 · params 9,408 (0.1%)",
        "kernel_size=(7, 7)",
        "stride=(2, 2)",
        "torch.nn.Conv2d",
    ):
        assert expected in conv
    assert "start_dim" in text_of(nodes["flatten"]) or "arg1=1" in text_of(nodes["flatten"])
    assert "torch.flatten" in text_of(nodes["flatten"])
    assert text_of(nodes["input:x"]).split() == ["input", "x"]


def test_edges_carry_tensor_shapes_when_traced_with_data() -> None:
    graph = collapse_depth(traced("resnet18", inputs="default"), 2)
    edges = groups(svg_of(graph), "edge")
    assert text_of(edges["edge:input:x->conv1"]) == "[1, 3, 224, 224]"
    assert text_of(edges["edge:layer1.1->layer2.0"]) == "[1, 64, 56, 56]"
    assert text_of(edges["edge:fc->output"]) == "[1, 1000]"
    assert all(text_of(e) for e in edges.values())
    untraced = groups(svg_of(collapse_depth(traced("resnet18"), 2)), "edge")
    assert not any(text_of(e) for e in untraced.values())


def test_dense_skips_are_drawn_as_buses_keeping_every_connection() -> None:
    graph = traced("densenet121")
    root = svg_of(graph)
    edges = groups(root, "edge")
    assert all(f"edge:{e.source}->{e.target}" in edges for e in graph.edges)
    assert len(groups(root, "node")) == len(graph)
    relays = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node relay"]
    # The stem's output feeds all six concatenations of the first dense block through one trunk.
    assert [g.get("id") for g in relays][:6] == [f"relay:features.pool0:{i}" for i in range(6)]
    assert len(relays) > 100


def _hostile_graph() -> Graph:
    """Names, classes, arguments and specs full of HTML and DOT syntax."""
    weird = 'blk<TABLE>&"x"'
    tensor = {"$tensor": {"shape": [2, 3], "dtype": "float32"}}
    nested = {
        "$tuple": [
            tensor,
            {"$dict": [["<key>", {"$tensor": {"shape": [5], "dtype": "int64"}}]]},
        ]
    }
    nodes = [
        Node("input:x", "input", "x", spec=tensor),
        Node(f"{weird}.conv", "module", "evil.<B>Conv</B>", weird, f"{weird}.conv", spec=nested),
        Node(
            f"{weird}.op",
            "function",
            "ops.</TD></TR>",
            weird,
            args={"0": '<TABLE> & "quoted" \\N', "k": {"$repr": "<br/>"}},
            spec=tensor,
        ),
        Node("output", "output", "output", spec=tensor),
    ]
    edges = [
        Edge("input:x", f"{weird}.conv", ("0",)),
        Edge(f"{weird}.conv", f"{weird}.op", ("0",)),
        Edge(f"{weird}.op", "output", ("0",)),
    ]
    modules = [
        Module("", "m.<Model>", 7),
        Module(weird, 'evil.<TABLE>&"Block"', 7),
        Module(f"{weird}.conv", "evil.<B>Conv</B>", 7, {"mode": '<TABLE> & "x"'}),
    ]
    return Graph(nodes, edges, modules, {"name": '<TABLE>&"name"'})


def test_user_text_renders_literally(capfd: pytest.CaptureFixture[str]) -> None:
    root = svg_of(_hostile_graph())
    everything = text_of(root)
    cluster = groups(root, "cluster")['cluster:blk<TABLE>&"x"']
    assert " ".join(text_of(cluster).split()) == 'blk<TABLE>&"x" <TABLE>&"Block"'
    nodes = groups(root, "node")
    conv = text_of(nodes['blk<TABLE>&"x".conv'])
    assert "<B>Conv</B>" in conv and "mode='<TABLE> & \"x\"'" in conv
    op = text_of(nodes['blk<TABLE>&"x".op'])
    assert "</TD></TR>" in op
    assert "arg0='<TABLE> & \"quoted\" \\\\N'" in op
    assert "k=<br/>" in op
    # The nested spec is a small table: a tuple of a tensor and a dict keyed "<key>".
    edge = text_of(groups(root, "edge")['edge:blk<TABLE>&"x".conv->blk<TABLE>&"x".op'])
    assert edge.split("  ") == edge.split("  ")  # parsed at all
    assert "[2, 3]" in edge and "<key>" in edge and "[5] int64" in edge
    assert '<TABLE>&"name"' in everything
    assert capfd.readouterr().err == ""


def test_drawing_is_deterministic() -> None:
    graph = collapse_depth(traced("resnet18", inputs="default"), 2)
    assert to_dot(graph) == to_dot(graph)
    assert render(to_dot(graph), "svg") == render(to_dot(graph), "svg")


def test_colours_are_per_family_and_do_not_depend_on_other_nodes() -> None:
    full = groups(svg_of(traced("resnet18")), "node")
    part = groups(svg_of(select(traced("resnet18"), "layer2.0")), "node")
    for node_id in ("layer2.0.conv1", "layer2.0.bn1", "layer2.0.add"):
        assert fill_of(full[node_id]) == fill_of(part[node_id])
    assert fill_of(full["conv1"]) == fill_of(full["layer4.1.conv2"]) == family_color("Conv")
    assert fill_of(full["conv1"]) != fill_of(full["bn1"])
    assert family_color("Conv") == "#d8c1ed"  # sha256-based: the same on every machine


def test_style_options_change_the_drawing() -> None:
    graph = collapse_depth(traced("resnet18", inputs="default"), 2)
    plain = parse_style(
        [
            "show_node_arguments=false",
            "show_node_source=no",
            "show_specs=0",
            "show_clusters=false",
            "show_title=false",
            "rankdir=LR",
            "node_title_font_size=30",
        ]
    )
    root = svg_of(graph, plain)
    conv = text_of(groups(root, "node")["conv1"])
    assert "kernel_size" not in conv and "torch.nn.Conv2d" not in conv
    assert not groups(root, "cluster")
    assert not any(text_of(e) for e in groups(root, "edge").values())
    assert "resnet18" not in " ".join(text_of(t) for t in root if t.tag == f"{SVG}g")
    source = to_dot(graph, plain)
    assert "rankdir=LR" in source and 'POINT-SIZE="30"' in source


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["nonsense=1"], r"unknown style key 'nonsense'; valid keys: fontname, .*rankdir"),
        (["node_title_font_size=big"], r"bad value 'big' for style key 'node_title_font_size'"),
        (["rankdir=BT"], r"bad value 'BT' for style key 'rankdir'"),
        (["show_title"], r"'show_title' is not KEY=VALUE"),
    ],
)
def test_bad_styles_are_one_clear_error(pairs: list[str], message: str) -> None:
    with pytest.raises(StyleError, match=message) as info:
        parse_style(pairs)
    assert "\n" not in str(info.value)


def test_paint_overrides_colours_lines_and_labels() -> None:
    graph = collapse_depth(traced("resnet18"), 2)
    paint = Paint(
        nodes={
            "conv1": NodePaint(
                fill="#ffcccc",
                border="red",
                line="dashed",
                lines=("kernel_size (7, 7) → (5, 5)",),
                badge="changed",
            )
        },
        edges={("conv1", "bn1"): EdgePaint(color="red", line="dashed", label="<new>")},
        subtitle="2 changes",
        dim=True,
    )
    root = svg_of(graph, paint=paint)
    nodes = groups(root, "node")
    conv = nodes["conv1"]
    assert fill_of(conv) == "#ffcccc"
    assert "kernel_size (7, 7) → (5, 5)" in text_of(conv) and "[changed]" in text_of(conv)
    assert any(s.get("stroke-dasharray") for s in conv.iter(f"{SVG}path"))
    assert fill_of(nodes["bn1"]) == "#f7f7f7"  # context is dimmed
    edge = groups(root, "edge")["edge:conv1->bn1"]
    assert {p.get("stroke") for p in edge.iter(f"{SVG}path")} == {"red"}
    assert text_of(edge) == "<new>"
    assert "2 changes" in text_of(root)
    assert to_dot(graph) == to_dot(graph, paint=Paint())


def test_render_writes_formats_atomically_into_new_folders(tmp_path: Path) -> None:
    source = to_dot(collapse_depth(traced("resnet18"), 1))
    for name, magic in [("a.svg", b"<?xml"), ("b.png", b"\x89PNG"), ("c.pdf", b"%PDF")]:
        written = render(source, tmp_path / "deep" / "er" / name)
        assert written == tmp_path / "deep" / "er" / name
        assert written.read_bytes().startswith(magic)
    assert render(source, tmp_path / "d.gv").read_text() == source  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "deep" / "er").iterdir()) == [
        "a.svg", "b.png", "c.pdf"
    ]  # fmt: skip


def test_unknown_formats_and_engines_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RenderError, match=r"unknown output format '\.bmp'; use one of .pdf .svg"):
        render("digraph {a}", tmp_path / "x.bmp")
    with pytest.raises(RenderError, match="unknown Graphviz engine 'cairo'"):
        render("digraph {a}", "svg", engine="cairo")
    with pytest.raises(RenderError, match=r"Graphviz \(embedded\) failed: .*syntax error"):
        render("digraph { a -> }", "svg")
    assert not list(tmp_path.iterdir())


def test_system_engine_missing_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNVIZ_ENGINE", "system")
    with pytest.raises(RenderError, match="system Graphviz `dot` is not on PATH"):
        render("digraph {a}", "svg")


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="no system Graphviz (`.ci/run` installs it)"
)
def test_system_engine_draws_the_same_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # bring the system `dot` back
    source = to_dot(collapse_depth(traced("resnet18", inputs="default"), 2))
    embedded = ET.fromstring(render(source, "svg", engine="embedded"))  # type: ignore[arg-type]
    system = ET.fromstring(render(source, "svg", engine="system"))  # type: ignore[arg-type]
    for kind in ("node", "cluster", "edge"):
        assert sorted(groups(system, kind)) == sorted(groups(embedded, kind))
    assert text_of(groups(system, "edge")["edge:fc->output"]) == "[1, 1000]"


def test_graph_displays_inline_in_jupyter() -> None:
    bundle = traced("resnet18")._repr_mimebundle_()
    assert bundle["text/plain"].startswith("<Graph 'resnet18'")
    root = ET.fromstring(bundle["image/svg+xml"])
    assert len(groups(root, "node")) == 17


def test_draw_api_takes_graphs_modules_specs_and_snapshots(tmp_path: Path) -> None:
    import torchvision

    import nnviz

    model = torchvision.models.resnet18(weights=None)
    written = nnviz.draw(model, tmp_path / "module.svg", depth=1, style={"rankdir": "LR"})
    assert len(groups(ET.parse(written).getroot(), "node")) == 13
    snapshot = nnviz.save(traced("resnet18"), tmp_path / "r.json")
    written = nnviz.draw(str(snapshot), tmp_path / "out" / "snap.svg", collapse=["layer1"])
    assert "layer1" in groups(ET.parse(written).getroot(), "node")
    written = nnviz.draw(traced("resnet18"), tmp_path / "layer.json", layer="layer2.0", depth=1)
    assert nnviz.load(written) == select(traced("resnet18"), "layer2.0")
    with pytest.raises(StyleError, match="unknown style key 'colour'"):
        nnviz.draw(traced("resnet18"), tmp_path / "x.svg", style={"colour": "red"})


def test_flat_tuples_are_text_and_nested_values_are_tables() -> None:
    from nnviz.render.labels import spec_label

    style = Style()
    size = {"$tuple": [1, 3, 224, 224]}
    assert "TABLE" not in spec_label(size, style) and "(1, 3, 224, 224)" in spec_label(size, style)
    pair = {"$tuple": [{"$tensor": {"shape": [1, 4], "dtype": "float32"}}, size]}
    assert spec_label(pair, style).count("<TABLE") == 1


def test_system_engine_is_the_fallback_without_pygraphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnviz.render import engine

    assert engine.choose_engine() == "embedded"
    monkeypatch.setattr(engine, "embedded_available", lambda: False)
    assert engine.choose_engine() == "system"
    assert engine.choose_engine("embedded") == "system"
    monkeypatch.setenv("NNVIZ_ENGINE", "bogus")
    with pytest.raises(RenderError, match="unknown Graphviz engine 'bogus'"):
        engine.choose_engine()


def test_png_taller_than_cairo_allows_keeps_full_size(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import struct

    written = render(to_dot(traced("efficientnet_b0")), tmp_path / "tall.png")
    assert isinstance(written, Path)
    header = written.read_bytes()[:24]
    assert header.startswith(b"\x89PNG")
    width, height = struct.unpack(">II", header[16:24])
    assert height > 32767 > width  # cairo would have shrunk it (and the text) to fit
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("engine", ["embedded", "system"])
def test_png_over_the_pixel_budget_is_shrunk_with_a_warning(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    """Below cairo's side limit but over the pixel budget (a wide detector at 96 dpi is 254
    megapixels): every engine shrinks it to the budget and says so."""
    import struct

    from nnviz.render import engine as engines

    if engine == "system":
        monkeypatch.undo()  # bring the system `dot` back
        if shutil.which("dot") is None:
            pytest.skip("no system Graphviz (`.ci/run` installs it)")
    monkeypatch.setattr(engines, "MAX_PNG_PIXELS", 200_000)
    written = render(to_dot(traced("resnet18")), tmp_path / "r.png", engine)
    assert isinstance(written, Path)
    width, height = struct.unpack(">II", written.read_bytes()[16:24])
    assert 100_000 < width * height <= 200_000
    assert "too large for a PNG bitmap and was shrunk" in capfd.readouterr().err
