"""Small models that write the same calls in different ways (keyword or positional arguments,
defaults spelled out or left out): `tests/unit/test_binding.py` pins that each pair records alike.
`Head` is also stored as a format-2 snapshot (`tests/models/head-v2.json`, recorded by nnviz
before arguments were named) to pin how an older snapshot compares."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Head(nn.Module):
    """A conv, a flatten and a linear head; `keywords` spells the same calls another way."""

    def __init__(self, keywords: bool = False, start_dim: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 2)
        self.spell, self.dims_from = keywords, start_dim  # not hyperparameter names: no attribute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.spell:
            x = torch.flatten(x, start_dim=self.dims_from, end_dim=-1)
            return F.linear(input=x, weight=self.fc.weight, bias=self.fc.bias)
        return F.linear(torch.flatten(x, self.dims_from), self.fc.weight, self.fc.bias)


class Positions(nn.Module):
    """`arange(0, n)` (explicit start) or `arange(n)`."""

    def __init__(self, explicit: bool) -> None:
        super().__init__()
        self.zero = explicit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        positions = torch.arange(0, n) if self.zero else torch.arange(n)
        return x + positions


class Attention(nn.Module):
    """Scaled dot-product attention over `heads` query heads and `kv_heads` key/value heads;
    `spelled` passes what sdpa computes anyway (`scale=1/sqrt(E)`, `enable_gqa=True`)."""

    def __init__(self, spelled: bool, heads: int = 2, kv_heads: int = 2, dim: int = 8) -> None:
        super().__init__()
        self.spell, self.q_heads, self.k_heads, self.size = spelled, heads, kv_heads, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q = x.view(b, n, self.q_heads, self.size).transpose(1, 2)
        kv = x[..., : self.k_heads * self.size].view(b, n, self.k_heads, self.size)
        kv = kv.transpose(1, 2)
        if self.spell:
            scale = 1 / math.sqrt(self.size)
            return F.scaled_dot_product_attention(q, kv, kv, scale=scale, enable_gqa=True)
        return F.scaled_dot_product_attention(q, kv, kv, enable_gqa=self.q_heads != self.k_heads)


class Pools(nn.Module):
    """Pooling and padding with what they compute anyway spelled out (`stride=kernel_size`,
    `value=0` in constant mode), or left out."""

    def __init__(self, spelled: bool) -> None:
        super().__init__()
        self.spell = spelled

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.spell:
            return F.max_pool2d(x, 2, 2), F.avg_pool2d(x, 2, stride=2), F.pad(x, (1, 1), value=0.0)
        return F.max_pool2d(x, 2), F.avg_pool2d(x, 2), F.pad(x, (1, 1))


class Softmax(nn.Module):
    """`F.softmax` over dim 1 of a 4-D input: written out (`dim=1`, `dim=-3`), left implicit (the
    legacy rule picks 1 for rank 4), or over the last dim (another call)."""

    def __init__(self, dim: int | None) -> None:
        super().__init__()
        self.over = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.over is None:
            return F.softmax(x)  # the implicit dim, as legacy code writes it
        return F.softmax(x, dim=self.over)
