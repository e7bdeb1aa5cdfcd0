"""The highlighted diff drawing: small around one change in a big model, coloured by status,
all grey when identical, and real Graphviz output."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from support import traced
from torch import nn

import nnviz
from nnviz.diffing.palette import PALETTE
from nnviz.render import diffpaint
from nnviz.render.dot import to_dot
from nnviz.render.repeats import draw_once
from nnviz.render.style import make_style


def _one_conv_changed() -> nnviz.GraphDiff:
    with torch.device("meta"):
        model = torchvision.models.resnet152(weights=None)
    model.layer3[17].conv2 = nn.Conv2d(256, 256, 5, padding=2, bias=False)
    return nnviz.diff(traced("resnet152"), nnviz.trace(model, name="resnet152"))


def test_one_conv_changed_in_resnet152_is_a_small_picture(tmp_path: Path) -> None:
    result = _one_conv_changed()
    assert [e.name for e in result] == ["layer3.17.conv2"]
    shown = diffpaint.fold(diffpaint.union_graph(result), result, 3)
    assert len(shown) < 60
    ids = [n.id for n in shown.nodes]
    assert "layer3.17.conv2" in ids and "layer3.0 … layer3.16" in ids and "layer4" in ids
    assert len(shown) == 19
    svg = nnviz.draw(result, tmp_path / "diff.svg").read_text()
    assert "kernel_size (3, 3) → (5, 5)" in svg
    assert "[changed]" in svg and "#fb8500" in svg  # orange border on the changed conv
    assert nnviz.draw(result, tmp_path / "diff.png").read_bytes()[:4] == b"\x89PNG"


def test_context_minus_one_draws_everything() -> None:
    result = _one_conv_changed()
    union = diffpaint.union_graph(result)
    assert len(diffpaint.fold(union, result, -1)) == len(union) == len(traced("resnet152"))


class _Block(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc, self.act, self.out = nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc(x)))


def test_context_keeps_neighbours_as_one_node_each() -> None:
    def chain(width: int) -> nn.Module:
        return nn.Sequential(*(_Block(width if i == 6 else 8) for i in range(12)))

    old, new = nnviz.trace(chain(8), name="c"), nnviz.trace(chain(9), name="c")
    result = nnviz.diff(old, new)
    shown = [
        [n.id for n in diffpaint.fold(diffpaint.union_graph(result), result, k).nodes]
        for k in (0, 1)
    ]
    # only the change opens its block; the unchanged ones fold into runs, except the blocks
    # within the context, each drawn as one node (never opened: that drew resnet18 -> 34
    # 15,128 px tall)
    assert shown[0] == ["input:input", "0 … 5", "6.fc", "6.act", "6.out", "7 … 11", "output"]
    assert shown[1] == [
        "input:input",
        "0 … 4",
        "5",
        "6.fc",
        "6.act",
        "6.out",
        "7",
        "8 … 11",
        "output",
    ]


def test_an_added_block_is_one_node_with_its_new_edges_painted() -> None:
    old, new = traced("resnet18"), traced("resnet34")
    result = nnviz.diff(old, new)
    once = draw_once(diffpaint.union_graph(result), result)
    shown = diffpaint.fold(once.graph, result, 1)
    ids = {n.id for n in shown.nodes}
    assert {"layer1.2", "layer4.2"} <= ids  # each added block one node, as one changelog line
    assert not any(i.startswith("layer1.2.") for i in ids)
    assert {"layer1.0", "layer1.1", "layer2.0"} <= ids  # its neighbours: one node each
    paint = diffpaint.carry(diffpaint.paint_for(result, once), once.graph, shown)
    assert paint.nodes["layer1.2"].badge == "added"
    colours = {paint.edges[e].color for e in paint.edges if "layer1.2" in e}
    assert colours == {PALETTE["added"].line}  # the edges into and out of it: added
    assert paint.edges[("layer1.1", "layer2.0")].line == "dashed"  # the skip that went away
    dot = to_dot(shown, make_style(None), paint)
    for key in ("added", "removed (dashed)", "unchanged context (grey)", "[follows]: changed"):
        assert key in dot  # the colour keys and the mark, in the drawing's legend


def test_a_long_flat_sequential_folds_beyond_the_context() -> None:
    def flat(kernel: int) -> nn.Module:
        layers: list[nn.Module] = []
        for i in range(150):
            layers += [nn.Conv2d(8, 8, kernel if i == 75 else 3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers)

    result = nnviz.diff(nnviz.trace(flat(3), name="f"), nnviz.trace(flat(5), name="f"))
    shown = diffpaint.fold(diffpaint.union_graph(result), result, 3)
    ids = [n.id for n in shown.nodes]
    assert ids == ["input:input", "0 … 146", *map(str, range(147, 154)), "154 … 299", "output"]
    assert shown.node("0 … 146").meta["collapsed"] == 147


def test_statuses_are_painted(tmp_path: Path) -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18(weights=None)
    model.layer1 = nn.Sequential(model.layer1[0])
    model.fc = nn.Sequential(nn.Dropout(0.2), model.fc)
    result = nnviz.diff(traced("resnet18"), nnviz.trace(model, name="resnet18"))
    paint = diffpaint.paint_for(result)
    assert paint.nodes["layer1.1.conv1"].line == "dashed"
    assert paint.nodes["layer1.1.conv1"].border == diffpaint.COLOURS["removed"][1]
    assert paint.nodes["fc.0"].fill == diffpaint.COLOURS["added"][0]
    assert paint.nodes["fc.1"].lines[0] == "was fc"
    assert "layer1.0.conv1" not in paint.nodes and paint.dim
    rewired = paint.nodes["layer2.0.conv1"]  # its input moved because layer1.1 went away
    assert (rewired.badge, rewired.fill) == ("follows", diffpaint.FOLLOWER_FILL)
    assert rewired.lines == ("input layer1.1.relu:1 → layer1.0.relu:1 (follows layer1.1)",)
    dot = nnviz.draw(result, tmp_path / "d.dot", context=1).read_text()
    assert 'style="rounded,filled,dashed"' in dot
    assert "[removed]" in dot and "[added]" in dot


def test_identical_is_all_grey(tmp_path: Path) -> None:
    result = nnviz.diff(traced("resnet18"), traced("resnet18"))
    assert diffpaint.paint_for(result).nodes == {}
    shown = diffpaint.fold(diffpaint.union_graph(result), result, 3)
    assert [n.id for n in shown.nodes] == [
        "input:x",
        "conv1 … maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool … fc",
        "output",
    ]
    svg = nnviz.draw(result, tmp_path / "same.svg").read_text()
    assert "identical" in svg and "#fb8500" not in svg


def test_json_path_writes_the_diff_document(tmp_path: Path) -> None:
    import json

    result = nnviz.diff(traced("resnet18"), traced("resnet18", num_classes=10))
    doc = json.loads(nnviz.draw(result, tmp_path / "d.json").read_text())
    assert doc == result.to_dict()


def test_a_changed_module_without_a_changed_op_is_drawn_changed(tmp_path: Path) -> None:
    """A module traced through (no call node of its own) that changed class with the same ops
    inside: the text names it, so the drawing paints it, as one node or as its cluster."""

    class Norm(nn.LayerNorm):  # a library's own subclass, traced through
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias)

    class Block(nn.Module):
        def __init__(self, norm: nn.Module) -> None:
            super().__init__()
            self.norm, self.fc, self.out = norm, nn.Linear(8, 8), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.fc(self.norm(x)))

    new = nnviz.trace(Block(Norm(8)), name="m", inputs="tensor2x8")

    class Moved(Norm):  # the class moved to another home: same settings
        pass

    swapped = nnviz.trace(Block(Moved(8)), name="m", inputs="tensor2x8")
    result = nnviz.diff(new, swapped)
    assert [e.name for e in result] == ["norm"] and not result.identical
    svg = nnviz.draw(result, tmp_path / "class.svg").read_text()
    assert "a subclass; same settings" in svg and "[changed]" in svg
    expanded = nnviz.draw(result, tmp_path / "expanded.svg", context=-1).read_text()
    assert "norm [changed]" in expanded  # drawn as a cluster: its frame carries the change
    assert "a subclass; same settings" in expanded


def test_layers_only_moved_by_an_insert_fold_into_one_renamed_node(tmp_path: Path) -> None:
    """vgg16 -> vgg19 adds a conv and its ReLU to each of the last three stages; every later
    layer of the flat `features` is renumbered. Each run of them is one node, painted renamed
    with its old names (each drawn alone, the drawing was 6,917 px tall; now 4,396)."""
    with torch.device("meta"):
        old, new = torchvision.models.vgg16(), torchvision.models.vgg19()
    result = nnviz.diff(nnviz.trace(old, name="vgg16"), nnviz.trace(new, name="vgg19"))
    assert sorted(e.name for e in result if e.status == "added") == [
        f"features.{i}" for i in (16, 17, 25, 26, 34, 35)
    ]
    once = draw_once(diffpaint.union_graph(result), result)
    shown = diffpaint.fold(once.graph, result, 3)
    runs = {n.id: n for n in shown.nodes if "moved" in n.meta}
    assert list(runs) == ["features.19 … features.24", "features.28 … features.33"]
    assert runs["features.19 … features.24"].meta["moved"] == ("features.17", "features.22")
    paint = diffpaint.carry(diffpaint.paint_for(result, once), once.graph, shown)
    assert paint.nodes["features.19 … features.24"].lines == ("was features.17 … features.22",)
    assert paint.nodes["features.19 … features.24"].border == PALETTE["renamed"].line
    svg = nnviz.draw(result, tmp_path / "vgg.svg").read_text()
    assert "moved layers" in svg and "was features.24 … features.29" in svg
