"""Diff precision on small self-written models: each cause of noise in real upgrades (issue 12),
pinned on a tiny `nn.Module` pair that differs the way a library upgrade does."""

from __future__ import annotations

import dataclasses
import json
from textwrap import dedent

import pytest
import torch
from torch import nn

import nnviz
import nnviz.snapshot
from nnviz.graph import Graph


def trace(model: nn.Module, inputs: str | None = None, tracer: str = "auto") -> Graph:
    return nnviz.trace(model, name="m", inputs=inputs, tracer=tracer)


def text(old: Graph, new: Graph, strict: bool = False) -> str:
    return nnviz.diff(old, new, strict=strict).to_text()


# --- 1. calls are aligned by what they are and what feeds them, not by their id's counter ---


def attention(reads: int, combine: str = "mul", width: int | None = None) -> nn.Module:
    """One attention-like block as two library versions write it (same class name): reading
    `reads` sizes from the input's shape, so the later `getitem` ids shift with `reads`."""

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qk = nn.Linear(16, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if reads == 3:
                b, n, c = x.shape
            else:
                b, n, c = x.shape[0], x.shape[1], 16
            parts = self.qk(x).reshape(b, n, 2, c).unbind(2)
            out = parts[0] * parts[1] if combine == "mul" else parts[0] + parts[1]
            return out.reshape(b, n, c) if width is None else out.reshape(b, n * 16 // width, width)

    return Attention()


def test_one_fewer_size_read_renumbers_no_neighbour() -> None:
    result = nnviz.diff(trace(attention(3), "tensor1x4x16"), trace(attention(2), "tensor1x4x16"))
    assert result.identical
    assert result.to_text() == dedent("""\
        identical: no architecture changes (13 nodes, 544 params)
        not drift (counted with --strict): 3 scalar-plumbing changes
        """)


def test_a_real_change_beside_renumbered_calls_is_the_only_line() -> None:
    assert text(trace(attention(3)), trace(attention(2, "add"))) == dedent("""\
        ~ add  operator.add  op operator.mul → operator.add
        1 changed · params 544 → 544 (+0)
        checkpoint: old checkpoints load as they are
        not drift (counted with --strict): 5 scalar-plumbing changes
        """)


# --- 2. scalar plumbing is not architecture; scalar arguments compare by value ---


def test_a_size_read_equals_the_constant_it_evaluates_to() -> None:
    """`reshape(b, n, c)` with `c` read from a shape is `reshape(b, n, 16)` when `c == 16`;
    with a different constant it is one changed argument."""

    old = trace(attention(3), "tensor1x4x16")
    assert nnviz.diff(old, trace(attention(2), "tensor1x4x16")).identical
    report = text(old, trace(attention(2, width=8), "tensor1x4x16"))
    assert (
        "~ reshape:1  reshape  arg shape.1 4 → 8; arg shape.2 16 → 8; output [1, 4, 16] → [1, 8, 8]"
        in report
    )
    assert "getitem" not in report


def test_without_data_a_computed_size_against_a_constant_is_plumbing() -> None:
    result = nnviz.diff(trace(attention(3)), trace(attention(2)))
    assert result.identical
    assert not nnviz.diff(trace(attention(3)), trace(attention(2)), strict=True).identical
    assert result.summary["info"] == {"plumbing": 5}


# --- 5. a container's attribute that changes nothing below it is information ---


class Net(nn.Module):
    def __init__(self, width: int = 8, in_chans: int = 3) -> None:
        super().__init__()
        self.width, self.in_chans = width, in_chans
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


def test_an_attribute_only_change_is_shown_apart_and_exits_0() -> None:
    old, new = trace(Net(in_chans=1)), trace(Net(in_chans=3))
    result = nnviz.diff(old, new)
    assert result.identical and not result
    assert result.to_text() == dedent("""\
        identical: no architecture changes (4 nodes, 72 params)
        not drift (counted with --strict): 1 attribute-only change
          ~ (root)  Net  in_chans 1 → 3
        """)
    strict = nnviz.diff(old, new, strict=True)
    assert not strict.identical
    assert strict.to_text() == dedent("""\
        ~ (root)  Net  in_chans 1 → 3
        1 changed · params 72 → 72 (+0)
        checkpoint: old checkpoints load as they are
        """)


def test_an_attribute_change_with_a_changed_subtree_stays_drift() -> None:
    result = nnviz.diff(trace(Net(8)), trace(Net(16)))
    assert not result.identical
    assert "~ (root)  Net  width 8 → 16" in result.to_text()


class Bias(nn.Module):
    """Never called through forward(): its owner calls `get()` (timm's `rel_pos.get_bias()`)."""

    def __init__(self, prefix_tokens: int | None) -> None:
        super().__init__()
        if prefix_tokens is not None:  # an older release did not keep it
            self.prefix_tokens = prefix_tokens
        self.table = nn.Parameter(torch.zeros(4))

    def get(self) -> torch.Tensor:
        return self.table * 2


class Holder(nn.Module):
    def __init__(self, prefix: int | None = None, scale: int = 2) -> None:
        super().__init__()
        self.bias = Bias(prefix)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.get() * self.scale


def test_a_never_called_modules_new_attribute_is_information() -> None:
    """An attribute only one side keeps is how the class is written (timm's maxvit `rel_pos`
    gaining `prefix_tokens`); a changed value stays architecture, called or not."""
    result = nnviz.diff(trace(Holder()), trace(Holder(prefix=0)))
    assert result.identical
    assert "  ~ bias  Bias  prefix_tokens (none) → 0" in result.to_text()
    assert not nnviz.diff(trace(Holder(prefix=1)), trace(Holder(prefix=0))).identical


def test_the_drawing_subtitle_counts_the_changes_not_the_information_line() -> None:
    from nnviz.render.diffpaint import paint_for

    result = nnviz.diff(trace(attention(3)), trace(attention(2, "add")))
    assert result.to_text().splitlines()[-1].startswith("not drift")
    assert paint_for(result).subtitle == "1 changed"


# --- 3. a swap to a subclass with the same settings is one line ---


class LayerNorm(nn.LayerNorm):
    """A library's own LayerNorm: a subclass whose constructor names its argument differently
    and whose forward calls the functional form (so torch.fx traces through it)."""

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__(num_features, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class Normed(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))


def test_inherited_hyperparameters_are_recorded() -> None:
    norm = trace(Normed(LayerNorm(8))).modules["norm"]
    assert norm.hparams["normalized_shape"] == {"$tuple": [8]}
    assert norm.hparams["eps"] == 1e-6
    assert norm.bases == ("torch.nn.LayerNorm",)


def test_a_swap_to_a_subclass_with_the_same_settings_is_one_line() -> None:
    old = trace(Normed(nn.LayerNorm(8, eps=1e-6)), "tensor2x8")
    new = trace(Normed(LayerNorm(8)), "tensor2x8")
    assert text(old, new) == dedent("""\
        ~ norm  LayerNorm  class torch.nn.LayerNorm → test_diff_precision.LayerNorm (a subclass; same settings)
        1 changed · params 88 → 88 (+0) · compute 128 MACs · activations 128 B
        checkpoint: old checkpoints load as they are
        """)  # noqa: E501


# --- 4. an optional input the old code did not have, left at its default, is no drift ---


def gelu(option: bool) -> nn.Module:
    """One network as two versions write it: the later one takes GELU's `approximate` as an
    optional forward argument."""

    class Gelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
            if option:
                return nn.functional.gelu(self.fc(x), approximate=approximate)
            return nn.functional.gelu(self.fc(x))

    return Gelu()


def test_a_new_optional_input_is_information() -> None:
    result = nnviz.diff(trace(gelu(False)), trace(gelu(True)))
    assert result.identical
    assert result.to_text() == dedent("""\
        identical: no architecture changes (5 nodes, 72 params)
        not drift (counted with --strict): 1 optional-input change
        """)


# --- 7. one change repeated in sibling blocks is one line ---


class Block(nn.Module):
    def __init__(self, anti_alias: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.aa = nn.Identity() if anti_alias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.aa(x) if self.aa is not None else x)


def blocks(anti_alias: bool, n: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.Sequential(*(Block(anti_alias) for _ in range(n))))


def test_one_change_in_every_block_is_one_line() -> None:
    assert text(trace(blocks(False)), trace(blocks(True))) == dedent("""\
        + 1.{0..3}.aa  Identity (1 node, 0 params) ×4
            ↳ inputs rewired in 4 nodes (fc ×4)
        4 added, 4 downstream · params 100 → 100 (+0)
        checkpoint: old checkpoints load as they are
        """)


def test_grouping_never_merges_different_values() -> None:
    from nnviz.diffing.changelog import item_lines
    from nnviz.diffing.grouping import group_items, join_places
    from nnviz.diffing.records import Entry, FieldChange, Places

    def drop(place: str, p: float) -> Entry:
        return Entry("changed", Places.of(place), "Dropout", (FieldChange("hparams.p", 0.1, p),))

    items = [drop("blocks.0.drop", 0.2), drop("blocks.1.drop", 0.3)]
    items += [drop("blocks.2.drop", 0.2), drop("head.drop", 0.2)]
    assert [item_lines(item) for item in join_places(group_items(list(items)))] == [
        ["~ blocks.{0,2}.drop, head.drop  Dropout  p 0.1 → 0.2 ×3"],
        ["~ blocks.1.drop  Dropout  p 0.1 → 0.3"],
    ]


# --- 6. a config kept by every layer is recorded once, field by field ---


@dataclasses.dataclass
class Config:
    width: int = 8
    depth: int = 2
    transformers_version: str = "4.57.6"  # bookkeeping: never recorded


class Layer(nn.Module):
    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.fc = nn.Linear(config.width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Stack(nn.Module):
    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def test_a_config_is_recorded_once_field_by_field() -> None:
    graph = trace(Stack(Config()))
    assert dict(graph.modules[""].hparams) == {"config.depth": 2, "config.width": 8}
    assert dict(graph.modules["layers.0"].hparams) == {}


def test_one_config_change_is_one_line() -> None:
    old, new = trace(Stack(Config())), trace(Stack(Config(depth=3)))
    assert text(old, new) == dedent("""\
        ~ (root)  Stack  config.depth 2 → 3
        + layers.2  Layer (1 node, 72 params)
            ↳ output  input 0 layers.1.fc → layers.2.fc
        1 changed, 1 added, 1 downstream · params 144 → 216 (+72)
        checkpoint: breaks — 2 new keys left at initialisation (layers.2.fc.bias, layers.2.fc.weight)
        """)  # noqa: E501
    bumped = trace(Stack(Config(transformers_version="5.24.0")))
    assert nnviz.diff(old, bumped, strict=True).identical


# --- 8. siblings that swap places: the rewired readers fold under the move ---


def test_a_swap_folds_the_rewired_inputs_under_the_moves() -> None:
    old = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4, 4))
    new = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.ReLU(), nn.Linear(4, 4))
    result = nnviz.diff(trace(old), trace(new))
    assert result.to_text() == dedent("""\
        → 2 moved to 1
            ↳ 1  input 2 → 0
        → 1 moved to 2
            ↳ 2  input 0 → 1
            ↳ 3  input 1 → 2
        2 renamed, 3 downstream · params 40 → 40 (+0)
        checkpoint: old checkpoints load as they are
        """)
    assert {c.cause for e in result for c in e.changes.values()} == {"1", "2"}


