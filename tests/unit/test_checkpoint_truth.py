"""The checkpoint verdict held to ground truth computed without nnviz, on models whose new side
is built from the old side's own modules and tensors: which old tensor IS which new one is object
identity, so every old key's fate (loads under its name, under another name, no longer used)
and every new key left at initialisation is known before nnviz is asked. The verdict must say
exactly that, and real `load_state_dict` calls (strict and not, through nnviz's key maps) must
agree: missing and unexpected keys, size mismatches, and each renamed tensor landing on the
module the matching pairs with its old module."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision
from support import strict_load
from torch import nn

import nnviz
from nnviz.diffing.checkpoint import Verdict
from nnviz.graph import parent_path


def truth(old: nn.Module, new: nn.Module) -> tuple[dict[str, str | None], set[str]]:
    """Old key -> the new key holding the very same tensor (None: no longer used), and the new
    keys nothing old fills: from object identity and `state_dict()` alone."""
    where: dict[int, str] = {}
    for key, tensor in new.state_dict(keep_vars=True).items():
        where.setdefault(id(tensor), key)
    fates = {key: where.get(id(t)) for key, t in old.state_dict(keep_vars=True).items()}
    return fates, set(where.values()) - set(fates.values())


def held(old: nn.Module, new: nn.Module) -> Verdict:
    """nnviz's verdict from the two traced graphs, checked against `truth` and torch."""
    result = nnviz.diff(nnviz.trace(old), nnviz.trace(new))
    verdict = result.checkpoint
    assert verdict is not None
    fates, fresh = truth(old, new)
    state, after = old.state_dict(), new.state_dict()
    told: dict[str, str | None] = {k: k for k in state}
    told.update({p.old: p.new for p in (*verdict.renamed, *verdict.mismatched)})
    told.update({k.key: None for k in verdict.unused})
    assert told == fates  # every old key's fate
    assert {k.key for k in verdict.missing} == fresh
    for pair in verdict.mismatched:  # the shapes it names are the tensors' own
        assert (tuple(state[pair.old].shape), tuple(after[pair.new].shape)) == (
            pair.old_shape,
            pair.new_shape,
        )
    # each renamed tensor lands on the module the matching pairs with the old one's, or, where
    # the matching leaves that module unpaired, on the module holding its children's counterparts
    modules = result.matching.modules
    for pair in verdict.renamed:
        home, there = parent_path(pair.old) or "", parent_path(pair.new) or ""
        if home in modules:
            assert modules[home] == there
            continue
        children = [f"{home}.{name}" for name, _ in old.get_submodule(home).named_children()]
        assert children and all(c in modules and parent_path(modules[c]) == there for c in children)
    _loads(old, new, verdict)
    return verdict


def _loads(old: nn.Module, new: nn.Module, verdict: Verdict) -> None:
    """Real loads: as it is (strict), through the strict key map, through the non-strict one."""
    state = old.state_dict()
    assert strict_load(state, new) == (verdict.status == "loads")
    if verdict.mendable:
        assert strict_load(_mapped(state, verdict.key_map()), new)
    else:
        with pytest.raises(nnviz.CheckpointError):
            verdict.key_map()
    renamed = {p.old: p.new for p in verdict.renamed}
    unused = {k.key for k in verdict.unused}
    shifted = {renamed.get(k, k): v for k, v in state.items() if k not in unused}
    if verdict.mismatched:  # a non-strict load still refuses each size mismatch it names
        with pytest.raises(RuntimeError) as error:
            new.load_state_dict(shifted, strict=False)
        assert str(error.value).count("size mismatch for") == len(verdict.mismatched)
        for pair in verdict.mismatched:
            assert f"size mismatch for {pair.new}:" in str(error.value)
    loaded = new.load_state_dict(_mapped(state, verdict.key_map(strict=False)), strict=False)
    assert loaded.unexpected_keys == []
    left = {k.key for k in verdict.missing} | {p.new for p in verdict.mismatched}
    # BatchNorm fills a missing `num_batches_tracked` itself (with 0: at initialisation) and
    # does not report it: torch's own allowance for checkpoints older than that buffer
    assert set(loaded.missing_keys) == {k for k in left if not k.endswith(".num_batches_tracked")}
    after = new.state_dict()
    for old_key, new_key in renamed.items():  # the old tensor is where the map put it
        assert torch.equal(after[new_key], state[old_key])


