"""Call arguments by the callee's parameter names, as both tracers record them.

`torch.flatten(x, 1)` and `torch.flatten(x, start_dim=1)` are the same call, and so is
`torch.flatten(x, 1, -1)`: `bind` names every argument by the parameter it binds to
(`input`, `start_dim`) and leaves out the ones equal to their default, so the same call records
the same way however it was written.

Where the signatures come from:
- Python callables (`torch.nn.functional.layer_norm`, a module's `forward`, Tensor methods
  written in Python such as `split`): `inspect.signature`.
- torch's builtins (`torch.flatten`, `F.scaled_dot_product_attention`, `Tensor.view`): the type
  stubs torch generates from its operator declarations and ships beside its extension
  (`torch/_C/_VariableFunctions.pyi`, `_C/_nn.pyi`, class `TensorBase` of `_C/__init__.pyi`),
  which list every Python overload (`arange(end)`, `arange(start, end, step=1)`); each overload
  is tried in order, the first that binds and whose annotations accept the constants wins.
- Positional-only parameters (`operator.add(a, b, /)`, `len`) keep their position as their
  name (`"0"`, `"1"`): their names are not part of the call.
- No signature known (`getattr`, a builtin without a stub, arguments no overload accepts): the
  arguments keep today's slots, positions `"0"`, `"1"`, ... and keywords as written.

A sequence argument that holds traced values is split by the tracers into nested slots
(`size.0`, `size.1`), so `x.view(b, -1)` and `x.view((b, -1))` record alike.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

Slots = list[tuple[str, Any]]

_UNKNOWN = object()
"""A stub default nnviz cannot evaluate (`...`, an expression): never equal to a value."""


@functools.cache
def _stubs(relative: str, cls: str | None) -> Mapping[str, tuple[inspect.Signature, ...]]:
    """Every function (or method of class `cls`) a torch stub file declares, overloads in order."""
    path = Path(torch.__file__).parent / relative
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    body: list[ast.stmt] = tree.body
    if cls is not None:
        found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
        body = found[0].body if found else []
    out: dict[str, list[inspect.Signature]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            signature = _signature(node.args)
            if signature is not None:
                out.setdefault(node.name, []).append(signature)
    return {name: tuple(sigs) for name, sigs in out.items()}


def _signature(args: ast.arguments) -> inspect.Signature | None:
    P = inspect.Parameter
    params: list[inspect.Parameter] = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        params.append(_parameter(arg, kind, default))
    if args.vararg is not None:
        params.append(_parameter(args.vararg, P.VAR_POSITIONAL, None))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(_parameter(arg, P.KEYWORD_ONLY, default))
    if args.kwarg is not None:
        params.append(_parameter(args.kwarg, P.VAR_KEYWORD, None))
    try:
        return inspect.Signature(params)
    except ValueError:  # stubs list a required parameter after a default (`start=0, end`)
        return None


def _parameter(arg: ast.arg, kind: Any, default: ast.expr | None) -> inspect.Parameter:
    annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
    value: Any = inspect.Parameter.empty if default is None else _evaluate(default)
    return inspect.Parameter(arg.arg, kind, default=value, annotation=annotation)


def _evaluate(node: ast.expr) -> Any:
    """A stub's default: a literal, or a name torch exports (`torch.strided`); else unknown."""
    try:
        value = ast.literal_eval(node)
        return _UNKNOWN if value is Ellipsis else value
    except ValueError:
        pass
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return _UNKNOWN
    parts.insert(0, node.id)
    if parts[0] == "torch":
        parts = parts[1:]
    value = torch
    for part in parts:
        value = getattr(value, part, _UNKNOWN)
    return _UNKNOWN if inspect.ismodule(value) else value


_OWNER_STUBS = {
    "torch._C._nn": "_C/_nn.pyi",
    "torch._C._fft": "_C/_fft.pyi",
    "torch._C._linalg": "_C/_linalg.pyi",
    "torch._C._special": "_C/_special.pyi",
}


