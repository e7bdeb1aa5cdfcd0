"""The differ on realistic pull-request edits of real torchvision models: exactly the expected
report, and nothing else."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest
import torch
import torchvision
from support import traced
from torch import nn

import nnviz
from nnviz.diffing.changelog import changelog
from nnviz.graph import Graph


def resnet18_with(edit: Callable[[nn.Module], object]) -> Graph:
    """resnet18 after an in-place edit of a fresh instance (built on meta: no weights)."""
    with torch.device("meta"):
        model = torchvision.models.resnet18(weights=None)
    edit(model)
    return nnviz.trace(model, name="resnet18")


def text(old: Graph, new: Graph) -> str:
    result = nnviz.diff(old, new)
    assert result.to_text() == changelog(result.to_dict())
    return result.to_text()


def test_conv_kernel_changed_in_one_block() -> None:
    def edit(m: nn.Module) -> None:
        m.layer3[1].conv2 = nn.Conv2d(256, 256, 5, padding=2, bias=False)

    assert text(traced("resnet18"), resnet18_with(edit)) == dedent("""\
        ~ layer3.1.conv2  Conv2d  kernel_size (3, 3) → (5, 5); padding (1, 1) → (2, 2)
        1 changed · params 11,689,512 → 12,738,088 (+1,048,576)
        checkpoint: breaks — 1 shape mismatch (layer3.1.conv2.weight [256, 256, 3, 3] → [256, 256, 5, 5])
        """)  # noqa: E501


def test_conv_stride_changed() -> None:
    def edit(m: nn.Module) -> None:
        m.layer2[0].conv1.stride = (1, 1)
        m.layer2[0].downsample[0].stride = (1, 1)

    assert text(traced("resnet18"), resnet18_with(edit)) == dedent("""\
        ~ layer2.0.conv1, layer2.0.downsample.0  Conv2d  stride (2, 2) → (1, 1) ×2
        2 changed · params 11,689,512 → 11,689,512 (+0)
        checkpoint: old checkpoints load as they are
        """)


def test_block_narrowed() -> None:
    def edit(m: nn.Module) -> None:
        m.layer3[1].conv1 = nn.Conv2d(256, 128, 3, padding=1, bias=False)
        m.layer3[1].bn1 = nn.BatchNorm2d(128)
        m.layer3[1].conv2 = nn.Conv2d(128, 256, 3, padding=1, bias=False)

    assert text(traced("resnet18"), resnet18_with(edit)) == dedent("""\
        ~ layer3.1.conv1  Conv2d  out_channels 256 → 128
        ~ layer3.1.bn1  BatchNorm2d  num_features 256 → 128
        ~ layer3.1.conv2  Conv2d  in_channels 256 → 128
        3 changed · params 11,689,512 → 11,099,432 (-590,080)
        checkpoint: breaks — 6 shape mismatches (layer3.1.conv1.weight [256, 256, 3, 3] → [128, 256, 3, 3], layer3.1.bn1.bias [256] → [128], layer3.1.bn1.weight [256] → [128], … 3 more)
        """)  # noqa: E501


def test_relu_replaced_by_gelu_in_one_place() -> None:
    def edit(m: nn.Module) -> None:
        m.layer2[1].relu = nn.GELU()

    result = nnviz.diff(traced("resnet18"), resnet18_with(edit))
    assert result.to_text() == dedent("""\
        ~ layer2.1.relu  GELU  class ReLU → GELU (approximate='none', no inplace)
        1 changed · params 11,689,512 → 11,689,512 (+0)
        checkpoint: old checkpoints load as they are
        """)
    # the block calls its relu twice: the second call is the same module, not a second change
    assert [e.name for e in result] == ["layer2.1.relu"]


def test_dropout_inserted_before_the_head() -> None:
    def edit(m: nn.Module) -> None:
        m.fc = nn.Sequential(nn.Dropout(0.2), m.fc)

    result = nnviz.diff(traced("resnet18"), resnet18_with(edit))
    assert result.to_text() == dedent("""\
        + fc  Sequential (2 nodes, 513K params)
            ↳ fc.1  input flatten → fc.0
        → fc moved to fc.1
        1 added, 1 renamed, 1 downstream · params 11,689,512 → 11,689,512 (+0)
        checkpoint: loads after renaming 2 keys
        """)
    assert {e.name: e.status for e in result} == {
        "fc": "added",
        "fc.0": "added",
        "fc.1": "changed",
    }
    assert result.entry("fc.1").renamed_from == "fc"


def test_dropout_inserted_into_a_sequential_renumbers_the_rest() -> None:
    with torch.device("meta"):
        vgg = torchvision.models.vgg11(weights=None)
    base = nnviz.trace(vgg, name="vgg11")
    layers = list(vgg.features)
    layers.insert(2, nn.Dropout(0.1))
    vgg.features = nn.Sequential(*layers)
    assert text(base, nnviz.trace(vgg, name="vgg11")) == dedent("""\
        + features.2  Dropout (1 node, 0 params)
            ↳ features.3  input features.1 → features.2
        → features.2 … features.20 moved to features.3 … features.21 (19 layers)
        1 added, 19 renamed, 1 downstream · params 132,863,336 → 132,863,336 (+0)
        checkpoint: loads after renaming 14 keys
        """)


def _widening(extra: bool) -> nn.Sequential:
    """Twelve convs one channel wider each (no two alike), each with a ReLU; with `extra`, one
    more conv (8 -> 8) and its ReLU after the fourth."""
    layers: list[nn.Module] = []
    for i in range(12):
        layers += [nn.Conv2d(4 + i, 5 + i, 3, padding=1), nn.ReLU()]
        if extra and i == 3:
            layers += [nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


def test_a_layer_inserted_into_a_stack_moves_the_later_ones() -> None:
    """Every later index shifts: the same index is no longer the same layer (by id alone said
    `8 changed`, each conv its neighbour's channels, a conv added at the end and 16 shape
    mismatches)."""
    old, new = nnviz.trace(_widening(False), name="s"), nnviz.trace(_widening(True), name="s")
    assert text(old, new) == dedent("""\
        + 8  Conv2d (1 node, 584 params)
        + 9  ReLU (1 node, 0 params)
            ↳ 10  input 7 → 9
        → 8 … 23 moved to 10 … 25 (16 layers)
        2 added, 16 renamed, 1 downstream · params 12,186 → 12,770 (+584)
        checkpoint: breaks — 2 new keys left at initialisation (8.bias, 8.weight), 16 keys renamed (--key-map)
        """)  # noqa: E501
    # the ground truth, the other way round: the wider stack's weights, through nnviz's key
    # map, load strictly into the stack without the inserted pair and compute what the wider
    # one computes with that pair deleted
    torch.manual_seed(0)
    wide, narrow = _widening(True), _widening(False)
    key_map = nnviz.key_map(new, old)
    state = {key_map.get(k, k): v for k, v in wide.state_dict().items()}
    narrow.load_state_dict({k: v for k, v in state.items() if k is not None}, strict=True)
    del wide[8:10]
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(narrow(x), wide(x))
    # and this way: the old weights through the map the line points to (`--key-map`: a map
    # for a non-strict load) leave exactly the verdict's new keys missing in a real load
    verdict = nnviz.diff(old, new).checkpoint
    assert verdict is not None
    renames = nnviz.key_map(old, new, strict=False)
    assert renames == {pair.old: pair.new for pair in verdict.renamed}
    state = {renames.get(k, k): v for k, v in narrow.state_dict().items()}
    loaded = _widening(True).load_state_dict(state, strict=False)
    assert loaded.unexpected_keys == []
    assert sorted(loaded.missing_keys) == sorted(k.key for k in verdict.missing)


def _kernels(*sizes: int) -> nn.Sequential:
    """Convs 8 -> 8 told apart by their kernel size, each with a ReLU."""
    return nn.Sequential(
        *(m for k in sizes for m in (nn.Conv2d(8, 8, k, padding=k // 2), nn.ReLU()))
    )


def test_a_removal_and_an_insert_in_one_stack_keep_the_count_and_move_the_middle() -> None:
    """Same number of children, every middle index shifted: the layer of each kernel size is
    the same layer (the ground truth: a real load puts each old conv on the conv of its kernel)."""
    before, after = _kernels(1, 3, 5, 7, 9, 11, 13, 15), _kernels(1, 3, 7, 9, 11, 17, 13, 15)
    result = nnviz.diff(nnviz.trace(before, name="k"), nnviz.trace(after, name="k"))
    convs = {(e.status, e.op) for e in result if e.drifted and not e.propagated}
    convs -= {("renamed", "torch.nn.Conv2d"), ("renamed", "torch.nn.ReLU")}  # the moved middle
    assert convs == {("added", "torch.nn.Conv2d"), ("removed", "torch.nn.Conv2d")}
    verdict = result.checkpoint
    assert verdict is not None and not verdict.mismatched
    renames = {pair.old: pair.new for pair in verdict.renamed}
    unused = {key.key for key in verdict.unused}
    state = {renames.get(k, k): v for k, v in before.state_dict().items() if k not in unused}
    loaded = after.load_state_dict(state, strict=False)
    assert loaded.unexpected_keys == []
    assert sorted(loaded.missing_keys) == sorted(k.key for k in verdict.missing)
    kernel = {
        k: c.weight for k, c in ((c.kernel_size[0], c) for c in before if isinstance(c, nn.Conv2d))
    }
    for conv in after:
        if isinstance(conv, nn.Conv2d) and conv.kernel_size[0] != 17:
            assert torch.equal(conv.weight, kernel[conv.kernel_size[0]])


def test_residual_block_deleted() -> None:
    def edit(m: nn.Module) -> None:
        m.layer1 = nn.Sequential(m.layer1[0])

    result = nnviz.diff(traced("resnet18"), resnet18_with(edit))
    assert result.to_text() == dedent("""\
        - layer1.1  BasicBlock (7 nodes, 74K params)
            ↳ layer2.0.conv1, layer2.0.downsample.0  input layer1.1.relu:1 → layer1.0.relu:1
        1 removed, 2 downstream · params 11,689,512 → 11,615,528 (-73,984)
        checkpoint: breaks — 12 keys no longer used (layer1.1.conv1.weight, layer1.1.bn1.bias, layer1.1.bn1.weight, … 9 more)
        """)  # noqa: E501
    summary = result.summary  # the changelog's counts: one block removed, two inputs follow
    assert (summary["removed"], summary["changed"], summary["propagated"]) == (1, 0, 2)
    assert sum(1 for e in result if e.status == "removed") == 8  # its nodes, on the entries


def test_num_classes_changed() -> None:
    assert text(traced("resnet18"), traced("resnet18", num_classes=10)) == dedent("""\
        ~ fc  Linear  out_features 1000 → 10
        1 changed · params 11,689,512 → 11,181,642 (-507,870)
        checkpoint: breaks — 2 shape mismatches (fc.bias [1000] → [10], fc.weight [1000, 512] → [10, 512])
        """)  # noqa: E501


def test_two_layers_of_a_sequential_swapped() -> None:
    with torch.device("meta"):
        vgg = torchvision.models.vgg11(weights=None)
    base = nnviz.trace(vgg, name="vgg11")
    layers = list(vgg.features)
    layers[1], layers[2] = layers[2], layers[1]
    vgg.features = nn.Sequential(*layers)
    assert text(base, nnviz.trace(vgg, name="vgg11")) == dedent("""\
        → features.2 moved to features.1
            ↳ features.1  input features.2 → features.0
        → features.1 moved to features.2
            ↳ features.2  input features.0 → features.1
            ↳ features.3  input features.1 → features.2
        2 renamed, 3 downstream · params 132,863,336 → 132,863,336 (+0)
        checkpoint: old checkpoints load as they are
        """)


NET = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.{head} = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, {classes}))

    def forward(self, x):
        x = torch.{act}(self.features(x))
        return self.{head}(torch.flatten(self.pool(x), 1))


def make():
    return Net()
"""


