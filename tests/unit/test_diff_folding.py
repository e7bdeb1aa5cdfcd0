"""Each real change in one line, its consequences folded under it (issue 12, config edits): pinned
on tiny self-written models that change the way a hyperparameter edit does."""

from __future__ import annotations

from textwrap import dedent

import torch
from torch import nn

import nnviz
from nnviz.diffing.places import compress, expand
from nnviz.graph import Graph


def trace(model: nn.Module, inputs: str | None = "tensor1x4x16") -> Graph:
    return nnviz.trace(model, name="m", inputs=inputs)


class Heads(nn.Module):
    """Attention's head split: three views in one scope, each followed by a transpose."""

    def __init__(self, heads: int) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (x.view(1, 4, self.heads, 16 // self.heads).transpose(1, 2) for _ in range(3))
        return (q * k * v).transpose(1, 2).reshape(1, 4, 16)


def test_a_call_whose_argument_and_output_changed_is_one_line() -> None:
    """Rule 1 and 2: one line per changed call; the three views of one scope with the same
    change are one line naming each; the shapes that follow change the same sizes the same way
    (2 → 4 heads of 8 → 4): the line says them, the totals count them."""
    text = nnviz.diff(trace(Heads(2)), trace(Heads(4))).to_text()
    assert text.splitlines()[1:3] == [
        "~ view, view:1, view:2  view  arg size (1, 4, 2, 8) → (1, 4, 4, 4); "
        "output [1, 4, 2, 8] → [1, 4, 4, 4] ×3",
        "4 changed, 6 downstream · params 0 → 0 (+0) · compute 0 MACs · activations 512 B",
    ]


class Widths(nn.Module):
    """Hidden size everywhere: linears and norms at several depths and places, not siblings."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Linear(16, hidden)
        self.enc = nn.ModuleList(
            nn.ModuleDict({"layer": nn.ModuleList(nn.LayerNorm(hidden) for _ in range(2))})
            for _ in range(2)
        )
        self.mid = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.enc:
            for norm in block["layer"]:
                x = norm(x)
        return self.head(self.mid(x))


def test_a_hidden_size_edit_is_one_line_per_class_and_change_naming_every_place() -> None:
    """Rule 4: parameter shapes and outputs follow the hyperparameter (said once); identical
    changes group across all places by class and change; every place is named, with sets at
    several index positions read as every combination."""
    assert nnviz.diff(trace(Widths(32)), trace(Widths(64))).to_text() == dedent("""\
        ~ embed  Linear  out_features 32 → 64 · +2.05 KMACs, +512 B activations
        ~ enc.{0,1}.layer.{0,1}, mid  LayerNorm  normalized_shape (32,) → (64,) ×5 · +512 B activations each
        ~ head  Linear  in_features 32 → 64 · +2.05 KMACs
        7 changed · params 1,392 → 2,768 (+1,376) · compute 4.10 KMACs → 8.19 KMACs (+100.0%) · activations 3.25 KiB → 6.25 KiB (+92.3%)
        checkpoint: breaks — 13 shape mismatches (embed.bias [32] → [64], embed.weight [32, 16] → [64, 16], enc.0.layer.0.bias [32] → [64], … 10 more)
        """)  # noqa: E501


def test_verbose_lists_every_change() -> None:
    result = nnviz.diff(trace(Widths(32)), trace(Widths(64)))
    verbose = result.to_text(verbose=True)
    assert "~ embed  Linear  weight [32, 16] → [64, 16]" in verbose
    assert "~ embed  Linear  output [1, 4, 32] → [1, 4, 64]" in verbose
    assert "~ enc.{0,1}.layer.{0,1}, mid  LayerNorm  bias [32] → [64] ×5" in verbose
    assert len(verbose.splitlines()) > 2 * len(result.to_text().splitlines())


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(0.79788456 * (x + 0.044715 * torch.pow(x, 3.0))))


class NewGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu_tanh(x)


class Dense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wi, self.act, self.wo = nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(self.act(self.wi(x)))


class GatedDense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wi_0, self.wi_1 = nn.Linear(16, 32), nn.Linear(16, 32)
        self.act, self.wo = NewGELU(), nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(self.act(self.wi_0(x)) * self.wi_1(x))


class Blocks(nn.Module):
    def __init__(self, dense: type[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(dense() for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def test_what_changed_inside_a_swapped_block_is_summed_up_under_its_class_line() -> None:
    """Rule 3: the Linear replaced by two, the activation swapped and the ops it now calls are
    one `inside:` line under the class change, the same in every block; nothing is lost from
    the document, and `verbose` lists every entry."""
    result = nnviz.diff(trace(Blocks(Dense)), trace(Blocks(GatedDense)))
    assert result.to_text() == dedent("""\
        ~ blocks.{0..2}  GatedDense  class Dense → GatedDense (same settings) ×3 · +2.05 KMACs, +4.50 KiB activations each
            ↳ inside: − wi Linear; + wi_0, wi_1 Linear; act ReLU → NewGELU; +8 ops (mul ×4, add ×2, pow, tanh)
        3 changed, 3 downstream · params 3,216 → 4,848 (+1,632) · compute 12.3 KMACs → 18.4 KMACs (+50.0%) · activations 3.75 KiB → 17.2 KiB (+360.0%)
        checkpoint: breaks — 12 new keys left at initialisation (blocks.0.wi_0.bias, blocks.0.wi_0.weight, blocks.0.wi_1.bias, … 9 more), 6 keys no longer used (blocks.0.wi.bias, blocks.0.wi.weight, blocks.1.wi.bias, … 3 more)
        """)  # noqa: E501
    names = {e.name for e in result if e.status == "added"}
    assert {"blocks.0.wi_1", "blocks.2.act.tanh"} <= names
    verbose = result.to_text(verbose=True)
    assert "- blocks.{0..2}.wi  Linear (1 node, 544 params) ×3" in verbose
    assert "+ blocks.{0..2}.wi_{0,1}  Linear (1 node, 544 params) ×6" in verbose
    assert "+ blocks.{0..2}.act.tanh  torch.tanh ×3" in verbose


def test_an_activation_swapped_for_a_leaf_counts_the_ops_it_no_longer_calls() -> None:
    class Mlp(nn.Module):
        def __init__(self, act: nn.Module) -> None:
            super().__init__()
            self.fc, self.act = nn.Linear(16, 16), act

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.fc(x))

    text = nnviz.diff(trace(Mlp(NewGELU())), trace(Mlp(nn.ReLU()))).to_text()
    assert text.splitlines()[:2] == [
        "~ act  ReLU  class NewGELU → ReLU (inplace=False) · -1.75 KiB activations",
        "    ↳ inside: −7 ops (mul ×3, add ×2, pow, tanh)",
    ]


class Chain(nn.Module):
    """A width change early in a chain: every later output shape follows it, some restating it
    (`[1, 4, 8] → [1, 4, 12]`), some not (flattened: `[1, 32] → [1, 48]`)."""

    def __init__(self, width: int, long: bool) -> None:
        super().__init__()
        self.first, self.act = nn.Linear(16, width), nn.ReLU()
        self.long = long

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.first(x)).flatten(1)
        return y.reshape(2, -1).sum(0) if self.long else y


def test_shapes_that_follow_are_lines_while_one_line_says_them_and_counted_beyond() -> None:
    short = nnviz.diff(trace(Chain(8, False)), trace(Chain(12, False))).to_text()
    assert short.splitlines()[:2] == [
        "~ first  Linear  out_features 8 → 12 · +256 MACs, +64 B activations",
        "    ↳ flatten, output  output [1, 32] → [1, 48]",  # act's [1, 4, 12] restates 8 → 12
    ]
    long = nnviz.diff(trace(Chain(8, True)), trace(Chain(12, True))).to_text()
    assert long.splitlines()[:2] == [
        "~ first  Linear  out_features 8 → 12 · +256 MACs, +64 B activations",
        "    ↳ output shapes follow in 4 nodes (flatten, reshape, sum, output)",
    ]
    assert "5 downstream" in long
    verbose = nnviz.diff(trace(Chain(8, True)), trace(Chain(12, True))).to_text(verbose=True)
    assert "    ↳ act  output [1, 4, 8] → [1, 4, 12]" in verbose


def test_brace_patterns_name_every_place_and_only_those() -> None:
    names = [f"encoder.block.{b}.layer.{i}.layer_norm" for b in (0, 1) for i in (0, 1)]
    names += ["encoder.final_layer_norm", "decoder.final_layer_norm", "(root)", "norm"]
    names += [f"decoder.block.{b}.layer.{i}.layer_norm" for b in (0, 1) for i in (0, 1, 2)]
    names += ["stages.0.blocks.2", "stages.1.blocks.3"]  # not every combination: two patterns
    names += [f"encoder.layers.encoder_layer_{i}.mlp" for i in range(12)]
    text = compress(names)
    assert text == (
        "encoder.block.{0,1}.layer.{0,1}.layer_norm, {encoder,decoder}.final_layer_norm, "
        "(root), norm, decoder.block.{0,1}.layer.{0..2}.layer_norm, stages.0.blocks.2, "
        "stages.1.blocks.3, encoder.layers.encoder_layer_{0..11}.mlp"
    )
    assert sorted(expand(text)) == sorted(names)


def attention(fused: bool) -> nn.Module:
    """One attention as two library versions write it (same class, same settings): by hand,
    or with the fused kernel."""

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.proj = nn.Linear(16, 48), nn.Linear(16, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            if fused:
                out = nn.functional.scaled_dot_product_attention(q, k, v)
            else:
                out = torch.softmax(q @ k.transpose(-2, -1) * 0.25, dim=-1) @ v
            return self.proj(out)

    return nn.Sequential(Attention(), Attention())


def test_a_forward_rewritten_is_one_line_counting_its_ops() -> None:
    """A module that adds or removes three or more ops of its own says them on one line; the
    inputs its ops and children now read from are part of that line, not lines of their own."""
    text = nnviz.diff(trace(attention(False)), trace(attention(True))).to_text()
    assert text == dedent("""\
        ~ 0, 1  Attention  ops +1 (scaled_dot_product_attention); −5 (matmul ×2, transpose, mul, softmax) ×2
        2 changed, 2 downstream · params 2,176 → 2,176 (+0) · compute 9.22 KMACs · activations 2.88 KiB → 2.50 KiB (-13.0%)
        checkpoint: old checkpoints load as they are
        """)  # noqa: E501


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm2d subclass whose forward calls the functional form and
    then its own activation (so torch.fx traces through it)."""

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.1, self.eps
        )
        return self.act(x)


def conv_bn(fused: bool) -> nn.Module:
    bn = BatchNormAct(8) if fused else nn.BatchNorm2d(8)
    act = nn.Identity() if fused else nn.ReLU()
    return nn.Sequential(nn.Conv2d(3, 8, 3), bn, act)


def test_a_layer_swapped_for_a_subclass_that_calls_its_functional_stays_paired() -> None:
    """The old BatchNorm2d call pairs with the batch_norm its subclass calls, not with whatever
    leaves the subclass: no `called True → False`, no added batch_norm; its reader still reads
    the module's output (now made by its act): no rewiring line."""
    text = nnviz.diff(trace(conv_bn(False), "image16"), trace(conv_bn(True), "image16")).to_text()
    assert text == dedent("""\
        ~ 1  BatchNormAct  class BatchNorm2d → BatchNormAct (a subclass; same settings) · +6.12 KiB activations
            ↳ inside: + act ReLU
        ~ 2  Identity  class ReLU → Identity (no inplace) · -6.12 KiB activations
        2 changed · params 240 → 240 (+0) · compute 42.3 KMACs · activations 18.4 KiB
        checkpoint: old checkpoints load as they are
        """)  # noqa: E501


class Twice(nn.Module):
    """One drop-path module called twice (timm 1.0.15's xcit) or one per call (1.0.31)."""

    def __init__(self, split: bool) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)
        if split:
            self.drop_path1, self.drop_path2 = nn.Identity(), nn.Identity()
        else:
            self.drop_path = nn.Identity()
        self._split = split

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.drop_path1 if self._split else self.drop_path
        second = self.drop_path2 if self._split else self.drop_path
        x = x + first(self.a(x))
        return x + second(self.b(x))


