"""What the eager tracer patches while it records, and restores afterwards.

- Tensor operators (`x + y`, `1 - x`, `x += y`, `x[i]`): torch's own `__torch_function__` sees
  `x + y` and `x.add(y)` as the same `Tensor.add` call, and `1 + x` with its operands swapped;
  torch.fx records `operator.add(1, x)`. Wrapping the dunders records what fx records, `+=`
  included (fx proxies have no in-place operators, so fx records `+`).
- Tensor methods written in Python (`x.norm()`, `x.split(4)`): recorded as written, as fx
  records them, not with the defaults torch fills in before `__torch_function__` sees them.
- Functions registered with `torch.fx.wrap` (torchvision's `stochastic_depth`, `roi_align`...)
  and the `math` functions (fx's `autowrap_modules`): one recorded call each, insides unrecorded.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

import torch

from nnviz.tracers import traced

_OPERATORS: dict[str, tuple[Callable[..., Any], bool]] = {}
"""Tensor dunder -> (the operator fx records, whether the operands are swapped)."""
for _name, _binary in {**traced.BINARY, "matmul": operator.matmul}.items():
    _OPERATORS[f"__{_name}__"] = (_binary, False)
    _OPERATORS[f"__r{_name}__"] = (_binary, True)
    _OPERATORS[f"__i{_name}__"] = (_binary, False)  # fx proxies have no `+=`: it records `+`
_ITEMS: dict[str, Callable[..., Any]] = {"getitem": operator.getitem, "setitem": operator.setitem}
for _name, _other in {**traced.UNARY, **traced.COMPARE, **_ITEMS}.items():
    _OPERATORS[f"__{_name}__"] = (_other, False)


def _operator_method(
    original: Callable[..., Any], target: Callable[..., Any], swapped: bool
) -> Callable[..., Any]:
    def method(self: Any, *other: Any) -> Any:
        rec = traced.active()
        if rec is None:
            return original(self, *other)
        operands = (*other, self) if swapped else (self, *other)
        slots = [(str(i), rec.mark(o)) for i, o in enumerate(operands)]  # before any mutation
        with _muted(rec):
            result = original(self, *traced.plain(other))
        return result if result is NotImplemented else rec.finish(target, slots, result)

    method.__name__ = getattr(original, "__name__", "method")
    return method


@contextlib.contextmanager
def _muted(rec: traced.Recording) -> Iterator[None]:
    """Run a call unrecorded inside; outside a leaf module, what it costs is counted for it
    (`finish` then takes the count when it records the call)."""
    counter = getattr(rec, "counter", None) if not rec.muted else None
    if counter is not None:
        counter.take()
    rec.muted += 1
    try:
        yield
    finally:
        rec.muted -= 1
    if counter is not None:
        rec.pending = counter.take()


def _wrapped_function(original: Callable[..., Any]) -> Callable[..., Any]:
    """A `torch.fx.wrap`-registered function: one recorded call, its insides unrecorded."""

    def function(*args: Any, **kwargs: Any) -> Any:
        rec = traced.active()
        if rec is None:
            return original(*args, **kwargs)
        slots = rec.slots(args, kwargs)
        with _muted(rec):
            result = original(*traced.plain(args), **traced.plain(kwargs))
        return rec.finish(original, slots, result)

    return function


def _python_methods() -> list[str]:
    """Tensor methods written in Python (`norm`, `split`, `unflatten`): torch hands them to
    `__torch_function__` with every default filled in, where fx records the call as written."""
    return [
        name
        for name, value in vars(torch.Tensor).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]


def _python_method(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = traced.active()
        if rec is None:
            return original(self, *args, **kwargs)
        slots = rec.slots((self, *args), kwargs)  # as written: no defaults added
        with _muted(rec):
            result = original(self, *traced.plain(args), **traced.plain(kwargs))
        return rec.finish(name, slots, result)

    method.__name__ = name
    return method


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """Patch Tensor operators and the fx-wrapped functions; restore them afterwards."""
    from torch.fx import _symbolic_trace

    missing = object()
    undo: list[tuple[Any, str, Any]] = []
    try:
        for name, (target, swapped) in _OPERATORS.items():
            original = getattr(torch.Tensor, name, None)
            if original is None:
                continue
            undo.append((torch.Tensor, name, torch.Tensor.__dict__.get(name, missing)))
            setattr(torch.Tensor, name, _operator_method(original, target, swapped))
        for name in _python_methods():
            original = torch.Tensor.__dict__[name]
            undo.append((torch.Tensor, name, original))
            setattr(torch.Tensor, name, _python_method(original, name))
        wrapped = [(ns, name) for (_, name), ns in _symbolic_trace._wrapped_fns_to_patch.items()]
        # fx also records `math` functions called on traced numbers (its `autowrap_modules`)
        wrapped += [(vars(math), n) for n in vars(math) if not n.startswith("_")]
        for namespace, name in wrapped:
            if callable(namespace.get(name)):
                undo.append((namespace, name, namespace[name]))
                namespace[name] = _wrapped_function(namespace[name])
        yield
    finally:
        for owner, name, previous in reversed(undo):
            if isinstance(owner, dict):
                owner[name] = previous
            elif previous is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)
