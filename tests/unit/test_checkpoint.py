"""The checkpoint verdict on small modules, each held to a real `load_state_dict(strict=True)`:
a rename, a move into a Sequential, tied weights, persistent and non-persistent buffers,
`_extra_state`, a shape change, a new layer; the key map; older snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from support import run_nnviz, strict_load
from torch import nn

import nnviz
from nnviz.diffing.checkpoint import Verdict
from nnviz.policy import Policy


def verdict(old: nn.Module, new: nn.Module) -> Verdict:
    """nnviz's verdict, checked against torch: a strict load succeeds exactly when it says
    `loads`, and after the key map exactly when the verdict is mendable."""
    result = nnviz.diff(nnviz.trace(old), nnviz.trace(new)).checkpoint
    assert result is not None
    state = old.state_dict()
    assert strict_load(state, new) == (result.status == "loads")
    if result.mendable:
        key_map = result.key_map()
        mapped = {key_map.get(k, k): v for k, v in state.items() if key_map.get(k, k) is not None}
        assert strict_load(mapped, new)
    else:
        with pytest.raises(nnviz.CheckpointError):
            result.key_map()
    assert Verdict.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    return result


class Net(nn.Module):
    def __init__(self, out: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.fc = nn.Linear(16, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


class Renamed(Net):
    def __init__(self) -> None:
        super().__init__()
        self.head = self.fc
        del self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class Moved(Net):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Dropout(0.0), self.fc)
        del self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_the_same_model_loads_as_it_is() -> None:
    result = verdict(Net(), Net())
    assert result.line() == "checkpoint: old checkpoints load as they are"


def test_a_renamed_layer_loads_after_renaming_and_computes_the_same() -> None:
    old, new = Net().eval(), Renamed().eval()
    result = verdict(old, new)
    assert result.line() == "checkpoint: loads after renaming 2 keys"
    assert result.key_map() == {"fc.bias": "head.bias", "fc.weight": "head.weight"}
    state = {result.key_map().get(k, k): v for k, v in old.state_dict().items()}
    new.load_state_dict(state)
    x = torch.randn(4, 8)
    assert torch.equal(old(x), new(x))


def test_a_layer_moved_into_a_sequential_loads_after_renaming() -> None:
    result = verdict(Net(), Moved())
    assert result.key_map() == {"fc.bias": "head.1.bias", "fc.weight": "head.1.weight"}


def test_a_shape_change_breaks_and_no_map_mends_it() -> None:
    result = verdict(Net(), Net(out=12))
    assert result.line() == (
        "checkpoint: breaks — 2 shape mismatches (fc.bias [10] → [12], fc.weight [10, 16] → "
        "[12, 16])"
    )
    assert "2 shape mismatches cannot be mended by renaming keys" in result.why_no_map()


class Deeper(Net):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


def test_a_new_layer_leaves_its_keys_at_initialisation_and_a_removed_one_is_unused() -> None:
    added = verdict(Net(), Deeper())
    assert added.line() == (
        "checkpoint: breaks — 2 new keys left at initialisation (norm.bias, norm.weight)"
    )
    removed = verdict(Deeper(), Net())  # mendable: the map drops what has no place
    assert removed.line() == "checkpoint: breaks — 2 keys no longer used (norm.bias, norm.weight)"
    assert removed.key_map() == {"norm.bias": None, "norm.weight": None}


class Buffered(Net):
    def __init__(self, persistent: bool) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(10), persistent=persistent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


def test_a_persistent_buffer_is_a_key_and_a_non_persistent_one_is_not() -> None:
    graph = nnviz.trace(Buffered(persistent=True))
    assert dict(graph.modules[""].buffers) == {"scale": (10,)}
    assert dict(graph.modules["body.1"].buffers)["num_batches_tracked"] == ()
    assert graph.modules["body.1"].dtypes["num_batches_tracked"] == "int64"
    assert not nnviz.trace(Buffered(persistent=False)).modules[""].buffers
    assert verdict(Net(), Buffered(persistent=False)).status == "loads"
    assert verdict(Net(), Buffered(persistent=True)).line() == (
        "checkpoint: breaks — 1 new key left at initialisation (scale)"
    )
    assert verdict(Buffered(persistent=True), Buffered(persistent=False)).line() == (
        "checkpoint: breaks — 1 key no longer used (scale)"
    )


class Tied(nn.Module):
    def __init__(self, head: bool, tie: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        if head:
            self.head = nn.Linear(8, 20, bias=False)
            if tie:
                self.head.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.head(h) if hasattr(self, "head") else h


def test_tied_weights_are_keys_of_their_own_that_say_what_they_share() -> None:
    graph = nnviz.trace(Tied(head=True, tie=True))
    assert dict(graph.modules["head"].ties) == {"weight": "embed.weight"}
    assert verdict(Tied(head=True, tie=False), Tied(head=True, tie=True)).status == "loads"
    added = verdict(Tied(head=False, tie=False), Tied(head=True, tie=True))
    assert added.line() == (
        "checkpoint: breaks — 1 new key left at initialisation (head.weight, tied to embed.weight)"
    )


class Extra(nn.Linear):
    def get_extra_state(self) -> Any:
        return {"fp8": 1}

    def set_extra_state(self, state: Any) -> None:
        self.fp8 = state


class WithExtra(Net):
    def __init__(self) -> None:
        super().__init__()
        self.fc = Extra(16, 10)


def test_extra_state_is_a_key_without_a_shape() -> None:
    graph = nnviz.trace(WithExtra())
    assert graph.modules["fc"].state_keys["_extra_state"] is None
    assert verdict(Net(), WithExtra()).line() == (
        "checkpoint: breaks — 1 new key left at initialisation (fc._extra_state)"
    )
    assert verdict(WithExtra(), WithExtra()).status == "loads"


def test_a_module_never_called_holds_keys_too() -> None:
    class Spare(Net):
        def __init__(self) -> None:
            super().__init__()
            self.spare = nn.Linear(2, 2)

    assert verdict(Net(), Spare()).line() == (
        "checkpoint: breaks — 2 new keys left at initialisation (spare.bias, spare.weight)"
    )


def _older(graph: nnviz.Graph, path: Path) -> Path:
    """`graph` as a format-3 snapshot (no buffers, dtypes or _extra_state)."""
    doc = json.loads(nnviz.snapshot.dumps(graph))
    doc["version"] = 3
    for module in doc["modules"]:
        for key in ("buffers", "dtypes", "extra_state"):
            module.pop(key, None)
    path.write_text(json.dumps(doc))
    return path


def test_an_older_snapshot_makes_the_verdict_unknown_in_one_line(tmp_path: Path) -> None:
    old = _older(nnviz.trace(Net()), tmp_path / "old.json")
    result = nnviz.diff(old, nnviz.trace(Net(out=12)))
    text = result.to_text().splitlines()
    assert text[-1] == (
        "checkpoint: unknown — the old side is a format-3 snapshot, which records no state-dict "
        "keys; re-record it (nnviz MODEL -o FILE.json, or pytest --nnviz-update)"
    )
    assert result.to_dict()["checkpoint"]["verdict"] == "unknown"
    with pytest.raises(nnviz.CheckpointError, match="unknown"):
        nnviz.key_map(old, nnviz.trace(Net()))


def test_the_cli_writes_the_key_map_or_says_why_not(tmp_path: Path) -> None:
    for name, model in (("old", Net()), ("moved", Moved()), ("wider", Net(out=12))):
        nnviz.save(nnviz.trace(model), tmp_path / f"{name}.json")
    run = run_nnviz("diff", "old.json", "moved.json", "--key-map", "map.json", cwd=tmp_path)
    assert run.returncode == 1 and "checkpoint: loads after renaming 2 keys" in run.stdout
    written = json.loads((tmp_path / "map.json").read_text())
    assert written == {"fc.bias": "head.1.bias", "fc.weight": "head.1.weight"}
    run = run_nnviz("diff", "old.json", "wider.json", "--key-map", "no.json", cwd=tmp_path)
    assert run.returncode == 1 and not (tmp_path / "no.json").exists()
    assert run.stderr.strip() == (
        "nnviz: warning: no key map: 2 shape mismatches cannot be mended by renaming keys; "
        "no.json not written"
    )
    run = run_nnviz("diff", "old.json", "wider.json", "-v", "-f", "json", cwd=tmp_path)
    doc = json.loads(run.stdout)["checkpoint"]
    assert doc["verdict"] == "breaks" and not doc["mendable"] and len(doc["mismatched"]) == 2


class MovedDeeper(Moved):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


def test_a_break_that_also_renames_says_so_and_the_cli_writes_the_non_strict_map(
    tmp_path: Path,
) -> None:
    """New keys no map mends, beside keys that must be renamed: the line names both, and
    `--key-map` writes the map a non-strict load needs, with a warning saying what it leaves."""
    old, new = Net(), MovedDeeper()
    for name, model in (("old", old), ("new", new)):
        nnviz.save(nnviz.trace(model), tmp_path / f"{name}.json")
    run = run_nnviz("diff", "old.json", "new.json", "--key-map", "map.json", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.splitlines()[-1] == (
        "checkpoint: breaks — 2 new keys left at initialisation (norm.bias, norm.weight), "
        "2 keys renamed (--key-map)"
    )
    assert run.stderr.strip() == (
        "nnviz: warning: no key map for a strict load: 2 new keys without old weights cannot be "
        "mended by renaming keys; map.json is the map for load_state_dict(state, strict=False), "
        "which leaves them at initialisation"
    )
    key_map = json.loads((tmp_path / "map.json").read_text())
    assert key_map == {"fc.bias": "head.1.bias", "fc.weight": "head.1.weight"}
    assert key_map == nnviz.key_map(tmp_path / "old.json", tmp_path / "new.json", strict=False)
    with pytest.raises(nnviz.CheckpointError):
        nnviz.key_map(tmp_path / "old.json", tmp_path / "new.json")
    state = {key_map.get(k, k): v for k, v in old.state_dict().items()}
    loaded = new.load_state_dict(state, strict=False)  # the ground truth: torch's own load
    assert loaded.unexpected_keys == []
    assert sorted(loaded.missing_keys) == ["norm.bias", "norm.weight"]
    assert torch.equal(new.head[1].weight, old.fc.weight)


def test_the_checkpoint_policy_fails_only_what_no_map_mends() -> None:
    policy = Policy.parse("checkpoint")
    renamed = nnviz.diff(nnviz.trace(Net()), nnviz.trace(Moved())).to_dict()
    wider = nnviz.diff(nnviz.trace(Net()), nnviz.trace(Net(out=12))).to_dict()
    assert policy.diff_reasons(renamed) == []
    assert policy.diff_reasons(wider) == [
        "old checkpoints break: 2 shape mismatches cannot be mended by renaming keys"
    ]
    assert Policy.parse("any").diff_reasons(renamed) == ["drifted"]
    unknown = {**renamed, "checkpoint": {"verdict": "unknown", "reason": "why"}}
    assert policy.diff_reasons(unknown) == ["checkpoint verdict unknown: why"]


class Stack(nn.Module):
    """A token, blocks with a LayerNorm each, and a final LayerNorm like theirs."""

    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 8))
        self.blocks = nn.Sequential(
            *(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in "ab")
        )
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(x + self.token))


class Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Stack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def test_keys_the_matching_cannot_place_pair_by_name_shape_and_class() -> None:
    wrapped = verdict(Stack(), Wrapped())  # the root's own token and a norm like every block's
    assert wrapped.line() == "checkpoint: loads after renaming 11 keys"
    assert wrapped.key_map()["token"] == "backbone.token"
    assert wrapped.key_map()["norm.weight"] == "backbone.norm.weight"
    moved = Stack()
    moved.norm = nn.Sequential(nn.Identity(), moved.norm)
    assert verdict(Stack(), moved).key_map() == {
        "norm.bias": "norm.1.bias",
        "norm.weight": "norm.1.weight",
    }


class Renamed2(nn.Module):
    """Net's layers under other names and another nesting (transformers 5's ViT: `query` ->
    `q_proj`), which the matching does not pair: same-class, same-shape keys pair in order."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({"a": nn.Linear(8, 8), "b": nn.Linear(8, 8)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers["b"](self.layers["a"](x))


