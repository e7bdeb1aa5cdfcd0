"""Sibling blocks with the same changes are drawn once (`blocks.{0..5} ×6`), with the edges
into and out of them drawn from the block that stands for them; blocks with other changes, or
drawn differently, stay apart; the text names the same groups (`nnviz.diffing.blocks`)."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import networkx
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from support import traced
from torch import nn

import nnviz
from nnviz.diffing.blocks import Siblings, repeated_changes
from nnviz.diffing.mermaid import mermaid
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.render import diffpaint, htmlview, repeats
from nnviz.render.dot import REPEAT_LEGEND, to_dot
from nnviz.render.style import make_style


class Block(nn.Module):
    def __init__(self, extra: nn.Module | None, layer_idx: int) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.extra = extra
        self.layer_idx = layer_idx  # differs in every block, as in HF models; never drawn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if self.extra is not None:
            y = self.extra(y)
        return x + torch.relu(y)


class Tower(nn.Module):
    """stem → blocks (in sequence, or side by side and summed) → head."""

    def __init__(self, extras: list[nn.Module | None], parallel: bool = False) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 8)
        self.blocks = nn.ModuleList(Block(e, i) for i, e in enumerate(extras))
        self.head = nn.Linear(8, 2)
        self.parallel = parallel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.parallel:
            x = sum(block(x) for block in self.blocks)
        else:
            for block in self.blocks:
                x = block(x)
        return self.head(x)


def _diff(new_extras: list[nn.Module | None], parallel: bool = False) -> nnviz.GraphDiff:
    old = nnviz.trace(Tower([None] * len(new_extras), parallel), name="t", inputs="tensor1x4")
    return nnviz.diff(old, nnviz.trace(Tower(new_extras, parallel), name="t", inputs="tensor1x4"))


def _clusters(dot: str) -> dict[str, str]:
    """Cluster id → its label's text (tags dropped)."""
    found = re.findall(r'id="cluster:([^"]*)" label=<(.*?)> labeljust', dot)
    return {path: re.sub(r"<[^>]*>", " ", label).strip() for path, label in found}


def _edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r'id="edge:([^"]*?)->([^"]*)"', dot))


def test_a_change_in_every_block_is_one_cluster_in_the_drawing(tmp_path: Path) -> None:
    result = _diff([nn.Dropout(0.1) for _ in range(6)])
    assert "+ blocks.{0..5}.extra  Dropout (1 node, 0 params) ×6" in result.to_text()
    dot = nnviz.draw(result, tmp_path / "d.dot").read_text()
    clusters = _clusters(dot)
    blocks = [path for path in clusters if path.startswith("blocks.")]
    assert blocks == ["blocks.0"]
    assert "blocks.{0..5} ×6" in clusters["blocks.0"]
    assert "blocks.{0..5}.extra" in dot and "blocks.3" not in dot
    assert REPEAT_LEGEND in dot
    # the data enters from the stem and leaves to the head; no edge from one block to the next
    edges = _edges(dot)
    assert ("stem", "blocks.0.fc") in edges and ("blocks.0.add", "head") in edges
    assert ("blocks.0.add", "blocks.0.fc") not in edges
    assert ("blocks.0.fc", "blocks.0.extra") in edges  # the added edge, drawn in green
    svg = nnviz.draw(result, tmp_path / "d.svg").read_text()
    assert svg.count('class="cluster"') == 2  # blocks (the ModuleList) and blocks.{0..5}
    assert "blocks.{0..5} ×6" in svg and "[added]" in svg
    # the Mermaid chart of the markdown draws one box for the six, no edge between blocks
    chart = mermaid(result.to_dict())
    assert "blocks.{0..5}.extra ×6" in chart and "blocks.3" not in chart
    assert chart.count("[added]") == 0 and chart.count(":::added") == 1
    # the interactive page draws from the same graph and lists the change once
    view = htmlview.diff_view(result, make_style(None), context=3)
    assert [n["id"] for n in view["nodes"] if n["id"].startswith("blocks.")] == [
        "blocks.0.fc",
        "blocks.0.extra",
        "blocks.0.relu",
        "blocks.0.add",
    ]
    added = [(c["name"], c["target"]) for c in view["changes"] if c["status"] == "added"]
    assert added == [("blocks.{0..5}.extra ×6", "blocks.0.extra")]
    # collapsed, the drawn block counts the ops of one block, the list around it those of all
    pieces = {m["path"]: m["pieces"][0]["dot"] for m in view["modules"]}
    assert "4 ops" in pieces["blocks.0"] and "blocks.{0..5} ×6" in pieces["blocks.0"]
    assert "24 ops" in pieces["blocks"]