def test_inputs_rewired_from_a_repeated_call_follow_the_removed_module() -> None:
    text = nnviz.diff(trace(Twice(False), "tensor2x8"), trace(Twice(True), "tensor2x8")).to_text()
    assert text.splitlines()[:3] == [
        "- drop_path  Identity (2 nodes, 0 params)",
        "    ↳ add  input 1 drop_path → drop_path1",
        "    ↳ add:1  input 1 drop_path:1 → drop_path2",
    ]


class Positions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("ids", torch.arange(8).unsqueeze(0))
        self.proj = nn.Linear(8, 4)


class Reads(nn.Module):
    """Reads a buffer of a module that a refactor moved (transformers 5 flattened CLIP's
    `text_model`), and a size from its input next to a tensor slice."""

    def __init__(self, wrapped: bool) -> None:
        super().__init__()
        holder = nn.Module()
        holder.positions = Positions()
        if wrapped:
            self.text = holder
        else:
            self.positions = holder.positions
        self._wrapped = wrapped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = self.text.positions if self._wrapped else self.positions
        return positions.proj(x + positions.ids[:, : x.shape[1]])


def test_a_buffer_read_follows_its_modules_move() -> None:
    text = nnviz.diff(trace(Reads(True), "tensor1x8"), trace(Reads(False), "tensor1x8")).to_text()
    assert "arg" not in text and "getitem" not in text, text


