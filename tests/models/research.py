"""Research-code models that defeat naive tracers: one small model per class of tracer bug.

Every callable here is a MODEL spec (`nnviz tests/models/research.py:StaticForward3 -i ...`);
`INPUTS` gives each one's `-i` text. Used by tests/unit/test_research_models.py and the
`research` family of bench/zoo.py. All are tiny and run in milliseconds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class StaticForward1(nn.Module):
    """`forward` is a @staticmethod taking one tensor (fx would bind the module to `x`)."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + 1)


class StaticForward3(nn.Module):
    """`forward` is a @staticmethod taking three tensors."""

    @staticmethod
    def forward(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return a * b + c


class BufferAssign(nn.Module):
    """`forward` reassigns a buffer and a plain attribute (`self.buf = x ** 2`)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.register_buffer("buf", torch.zeros(2, 8))
        self.last = torch.zeros(2, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x) + self.buf
        self.buf = y**2
        self.last = y
        return self.buf + 1


class MetaCpuMix(nn.Module):
    """A buffer combined with a tensor created in forward without a device."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("buf", torch.ones(12, 12))
        self.lin = nn.Linear(12, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + self.buf * (3 + torch.rand(12, 12))


class ItemInForward(nn.Module):
    """Data-dependent: `.item()` steers a shape (impossible on meta tensors: a CPU run)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = int(x.abs().sum().item() > -1) + 1
        return self.lin(x).repeat(1, k) + torch.zeros(1, device=x.device)  # read on the CPU


class KwargsForward(nn.Module):
    """`forward(self, **kwargs)`: every input by keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.lin(kwargs["x"]) * kwargs["gate"]


class KwargsPassThrough(nn.Module):
    """A `**kwargs` forward handed on to a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = KwargsForward()

    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.inner(x=x, **kwargs)


class Lazy(nn.Module):
    """Lazy modules: parameters are created by the first forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.LazyConv2d(4, 3)
        self.fc = nn.LazyLinear(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


class _Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        return self.fc(y.mean(dim=(2, 3)))


def jit_traced() -> nn.Module:
    """A `torch.jit.trace`d module."""
    return torch.jit.trace(_Small().eval(), torch.randn(1, 3, 8, 8))


def jit_scripted() -> nn.Module:
    """A `torch.jit.script`ed module."""
    return torch.jit.script(_Small().eval())


class TensorConstants(nn.Module):
    """Tensors made in forward without any input (fx stores them as constants)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x) @ torch.eye(4)
        return y + torch.tensor([1.0, 2.0, 3.0, 4.0]) + torch.ones(4)


class ContainerInputs(nn.Module):
    """Inputs that are a tuple and a dict, indexed and unpacked in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor], extra: dict[str, Any]) -> Any:
        first, second = pair
        return self.a(first) + self.b(pair[1]) * extra["scale"] + second


class DeviceRead(nn.Module):
    """Tensors created on the device (and with the dtype) read from the input or a weight."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)
        bias = torch.zeros(4, device=self.lin.weight.device)
        return self.lin(x) + positions + bias


class DefaultArguments(nn.Module):
    """Tensor methods with default arguments (`norm`'s p, `split`'s dim), left unsaid."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        a, b = y.split(4, -1)
        return (a / a.norm()) + b.norm(dim=-1, keepdim=True) + y.unflatten(-1, (2, 4)).sum()


def hf_bert() -> nn.Module:
    """A BERT from a small config (needs transformers)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    return BertModel(config)


INPUTS: dict[str, str] = {
    "StaticForward1": "tensor2x3",
    "StaticForward3": "a:tensor2x3;b:tensor2x3;c:tensor2x3",
    "BufferAssign": "tensor2x8",
    "MetaCpuMix": "tensor12x12",
    "ItemInForward": "tensor2x4",
    "KwargsForward": "x:tensor2x6;gate:tensor2x6",
    "KwargsPassThrough": "x:tensor2x6;gate:tensor2x6",
    "Lazy": "image8",
    "jit_traced": "image8",
    "jit_scripted": "image8",
    "TensorConstants": "tensor2x4",
    "ContainerInputs": (
        "{'pair': (torch.randn(2, 4), torch.randn(2, 4)), 'extra': {'scale': torch.randn(2, 4)}}"
    ),
    "DeviceRead": "tensor4x4",
    "DefaultArguments": "tensor2x8",
    "hf_bert": "input_ids:tensor1x8:int64",
}
"""Each model's `-i` text."""
