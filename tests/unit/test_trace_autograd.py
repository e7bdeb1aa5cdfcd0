"""A forward that differentiates (`torch.autograd.grad` inside `forward`: a physics-informed
residual, a gradient penalty) is traced with autograd enabled where it needs it, by both tracers,
on meta and on the CPU, instead of failing under `no_grad`."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import nnviz


class Residual(nn.Module):
    """u(x) plus the squared norm of du/dx, as a physics-informed net computes its residual."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.requires_grad_(True)
        u = self.net(x)
        (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        return u + du.pow(2).sum(-1, keepdim=True)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_forward_calling_autograd_grad_is_traced_with_shapes(device: str) -> None:
    with torch.device(device):
        model = Residual()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DataTraceWarning: the shapes are all there
        fx_graph = nnviz.trace(model, inputs="tensor4x2", tracer="fx")
        eager = nnviz.trace(model, inputs="tensor4x2", tracer="eager")
    grad = eager.node("grad")
    assert grad.op == "torch.autograd.grad"
    assert grad.spec == {"$tuple": [{"$tensor": {"shape": [4, 2], "dtype": "float32"}}]}
    assert {(e.source, e.slots) for e in eager.edges if e.target == "grad"} == {
        ("sum", ("outputs.0",)),
        ("requires_grad_", ("inputs.0",)),
    }
    assert not nnviz.diff(fx_graph, eager)
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated on the model