def net(tmp_path: Path, folder: str, head: str = "head", act: str = "relu", classes: int = 10):
    """A small model file, as it looks on one side of a pull request."""
    path = tmp_path / folder / "net.py"
    path.parent.mkdir()
    path.write_text(NET.format(head=head, act=act, classes=classes))
    return nnviz.trace(f"{path}:make")


def test_submodule_renamed(tmp_path: Path) -> None:
    old, new = net(tmp_path, "old"), net(tmp_path, "new", head="classifier")
    result = nnviz.diff(old, new)
    assert result.to_text() == dedent("""\
        → head renamed to classifier
        1 renamed · params 554 → 554 (+0)
        checkpoint: loads after renaming 4 keys
        """)
    assert {e.name: e.renamed_from for e in result} == {
        "classifier": "head",
        "classifier.0": "head.0",
        "classifier.1": "head.1",
        "classifier.2": "head.2",
    }


def test_renamed_and_changed(tmp_path: Path) -> None:
    old, new = net(tmp_path, "old"), net(tmp_path, "new", head="classifier", classes=20)
    assert text(old, new) == dedent("""\
        → head renamed to classifier
        ~ classifier.2  Linear  out_features 10 → 20
        1 changed, 1 renamed · params 554 → 724 (+170)
        checkpoint: breaks — 2 shape mismatches (classifier.2.bias [10] → [20], classifier.2.weight [10, 16] → [20, 16]), 2 keys renamed (--key-map)
        """)  # noqa: E501