class Named2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key(self.query(x))


def test_same_class_keys_the_matching_leaves_pair_in_module_order() -> None:
    result = verdict(Named2(), Renamed2())
    assert result.key_map()["query.weight"] == "layers.a.weight"
    assert result.key_map()["key.weight"] == "layers.b.weight"


class Scale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Deep(nn.Module):
    """A `Scale` two wrappers down (`ls.inner.scale`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.inner = Scale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class ScaledBlock(nn.Module):
    """timm 0.6's PoolFormer block: its two scales are parameters of the block itself, or (as in
    timm 1.0's MetaFormer block) each a module of its own, as deep as `wrapper` makes it."""

    def __init__(self, wrapper: type[nn.Module] | None) -> None:
        super().__init__()
        self.norm1, self.mix, self.norm2, self.mlp = (
            nn.LayerNorm(8),
            nn.Linear(8, 8),
            nn.LayerNorm(8),
            nn.Linear(8, 8),
        )
        self.wrapper = wrapper
        if wrapper is None:
            self.layer_scale_1 = nn.Parameter(torch.randn(8))
            self.layer_scale_2 = nn.Parameter(torch.randn(8))
        else:
            self.layer_scale1, self.layer_scale2 = wrapper(8), wrapper(8)

    def _scale(self, which: int, x: torch.Tensor) -> torch.Tensor:
        if self.wrapper is None:
            return x * (self.layer_scale_1 if which == 1 else self.layer_scale_2)
        return (self.layer_scale1 if which == 1 else self.layer_scale2)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._scale(1, self.mix(self.norm1(x)))
        return x + self._scale(2, self.mlp(self.norm2(x)))


