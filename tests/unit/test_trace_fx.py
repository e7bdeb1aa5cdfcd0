"""The torch.fx tracer: structural ids, scopes, hyperparameters, folded parameter reads, dropped
asserts, odd module names and every kind of constant surviving the JSON round trip."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from support import traced
from torch import nn

import nnviz
from nnviz import snapshot
from nnviz.errors import TraceError
from nnviz.graph import Graph


def round_trips(graph: Graph) -> Graph:
    text = snapshot.dumps(graph)
    loaded = snapshot.loads(text)
    assert loaded == graph
    assert snapshot.dumps(loaded) == text
    return loaded


def test_resnet18_nodes_are_structural(resnet18: Graph) -> None:
    ids = [node.id for node in resnet18]
    assert ids[:5] == ["input:x", "conv1", "bn1", "relu", "maxpool"]
    assert ids[-3:] == ["flatten", "fc", "output"]
    add = resnet18.node("layer1.0.add")
    assert (add.kind, add.op, add.scope) == ("function", "operator.add", "layer1.0")
    # BasicBlock calls its one ReLU twice: the second call gets a stable suffix.
    assert resnet18.node("layer2.1.relu:1").module == "layer2.1.relu"
    assert resnet18.predecessors("layer2.1.relu:1") == ["layer2.1.add"]
    assert resnet18.edge("layer1.0.bn2", "layer1.0.add").slots == ("0",)
    assert resnet18.edge("maxpool", "layer1.0.add").slots == ("1",)


def test_module_tree_and_hyperparameters(resnet18: Graph) -> None:
    conv = resnet18.modules["layer2.0.conv1"]
    assert conv.cls == "torch.nn.Conv2d"
    assert dict(conv.hparams) == {
        "in_channels": 64,
        "out_channels": 128,
        "kernel_size": {"$tuple": [3, 3]},
        "stride": {"$tuple": [2, 2]},
        "padding": {"$tuple": [1, 1]},
        "dilation": {"$tuple": [1, 1]},
        "groups": 1,
        "bias": False,
        "padding_mode": "zeros",
        # inherited from _ConvNd's constructor: they define the layer too
        "output_padding": {"$tuple": [0, 0]},
        "transposed": False,
    }
    assert conv.parameters == {"weight": (128, 64, 3, 3)}
    assert resnet18.modules["layer2.0"].cls == "torchvision.models.resnet.BasicBlock"
    assert resnet18.total_params == 11_689_512
    assert resnet18.node("layer2.0.conv1").scope == "layer2.0"


def _kernelized(cls: type[nn.Module]) -> type[nn.Module]:
    """A class decorator that wraps `__init__` as transformers 5's `use_kernelized_func` does:
    `(self, *args, **kwargs)`, no `functools.wraps`."""
    init = cls.__init__

    def new_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)

    cls.__init__ = new_init  # type: ignore[method-assign]
    return cls


@_kernelized
class _Attention(nn.Module):
    def __init__(self, width: int, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def test_hyperparameters_behind_a_constructor_wrapper_are_recorded() -> None:
    # transformers 5.25 wraps LlamaAttention.__init__ so; 4.57 did not: without unwrapping, every
    # attention's `layer_idx` read as removed on the upgrade although the model keeps it
    graph = nnviz.trace(_Attention(4, layer_idx=3))
    assert dict(graph.modules[""].hparams) == {"layer_idx": 3}


def test_torch_asserts_and_the_shape_checks_feeding_them_are_dropped() -> None:
    graph = traced("vit_b_16")
    ops = {node.op for node in graph}
    assert "torch._assert" not in ops
    assert "operator.eq" not in ops and "dim" not in ops
    # `n, c, h, w = x.shape` with `c` unused: no dangling getitem; the used ones stay.
    root_getitems = [n.id for n in graph if n.op == "operator.getitem" and n.scope == ""]
    assert all(graph.successors(i) for i in root_getitems)
    assert all(graph.successors(n.id) for n in graph if n.kind != "output")
    assert graph.node("encoder.add").args == {"1": {"$attr": "encoder.pos_embedding"}}


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d pattern: a module passing its own buffers to F.batch_norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.1, self.eps
        )
        return F.relu(x)


class WithBatchNormAct(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = BatchNormAct(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def test_reads_of_parameters_and_buffers_fold_into_the_op() -> None:
    graph = nnviz.trace(WithBatchNormAct(), inputs="image8")
    assert [n.id for n in graph] == ["input:x", "conv", "bn.batch_norm", "bn.relu", "output"]
    batch_norm = graph.node("bn.batch_norm")
    assert batch_norm.scope == "bn"
    assert dict(batch_norm.args) == {
        "running_mean": {"$attr": "bn.running_mean"},
        "running_var": {"$attr": "bn.running_var"},
        "weight": {"$attr": "bn.weight"},
        "bias": {"$attr": "bn.bias"},
    }  # training=False, momentum=0.1, eps=1e-05 are F.batch_norm's defaults
    assert graph.predecessors("bn.batch_norm") == ["conv"]
    assert graph.node("bn.relu").spec == {"$tensor": {"shape": [1, 4, 6, 6], "dtype": "float32"}}
    round_trips(graph)


class OddNames(nn.Module):
    NAMES = ('we"ird', "a<b>&c", "new\nline", "with space", "relu:1", "tab\tbrace}{")

    def __init__(self) -> None:
        super().__init__()
        for name in self.NAMES:
            self.add_module(name, nn.ReLU() if name != "with space" else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        x = self.relu(x)  # its second call would be `relu:1`, the name of another module
        for name in self.NAMES:
            x = getattr(self, name)(x)
        return x


def test_odd_module_names_do_not_break_the_tracer() -> None:
    graph = nnviz.trace(OddNames(), inputs="tensor2")
    assert set(graph.modules) == {"", "relu", *OddNames.NAMES}
    module_nodes = [n for n in graph if n.kind == "module"]
    assert len(module_nodes) == 2 + len(OddNames.NAMES)
    assert len({n.id for n in graph}) == len(graph)
    assert graph.node("relu:1").module == "relu"
    assert graph.node("relu:1:1").module == "relu:1"
    assert graph.node('we"ird').module == 'we"ird'
    assert graph.node("new\nline").spec == {"$tensor": {"shape": [2], "dtype": "float32"}}
    round_trips(graph)


class Color(enum.Enum):
    RED = 1


class Constants(nn.Module):
    """Calls carrying every kind of constant a model may pass."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = Color.RED

    def forward(self, x: torch.Tensor) -> Any:
        a = x[..., 1:3, None]
        b = x.to(torch.float64)
        c = x.to(torch.device("cpu"))
        d = torch.clamp(x, min=float("-inf"), max=float("nan"))
        e = x.reshape((1, -1))
        f = torch.nn.functional.pad(x, [1, 1], mode="constant", value=0.5)
        g = torch.sum(x, dim=(0, 1), keepdim=True)
        return a, b, c, d, e, f, g, {"k": x}, [x, None]