def test_functional_op_changed_in_forward(tmp_path: Path) -> None:
    old, new = net(tmp_path, "old"), net(tmp_path, "new", act="sigmoid")
    result = nnviz.diff(old, new)
    assert result.to_text() == dedent("""\
        ~ sigmoid  torch.sigmoid  op torch.relu → torch.sigmoid
        1 changed · params 554 → 554 (+0)
        checkpoint: old checkpoints load as they are
        """)
    (entry,) = result
    assert (entry.kind, entry.renamed_from, entry.path) == ("function", "relu", None)


def test_same_model_with_different_seeds_is_identical() -> None:
    graphs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        graphs.append(nnviz.trace(torchvision.models.resnet18(weights=None), name="resnet18"))
    result = nnviz.diff(*graphs)
    assert result.identical and not result and list(result) == []
    assert result.to_text() == "identical: no architecture changes (71 nodes, 11,689,512 params)\n"


def test_train_and_eval_mode_are_identical() -> None:
    with torch.device("meta"):
        a = torchvision.models.resnet18(weights=None).train()
        b = torchvision.models.resnet18(weights=None).eval()
    assert nnviz.diff(nnviz.trace(a), nnviz.trace(b)).identical


@pytest.mark.parametrize("ignore", [("hparams",), ("kernel_size", "padding", "parameters")])
def test_ignore_drops_fields(ignore: tuple[str, ...]) -> None:
    def edit(m: nn.Module) -> None:
        m.layer3[1].conv2 = nn.Conv2d(256, 256, 5, padding=2, bias=False)

    result = nnviz.diff(traced("resnet18"), resnet18_with(edit), ignore=ignore)
    remaining = {k for e in result for k in e.changes}
    if ignore == ("hparams",):
        assert remaining == {"parameters.weight"}
    else:
        assert result.identical