def _lines(items: list) -> list[list[str]]:
    from nnviz.diffing.changelog import item_lines

    return [item_lines(item) for item in items]


def test_one_swap_with_its_own_settings_at_every_place_is_one_line() -> None:
    """timm's BasicConv2d → ConvNormAct at 94 places, each with its own channels: one line; a
    setting every place shares keeps its value."""
    from nnviz.diffing.grouping import join_places
    from nnviz.diffing.records import Entry, FieldChange, Inside, Places

    def swap(place: str, channels: int, act: bool) -> Entry:
        settings = (("in_channels", channels), ("out_channels", 32))
        change = FieldChange("class", "m.BasicConv2d", "timm.ConvNormAct", None, settings)
        inside = Inside(modules=(("+", "ReLU", (Places.of("act"),)),)) if act else None
        return Entry("changed", Places.of(place), "ConvNormAct", (change,), inside=inside)

    head = "ConvNormAct  class BasicConv2d → ConvNormAct"
    items = [
        swap("stem", 3, False),
        swap("mixed.branch1", 32, True),
        swap("mixed.branch2", 64, True),
    ]
    assert _lines(join_places(items)) == [
        [f"~ stem  {head} (in_channels=3, out_channels=32)"],
        [
            f"~ mixed.branch{{1,2}}  {head} (in_channels=…, out_channels=32) ×2",
            "    ↳ inside: + act ReLU",
        ],
    ]