def test_blocks_with_other_changes_stay_apart(tmp_path: Path) -> None:
    extras: list[nn.Module | None] = [nn.Dropout(0.1) for _ in range(6)]
    extras[2] = nn.GELU()
    result = _diff(extras)
    # the text and the drawing agree on which blocks carry the same change
    groups = repeated_changes(result.to_dict()["nodes"])
    assert groups == [Siblings("blocks", (0, 1, 3, 4, 5))]
    assert "+ blocks.{0,1,3,4,5}.extra  Dropout (1 node, 0 params) ×5" in result.to_text()
    clusters = _clusters(nnviz.draw(result, tmp_path / "d.dot").read_text())
    # block 2 lies between them: one cluster for all five would draw a loop through it
    assert {p: t.split()[0] for p, t in clusters.items() if p.startswith("blocks.")} == {
        "blocks.0": "blocks.{0,1}",
        "blocks.2": "blocks.2",
        "blocks.3": "blocks.{3..5}",
    }
    assert "×2" in clusters["blocks.0"] and "×3" in clusters["blocks.3"]
    edges = _edges(nnviz.draw(result, tmp_path / "d.dot").read_text())
    assert {("blocks.0.add", "blocks.2.fc"), ("blocks.2.add", "blocks.3.fc")} <= edges
    assert ("blocks.3.add", "head") in edges


def test_blocks_side_by_side_are_drawn_once_with_their_inputs_and_outputs(tmp_path: Path) -> None:
    result = _diff([nn.GELU(), nn.GELU(), nn.GELU()], parallel=True)
    dot = nnviz.draw(result, tmp_path / "d.dot").read_text()
    assert [p for p in _clusters(dot) if p.startswith("blocks.")] == ["blocks.0"]
    edges = _edges(dot)
    readers = {t for s, t in edges if s == "stem"}
    assert readers == {"blocks.0.fc", "blocks.0.add"}  # each block reads the stem's output
    assert [s for s, t in edges if t == "add"] == ["blocks.0.add"]  # the sum of the blocks
    assert all(s in dot and t in dot for s, t in edges)


def test_resnet18_draws_alike_blocks_once_and_a_block_with_a_downsample_apart(
    tmp_path: Path,
) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18(weights=None)
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in layer:
            block.bn2 = nn.BatchNorm2d(block.bn2.num_features, eps=1e-3)
    result = nnviz.diff(traced("resnet18"), nnviz.trace(model, name="resnet18"))
    dot = nnviz.draw(result, tmp_path / "d.dot").read_text()
    titles = {p: t.split()[0] for p, t in _clusters(dot).items() if p[:5] == "layer" and "." in p}
    # layer1's two blocks look alike; each later stage's first block downsamples
    assert titles["layer1.0"] == "layer1.{0,1}" and "layer1.1" not in titles
    assert titles["layer2.0"] == "layer2.0" and titles["layer2.1"] == "layer2.1"
    assert ("layer1.0.relu:1", "layer2.0.conv1") in _edges(dot)


def test_repeats_inside_repeats_read_with_both_titles(tmp_path: Path) -> None:
    def net(dropout: bool) -> nn.Module:
        def block() -> nn.Module:
            extra = [nn.Dropout(0.1)] if dropout else []
            return nn.Sequential(nn.Linear(8, 8), *extra, nn.ReLU())

        stages = [nn.Sequential(block(), block(), block()) for _ in range(2)]
        return nn.Sequential(nn.Linear(4, 8), nn.Sequential(*stages), nn.Linear(8, 2))

    old, new = (nnviz.trace(net(d), name="n", inputs="tensor1x4") for d in (False, True))
    dot = nnviz.draw(nnviz.diff(old, new), tmp_path / "d.dot").read_text()
    assert {p: t.split("  ")[0] for p, t in _clusters(dot).items()} == {
        "1": "1",
        "1.0": "1.{0,1} ×2",
        "1.0.0": "1.{0,1}.{0..2} ×3",
    }
    assert "1.{0,1}.{0..2}.1" in dot  # the added Dropout, named for all six places
    # in, through the one block drawn, out: no edge from a block back to another
    assert _edges(dot) == {
        ("input:input", "0"),
        ("0", "1.0.0.0"),
        ("1.0.0.0", "1.0.0.1"),
        ("1.0.0.0", "1.0.0.2"),
        ("1.0.0.1", "1.0.0.2"),
        ("1.0.0.2", "2"),
        ("2", "output"),
    }