def signatures(kind: str, target: Any) -> tuple[inspect.Signature, ...]:
    """The signatures a call may bind to: a module (its `forward`), a Tensor method's name, or
    a function; empty when none is known."""
    if kind == "module":
        own = vars(target).get("forward")  # a forward set on the instance, else its class's
        return _python(own) if own is not None else _unbound(type(target).forward)
    if kind == "method":
        method = inspect.getattr_static(torch.Tensor, str(target), None)
        if inspect.isfunction(method):
            return _function(method)
        return _stubs("_C/__init__.pyi", "TensorBase").get(str(target), ())
    if kind != "function" or not callable(target):
        return ()
    found = _function(target)
    if found:
        return found
    name = getattr(target, "__name__", "")
    qualified = getattr(target, "__qualname__", "") or ""
    owner = getattr(target, "__self__", None)
    if qualified.startswith("_VariableFunctionsClass."):
        return _stubs("_C/_VariableFunctions.pyi", None).get(name, ())
    if inspect.ismodule(owner) and owner.__name__ in _OWNER_STUBS:
        short = name.removeprefix(owner.__name__.rsplit("._", 1)[-1] + "_")
        stubs = _stubs(_OWNER_STUBS[owner.__name__], None)
        return stubs.get(name, ()) or stubs.get(short, ())
    if getattr(target, "__module__", None) == "torch.nn.functional":
        return _stubs("nn/functional.pyi", None).get(name, ())
    return ()


@functools.lru_cache(maxsize=1024)
def _unbound(forward: Any) -> tuple[inspect.Signature, ...]:
    """A module class's `forward` without `self`, as its instances' bound method binds."""
    found = _python(forward)
    if not found or not found[0].parameters:
        return found
    params = list(found[0].parameters.values())
    return (found[0].replace(parameters=params[1:]),)


def _function(function: Any) -> tuple[inspect.Signature, ...]:
    """`_python` of a function, cached (a trace calls the same functions many times)."""
    try:
        return _cached(function)
    except TypeError:  # an unhashable callable
        return _python(function)


@functools.lru_cache(maxsize=4096)
def _cached(function: Any) -> tuple[inspect.Signature, ...]:
    return _python(function)


