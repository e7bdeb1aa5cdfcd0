"""Graph transforms: select a layer, collapse by depth and by prefix (pure, on real models)."""

from __future__ import annotations

import itertools

import pytest
from support import traced

from nnviz import snapshot
from nnviz.errors import SelectionError
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.transform import apply, collapse_depth, collapse_prefixes, select
from nnviz.values import TensorSpec

RESNET18_DEPTH2 = [
    "input:x", "conv1", "bn1", "relu", "maxpool",
    "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1",
    "avgpool", "flatten", "fc", "output",
]  # fmt: skip


@pytest.mark.parametrize(("depth", "count"), [(-1, 71), (1, 13), (2, 17), (3, 68)])
def test_resnet18_node_count_at_each_depth(depth: int, count: int) -> None:
    assert len(collapse_depth(traced("resnet18"), depth)) == count


def test_depth_two_keeps_blocks_as_nodes_inside_their_stage() -> None:
    graph = collapse_depth(traced("resnet18"), 2)
    assert [n.id for n in graph.nodes] == RESNET18_DEPTH2
    block = graph.node("layer2.0")
    assert (block.kind, block.module, block.scope) == ("module", "layer2.0", "layer2")
    assert block.op == "torchvision.models.resnet.BasicBlock"
    # conv1, bn1, relu, conv2, bn2, downsample.0, downsample.1, add, relu:1
    assert block.meta["collapsed"] == 9
    assert graph.module_of(block) == traced("resnet18").modules["layer2.0"]
    assert graph.predecessors("layer2.0") == ["layer1.1"]
    assert graph.successors("layer2.0") == ["layer2.1"]


def test_collapsing_is_pure() -> None:
    graph = traced("resnet18")
    before = snapshot.dumps(graph)
    apply(graph, layer="layer2", depth=1, collapse=["layer2.0"])
    assert snapshot.dumps(graph) == before
    assert collapse_depth(graph, -1) is graph


def test_collapsed_nodes_keep_boundary_shapes() -> None:
    full = traced("resnet18", inputs="default")
    graph = collapse_depth(full, 1)
    assert graph.edge_spec("maxpool", "layer1") == TensorSpec((1, 64, 56, 56))
    assert graph.edge_spec("layer3", "layer4") == TensorSpec((1, 256, 14, 14))
    assert graph.node("layer4").spec == {"$tensor": {"shape": [1, 512, 7, 7], "dtype": "float32"}}


def test_collapse_prefixes_outermost_wins_and_sums_ops() -> None:
    full = traced("resnet18")
    graph = collapse_prefixes(full, ["layer1.0", "layer1"])
    assert "layer1" in graph and "layer1.0" not in graph
    inner = [
        n
        for n in full.nodes
        if n.scope.startswith("layer1") or (n.module or "").startswith("layer1")
    ]
    assert graph.node("layer1").meta["collapsed"] == len(inner) == 14
    assert "layer2.0.conv1" in graph  # untouched


def test_depth_then_prefix_composes() -> None:
    graph = apply(traced("resnet18"), depth=2, collapse=["layer3"])
    assert graph.node("layer3").meta["collapsed"] == 16  # 9 + 7 ops of its two blocks
    assert "layer3.0" not in graph and "layer2.0" in graph


def test_select_keeps_the_layer_with_new_inputs_and_output() -> None:
    full = traced("resnet18", inputs="default")
    graph = select(full, "layer2.0")
    ids = [n.id for n in graph.nodes]
    assert ids[0] == "input:x" and ids[-1] == "output"
    assert all(i.startswith("layer2.0.") for i in ids[1:-1])
    assert len(ids) == 11
    x = graph.node("input:x")
    assert x.meta["source"] == "layer1.1.relu:1"
    assert x.spec == {"$tensor": {"shape": [1, 64, 56, 56], "dtype": "float32"}}
    assert graph.successors("input:x") == ["layer2.0.conv1", "layer2.0.downsample.0"]
    assert graph.predecessors("output") == ["layer2.0.relu:1"]
    assert set(graph.modules) == {p for p in full.modules if p.startswith("layer2.0")}
    assert graph.meta["layer"] == "layer2.0"
    assert snapshot.loads(snapshot.dumps(graph)) == graph


def test_select_never_reuses_an_id_of_the_layer_for_its_new_ends() -> None:
    """A snapshot may name an op inside the layer `output` or `input:x` (found by hypothesis in
    tests/properties/test_props_untrusted.py: a duplicate id raised ValueError)."""
    nodes = [
        Node("input:x", "input", "x"),
        Node("output", "function", "torch.relu", scope="a"),
        Node("input:x:0", "function", "torch.relu", scope="a"),
        Node("out", "output", "output"),
    ]
    edges = [Edge("input:x", "output"), Edge("output", "input:x:0"), Edge("input:x:0", "out")]
    graph = Graph(nodes, edges, [Module("a", "m.M")], {"name": "strange"})
    chosen = select(graph, "a")
    assert [n.id for n in chosen.nodes] == ["input:x", "output", "input:x:0", "output:1"]
    assert chosen.node("output:1").kind == "output"
    assert chosen.predecessors("output:1") == ["input:x:0"]
    assert chosen.successors("input:x") == ["output"]