def _mapped(state: dict[str, Any], key_map: dict[str, str | None]) -> dict[str, Any]:
    return {key_map.get(k, k): v for k, v in state.items() if key_map.get(k, k) is not None}


# --- an insert in a Sequential ------------------------------------------------------------------


def test_a_batchnorm_inserted_into_a_sequential_names_the_renames_its_break_also_needs() -> None:
    old = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
    old.append(nn.Conv2d(8, 8, 3))
    new = nn.Sequential(old[0], nn.BatchNorm2d(8), *old[1:])
    verdict = held(old, new)
    assert verdict.line() == (
        "checkpoint: breaks — 5 new keys left at initialisation (1.bias, 1.weight, "
        "1.num_batches_tracked, … 2 more), 4 keys renamed (--key-map)"
    )
    assert verdict.key_map(strict=False) == {
        "2.bias": "3.bias",
        "2.weight": "3.weight",
        "4.bias": "5.bias",
        "4.weight": "5.weight",
    }


# --- a layer replaced by a same-shape layer of another name ---------------------------------


class Block(nn.Module):
    """A conv, then a layer `extra` may put under any name (or none)."""

    def __init__(self, conv: nn.Module | None = None, **extra: nn.Module) -> None:
        super().__init__()
        self.conv = conv if conv is not None else nn.Conv2d(8, 8, 3, padding=1)
        self.names = list(extra)
        for name, module in extra.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        for name in self.names:
            x = getattr(self, name)(x)
        return x


class Blocks(nn.Module):
    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


@pytest.mark.parametrize(
    ("layer", "replacement"),
    [
        (nn.GroupNorm(4, 8), nn.InstanceNorm2d(8, affine=True)),
        (nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=2, dilation=2)),
    ],
    ids=["another-class", "other-hyperparameters"],
)
def test_a_layer_replaced_by_a_same_shape_layer_of_another_name_is_no_rename(
    layer: nn.Module, replacement: nn.Module
) -> None:
    """Its weight and bias have the shapes of the old layer's: by name and shape they said
    `loads after renaming 2 keys`; the diff says removed and added, and so must the verdict."""
    old = Blocks(Block(norm=layer), Block())
    new = Blocks(Block(old.blocks[0].conv, other=replacement), old.blocks[1])
    verdict = held(old, new)
    assert verdict.status == "breaks" and not verdict.renamed
    assert {k.key for k in verdict.unused} == {"blocks.0.norm.bias", "blocks.0.norm.weight"}


# --- a removed layer and an added one of the same shape elsewhere ---------------------------


@pytest.mark.parametrize("count", [1, 2])
def test_a_layer_removed_in_one_block_lends_nothing_to_one_added_in_another(count: int) -> None:
    """One LayerNorm removed from block 0 and one added to block 1 with other settings, or two
    alike each way (the matching cannot tell them apart: it pairs neither)."""
    eps = (1e-5, 1e-6) if count == 1 else (1e-5, 1e-5)
    norms = {f"n{i}": nn.GroupNorm(1, 8, eps=eps[0]) for i in range(count)}
    old = Blocks(Block(**norms), Block())
    added = {f"m{i}": nn.GroupNorm(1, 8, eps=eps[1]) for i in range(count)}
    new = Blocks(Block(old.blocks[0].conv), Block(old.blocks[1].conv, **added))
    verdict = held(old, new)
    assert verdict.status == "breaks" and not verdict.renamed
    assert len(verdict.unused) == len(verdict.missing) == 2 * count


def test_a_matched_layer_keeps_its_bias_from_a_new_layer_beside_it() -> None:
    """timm 1.0's TNT: `proj` lost its bias and a LayerNorm `norm2_proj` came after it; the old
    bias is no longer used, not the new norm's (which said `loads after renaming` of it)."""
    old = Blocks(Block(nn.Linear(8, 8)))
    proj = nn.Linear(8, 8, bias=False)
    proj.weight = old.blocks[0].conv.weight
    new = Blocks(Block(proj, norm2_proj=nn.LayerNorm(8)))
    result = nnviz.diff(nnviz.trace(old), nnviz.trace(new)).checkpoint
    assert result is not None
    assert {k.key for k in result.unused} == {"blocks.0.conv.bias"}
    assert {k.key for k in result.missing} == {
        "blocks.0.norm2_proj.bias",
        "blocks.0.norm2_proj.weight",
    }
    assert not result.renamed
    _loads(old, new, result)


