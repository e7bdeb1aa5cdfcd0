"""Drawings fold scalar bookkeeping and crowded scopes; snapshots keep every node."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import networkx as nx
from support import run_nnviz, traced

from nnviz import bookkeeping, snapshot
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.render import to_dot
from nnviz.render.labels import display_name
from nnviz.transform import apply, collapse_depth, fold_runs

VIT_BOOKKEEPING = [
    "floordiv", "floordiv:1", "getattr", "getattr:1",
    "getitem", "getitem:1", "getitem:2", "getitem:3", "mul",
]  # fmt: skip


def test_shape_reads_and_their_arithmetic_are_bookkeeping_with_or_without_data() -> None:
    # vit_b_16: n, _, h, w = x.shape; n_h, n_w = h // 16, w // 16; x.reshape(n, 768, n_h * n_w)
    assert sorted(bookkeeping.scalar_nodes(traced("vit_b_16"))) == VIT_BOOKKEEPING
    assert sorted(bookkeeping.scalar_nodes(traced("vit_b_16", inputs="default"))) == VIT_BOOKKEEPING
    # A getitem on a tensor (the attention output) is data flow, not bookkeeping.
    assert "encoder.layers.encoder_layer_0.getitem" not in bookkeeping.scalar_nodes(
        traced("vit_b_16")
    )


def test_folding_moves_expressions_into_the_consumer_and_keeps_the_read() -> None:
    full = traced("vit_b_16")
    folded = bookkeeping.fold(full)
    assert not set(VIT_BOOKKEEPING) & {n.id for n in folded.nodes}
    assert len(folded) == len(full) - len(VIT_BOOKKEEPING)
    reshape = folded.node("reshape")
    assert dict(reshape.meta["folded"]) == {
        "shape.0": "x.shape[0]",
        "shape.2": "(x.shape[2] // 16) * (x.shape[3] // 16)",
    }
    read = folded.edge("input:x", "reshape")
    assert read.slots == ("shape.0", "shape.2") and bookkeeping.folded_edge(folded, read)
    assert not bookkeeping.folded_edge(folded, folded.edge("conv_proj", "reshape"))
    assert snapshot.dumps(traced("vit_b_16")) == snapshot.dumps(full)  # input untouched


def test_drawing_shows_folded_arguments_dashed_reads_and_everything_on_request() -> None:
    dot = to_dot(apply(traced("vit_b_16")))
    assert "shape.2=(x.shape[2] // 16) * (x.shape[3] // 16)" in dot.replace("&#x27;", "'")
    assert "getattr" not in {n.id for n in apply(traced("vit_b_16")).nodes}
    read = next(line for line in dot.splitlines() if 'id="edge:input:x->reshape"' in line)
    assert "dashed" in read
    shown = {n.id for n in apply(traced("vit_b_16"), fold=False).nodes}
    assert set(VIT_BOOKKEEPING) <= shown


def test_cli_draws_folded_by_default_and_snapshots_keep_everything(tmp_path: Path) -> None:
    snap, folded, shown = tmp_path / "v.json", tmp_path / "v.dot", tmp_path / "all.dot"
    assert run_nnviz("vit_b_16", "-o", str(snap)).returncode == 0
    ids = {n["id"] for n in json.loads(snap.read_text())["nodes"]}
    assert set(VIT_BOOKKEEPING) <= ids
    assert run_nnviz(str(snap), "-o", str(folded)).returncode == 0
    done = run_nnviz(str(snap), "-o", str(shown), "-S", "bookkeeping=show")
    assert done.returncode == 0, done.stderr
    assert not re.search(r"id=floordiv\b", folded.read_text())
    assert re.search(r"id=floordiv\b", shown.read_text())


def test_crowded_scopes_draw_runs_of_ops_without_cycles() -> None:
    graph = collapse_depth(traced("vit_b_16"), 2)
    ops = [n for n in graph.nodes if n.kind in ("function", "method") and n.scope == ""]
    runs = fold_runs(graph, max_ops=len(ops) - 1)
    merged = [n for n in runs.nodes if n.op == "ops"]
    # The shape reads before conv_proj, then the reshape ... cat after it: two runs.
    assert [n.id for n in merged] == ["ops", "ops:1"]
    assert sum(n.meta["collapsed"] for n in merged) == len(ops) - 1 == 13
    assert "getitem:4" in runs  # x[:, 0] between the encoder and the head: a run of one
    assert merged[0].meta["summary"].startswith("getitem ×3 · floordiv ×2 · getattr ×1")
    assert runs.predecessors("conv_proj") == ["input:x"]
    assert nx.is_directed_acyclic_graph(runs.nx)
    assert fold_runs(graph, max_ops=len(ops)) is graph
    assert fold_runs(graph, max_ops=-1) is graph


def _recurrent_graph() -> Graph:
    """A block called three times whose output feeds its next call directly (RAFT's GRU), with
    a head run between the calls."""
    t = {"$tensor": {"shape": [1, 4], "dtype": "float32"}}
    nodes = [Node("input:x", "input", "x", spec=t)]
    edges = []
    previous = "input:x"
    for call in range(3):
        suffix = f":{call}" if call else ""
        gru, head = f"gru.conv{suffix}", f"head{suffix}"
        nodes += [
            Node(gru, "module", "torch.nn.Conv1d", "gru", "gru.conv", spec=t),
            Node(head, "module", "torch.nn.Linear", "", "head", spec=t),
        ]
        edges += [Edge(previous, gru, ("0",)), Edge(gru, head, ("0",))]
        previous = gru
    nodes.append(Node("output", "output", "output", spec=t))
    edges.append(Edge("head:2", "output", ("0",)))
    modules = [
        Module("", "m.Model"),
        Module("gru", "m.GRU"),
        Module("gru.conv", "torch.nn.Conv1d"),
        Module("head", "torch.nn.Linear"),
    ]
    return Graph(nodes, edges, modules, {"name": "recurrent"})


def test_collapse_keeps_each_call_of_a_recurrent_block_apart() -> None:
    graph = collapse_depth(_recurrent_graph(), 1)
    assert [n.id for n in graph.nodes if n.module == "gru"] == ["gru", "gru:1", "gru:2"]
    assert nx.is_directed_acyclic_graph(graph.nx)
    assert [display_name(graph.node(i)) for i in ("gru", "gru:1", "head:2")] == [
        "gru",
        "gru (call 2)",
        "head (call 3)",
    ]
    assert display_name(graph.node("output")) == "output"


def test_a_crowded_stage_of_identical_blocks_draws_as_one_node() -> None:
    t = {"$tensor": {"shape": [1, 4], "dtype": "float32"}}
    nodes = [Node("input:x", "input", "x", spec=t)]
    nodes += [
        Node(f"stage.{i}.conv", "module", "torch.nn.Conv1d", f"stage.{i}", f"stage.{i}.conv")
        for i in range(5)
    ]
    nodes.append(Node("output", "output", "output"))
    chain = [n.id for n in nodes]
    modules = [Module("", "m.Net"), Module("stage", "torch.nn.Sequential")]
    for i in range(5):
        modules += [Module(f"stage.{i}", "m.Block"), Module(f"stage.{i}.conv", "torch.nn.Conv1d")]
    graph = collapse_depth(
        Graph(nodes, [Edge(a, b, ("0",)) for a, b in itertools.pairwise(chain)], modules), 2
    )
    assert len(graph) == 7  # five collapsed blocks
    runs = fold_runs(graph, max_ops=3)
    assert [n.id for n in runs.nodes] == ["input:x", "stage.blocks", "output"]
    assert runs.node("stage.blocks").meta["summary"] == "stage.0 … stage.4 · 5 × Block"
    assert runs.edge("stage.blocks", "output").slots == ("0",)
    assert fold_runs(graph, max_ops=5) is graph
