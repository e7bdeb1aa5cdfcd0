"""The export tracer: torch.export's graph folded back into fx's conventions, symbolic sizes
named in `-i`, and a failing export said in one line with the user's file:line."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

import nnviz
from nnviz import snapshot
from nnviz.diffing.changelog import changelog
from nnviz.errors import TraceError
from nnviz.graph import Graph
from nnviz.tracers.inputs import parse_inputs

trace = nnviz.trace


def _document(graph: Graph) -> dict[str, object]:
    """The snapshot as JSON without what names the tracer."""
    document = json.loads(snapshot.dumps(graph))
    document["meta"].pop("tracer")
    document["meta"].pop("export", None)
    return document


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.scale = nn.Parameter(torch.ones(3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        y = self.act(y) * self.scale  # a module called twice, a parameter read outside a leaf
        a, b = y.split(8, dim=-1)
        y = torch.cat([b, a], -1) + x
        y += x
        y = F.relu(y, inplace=True)  # ATen's relu_: fx's F.relu with inplace=True
        return F.gelu(torch.flatten(y, 1)).softmax(-1)


def test_export_records_what_fx_records() -> None:
    fx_graph = trace(Block(), inputs="tensor2x3x16x16", tracer="fx")
    exported = trace(Block(), inputs="tensor2x3x16x16", tracer="export")
    assert exported.meta["tracer"] == "export"
    assert exported.meta["export"] == {"ok": True}
    assert _document(exported) == _document(fx_graph)


class Pooled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).mean(1) + x.sum(-1, keepdim=True).amax((1,))


def test_a_reduction_over_one_dim_is_the_same_call_as_fx_records_it() -> None:
    """ATen records `x.mean(1)` as `dim=(1,)` and keeps `-1`: the same dims (timm mixer)."""
    fx_graph = trace(Pooled(), inputs="tensor2x3x4", tracer="fx")
    exported = trace(Pooled(), inputs="tensor2x3x4", tracer="export")
    assert exported.node("mean").args["dim"] == {"$tuple": [1]}
    assert fx_graph.node("mean").args["dim"] == 1
    assert nnviz.diff(fx_graph, exported).identical


class Parts(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.split(2, 1)
        return parts[0] * parts[-1]


def test_an_index_counted_from_the_end_is_the_same_item() -> None:
    """ATen records `parts[-1]` of three parts as `parts[2]`: the same item (timm res2net)."""
    fx_graph = trace(Parts(), inputs="tensor2x6", tracer="fx")
    exported = trace(Parts(), inputs="tensor2x6", tracer="export")
    assert {n.args["1"] for n in exported.nodes if n.op == "operator.getitem"} == {0, 2}
    assert {n.args["1"] for n in fx_graph.nodes if n.op == "operator.getitem"} == {0, -1}
    assert nnviz.diff(fx_graph, exported).identical


class OnePart(nn.Module):
    """Calls returning several tensors, one part of each used (`parts[0]`, `torch.max(x, 1)[0]`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = torch.topk(x, 3, 1)[0] * torch.max(x, 1)[0].unsqueeze(1)
        return top + x.chunk(2, 1)[1] + torch.unbind(x, 1)[-1].unsqueeze(1) + x.split(3, 1)[-1]


def test_a_call_of_which_one_part_is_used_returns_all_parts_as_fx_records_it() -> None:
    """ATen's `topk` returns both tensors where only one is read: the call still returns the
    tuple and a `getitem` takes the part, as fx records it, and as when several parts are used."""
    fx_graph = trace(OnePart(), inputs="tensor2x6", tracer="fx")
    exported = trace(OnePart(), inputs="tensor2x6", tracer="export")
    assert nnviz.diff(fx_graph, exported).identical
    topk = exported.node("topk").spec
    assert isinstance(topk, dict) and len(topk["$tuple"]) == 2  # type: ignore[arg-type]
    items = sorted(n.args["1"] for n in exported.nodes if n.op == "operator.getitem")
    assert items == [0, 0, 1, 1, 5]  # type: ignore[comparison-overlap]


class Spellings(nn.Module):
    """`torch.split` and `Tensor.split` (both Python, both `function.split` to export)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _b = torch.split(x, 2, 1)
        return a * x.split(2, 1)[1] + torch.split(x, [1, 3], 1)[1][:, 1:] + torch.norm(x) + x.norm()


def test_a_torch_function_is_told_from_the_tensor_method_of_the_same_name() -> None:
    """Non-strict export records `torch.split(x, 2)` and `x.split(2)` alike; nnviz tells them
    apart while exporting, so both are recorded as written, as fx records them."""
    fx_graph = trace(Spellings(), inputs="tensor2x4", tracer="fx")
    exported = trace(Spellings(), inputs="tensor2x4", tracer="export")
    ops = [n.op for n in exported.nodes if "split" in n.op or "norm" in n.op]
    assert ops == ["torch.split", "split", "torch.split", "torch.norm", "norm"]
    assert exported.node("split:2").args == {"split_size_or_sections": {"$tuple": [1, 3]}, "dim": 1}
    assert [e.slots for e in exported.in_edges("split")] == [("tensor",)]
    changes = nnviz.diff(fx_graph, exported).to_text(verbose=True)
    assert "split" not in changes
    assert torch.split.__name__ == "split"  # as it was


def test_export_of_a_torchvision_model_diffs_identical_to_fx() -> None:
    fx_graph = trace("resnet18", inputs="image64", tracer="fx")
    exported = trace("resnet18", inputs="image64", tracer="export")
    assert not nnviz.diff(fx_graph, exported)
    assert [n.id for n in exported.nodes] == [n.id for n in fx_graph.nodes]


class Patches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x).flatten(2).transpose(1, 2)
        return self.proj(y).reshape(-1, 8)


def test_a_symbolic_batch_gives_byte_identical_snapshots_for_batch_1_and_8() -> None:
    one = snapshot.dumps(trace(Patches(), inputs="tensorB=1x3x16x16", tracer="export"))
    eight = snapshot.dumps(trace(Patches(), inputs="tensorB=8x3x16x16", tracer="export"))
    assert one == eight
    graph = snapshot.loads(one)
    assert graph.node("input:x").spec == {
        "$tensor": {"shape": ["B", 3, 16, 16], "dtype": "float32"}
    }
    assert graph.node("reshape").spec == {"$tensor": {"shape": ["16*B", 8], "dtype": "float32"}}


class Wide(Patches):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x).flatten(2).transpose(1, 2)
        return self.proj(y).reshape(-1, 16)


def test_the_diff_compares_symbols_as_symbols() -> None:
    """Sizes named in `-i` are compared by name, never by the example size they were traced
    with: batch 1 against batch 8 is no change, `B` against `N` or a number is one, a real
    change reads in symbols, and no cost is asked for (it would be a formula)."""
    b1 = trace(Patches(), inputs="tensorB=1x3x16x16", tracer="export")
    assert nnviz.diff(b1, trace(Patches(), inputs="tensorB=8x3x16x16", tracer="export")).identical
    renamed = trace(Patches(), inputs="tensorN=1x3x16x16", tracer="export")
    assert "output [B, 3, 16, 16] → [N, 3, 16, 16]" in changelog(nnviz.diff(b1, renamed).to_dict())
    numbers = trace(Patches(), inputs="tensor2x3x16x16", tracer="export")
    assert "output [2, 3, 16, 16] → [B, 3, 16, 16]" in changelog(nnviz.diff(numbers, b1).to_dict())
    wide = changelog(
        nnviz.diff(b1, trace(Wide(), inputs="tensorBx3x16x16", tracer="export")).to_dict()
    )
    assert "output [16*B, 8] → [16*B, 16]" in wide
    assert "cost unknown" not in wide
    partly = changelog(nnviz.diff(numbers, b1).to_dict())
    assert (
        "new side (symbolic sizes: a cost would be a formula): re-record it with numbers" in partly
    )


def test_a_named_size_alone_picks_the_export_tracer_and_others_refuse_it() -> None:
    assert trace(Patches(), inputs="tensorBx3x16x16").meta["tracer"] == "export"
    with pytest.raises(TraceError, match="only the export tracer keeps it"):
        trace(Patches(), inputs="tensorBx3x16x16", tracer="fx")


class FixesBatch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(8, -1)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("tensorB=2x4", "the size B was declared dynamic but the model fixes it to 2"),
        ("tensorB=4x4", "the size B was declared dynamic but the model only works when "),
    ],
)
def test_a_model_that_fixes_a_declared_dynamic_size_says_so_in_one_line(
    given: str, said: str
) -> None:
    with pytest.raises(TraceError) as failure:
        trace(FixesBatch(), inputs=given, tracer="export")
    message = str(failure.value)
    assert said in message
    assert "\n" not in message


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        if y.sum() > 0:  # data-dependent: torch.export cannot take this branch symbolically
            return y
        return -y


def test_a_data_dependent_branch_fails_export_at_its_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(TraceError) as failure:
        trace(Branches(), inputs="tensor2x4", tracer="export")
    line = Branches.forward.__code__.co_firstlineno + 2
    assert f"at test_trace_export.py:{line}: data-dependent branch" in str(failure.value)
    assert capfd.readouterr().err == ""  # torch's graph dump is not nnviz's output


def flip(y: torch.Tensor) -> torch.Tensor:
    """A helper fx keeps as one call (`torch.fx.wrap`) and export traces into."""
    if y.sum() > 0:
        return y
    return -y


torch.fx.wrap("flip")


class Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flip(self.proj(x))


@pytest.mark.parametrize(("model", "tracer"), [(Wrapped, "fx"), (Branches, "eager")])
def test_a_failed_export_hides_no_graph_and_says_why_when_asked(
    model: type[nn.Module], tracer: str
) -> None:
    """`--tracer auto` keeps fx, then eager; exportability asked for is recorded beside."""
    net = model()  # one model: eager records the branch its weights take
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager's "torch.fx cannot trace" line
        graph = trace(net, inputs="tensor2x4", exportable=True)
        unasked = trace(net, inputs="tensor2x4")
    assert graph.meta["tracer"] == tracer
    assert graph.node("proj").op == "torch.nn.Linear" and graph.node("output").spec is not None
    record = graph.meta["export"]
    code = (flip if model is Wrapped else model.forward).__code__  # the `if` two lines down
    assert record["ok"] is False and record["reason"].startswith("data-dependent branch on ")
    assert record["where"] == f"test_trace_export.py:{code.co_firstlineno + 2}"
    assert "export" not in unasked.meta and unasked.meta["tracer"] == tracer
    assert _document(unasked) == _document(graph)


class Holder:
    """Holds a tensor, and is no pytree type torch.export can flatten (as HF's `DynamicCache`)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class ReturnsHolder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Holder]:
        return self.proj(x), Holder(x)


def test_a_failure_reason_is_its_first_sentence_without_torchs_advice() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = trace(ReturnsHolder(), inputs="tensor2x4", exportable=True)
    holder = f"{Holder.__module__}.Holder"
    assert graph.meta["export"]["reason"] == (
        f"RuntimeError: Found {holder} in output, which is not a known type."
    )


def test_named_sizes_parse_by_argument() -> None:
    spec = parse_inputs("x:tensorB=8x3xSEQ;mask:tensor1x4:bool")

    def forward(x: torch.Tensor, mask: torch.Tensor) -> None: ...

    assert spec.dims(forward) == {"x": {0: "B", 2: "SEQ"}}
    assert spec.symbolic
    assert spec.bind(forward)["x"].shape == (8, 3, 2)  # SEQ's example size is 2
    assert not parse_inputs("tensor2x3").symbolic


class Optional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.proj(x)
        return y if mask is None else y * mask


def test_a_named_size_beside_arguments_left_at_their_defaults() -> None:
    graph = trace(Optional(), inputs="tensorBxSEQx4", tracer="export")
    shape = {"$tensor": {"shape": ["B", "SEQ", 4], "dtype": "float32"}}
    assert graph.node("output").spec == shape
    assert graph.node("input:mask").args == {"default": None}