def test_blocks_named_with_a_number_at_the_end_are_siblings(tmp_path: Path) -> None:
    """torchvision's ViT names its layers `encoder.layers.encoder_layer_0` … `_11`."""

    def net(act: type[nn.Module]) -> nn.Module:
        def layer() -> nn.Module:
            return nn.Sequential(nn.Linear(8, 8), act())

        layers = OrderedDict((f"encoder_layer_{i}", layer()) for i in range(4))
        return nn.Sequential(OrderedDict(layers=nn.Sequential(layers), fc1=nn.Linear(8, 8)))

    old, new = (nnviz.trace(net(a), name="n", inputs="tensor1x8") for a in (nn.ReLU, nn.GELU))
    dot = nnviz.draw(nnviz.diff(old, new), tmp_path / "d.dot").read_text()
    clusters = _clusters(dot)
    assert [p for p in clusters if p != "layers"] == ["layers.encoder_layer_0"]
    assert clusters["layers.encoder_layer_0"].startswith("layers.encoder_layer_{0..3} ×4")


def test_the_page_header_and_the_repr_show_the_totals_not_an_information_line() -> None:
    result = _diff([nn.Dropout(0.1) for _ in range(3)])
    text = result.to_text()
    totals = "3 added, 3 downstream · params 274 → 274 (+0) · compute 240 MACs · activations 328 B"
    assert totals in text.splitlines()
    header = f"{totals} · checkpoint: old checkpoints load as they are"
    assert htmlview.diff_view(result, make_style(None), context=3)["summary"] == header
    assert repr(result) == f"<GraphDiff t → t: {totals}>"