def test_every_constant_kind_survives_the_round_trip() -> None:
    graph = round_trips(nnviz.trace(Constants(), inputs="tensor2x4x4"))
    args = {n.id: dict(n.args) for n in graph}
    assert args["getitem"] == {
        "1": {"$tuple": [{"$ellipsis": None}, {"$slice": [1, 3, None]}, None]}
    }
    assert args["to"] == {"dtype": {"$dtype": "float64"}}
    assert args["to:1"] == {"device": {"$device": "cpu"}}
    assert args["clamp"] == {"min": {"$float": "-inf"}, "max": {"$float": "nan"}}
    assert args["reshape"] == {"shape": {"$tuple": [1, -1]}}
    assert args["pad"] == {"pad": {"$tuple": [1, 1]}, "value": 0.5}  # mode="constant": default
    assert args["sum"] == {"dim": {"$tuple": [0, 1]}, "keepdim": True}
    assert graph.node("to").spec == {"$tensor": {"shape": [2, 4, 4], "dtype": "float64"}}
    output = graph.node("output").spec
    assert output["$tuple"][-2] == {
        "$dict": [["k", {"$tensor": {"shape": [2, 4, 4], "dtype": "float32"}}]]
    }
    assert output["$tuple"][-1][1] is None


def test_enums_sets_and_objects_encode_deterministically() -> None:
    from nnviz.tracers.conventions import encode

    assert encode(Color.RED) == {"$enum": "Color.RED"}
    assert encode({"b", "a", "c"}) == {"$repr": "{'a', 'b', 'c'}"}
    assert encode(frozenset()) == {"$repr": "set()"}
    assert encode(object())["$repr"].startswith("<object object")
    assert "0x" not in encode(object())["$repr"]
    assert encode(torch.Size([2, 3])) == {"$tuple": [2, 3]}
    assert encode(F.relu) == {"$repr": "torch.nn.functional.relu"}


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Branchy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            return x
        return -x


def test_untraceable_model_names_the_module_and_the_fallback() -> None:
    with pytest.raises(TraceError) as caught:
        nnviz.trace(Untraceable(), name="untraceable")
    message = str(caught.value)
    assert message.startswith("torch.fx cannot trace untraceable in module 'inner': ")
    assert "-i" in message and "\n" not in message
