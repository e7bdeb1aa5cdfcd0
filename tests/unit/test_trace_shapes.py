"""Data tracing: every node's output spec, per call, on meta tensors, with a CPU fallback."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from support import traced
from torch import nn

import nnviz
from nnviz import DataTraceWarning
from nnviz.graph import Graph
from nnviz.values import TensorSpec


def tensor(*shape: int, dtype: str = "float32") -> dict[str, Any]:
    return {"$tensor": {"shape": list(shape), "dtype": dtype}}


def test_resnet18_default_gives_every_edge_a_shape() -> None:
    graph = traced("resnet18", inputs="default")
    assert graph.traced_with_data
    assert graph.meta["inputs"] == {"x": tensor(1, 3, 224, 224)}
    for edge in graph.edges:
        assert graph.edge_spec(edge.source, edge.target) is not None, edge
    assert graph.edge_spec("flatten", "fc") == TensorSpec((1, 512))
    assert graph.node("layer2.0.downsample.0").spec == tensor(1, 128, 28, 28)
    assert graph.node("output").spec == tensor(1, 1000)


def test_shapes_follow_the_input_size() -> None:
    graph = nnviz.trace("resnet18", inputs="image64x96")
    assert graph.node("maxpool").spec == tensor(1, 64, 16, 24)
    assert graph.edge_spec("flatten", "fc") == TensorSpec((1, 512))


def test_without_inputs_there_are_no_specs(resnet18: Graph) -> None:
    assert not resnet18.traced_with_data
    assert all(node.spec is None for node in resnet18)


class Repeated(nn.Module):
    """One pooling module called twice, one function called twice, nested outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> Any:
        half = self.pool(x)
        quarter = self.pool(half)
        flat = torch.flatten(quarter, 1)
        return {"logits": self.head(flat), "maps": (half, [torch.flatten(half, 2)])}


def test_each_call_of_a_repeated_module_gets_its_own_spec() -> None:
    graph = nnviz.trace(Repeated(), inputs="image32")
    assert graph.node("pool").spec == tensor(1, 3, 16, 16)
    assert graph.node("pool:1").spec == tensor(1, 3, 8, 8)
    assert graph.node("flatten").spec == tensor(1, 192)
    assert graph.node("flatten:1").spec == tensor(1, 3, 256)
    assert graph.node("output").spec == {
        "$dict": [
            ["logits", tensor(1, 4)],
            ["maps", {"$tuple": [tensor(1, 3, 16, 16), [tensor(1, 3, 256)]]}],
        ]
    }
    assert str(graph.edge_spec("pool", "pool:1")) == "[1, 3, 16, 16]"


class TokenModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.proj = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(ids)) * mask.unsqueeze(-1)


def test_integer_inputs_by_name() -> None:
    graph = nnviz.trace(TokenModel(), inputs="ids:tensor1x16:int64;mask:tensor1x16:bool")
    assert graph.node("input:ids").spec == tensor(1, 16, dtype="int64")
    assert graph.node("embed").spec == tensor(1, 16, 8)
    assert graph.node("output").spec == tensor(1, 16, 2)
    assert graph.meta["inputs"] == {
        "ids": tensor(1, 16, dtype="int64"),
        "mask": tensor(1, 16, dtype="bool"),
    }


def test_python_objects_and_expressions_are_inputs() -> None:
    model = TokenModel()
    ids = torch.zeros(2, 5, dtype=torch.long)
    by_object = nnviz.trace(model, inputs={"ids": ids, "mask": torch.ones(2, 5)})
    by_tuple = nnviz.trace(model, inputs=(ids, torch.ones(2, 5)))
    by_text = nnviz.trace(model, inputs="(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5))")
    assert by_object == by_tuple == by_text
    assert by_object.node("output").spec == tensor(2, 5, 2)


class DataDependent(nn.Module):
    """Shapes that depend on values: impossible on meta, so it is run on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nonzero(torch.ones_like(self.lin(x)))


def test_a_model_that_cannot_run_on_meta_runs_on_the_cpu() -> None:
    with torch.device("meta"):
        model = DataDependent()
    graph = nnviz.trace(model, inputs="tensor3x4")
    assert graph.node("nonzero").spec == tensor(12, 2, dtype="int64")
    assert model.lin.weight.device.type == "meta", "the user's model is not touched"


def test_a_failing_run_warns_in_one_line_and_keeps_the_graph(resnet18: Graph) -> None:
    with pytest.warns(DataTraceWarning) as caught:
        graph = nnviz.trace("resnet18", inputs="tensor1x3")
    (warning,) = caught
    message = str(warning.message)
    assert "\n" not in message
    assert message.startswith("data tracing with x=[1, 3] failed at conv1: RuntimeError")
    assert message.endswith("the graph has no shapes")
    assert graph == resnet18


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.seen: list[tuple[bool, bool]] = []
        self.norm.register_forward_hook(self._record)

    def _record(self, module: nn.Module, args: Any, out: Any) -> None:
        self.seen.append((module.training, torch.is_grad_enabled()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def test_runs_in_eval_mode_without_grad() -> None:
    model = Recorder().train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = nnviz.trace(model, inputs="tensor2x4")
    assert model.seen == [(False, False)]
    assert int(model.norm.num_batches_tracked) == 0, "running stats were not updated"
    assert model.training and model.norm.training, "the caller's training mode is restored"
    assert graph.node("norm").spec == tensor(2, 4)


class Scaled(nn.Module):
    def forward(self, x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
        return x * scale


def test_arguments_with_defaults_run_with_their_defaults_or_the_given_value() -> None:
    default = nnviz.trace(Scaled(), inputs="tensor3")
    assert default.meta["inputs"] == {"x": tensor(3), "scale": 2.0}
    given = nnviz.trace(Scaled(), inputs="{'x': torch.zeros(2, dtype=torch.int64), 'scale': 3}")
    assert given.node("mul").spec == tensor(2, dtype="int64")
    assert given.node("input:scale").spec == 3


class MakesTensors(nn.Module):
    """forward() creates tensors of its own, as positional encodings do: one fx records as a call
    (its size comes from the input), one it stores as a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + torch.arange(x.shape[-1]) + torch.ones(4)


def _no_cpu_copy() -> nn.Module:
    raise AssertionError("the CPU fallback was used")


def test_tensors_made_in_forward_live_on_meta_too() -> None:
    from nnviz.tracers import trace

    with torch.device("meta"):
        model = MakesTensors()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = trace(model, "m", inputs="tensor2x4", rebuild=_no_cpu_copy)
    assert graph.node("arange").spec == tensor(4, dtype="int64")
    assert graph.node("add:1").spec == tensor(2, 4)


def test_a_wrong_input_fails_on_meta_without_building_a_cpu_copy() -> None:
    from nnviz.tracers import trace

    with torch.device("meta"):
        model = MakesTensors()
    with pytest.warns(DataTraceWarning, match="failed at lin: RuntimeError") as caught:
        trace(model, "m", inputs="tensor2x5", rebuild=_no_cpu_copy)
    assert "CPU" not in str(caught[0].message)


def _with_trailing_one(sizes: list[int], x: torch.Tensor) -> torch.Tensor:
    sizes.append(1)  # mutates its argument, as swin3d's _get_window_and_shift_size does
    return x.reshape(sizes)


torch.fx.wrap("_with_trailing_one")


class MutatesAList(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _with_trailing_one([2, 3], x)


def test_functions_may_mutate_the_lists_they_are_given() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = nnviz.trace(MutatesAList(), inputs="tensor6")
    assert graph.node("output").spec == tensor(2, 3, 1)