class Sizes(nn.Module):
    """Reads two or three sizes from its input's shape (scalar plumbing, as two library
    versions write it)."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.reads = reads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape if self.reads == 3 else (x.shape[0], x.shape[1], 16)
        return self.fc(x).reshape(b, n, c)


def test_information_is_painted_light_and_only_a_strict_drawing_opens_around_it() -> None:
    def net(reads: int) -> nn.Module:
        return nn.Sequential(nn.Linear(16, 16), nn.Sequential(Sizes(reads)), nn.Linear(16, 16))

    old, new = (nnviz.trace(net(r), name="n", inputs="tensor1x4x16") for r in (3, 2))
    for strict in (False, True):
        result = nnviz.diff(old, new, strict=strict)
        name = "1.0.getitem:2"  # the size read that went away
        assert result.entry(name).status == "removed"
        paint = diffpaint.paint_for(result)
        shown = diffpaint.fold(diffpaint.union_graph(result), result, 1)
        view = htmlview.diff_view(result, make_style(None), context=1)
        piece = next(m["pieces"][0]["dot"] for m in view["modules"] if m["path"] == "1")
        assert ("changes inside" in piece) == strict  # the page's collapsed module agrees
        if strict:
            assert paint.nodes[name].badge == "removed" and name in shown
        else:  # as the text lists it apart: not drift, folded like the unchanged
            assert paint.nodes[name].badge == "removed: plumbing, not drift"
            assert paint.nodes[name].fill == diffpaint.FOLLOWER_FILL
            assert [n.id for n in shown.nodes] == ["input:input", "0", "1", "2", "output"]


def test_blocks_added_in_a_row_are_one_block_fed_by_the_last_old_one(tmp_path: Path) -> None:
    old, new = (nnviz.trace(Tower([None] * n), name="t", inputs="tensor1x4") for n in (3, 6))
    result = nnviz.diff(old, new)
    assert result.to_text().startswith(
        "+ blocks.{3..5}  Block (3 nodes, 72 params) ×3 · +64 MACs, +96 B activations each\n"
    )
    dot = nnviz.draw(result, tmp_path / "d.dot").read_text()
    # an added module is drawn as one node, the run of added blocks as one: blocks.{3..5} ×3
    node = next(line for line in dot.splitlines() if 'id="blocks.3"' in line)
    assert "blocks.{3..5} ×3" in node and "[added]" in node
    assert {("blocks.2", "blocks.3"), ("blocks.3", "head")} <= _edges(dot)


def test_a_shape_that_follows_the_block_before_is_the_same_change_in_every_block(
    tmp_path: Path,
) -> None:
    class Wide(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.stem = nn.Linear(4, width)
            self.blocks = nn.Sequential(
                *(nn.Sequential(nn.ReLU(), nn.Linear(width, width)) for _ in range(4))
            )
            self.head = nn.Linear(width, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.blocks(self.stem(x)))

    old, new = (nnviz.trace(Wide(w), name="w", inputs="tensor1x4") for w in (8, 16))
    result = nnviz.diff(old, new)  # blocks.0.0 follows the stem, blocks.1.0 follows blocks.0.1
    assert [result.entry(f"blocks.{i}.0").changes["spec"].cause for i in (0, 1)] == [
        "stem",
        "blocks.0.1",
    ]
    dot = nnviz.draw(result, tmp_path / "d.dot").read_text()
    assert [p for p in _clusters(dot) if p.startswith("blocks.")] == ["blocks.0"]
    # what it follows differs per block: not named for all four
    assert re.findall(r"\(follows [^)]*\)", dot) == ["(follows upstream)"]


def _chain(kernels: list[list[int]]) -> Graph:
    """input → stages of blocks (conv, relu, add with a skip) → output, as a snapshot would
    hold it: `kernels[s][b]` is the kernel size of block `s.b`."""
    nodes, edges, modules = [Node("input:x", "input", "x")], [], [Module("", "t.Net")]
    prev = "input:x"
    for s, stage in enumerate(kernels):
        modules.append(Module(f"stages.{s}", "torch.nn.Sequential"))
        for b, kernel in enumerate(stage):
            path = f"stages.{s}.{b}"
            conv = Module(f"{path}.conv", "torch.nn.Conv2d", 9, {"kernel_size": kernel})
            modules += [Module(path, "t.Block"), conv]
            nodes += [
                Node(f"{path}.conv", "module", "torch.nn.Conv2d", path, f"{path}.conv"),
                Node(f"{path}.add", "function", "operator.add", path),
            ]
            edges += [Edge(prev, f"{path}.conv", ("0",)), Edge(f"{path}.conv", f"{path}.add")]
            edges.append(Edge(prev, f"{path}.add", ("1",)))
            prev = f"{path}.add"
    nodes.append(Node("output", "output", "output"))
    return Graph(nodes, [*edges, Edge(prev, "output", ("0",))], modules, {"name": "net"})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from([3, 3, 5, 7]), min_size=1, max_size=6), max_size=3))
def test_any_kernel_edits_draw_blocks_once_only_when_their_changes_are_equal(
    kernels: list[list[int]],
) -> None:
    old, new = _chain([[3] * len(stage) for stage in kernels]), _chain(kernels)
    result = nnviz.diff(old, new)
    once = repeats.draw_once(diffpaint.union_graph(result), result)
    shown = once.graph
    assert networkx.is_directed_acyclic_graph(shown.nx)  # no loop through a block drawn once

    def alike(path: str) -> object:  # what a stage or block holds, and whether it changed
        at = [int(i) for i in path.split(".")[1:]]
        held = kernels[at[0]] if len(at) == 1 else [kernels[at[0]][at[1]]]
        return held if any(k != 3 for k in held) else None

    for standing, repeat in once.repeats.items():
        members = [standing, *(b for b, s in once.left_out.items() if s == standing)]
        assert len(members) == repeat.count > 1 and alike(standing) is not None
        assert all(alike(m) == alike(standing) for m in members)  # changed alike
        last = sorted(int(m.rpartition(".")[2]) for m in members)
        assert last == list(range(last[0], last[0] + len(last)))  # a run of the chain
        for m in members[1:]:
            assert not any(n.id.startswith(m + ".") for n in shown.nodes)
    dot = to_dot(diffpaint.fold(shown, result, 1), None, diffpaint.paint_for(result, once))
    assert dot.count("×") >= len(once.repeats)