def test_shapes_propagate_from_their_root_cause() -> None:
    def chain(width: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, 8, 3))

    old = nnviz.trace(chain(16), name="chain", inputs="image32")
    new = nnviz.trace(chain(32), name="chain", inputs="image32")
    result = nnviz.diff(old, new)
    assert result.entry("1").changes["spec"].cause == "0"
    assert not result.entry("0").changes["spec"].propagated
    assert result.to_text() == dedent("""\
        ~ 0  Conv2d  out_channels 16 → 32 · +389 KMACs, +56.2 KiB activations
        ~ 2  Conv2d  in_channels 16 → 32 · +903 KMACs
        2 changed, 1 downstream · params 1,608 → 3,208 (+1,600) · compute 1.29 MMACs → 2.58 MMACs (+100.0%) · activations 137 KiB → 250 KiB (+82.1%)
        checkpoint: breaks — 3 shape mismatches (0.bias [16] → [32], 0.weight [16, 3, 3, 3] → [32, 3, 3, 3], 2.weight [8, 16, 3, 3] → [8, 32, 3, 3])
        """)  # noqa: E501
    # the conv's own MACs, by hand: 16 filters × 3 channels × 3×3 × 30×30 outputs = 388,800
    entries = {e["name"]: e for e in result.to_dict()["nodes"]}
    assert entries["0"]["cost"]["macs"] == {"old": 388_800, "new": 777_600}
    assert nnviz.diff(old, new, ignore=["spec"]).summary["propagated"] == 0


def test_unrelated_removal_and_addition_are_not_a_move() -> None:
    from torchvision.models.resnet import BasicBlock

    def edit(m: nn.Module) -> None:
        m.layer1 = nn.Sequential(m.layer1[0])
        m.layer4.append(BasicBlock(512, 512))

    # the two blocks share only parameter-free leaves (ReLU): no "moved" line for those
    assert text(traced("resnet18"), resnet18_with(edit)) == dedent("""\
        - layer1.1  BasicBlock (7 nodes, 74K params)
            ↳ layer2.0.conv1, layer2.0.downsample.0  input layer1.1.relu:1 → layer1.0.relu:1
        + layer4.2  BasicBlock (7 nodes, 4.7M params)
            ↳ avgpool  input layer4.1.relu:1 → layer4.2.relu:1
        1 added, 1 removed, 3 downstream · params 11,689,512 → 16,336,168 (+4,646,656)
        checkpoint: breaks — 12 new keys left at initialisation (layer4.2.conv1.weight, layer4.2.bn1.bias, layer4.2.bn1.weight, … 9 more), 12 keys no longer used (layer1.1.conv1.weight, layer1.1.bn1.bias, layer1.1.bn1.weight, … 9 more)
        """)  # noqa: E501