def _python(function: Any) -> tuple[inspect.Signature, ...]:
    """`inspect.signature`, unless unknown or only `(*args, **kwargs)` (a dispatching wrapper)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return ()
    kinds = {p.kind for p in signature.parameters.values()}
    if kinds <= {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
        return ()
    return (signature,)


def bind(kind: str, target: Any, slots: Slots, constant: Callable[[Any], bool]) -> Slots:
    """`slots` (positions `"0"`, `"1"`, ... then keywords, as the call was written) named by the
    callee's parameters, arguments equal to their default left out; unchanged when no signature
    binds. `constant(value)` says whether a value holds no traced value: only constants are
    compared with defaults and annotations."""
    positional = [value for key, value in slots if key.isdecimal()]
    keywords = {key: value for key, value in slots if not key.isdecimal()}
    candidates = signatures(kind, target)
    for strict in (True, False):  # a traced value is rarely a dtype or a string, but may be one
        best: tuple[int, inspect.Signature, Mapping[str, Any]] | None = None
        for signature in candidates:
            try:
                arguments = signature.bind(*positional, **keywords).arguments
            except TypeError:
                continue
            params = signature.parameters
            if all(_accepts(params[n], v, constant, strict) for n, v in arguments.items()):
                # a traced value where a Tensor is declared: `x.to(y)` is `to(other)`
                score = sum(
                    not constant(v) and "Tensor" in str(params[n].annotation)
                    for n, v in arguments.items()
                )
                if best is None or score > best[0]:
                    best = (score, signature, arguments)
        if best is not None:
            named = _named(best[1], best[2], constant, _defaults(candidates))
            return [(k, _as_tuple(v)) for k, v in named] if _torch_callee(kind, target) else named
    return slots


def _torch_callee(kind: str, target: Any) -> bool:
    """A Tensor method or a torch function: its sequence parameters take a list or a tuple
    alike (`x.mean([2, 3])` is `x.mean((2, 3))`), so both record as a tuple."""
    if kind == "method":
        return True
    module = getattr(target, "__module__", None) or ""
    qualified = getattr(target, "__qualname__", "") or ""
    return kind == "function" and (module.split(".")[0] == "torch" or qualified.startswith("_Var"))


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _defaults(candidates: tuple[inspect.Signature, ...]) -> dict[str, Any]:
    """Each parameter's default where the overloads that give one agree: `arange(start, end,
    step)` without a default in one overload still has `step=1` from another."""
    found: dict[str, list[Any]] = {}
    for signature in candidates:
        for name, param in signature.parameters.items():
            if param.default is not param.empty and param.default is not _UNKNOWN:
                found.setdefault(name, []).append(param.default)
    return {
        name: values[0]
        for name, values in found.items()
        if all(_is_default(v, values[0]) for v in values)
    }


def _named(
    signature: inspect.Signature,
    arguments: Mapping[str, Any],
    constant: Callable[[Any], bool],
    defaults: Mapping[str, Any],
) -> Slots:
    out: Slots = []
    for index, (name, param) in enumerate(signature.parameters.items()):
        if name not in arguments:
            continue
        value = arguments[name]
        if param.kind is param.POSITIONAL_ONLY:
            out.append((str(index), value))
        elif param.kind is param.VAR_KEYWORD:
            out.extend(value.items())
        elif param.kind is param.VAR_POSITIONAL:
            if value:  # `x.view(b, n)` is `x.view((b, n))`: one sequence argument
                out.append((name, value[0] if _is_sequence(value[0]) else tuple(value)))
        else:
            default = param.default if param.default is not param.empty else _UNKNOWN
            default = defaults.get(name, _UNKNOWN) if default is _UNKNOWN else default
            if not (constant(value) and _is_default(value, default)):
                out.append((name, value))
    return out


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and not hasattr(value, "_fields")


def _is_default(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty or default is _UNKNOWN:
        return False
    if type(value) is type(default):
        return bool(value == default)
    numbers = (int, float)
    return (
        isinstance(value, numbers)
        and isinstance(default, numbers)
        and not isinstance(value, bool)
        and not isinstance(default, bool)
        and value == default
    )


_ACCEPTS: dict[type, tuple[str, ...]] = {
    bool: ("bool", "int", "Number", "float", "SupportsIndex", "Literal"),
    int: ("int", "SymInt", "Number", "float", "complex", "SupportsIndex", "PySymType", "Literal"),
    float: ("float", "Number", "complex", "PySymType"),
    str: ("str", "Literal", "Device", "device", "DeviceLikeType"),  # device="cpu"
    torch.dtype: ("dtype",),
    torch.device: ("Device", "device", "DeviceLikeType"),
    tuple: ("Sequence", "size", "tuple", "list", "NestedSequence"),
    list: ("Sequence", "size", "tuple", "list", "NestedSequence"),
    type(None): ("None", "Optional"),
}
"""The stub annotations (top-level names, leading `_` dropped) each constant's type fits."""

_NEVER_TRACED = frozenset({"dtype", "str", "Literal", "layout", "memory_format", "bool", "None"})
"""Annotations a traced value (the output of an earlier call) cannot be for."""


def _accepts(param: inspect.Parameter, value: Any, constant: Any, strict: bool) -> bool:
    """Whether a stub's annotation can take a constant or a sequence (tells `view(dtype)` from
    `view(size)`); a traced value fits anything (`strict`: anything but a dtype or a string)
    and Python signatures (no string annotation) take everything."""
    annotation = param.annotation
    if not isinstance(annotation, str) or not annotation:
        return True
    if not constant(value) and not isinstance(value, (tuple, list)):
        # a traced value is a tensor, a number, a size or a device: never what only takes a
        # dtype or a string (`x.view(s)` with a traced `s` is `size`, not `dtype`)
        return not strict or not all(n in _NEVER_TRACED for n in _names(annotation))
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return True
    words = _ACCEPTS.get(type(value))
    if words is None:
        return True
    names = _names(annotation)
    return "Any" in names or any(n.startswith(w) for n in names for w in words)


def _names(annotation: str) -> list[str]:
    """The top-level names of a union: `Sequence[_int] | None` -> `Sequence`, `None`."""
    names, depth, current = [], 0, ""
    for char in annotation + "|":
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            names.append(current.split("[")[0].strip().lstrip("_"))
            current = ""
        else:
            current += char
    return names