class Scaled(nn.Module):
    def __init__(self, wrapper: type[nn.Module] | None, name: str) -> None:
        super().__init__()
        self.add_module(name, nn.Sequential(ScaledBlock(wrapper), ScaledBlock(wrapper)))
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.get_submodule(self.name)(x)


def same_output_through_the_map(old: nn.Module, new: nn.Module, result: Verdict) -> bool:
    key_map = result.key_map()
    new.load_state_dict({key_map.get(k, k): v for k, v in old.state_dict().items()})
    x = torch.randn(3, 8)
    return torch.equal(old.eval()(x), new.eval()(x))


@pytest.mark.parametrize("wrapper", [Scale, Deep], ids=["child", "grandchild"])
def test_a_parameter_moved_into_a_new_child_module_or_out_of_one_is_a_rename(
    wrapper: type[nn.Module],
) -> None:
    old, new = Scaled(None, "network"), Scaled(wrapper, "blocks")
    into = verdict(old, new)
    below = "layer_scale1.scale" if wrapper is Scale else "layer_scale1.inner.scale"
    assert into.status == "renames"
    assert into.key_map()["network.0.layer_scale_1"] == f"blocks.0.{below}"
    assert into.key_map()["network.1.layer_scale_2"] == f"blocks.1.{below.replace('1', '2', 1)}"
    assert same_output_through_the_map(old, new, into)
    out = verdict(new, old)
    assert out.status == "renames"
    assert out.key_map()[f"blocks.0.{below}"] == "network.0.layer_scale_1"
    assert same_output_through_the_map(new, old, out)


