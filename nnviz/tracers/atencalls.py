"""Which user-level call each ATen node of a `torch.export` program belongs to.

`torch.export` records ATen operators; users wrote torch calls and modules. Every ATen node
inside a leaf module (`nnviz.tracers.fx.is_leaf`, found through the node's `nn_module_stack`)
belongs to one call of that module (a second call of the module is a second call); every other
node to the torch call that made it (the node's `torch_fn`, recorded by non-strict export):
`F.normalize`, which ATen runs as four ops, is one call. A call's name is read as fx would name
it (`torch.cat`, `torch.nn.functional.gelu`, the method `view`, `operator.add` for `x + y`);
a node without a torch call (a `getitem` export adds, a shape read of a symbolic size) is named
by its ATen name. `by_name` reads an ATen node's arguments by the Python function's parameters.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nnviz.graph import parent_path
from nnviz.tracers.conventions import call_name, module_names, qualname
from nnviz.tracers.fx import is_leaf

OPERATORS = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "div": "truediv",
    "matmul": "matmul",
    "pow": "pow",
    "floor_divide": "floordiv",
    "remainder": "mod",
    "neg": "neg",
    "__getitem__": "getitem",
    "__and__": "and_",
    "__or__": "or_",
}
"""Tensor methods the Python operators call (`x + y` reaches torch as `Tensor.add`): recorded
as the `operator` function fx records, since `x.add(y)` is the rarer spelling of the same call."""


@dataclass
class Call:
    """One user-level call: the ATen nodes it ran, in order."""

    kind: str
    op: str
    scope: str
    module: str | None
    nodes: list[fx.Node] = field(default_factory=list)
    target: Any = None
    index: int = 0
    """For a module call: which call of that module (0 for the first)."""


def op_of(torch_fn: tuple[str, str] | None, node: fx.Node) -> tuple[str, str, Any]:
    """(kind, op, target to bind with) of the torch call recorded as `torch_fn`, or of `node`."""
    if torch_fn is None:
        if node.target is operator.getitem:
            return "function", "operator.getitem", operator.getitem
        if callable(node.target) and not isinstance(node.target, torch._ops.OpOverload):
            return "function", qualname(node.target), node.target
        name = getattr(node.target, "__name__", str(node.target)).split(".")[0]
        if name == "sym_size":
            return "method", "size", "size"
        return "function", f"torch.ops.aten.{name}", None
    owner, _, name = torch_fn[1].rpartition(".")
    if owner == "function.torch":  # `torch.split`, told from `Tensor.split` (export.TWINS)
        target = getattr(torch, name)
        return "function", qualname(target), target
    if owner in ("method_descriptor", "wrapper_descriptor") or (
        owner == "function"
        and not hasattr(torch.nn.functional, name)
        and hasattr(torch.Tensor, name)
    ):
        plain = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        if plain in OPERATORS:  # `x += y` too, which fx records as `+`
            target = getattr(operator, OPERATORS[plain])
            return "function", qualname(target), target
        return "method", name, name
    homes: tuple[Any, ...] = (torch, torch.nn.functional, torch.special, torch.linalg, torch.fft)
    if owner == "function":  # a Python function: `F.layer_norm`, not the builtin it calls
        homes = (torch.nn.functional, *homes)
    for home in homes:
        target = getattr(home, name, None)
        if callable(target):
            return "function", qualname(target), target
    return "function", f"torch.{name}", None


def calls_of(program: Any, model: nn.Module, traced: set[fx.Node]) -> list[Call]:
    """The user-level calls of `program`'s traced nodes (see the module docstring), in order."""
    names = module_names(model)
    calls: list[Call] = []
    by_key: dict[str, Call] = {}
    for node in program.graph.nodes:
        if node.op != "call_function" or node not in traced:
            continue
        scope, leaf = _where(node, model, names)
        torch_fn = node.meta.get("torch_fn")
        if leaf is not None:
            key = leaf[0]
        elif torch_fn is not None:
            key = f"fn:{scope}:{torch_fn[0]}:{torch_fn[1]}"
        else:
            key = f"node:{node.name}"
        call = by_key.get(key)
        if call is None:
            call = by_key[key] = _new_call(model, scope, leaf, torch_fn, node)
            if leaf is not None:
                call.index = sum(c.target is call.target for c in calls)
            calls.append(call)
        call.nodes.append(node)
    return calls


def _new_call(
    model: nn.Module,
    scope: str,
    leaf: tuple[str, str] | None,
    torch_fn: tuple[str, str] | None,
    node: fx.Node,
) -> Call:
    if leaf is not None:
        module = model.get_submodule(leaf[1])
        return Call("module", qualname(type(module)), parent_path(leaf[1]) or "", leaf[1],
                     target=module)  # fmt: skip
    kind, op, target = op_of(torch_fn, node)
    return Call(kind, op, scope, None, target=target)


def _where(
    node: fx.Node, model: nn.Module, names: Mapping[int, tuple[str, ...]]
) -> tuple[str, tuple[str, str] | None]:
    """The module scope a node ran in, and (stack key, path) of the leaf module it ran inside."""
    scope = ""
    for key, (path, _cls) in (node.meta.get("nn_module_stack") or {}).items():
        if not path:
            continue
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        path = call_name(names.get(id(module), (path,)), scope)
        if is_leaf(module, path):
            return scope, (key, path)
        scope = path
    return scope, None


def by_name(node: fx.Node, target: Any) -> list[tuple[str, Any]] | None:
    """The ATen node's arguments by the Python function's parameter names, matched by name
    (ATen's `batch_norm(input, weight, bias, running_mean, ...)` is `F.batch_norm(input,
    running_mean, running_var, weight, ...)` in another order); ATen-only arguments
    (`cudnn_enabled`) left out. None unless `target` is a Python function and every argument
    given finds its parameter."""
    schema = getattr(node.target, "_schema", None)
    params = parameters(target) if inspect.isfunction(target) else ()
    if schema is None or not params:
        return None
    names = [a.name for a in schema.arguments]
    given = list(zip(names, node.args, strict=False)) + list(node.kwargs.items())
    slots = []
    for name, value in given:
        name = params[0] if name == "self" else name
        if name in params:
            slots.append((name, value))
        elif name not in _ATEN_ONLY:
            return None
    return slots


_ATEN_ONLY = frozenset({"cudnn_enabled", "cudnn_enable"})
"""ATen arguments a Python function fills in itself (from `torch.backends`)."""


def parameters(target: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return ()


def positional_count(target: Any) -> int | None:
    """How many positional arguments a Python function takes: ATen's own trailing arguments
    (`layer_norm`'s `cudnn_enable`) are not the user's call. None when not known."""
    if not inspect.isfunction(target):
        return None
    params = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