def test_one_layers_weight_and_bias_never_go_two_ways() -> None:
    """A Linear removed; beside it a Linear of its weight's shape without a bias and one of its
    bias's shape: by name, shape and class its weight went to one and its bias to the other."""
    old = Blocks(Block(nn.Linear(8, 8), gone=nn.Linear(8, 8)))
    new = Blocks(Block(old.blocks[0].conv, a=nn.Linear(8, 8, bias=False), b=_Widen()))
    verdict = held(old, new)
    assert verdict.status == "breaks" and not verdict.renamed
    assert {k.key for k in verdict.unused} == {"blocks.0.gone.bias", "blocks.0.gone.weight"}


class _Widen(nn.Module):
    """A Linear 4 -> 8 (bias [8], as a Linear 8 -> 8's) on half the features."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[..., :4])


# --- a block whose class was renamed, moved: its own tensor follows its matched children -------


class AttnSub(nn.Module):
    """timm 0.6's LeViT `AttentionSubsample`, reduced: two layers and a tensor of its own."""

    def __init__(self, kv: nn.Module, q: nn.Module, biases: nn.Parameter) -> None:
        super().__init__()
        self.kv, self.q, self.biases = kv, q, biases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.q(x) * k + v + self.biases


class AttnDown(AttnSub):
    """timm 1.0's name for it (`AttentionDownsample`)."""


class Stage(nn.Module):
    def __init__(self, fc: nn.Module, *extra: nn.Module) -> None:
        super().__init__()
        self.fc, self.extra = fc, nn.ModuleList(extra)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        for module in self.extra:
            x = module(x)
        return x


def test_a_renamed_class_moved_into_a_stage_keeps_its_own_tensor() -> None:
    """The matching pairs its layers (moved into stage 0), not the block itself (its class was
    renamed): the children all went into one new module, so its own `biases` is that one's."""
    attn = AttnSub(nn.Linear(8, 16), nn.Linear(8, 8, bias=False), nn.Parameter(torch.randn(8)))
    old = Blocks(Stage(nn.Linear(8, 8)), Stage(nn.Linear(8, 8)), attn)
    moved = AttnDown(attn.kv, attn.q, attn.biases)
    new = Blocks(Stage(old.blocks[0].fc, moved), Stage(old.blocks[1].fc))
    verdict = held(old, new)
    assert verdict.key_map()["blocks.2.biases"] == "blocks.0.extra.0.biases"


# --- torchvision: blocks added (resnet18 -> resnet34), a submodule renamed --------------------


def test_resnet18_blocks_in_a_resnet34_leave_only_the_added_blocks_at_initialisation() -> None:
    old = torchvision.models.resnet18(weights=None).eval()
    new = torchvision.models.resnet34(weights=None).eval()
    for name in ("conv1", "bn1", "fc"):
        setattr(new, name, getattr(old, name))
    for name in ("layer1", "layer2", "layer3", "layer4"):
        stage, theirs = getattr(new, name), getattr(old, name)
        stage[0], stage[1] = theirs[0], theirs[1]
    verdict = held(old, new)
    assert verdict.status == "breaks" and not verdict.renamed and not verdict.unused
    assert len(verdict.missing) == len(new.state_dict()) - len(old.state_dict())
    assert {k.key.split(".")[1] for k in verdict.missing} == {"2", "3", "4", "5"}


class Renamed(nn.Module):
    """resnet18 with its stage `layer3` renamed `stage3` (and `fc` moved into `head`)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.stage3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        self.head = nn.Sequential(nn.Flatten(), net.fc)
        self.pool = net.avgpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.stage3(self.layer2(self.layer1(self.stem(x)))))
        return self.head(self.pool(x))


def test_a_renamed_submodule_loads_through_the_map_onto_the_same_modules() -> None:
    old = torchvision.models.resnet18(weights=None).eval()
    new = Renamed(old).eval()
    verdict = held(old, new)
    assert verdict.status == "renames"
    assert verdict.key_map()["layer3.0.conv1.weight"] == "stage3.0.conv1.weight"
    assert verdict.key_map()["fc.bias"] == "head.1.bias"
    x = torch.randn(1, 3, 64, 64)
    fresh = Renamed(torchvision.models.resnet18(weights=None)).eval()
    fresh.load_state_dict(_mapped(old.state_dict(), verdict.key_map()))
    assert torch.equal(fresh(x), old(x))