class Pool(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Pooling(Pool):
    """`Pool` under timm 1.0's name for it."""


class Stage(nn.Module):
    def __init__(self, dim: int, pool: nn.Module | None, first: bool) -> None:
        super().__init__()
        self.block, self.pool, self.first = nn.Linear(dim, dim), pool, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first and self.pool is not None:
            x = self.pool(x)
        x = self.block(x)
        return self.pool(x) if not self.first and self.pool is not None else x


class Stages(nn.Module):
    """timm's PiT: in 0.6 each stage ends with the pooling into the next stage's width; in 1.0
    each stage starts with the pooling from the previous one (`stages.0.pool` ->
    `stages.1.pool`, and the class renamed). Widened: every stage twice as wide, no pooling."""

    def __init__(self, release: str) -> None:
        super().__init__()
        dims = (4, 8, 16)
        if release == "0.6":
            stages = [Stage(d, Pool(d) if i < 2 else None, False) for i, d in enumerate(dims)]
        elif release == "1.0":
            stages = [Stage(d, Pooling(d // 2) if i else None, True) for i, d in enumerate(dims)]
        else:
            stages = [
                Stage(2 * d, Pool(2 * d) if i < 2 else None, False) for i, d in enumerate(dims)
            ]
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


def test_a_module_moved_one_place_along_a_chain_is_a_rename_not_a_shape_change() -> None:
    old, new = Stages("0.6"), Stages("1.0")
    result = verdict(old, new)
    assert result.status == "renames"
    assert result.key_map() == {
        "stages.0.pool.fc.bias": "stages.1.pool.fc.bias",
        "stages.0.pool.fc.weight": "stages.1.pool.fc.weight",
        "stages.1.pool.fc.bias": "stages.2.pool.fc.bias",
        "stages.1.pool.fc.weight": "stages.2.pool.fc.weight",
    }
    new.load_state_dict({result.key_map().get(k, k): v for k, v in old.state_dict().items()})
    x = torch.randn(3, 4)
    assert torch.equal(old.eval()(x), new.eval()(x))


def test_layers_widened_one_after_another_stay_shape_mismatches() -> None:
    """A chain whose ends are left over (the first old width, the last new one) is a widening:
    stage 1's old weights do not belong in stage 0."""
    result = verdict(Stages("0.6"), Stages("wide"))
    assert result.status == "breaks"
    assert not result.renamed
    assert {p.new for p in result.mismatched} >= {
        "stages.0.pool.fc.weight",
        "stages.1.block.weight",
    }