def test_depth_counts_from_the_selected_layer() -> None:
    graph = apply(traced("resnet18"), layer="layer2", depth=1)
    assert [n.id for n in graph.nodes] == ["input:x", "layer2.0", "layer2.1", "output"]


def test_unknown_layer_suggests_close_matches() -> None:
    with pytest.raises(SelectionError, match=r"'layer2\.9'.*did you mean layer2\.1"):
        select(traced("resnet18"), "layer2.9")
    with pytest.raises(SelectionError, match="no such module"):
        collapse_prefixes(traced("resnet18"), ["fetaures"])


def test_bad_depth_is_an_error() -> None:
    with pytest.raises(SelectionError, match="depth 0"):
        collapse_depth(traced("resnet18"), 0)


def _shared_block_graph() -> Graph:
    """x -> blk(call 1) -> mid -> blk(call 2) -> out, where `blk` holds a conv and a relu, and
    a top-level function op happens to be called `blk:1`."""
    tensor = {"$tensor": {"shape": [1, 4], "dtype": "float32"}}
    wide = {"$tensor": {"shape": [1, 8], "dtype": "float32"}}
    nodes = [
        Node("input:x", "input", "x", spec=tensor),
        Node("blk.conv", "module", "torch.nn.Conv1d", "blk", "blk.conv", spec=wide),
        Node("blk.relu", "function", "torch.relu", "blk", spec=wide),
        Node("mid", "module", "torch.nn.Identity", "", "mid", spec=wide),
        Node("blk:1", "function", "torch.neg", "", spec=wide),
        Node("blk.conv:1", "module", "torch.nn.Conv1d", "blk", "blk.conv", spec=wide),
        Node("blk.relu:1", "function", "torch.relu", "blk", spec=tensor),
        Node("output", "output", "output", spec=tensor),
    ]
    chain = [n.id for n in nodes]
    edges = [Edge(a, b, ("0",)) for a, b in itertools.pairwise(chain)]
    modules = [
        Module("", "m.Model", 20),
        Module("blk", "m.Block", 10),
        Module("blk.conv", "torch.nn.Conv1d", 10),
        Module("mid", "torch.nn.Identity", 0),
    ]
    return Graph(nodes, edges, modules, {"name": "shared"})


def test_collapsing_never_merges_separate_calls_or_colliding_names() -> None:
    graph = collapse_prefixes(_shared_block_graph(), ["blk"])
    ids = [n.id for n in graph.nodes]
    # Two calls of the shared block stay two nodes; the existing `blk:1` op keeps its id.
    assert ids == ["input:x", "blk", "mid", "blk:1", "blk:2", "output"]
    assert graph.node("blk").meta["collapsed"] == 2
    assert graph.node("blk:2").meta["collapsed"] == 2
    assert graph.node("blk:1").op == "torch.neg"
    assert [(e.source, e.target) for e in graph.edges] == [
        ("input:x", "blk"), ("blk", "mid"), ("mid", "blk:1"), ("blk:1", "blk:2"),
        ("blk:2", "output"),
    ]  # fmt: skip
    assert graph.node("blk:2").spec == {"$tensor": {"shape": [1, 4], "dtype": "float32"}}


def test_edge_spec_of_a_collapsed_node_is_the_one_reaching_the_target() -> None:
    """A collapsed block with two outputs of different shapes: each edge shows its own."""
    narrow = {"$tensor": {"shape": [1, 4], "dtype": "float32"}}
    wide = {"$tensor": {"shape": [1, 8], "dtype": "int64"}}
    nodes = [
        Node("input:x", "input", "x", spec=narrow),
        Node("blk.a", "function", "torch.relu", "blk", spec=narrow),
        Node("blk.b", "function", "torch.cat", "blk", spec=wide),
        Node("head", "function", "torch.neg", "", spec=narrow),
        Node("output", "output", "output", spec=wide),
    ]
    edges = [
        Edge("input:x", "blk.a", ("0",)),
        Edge("blk.a", "blk.b", ("0",)),
        Edge("blk.a", "head", ("0",)),
        Edge("blk.b", "output", ("0",)),
    ]
    modules = [Module("", "m.Model", 0), Module("blk", "m.Block", 0)]
    graph = collapse_prefixes(Graph(nodes, edges, modules, {"name": "two-out"}), ["blk"])
    assert graph.edge_spec("blk", "head") == TensorSpec((1, 4))
    assert graph.edge_spec("blk", "output") == TensorSpec((1, 8), "int64")
    assert str(graph.edge_spec("blk", "output")) == "[1, 8] int64"