def test_one_block_added_in_stages_of_several_widths_is_one_line() -> None:
    from nnviz.diffing.grouping import join_places
    from nnviz.diffing.records import Entry, Places, Size

    def added(place: str, cls: str, nodes: int, params: int) -> Entry:
        return Entry("added", Places.of(place), cls, size=Size((nodes,), (params,)))

    items = [
        added("stages.0.mlp", "Mlp", 3, 2112),
        added("stages.1.mlp", "Mlp", 3, 8384),
        added("stages.2.proj", "Linear", 1, 272),
        added("stages.3.proj", "Linear", 1, 272),
    ]
    assert _lines(join_places(items)) == [
        ["+ stages.{0,1}.mlp  Mlp (3 nodes, 2.1K–8.4K params) ×2"],
        ["+ stages.{2,3}.proj  Linear (1 node, 272 params) ×2"],
    ]


class StableDropout(nn.Module):
    """DeBERTa's dropout before transformers 5: a pass-through in eval, so no op is traced."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(x, self.drop_prob) if self.training else x


def test_a_pass_through_swapped_for_a_leaf_is_one_class_line() -> None:
    def net(stable: bool) -> nn.Module:
        return nn.Sequential(nn.Linear(8, 8), StableDropout(0.1) if stable else nn.Dropout(0.1))

    text = nnviz.diff(trace(net(True), "tensor2x8"), trace(net(False), "tensor2x8")).to_text()
    assert (
        text.splitlines()[0]
        == "~ 1  Dropout  class StableDropout → Dropout (no drop_prob, inplace=False, p=0.1)"
    )