def test_an_output_compares_by_its_tensors() -> None:
    """A library renaming the non-tensor part of an output (a cache object's key) changes no
    tensor; the tensors themselves still count."""

    def net(key: str, width: int = 8) -> nn.Module:
        class Out(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(8, width)

            def forward(self, x: torch.Tensor) -> dict[str, object]:
                return {"hidden": self.fc(x), key: "cache"}

        return Out()

    old = trace(net("past_key_values"), "tensor2x8")
    assert nnviz.diff(old, trace(net("cache"), "tensor2x8")).identical
    assert not nnviz.diff(old, trace(net("cache", 4), "tensor2x8")).identical


def test_a_size_left_to_infer_equals_the_size_it_infers() -> None:
    def net(inferred: int) -> nn.Module:
        class Heads(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                sizes = [x.shape[0], 4, 2, 2]
                sizes[inferred] = -1
                return x.view(*sizes)

        return Heads()

    old, new = trace(net(1), "tensor3x16"), trace(net(2), "tensor3x16")
    assert nnviz.diff(old, new).identical
    assert not nnviz.diff(old, trace(net(1), "tensor3x16:float64")).identical


def test_sizes_given_as_one_tuple_compare_with_sizes_given_one_by_one() -> None:
    """transformers 4.46 writes `x.view(x.size()[:-1] + (h, d))`, 5.x `x.view(b, s, -1, d)`:
    a size argument that is a whole tuple on one side is compared, not hashed (it crashed)."""

    def net(packed: bool, heads: int) -> nn.Module:
        class Heads(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if packed:
                    return x.view(x.size()[:-1] + (heads, 16 // heads))  # noqa: RUF005 (as HF)
                return x.view(3, -1, 16 // heads)

        return Heads()

    old = trace(net(True, 2), "tensor3x16")
    assert "output" not in text(old, trace(net(False, 2), "tensor3x16"))
    assert "output [3, 2, 8] → [3, 4, 4]" in text(old, trace(net(False, 4), "tensor3x16"))


# --- recorded settings are settings: derived config fields, tensors under an argument's name ---


@dataclasses.dataclass
class DerivedConfig:
    """A config as transformers 5 writes them: a dataclass that derives fields in
    `__post_init__` and says what it is through `to_dict()`."""

    feed_forward_proj: str = "gated-gelu"

    def __post_init__(self) -> None:
        self.dense_act_fn = self.feed_forward_proj.split("-")[-1]

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))

    def to_json_string(self) -> str:
        return repr(self.to_dict())


def test_a_config_records_the_fields_it_derives() -> None:
    layer = Layer(Config())
    layer.config = DerivedConfig()  # type: ignore[assignment]
    recorded = trace(layer, "tensor2x8").modules[""].hparams
    assert recorded == {"config.dense_act_fn": "gelu", "config.feed_forward_proj": "gated-gelu"}


class Embedded(nn.Module):
    """timm's ViT: a constructor argument `pos_embed='learn'` picks how the `pos_embed`
    parameter is made; the parameter is a tensor, not the setting."""

    def __init__(self, pos_embed: str = "learn", bias: bool = True) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(8))
        self.bias = nn.Parameter(torch.zeros(8)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embed


def test_a_parameter_named_like_a_setting_is_not_one() -> None:
    assert dict(trace(Embedded(), "tensor2x8").modules[""].hparams) == {"bias": True}
    assert dict(trace(Embedded(bias=False), "tensor2x8").modules[""].hparams) == {"bias": False}


# --- one embedding shared by two stacks: as one module under two names, or tied weights ---


class Stack2(nn.Module):
    def __init__(self, embed: nn.Embedding) -> None:
        super().__init__()
        self.embed_tokens = embed
        self.fc = nn.Linear(8, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed_tokens(ids))


class Shared(nn.Module):
    """transformers 4's T5 hands its `shared` embedding to both stacks; transformers 5 gives
    each stack an embedding of its own whose weight is tied to `shared.weight`."""

    def __init__(self, tied: bool) -> None:
        super().__init__()
        self.shared = nn.Embedding(10, 8)
        embeds = [nn.Embedding(10, 8) for _ in range(2)] if tied else [self.shared] * 2
        for embed in embeds:
            embed.weight = self.shared.weight
        self.encoder, self.decoder = Stack2(embeds[0]), Stack2(embeds[1])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(ids) + self.encoder(ids)


def test_a_shared_module_and_tied_weights_record_alike() -> None:
    ids = {"ids": torch.zeros(1, 4, dtype=torch.long)}
    for tracer in ("fx", "eager"):
        old = nnviz.trace(Shared(tied=False), inputs=ids, tracer=tracer)
        new = nnviz.trace(Shared(tied=True), inputs=ids, tracer=tracer)
        assert old.modules["decoder.embed_tokens"].ties == {"weight": "shared.weight"}
        calls = {n.id for n in old.nodes if n.kind == "module"}
        assert calls == {"encoder.embed_tokens", "decoder.embed_tokens", "encoder.fc", "decoder.fc"}
        assert nnviz.diff(old, new, strict=True).identical, tracer
    untied = Shared(tied=True)
    untied.decoder.embed_tokens.weight = nn.Parameter(torch.zeros(10, 8))
    assert text(new, nnviz.trace(untied, inputs=ids, tracer="eager")).splitlines()[0] == (
        "~ decoder.embed_tokens  Embedding  ties.weight 'shared.weight' → (none)"
    )


def test_an_empty_sequential_is_called_like_the_identity_that_replaces_it() -> None:
    """timm 0.6 wrote a no-op activation as `nn.Sequential()`, 1.0 as `nn.Identity()`: both are
    called, so the upgrade is one class line (traced through, the empty Sequential vanished and
    the diff read `called False → True` and rewired its readers)."""

    def net(identity: bool) -> nn.Module:
        return nn.Sequential(nn.Linear(8, 8), nn.Identity() if identity else nn.Sequential())

    for tracer in ("fx", "eager"):
        old, new = (trace(net(i), "tensor2x8", tracer) for i in (False, True))
        assert [n.id for n in old.nodes] == ["input:input", "0", "1", "output"]
        report = text(old, new)
        assert report.splitlines()[:2] == [
            "~ 1  Identity  class Sequential → Identity (same settings)",
            "1 changed · params 72 → 72 (+0) · compute 128 MACs · activations 64 B",
        ]


# --- one op spelled another way; the operands of a commutative op in the other order ---


class Spelled(nn.Module):
    def __init__(self, spelling: int) -> None:
        super().__init__()
        self.form = spelling  # not kept under the argument's name: no hyperparameter
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == 0:
            y = self.a(x)
            y += x
            y = torch.nn.functional.relu(y)
            return torch.cat([self.b(y), y], 1)
        y = torch.relu(x + self.a(x)) if self.form == 1 else (x + self.a(x)).relu()
        return torch.concat([self.b(y), y], 1)


def test_an_op_spelled_another_way_is_information() -> None:
    old = trace(Spelled(0), "tensor2x8")
    for spelling in (1, 2):
        result = nnviz.diff(old, trace(Spelled(spelling), "tensor2x8"))
        assert result.identical, result.to_text()
        assert "same-op spelling change" in result.to_text()
        assert not nnviz.diff(old, trace(Spelled(spelling), "tensor2x8"), strict=True).identical


def test_a_commutative_op_compares_its_operands_as_a_set() -> None:
    class Sub(Spelled):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(x - self.a(x) if self.form else self.a(x) - x)

    assert nnviz.diff(trace(Spelled(0), "tensor2x8"), trace(Spelled(0), "tensor2x8")).identical
    sub = text(trace(Sub(0), "tensor2x8"), trace(Sub(1), "tensor2x8"))
    assert "input 0 a → input:x; input 1 input:x → a" in sub  # `-` does not commute


def test_an_attribute_none_on_one_side_and_absent_on_the_other_is_no_change() -> None:
    class Block(nn.Module):
        def __init__(self, init_values: float | None, keep: bool) -> None:
            super().__init__()
            if keep:
                self.init_values = init_values
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    assert nnviz.diff(trace(Block(None, False)), trace(Block(None, True)), strict=True).identical
    assert nnviz.diff(trace(Block(None, False)), trace(Block(0.1, True)), strict=True)


def test_ties_against_an_older_format_are_information() -> None:
    ids = {"ids": torch.zeros(1, 4, dtype=torch.long)}
    new = nnviz.trace(Shared(tied=True), inputs=ids)
    doc = json.loads(nnviz.snapshot.dumps(new))
    doc["version"] = 2
    for module in doc["modules"]:
        module.pop("ties", None)
    old = nnviz.snapshot.loads(json.dumps(doc))
    with pytest.warns(nnviz.NNVizWarning):
        result = nnviz.diff(old, new)
    assert result.identical and not nnviz.diff(old, new, strict=True).identical
    assert "2 older-format changes" in result.to_text()


def test_a_float_setting_read_back_from_float32_is_the_same_setting() -> None:
    """transformers 4.57 kept Swin's drop_prob as a float32 read back (0.10000000149011612),
    5.24 as the Python float 0.1: the same network; 0.1 → 0.2 is a change."""
    old = trace(nn.Sequential(nn.Linear(4, 4), nn.Dropout(float(torch.tensor(0.1)))))
    assert nnviz.diff(old, trace(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1)))).identical
    assert not nnviz.diff(old, trace(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2)))).identical
