"""Ops whose meta kernel is stricter than their real kernels, run on meta all the same.

A meta kernel computes an op's output shape and dtype without data. A few check more than the
shape rules: `torch._grouped_mm` (the experts' grouped matmul of transformers' mixture-of-experts
models) accepts only bfloat16 on meta, because its CUDA kernel does, while its CPU kernel takes
float32. Refusing would send a 141 B-parameter model to a CPU copy (see `nnviz.tracers.budget`).

`call(func, args, kwargs)` runs `func`; when it fails on meta tensors only and a float32/float64
operand is involved, it runs the same meta kernel once more with those operands presented as
bfloat16 — the kernel's own shape rules, no formula of ours — and hands the outputs back in the
dtype the real kernel gives (the operands' promoted floating dtype). Any other failure, or a
retry that fails too, raises the original error. Nothing is allocated either way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._pytree import tree_leaves, tree_map

_WIDE = (torch.float32, torch.float64)
_LENIENT = ("_grouped_mm", "grouped_mm")
"""Ops known to have a stricter meta kernel (by name: torch, torch.nn.functional, aten)."""


def call(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`func(*args, **kwargs)`, retried as described in the module docstring."""
    try:
        return func(*args, **kwargs)
    except (RuntimeError, NotImplementedError) as error:
        retried = _retry(func, args, kwargs)
        if retried is None:
            raise error from None
        return retried


def _retry(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if getattr(func, "__name__", "").split(".")[0] not in _LENIENT:
        return None
    tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    wide = [t.dtype for t in tensors if t.dtype in _WIDE]
    if not tensors or not wide or any(t.device.type != "meta" for t in tensors):
        return None
    dtype = wide[0]
    for other in wide[1:]:
        dtype = torch.promote_types(dtype, other)

    def narrow(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dtype in _WIDE:
            return value.to(torch.bfloat16)
        return value

    def widen(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
            return value.to(dtype)
        return value

    with torch._C.DisableTorchFunction():
        try:
            result = func(*tree_map(narrow, args), **tree_map(narrow, kwargs))
        except (RuntimeError, NotImplementedError):
            return None
        return tree_map(widen, result)