SPARE = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.spare = nn.Dropout({p})

    def forward(self, x):
        return {body}


def make():
    return Net()
"""


def spare(tmp_path: Path, folder: str, p: float = 0.1, body: str = "self.conv(x)") -> Graph:
    path = tmp_path / folder / "spare.py"
    path.parent.mkdir()
    path.write_text(SPARE.format(p=p, body=body))
    return nnviz.trace(f"{path}:make")


def test_a_module_that_is_never_called_still_counts(tmp_path: Path) -> None:
    old, new = spare(tmp_path, "old"), spare(tmp_path, "new", p=0.2)
    assert text(old, new) == dedent("""\
        ~ spare  Dropout  p 0.1 → 0.2
        1 changed · params 224 → 224 (+0)
        checkpoint: old checkpoints load as they are
        """)


def test_a_module_called_from_now_on(tmp_path: Path) -> None:
    old, new = spare(tmp_path, "old"), spare(tmp_path, "new", body="self.spare(self.conv(x))")
    assert text(old, new) == dedent("""\
        ~ spare  Dropout  called False → True
            ↳ output  input 0 conv → spare
        1 changed, 1 downstream · params 224 → 224 (+0)
        checkpoint: old checkpoints load as they are
        """)


def test_shapes_count_only_when_both_sides_have_them() -> None:
    plain, shaped = traced("resnet18"), nnviz.trace("resnet18", inputs="default")
    assert nnviz.diff(plain, shaped).identical


def test_a_different_input_size_is_one_root_cause() -> None:
    big = nnviz.trace("resnet18", inputs="image64")
    small = nnviz.trace("resnet18", inputs="image32")
    result = nnviz.diff(big, small)
    assert result.to_text() == dedent("""\
        ~ input:x  x  output [1, 3, 64, 64] → [1, 3, 32, 32]
            ↳ output shapes follow in 66 nodes (relu ×17, conv1 ×9, bn1 ×9, conv2 ×8, bn2 ×8, …)
        1 changed, 66 downstream · params 11,689,512 → 11,689,512 (+0) · compute 149 MMACs → 37.5 MMACs (-74.7%) · activations 2.57 MiB → 662 KiB (-74.8%)
        checkpoint: old checkpoints load as they are
        """)  # noqa: E501
    causes = {c.cause for e in result for c in e.changes.values() if c.propagated}
    assert causes == {"input:x"}


def test_api_warns_when_the_sides_come_from_different_tracers_and_differ() -> None:
    """nnviz.diff itself says so (the CLI and the plugin only show it): a Graph, a snapshot path
    or a spec each; identical graphs from different tracers leave nothing to explain."""
    from support import DEMO_SNAPSHOT

    fx = nnviz.load(DEMO_SNAPSHOT)
    eager = fx.replace(meta={**fx.meta, "tracer": "eager"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not nnviz.diff(DEMO_SNAPSHOT, eager)
        assert not nnviz.diff(fx, fx)
    ten = traced("resnet18", num_classes=10)
    with pytest.warns(nnviz.TracersDifferWarning, match="traced with fx, .* with eager"):
        result = nnviz.diff(traced("resnet18"), ten.replace(meta={**ten.meta, "tracer": "eager"}))
    assert result


def test_a_text_changelog_never_makes_the_union_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The union edges (as many as the nodes) are made on first read: the JSON document and the
    drawings read them, a text changelog of two loaded snapshots never does."""
    from nnviz.diffing import build

    paths = [tmp_path / "old.json", tmp_path / "new.json"]
    nnviz.save(traced("resnet18"), paths[0])
    nnviz.save(traced("resnet18", num_classes=10), paths[1])
    result = nnviz.diff(*(nnviz.load(path) for path in paths))
    made: list[int] = []
    make = build._edges
    monkeypatch.setattr(build, "_edges", lambda *sides: made.append(1) or make(*sides))
    assert "out_features 1000 → 10" in result.to_text() + result.to_text(verbose=True)
    assert made == []
    edges = result.to_dict()["edges"]
    assert made == [1] and edges == [e.to_dict() for e in result.edges]
    assert result.edges == tuple(result.edges) and len(result.edges) == len(edges) == 78
    assert made == [1]  # made once
